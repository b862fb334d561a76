"""``lmrec train --nproc N --launcher ray``: Ray Train workers run the same data-parallel loop."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from lmrec.cli import main
from lmrec.cli.ray import absolute_paths
from lmrec.data.split_io import save_split
from lmrec.data.splits import random_split
from lmrec.data.synthetic import generate

ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-4  # as for torchrun: the same updates, floating-point sums in another order


def test_path_flags_become_absolute_for_workers_elsewhere():
    argv = ["train", "bpr-mf", "--out", "models/x", "--split=splits/p1", "--checkpoint-dir", "/abs/ck", "--epochs", "3"]
    assert absolute_paths(argv, "/home/me") == ["train", "bpr-mf", "--out", "/home/me/models/x",
                                                "--split=/home/me/splits/p1", "--checkpoint-dir", "/abs/ck",
                                                "--epochs", "3"]


def test_without_ray_the_launcher_names_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as when it is not installed
    assert main(["train", "bpr-mf", "--split", str(tmp_path), "--out", str(tmp_path / "m"), "--nproc", "2",
                 "--launcher", "ray"]) == 2
    err = capsys.readouterr().err
    assert "--launcher ray (Ray Train) needs ray" in err and "pip install 'lmrec[ray]'" in err


def test_two_ray_train_workers_train_as_one_process(tmp_path, capsys):
    pytest.importorskip("ray.train.torch", reason="the optional extra lmrec[ray] is not installed")
    data = generate(n_users=300, n_items=150, n_interactions=6000, n_clusters=8, seed=11)
    split = save_split(random_split(data, seed=3), tmp_path / "split")
    common = ["train", "bpr-mf:dim=16", "--split", str(split), "--epochs", "3", "--batch-size", "256",
              "--n-negatives", "4", "--lr", "0.05", "--progress", "false", "--seed", "5"]
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    out = capsys.readouterr().out
    one = json.loads(out[out.index("{"): out.rindex("}") + 1])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "RAY_ADDRESS": ""}
    done = subprocess.run([sys.executable, "-m", "lmrec", *common, "--out", str(tmp_path / "two"), "--nproc", "2",
                           "--launcher", "ray"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert '"processes": 2' in done.stdout + done.stderr, "rank 0 of a 2-process group reported"
    arrays = [load_file(str(tmp_path / name / "model.safetensors")) for name in ("one", "two")]
    for key in ("users", "items"):
        np.testing.assert_allclose(arrays[1][key], arrays[0][key], atol=TOLERANCE)
    assert one["valid_ndcg@10"] > 0.1
