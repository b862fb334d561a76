"""lmrec train lm-ranker with part flags (encoder tuning, towers, bf16, accumulation, two stages) and lmrec pretune."""
from __future__ import annotations

import json

import pytest

from lmrec.cli import main
from lmrec.data import save_split


def run(args, capsys) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_train_lm_ranker_reaches_every_part_and_two_stages(tiny_split, tiny_encoder, tmp_path, capsys):
    save_split(tiny_split, tmp_path / "split")
    common = ["--split", str(tmp_path / "split"), "--encoder", tiny_encoder, "--dim", "8", "--user", "sequence",
              "--max-history", "4", "--scorer", "cosine", "--temperature", "0.2", "--loss", "softmax",
              "--epochs", "2", "--batch-size", "8", "--progress", "false", "--sampler", "unseen",
              "--negative-pool", "train-items"]
    code, _, err = run(["train", "lm-ranker", *common, "--out", str(tmp_path / "frozen")], capsys)
    assert code == 0, err
    code, _, err = run(["train", "lm-ranker", *common, "--tune", "lora", "--lora-rank", "2", "--lora-targets",
                        "query,value", "--encoder-lr", "0.001", "--grad-items", "4", "--bf16", "--grad-accum", "2",
                        "--init-from", str(tmp_path / "frozen"), "--out", str(tmp_path / "lora")], capsys)
    assert code == 0, err
    params = json.loads((tmp_path / "lora" / "manifest.json").read_text())["params"]
    assert params["encoder"]["tuning"] == {"type": "lora", "rank": 2, "targets": ["query", "value"], "lr": 0.001,
                                           "grad_items": 4}
    # TrainConfig's negatives flags make lm-ranker's negatives part, and stay out of its config
    assert params["negatives"] == {"type": "unseen", "pool": "train-items", "per_user": False}
    assert params["config"]["sampler"] == "uniform" and params["config"]["negative_pool"] == "all-items"
    assert params["user"] == {"type": "sequence", "max_history": 4} and params["items"] == {"dim": 8}
    assert params["scorer"] == {"type": "cosine", "temperature": 0.2} and params["loss"] == {"type": "softmax"}
    assert params["config"]["precision"] == "bf16" and params["config"]["grad_accum"] == 2
    assert (tmp_path / "lora" / "encoder" / "adapter_model.safetensors").exists()


def test_dim_text_with_identity_init(tiny_split, tiny_encoder, tmp_path, capsys):
    """--dim text: the model dimension is the encoder's text size, as --identity-init needs."""
    save_split(tiny_split, tmp_path / "split")
    base = ["train", "lm-ranker", "--split", str(tmp_path / "split"), "--encoder", tiny_encoder, "--epochs", "1",
            "--progress", "false", "--identity-init", "true"]
    code, _, err = run([*base, "--dim", "text", "--out", str(tmp_path / "m")], capsys)
    assert code == 0, err
    params = json.loads((tmp_path / "m" / "manifest.json").read_text())["params"]
    assert params["items"] == {"dim": None, "identity_init": True}
    code, _, err = run([*base, "--dim", "8", "--out", str(tmp_path / "m8")], capsys)
    assert code == 2 and "identity_init=True needs dim equal to the text size" in err
    with pytest.raises(SystemExit):
        run([*base, "--dim", "wide", "--out", str(tmp_path / "m8")], capsys)
    assert "argument --dim: expected a whole number or 'text'; got 'wide'" in capsys.readouterr().err


def test_part_flag_errors_are_one_line(tiny_split, tmp_path, capsys):
    save_split(tiny_split, tmp_path / "split")
    base = ["--split", str(tmp_path / "split"), "--out", str(tmp_path / "m")]
    code, _, err = run(["train", "ease", *base, "--tune", "lora"], capsys)
    assert code == 2 and "the lm-ranker part flags apply to the model lm-ranker, not 'ease'" in err
    code, _, err = run(["train", 'lm-ranker:{"user": "mean"}', *base, "--user", "sequence"], capsys)
    assert code == 2 and "user given both in the model spec and as flags" in err
    code, _, err = run(["train", "lm-ranker", *base, "--grad-items", "4"], capsys)
    assert code == 2 and "set a tuned encoder: give --tune lora or --tune full with them" in err
    code, _, err = run(["train", 'lm-ranker:{"negatives": "all"}', *base, "--sampler", "hard"], capsys)
    assert code == 2 and "negatives given both in the model spec and as flags (--sampler)" in err
    code, _, err = run(["train", "lm-ranker", *base, "--user", "gru"], capsys)
    assert code == 2 and "'user' parameter of LMRanker must be one of 'mean', 'attention', 'sequence'" in err


def test_pretune_writes_a_folder_the_ranker_reads(tiny_split, tiny_encoder, tmp_path, capsys):
    save_split(tiny_split, tmp_path / "split")
    code, out, err = run(["pretune", "--split", str(tmp_path / "split"), "--encoder", tiny_encoder, "--tune", "full",
                          "--epochs", "2", "--batch-size", "4", "--out", str(tmp_path / "co")], capsys)
    assert code == 0, err
    assert json.loads(out[: out.rindex("}") + 1])["pairs"] > 0
    code, _, err = run(["train", "lm-ranker", "--split", str(tmp_path / "split"), "--encoder", str(tmp_path / "co"),
                        "--dim", "8", "--epochs", "1", "--progress", "false", "--out", str(tmp_path / "m")], capsys)
    assert code == 0, err
