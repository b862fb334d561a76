"""The lmrec command, run as a user would: real subprocesses for help, main() for the rest."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lmrec.cli import main, parse_model_spec


def run(args, capsys) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("cmd", [[], ["data", "info"], ["data", "prepare"], ["train"], ["evaluate"], ["compare"],
                                 ["serve"], ["publish"], ["retrain"], ["pretune"], ["encoders"], ["encoders", "install"]])
def test_help(cmd):
    res = subprocess.run([sys.executable, "-m", "lmrec.cli", *cmd, "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "usage: lmrec" in res.stdout


def test_parse_model_spec():
    assert parse_model_spec("ease:lam=500") == ("ease", {"lam": 500})
    assert parse_model_spec("bpr-mf:dim=64,loss=hinge,reg=1e-4") == ("bpr-mf", {"dim": 64, "loss": "hinge", "reg": 1e-4})


def test_data_info_and_prepare(data_dir, tmp_path, capsys):
    code, out, _ = run(["data", "info", "ml-100k", "--data-dir", str(data_dir)], capsys)
    assert code == 0 and json.loads(out)["interactions"] == 100000
    code, out, _ = run(["data", "prepare", "P3", "--out", str(tmp_path / "p3"), "--data-dir", str(data_dir)], capsys)
    assert code == 0 and (tmp_path / "p3" / "manifest.json").exists()
    assert '"test": 10439' in out


def test_train_evaluate_compare(data_dir, tmp_path, capsys):
    run(["data", "prepare", "P3", "--out", str(tmp_path / "p3"), "--data-dir", str(data_dir)], capsys)
    code, out, _ = run(["train", "bpr-mf:dim=16", "--split", str(tmp_path / "p3"), "--out", str(tmp_path / "mf"),
                        "--epochs", "2", "--lr", "0.01", "--max-minutes", "60", "--progress", "false", "--run-dir", str(tmp_path / "run")], capsys)
    assert code == 0 and (tmp_path / "mf" / "model.safetensors").exists()
    manifest = json.loads((tmp_path / "mf" / "manifest.json").read_text())
    assert manifest["params"]["config"]["epochs"] == 2 and manifest["params"]["config"]["max_minutes"] == 60.0
    assert "valid_ndcg@10" in manifest["metrics"]
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 2
    code, out, _ = run(["evaluate", str(tmp_path / "mf"), "--split", str(tmp_path / "p3"), "--metrics", "ndcg@10", "auc"], capsys)
    res = json.loads(out)
    assert code == 0 and res["users"] > 900 and 0 < res["ndcg@10"] < 1 and res["auc"] > 0.5
    code, out, _ = run(["compare", "--split", str(tmp_path / "p3"), "--models", f"most-popular;ease:lam=200;{tmp_path / 'mf'}",
                        "--metrics", "ndcg@10", "--out", str(tmp_path / "rep")], capsys)
    assert code == 0 and "ease" in out and "mf" in out
    assert (tmp_path / "rep" / "report.md").exists()


def test_errors_are_one_line(data_dir, tmp_path, capsys):
    code, _, err = run(["train", "eas", "--protocol", "P3", "--data-dir", str(data_dir), "--out", str(tmp_path / "m")], capsys)
    assert code == 2 and err.startswith("lmrec: error: Unknown model 'eas'; supported:")
    code, _, err = run(["evaluate", str(tmp_path / "nothing"), "--protocol", "P3", "--data-dir", str(data_dir)], capsys)
    assert code == 2 and "is not a directory" in err
    code, _, err = run(["data", "info", "ml-1m", "--data-dir", str(tmp_path)], capsys)
    assert code == 2 and "dataset 'ml-1m' not found" in err


def test_train_a_blend_from_json(data_dir, tmp_path, capsys):
    spec = 'blend:{"members": ["itemknn", {"model": "ease", "params": {"lam": 100}}], "step": 0.5}'
    code, out, _ = run(["train", spec, "--protocol", "P3", "--data-dir", str(data_dir), "--out", str(tmp_path / "b")],
                       capsys)
    assert code == 0 and (tmp_path / "b" / "member-0" / "manifest.json").exists()
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert len(manifest["extra"]["selection"]) == 3 and sum(manifest["extra"]["weights"]) == pytest.approx(1.0)
    code, out, _ = run(["evaluate", str(tmp_path / "b"), "--protocol", "P3", "--data-dir", str(data_dir),
                        "--metrics", "ndcg@10"], capsys)
    assert code == 0 and json.loads(out)["ndcg@10"] > 0.05
    code, _, err = run(["train", 'blend:{"members": ["ease", "bpr-mf"]}', "--protocol", "P3", "--data-dir",
                        str(data_dir), "--out", str(tmp_path / "c")], capsys)
    assert code == 2 and "does not score from the history" in err and not (tmp_path / "c").exists()
