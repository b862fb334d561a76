"""Data-parallel training: the sharding rule, and real ``torchrun`` processes (gloo) against one process."""
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
from lmrec.data.split_io import save_split
from lmrec.data.splits import random_split
from lmrec.data.synthetic import generate
from lmrec.training.distributed import World, shard

ROOT = Path(__file__).resolve().parents[2]
# the same updates in another order of floating-point sums: equal to a few units in the 6th digit
TOLERANCE = 1e-4


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_shards_cover_every_row_of_every_batch_exactly_once(size):
    order = np.random.default_rng(0).permutation(1003)
    for lo in range(0, len(order), 64):
        batch = order[lo: lo + 64]
        parts = [shard(batch, World(rank, size)) for rank in range(size)]
        np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.sort(batch))
        assert max(map(len, parts)) - min(map(len, parts)) <= 1, "shares differ by at most one row"


def run(args: list[str], torchrun: int = 0, capsys=None) -> dict:
    """``lmrec ARGS``: in this process when given ``capsys`` (the one-process runs), else in new
    processes, under ``torchrun`` when asked (``--nproc`` makes lmrec start torchrun itself)."""
    if capsys is not None:
        assert main(args) == 0
        out = capsys.readouterr().out
    else:
        head = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={torchrun}"] \
            if torchrun else [sys.executable]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        done = subprocess.run([*head, "-m", "lmrec", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        out = done.stdout
    return json.loads(out[out.index("{"): out.rindex("}") + 1])


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory) -> Path:
    data = generate(n_users=300, n_items=150, n_interactions=6000, n_clusters=8, seed=11)
    return save_split(random_split(data, seed=3), tmp_path_factory.mktemp("ddp") / "split")


def factors(model_dir: Path) -> np.ndarray:
    arrays = load_file(str(model_dir / "model.safetensors"))
    return np.concatenate([arrays["users"].ravel(), arrays["items"].ravel()])


def test_two_torchrun_processes_train_as_one_and_their_checkpoint_resumes_in_one(split_dir, tmp_path, capsys):
    common = ["train", "bpr-mf:dim=16", "--split", str(split_dir), "--epochs", "4", "--batch-size", "256",
              "--n-negatives", "4", "--lr", "0.05", "--patience", "10", "--progress", "false", "--seed", "5"]
    one = run([*common, "--out", str(tmp_path / "one")], capsys=capsys)
    two = run([*common, "--out", str(tmp_path / "two"), "--nproc", "2"])  # lmrec starts torchrun itself
    assert (one["processes"], two["processes"]) == (1, 2)
    assert one["valid_ndcg@10"] > 0.18, "the run learnt (random 0.037, most-popular 0.161 here)"
    for key in ("valid_ndcg@10", "valid_recall@10"):
        assert abs(one[key] - two[key]) <= TOLERANCE, (key, one[key], two[key])
    np.testing.assert_allclose(factors(tmp_path / "two"), factors(tmp_path / "one"), atol=TOLERANCE)

    # 2 epochs in 2 processes (plain torchrun -m lmrec), then the checkpoint goes on to 4 in 1 process
    ckpt = str(tmp_path / "ckpt")
    run([*common, "--epochs", "2", "--checkpoint-dir", ckpt, "--out", str(tmp_path / "half")], torchrun=2)
    assert json.loads((tmp_path / "ckpt" / "checkpoint.json").read_text())["epoch"] == 2
    resumed = run([*common, "--checkpoint-dir", ckpt, "--out", str(tmp_path / "resumed")], capsys=capsys)
    assert abs(resumed["valid_ndcg@10"] - one["valid_ndcg@10"]) <= TOLERANCE
    np.testing.assert_allclose(factors(tmp_path / "resumed"), factors(tmp_path / "one"), atol=TOLERANCE)


def test_lm_ranker_trains_under_torchrun_frozen_as_one_process_and_with_a_lora_encoder(split_dir, tiny_encoder,
                                                                                      tmp_path, capsys):
    common = ["train", f"lm-ranker:cache_dir={tmp_path / 'cache'}", "--split", str(split_dir), "--encoder",
              tiny_encoder, "--dim", "16", "--epochs", "2", "--batch-size", "128", "--lr", "0.01", "--patience", "5",
              "--progress", "false"]
    one = run([*common, "--out", str(tmp_path / "one")], capsys=capsys)
    two = run([*common, "--out", str(tmp_path / "two"), "--nproc", "2"])
    assert abs(one["valid_ndcg@10"] - two["valid_ndcg@10"]) <= TOLERANCE
    a, b = (load_file(str(tmp_path / name / "model.safetensors")) for name in ("one", "two"))
    for key in a:
        np.testing.assert_allclose(b[key], a[key], atol=TOLERANCE, err_msg=key)
    # the encoder itself trained by two processes: LoRA adapters saved by rank 0
    lora = run([*common, "--tune", "lora", "--lora-rank", "2", "--grad-items", "16", "--init-from",
                str(tmp_path / "one"), "--out", str(tmp_path / "lora"), "--nproc", "2"])
    assert lora["processes"] == 2 and np.isfinite(lora["valid_ndcg@10"])
    assert (tmp_path / "lora" / "encoder" / "adapter_model.safetensors").exists()
