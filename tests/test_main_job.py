"""The main job (`make run`) on a machine without ../shared: ML-100K comes from a mirror, checked,
into the user cache, and the LM ranker and the baselines are compared and reported."""
from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.http_mirror import serve_folder, zip_ml100k

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def mirror(tmp_path, data_dir):
    """A local HTTP mirror serving ml-100k.zip (repacked from the shared files) and its MD5."""
    www = tmp_path / "www"
    www.mkdir()
    archive = zip_ml100k(data_dir / "ml-100k")
    (www / "ml-100k.zip").write_bytes(archive)
    (www / "ml-100k.zip.md5").write_text(hashlib.md5(archive).hexdigest() + "  ml-100k.zip\n")

    with serve_folder(www) as url:
        yield url


def test_main_job_downloads_trains_the_lm_ranker_and_reports(mirror, tmp_path):
    args = subprocess.run(["make", "-s", "main-job-args"], cwd=ROOT, capture_output=True, text=True, check=True)
    argv = shlex.split(args.stdout)
    first = argv[argv.index("--models") + 1]
    assert "--download" in argv and first.startswith(("lm-ranker:preset=", 'lm-ranker:{"preset": '))
    home = tmp_path / "home"
    env = {**os.environ, "HOME": str(home), "LMREC_DATA_DIR": str(tmp_path / "no-shared"),
           "LMREC_DATA_MIRROR": mirror, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    # the job as `make run` runs it; one epoch per trained model keeps the test short
    done = subprocess.run([sys.executable, "-m", "lmrec.cli", "compare", *argv, "--epochs", "1",
                           "--out", str(tmp_path / "report")], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (home / ".cache" / "lmrec" / "ml-100k" / "u.data").exists(), "downloaded into the user cache"
    assert not (tmp_path / "no-shared").exists(), "nothing is written to the data directory"
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    names = [r["name"] for r in report["rows"]]
    assert names[0] == "lm-ranker" and {"ease", "itemknn", "most-popular", "bpr-mf"} <= set(names)
    assert (tmp_path / "report" / "report.md").exists() and (tmp_path / "report" / "report.png").exists()
    assert all(0 <= r["means"]["ndcg@10"] <= 1 for r in report["rows"])
