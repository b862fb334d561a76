"""compare(): a Report with one row per model, intervals, paired tests, and saved files."""
from __future__ import annotations

import json

import numpy as np
import pytest

from lmrec import compare
from lmrec.models import EASE, BPRMF, MostPopular, Random
from lmrec.training import TrainConfig


@pytest.fixture(scope="module")
def p3(data_dir):
    from lmrec.data import get_protocol

    return get_protocol("P3", data_dir)


def test_compare_single_seed(p3, tmp_path):
    report = compare({"pop": MostPopular(), "random": Random(), "ease": EASE(lam=200)}, p3,
                     ["ndcg@10", "recall@10", "coverage@10"], progress=False)
    assert [r.name for r in report.rows] == ["pop", "random", "ease"]
    ease = report.rows[2]
    assert ease.means["ndcg@10"] > report.rows[0].means["ndcg@10"] > report.rows[1].means["ndcg@10"]
    assert ease.intervals["ndcg@10"] > 0 and np.isnan(ease.intervals["coverage@10"])  # over users; list metric has none
    assert ease.test is not None and ease.test.p_wilcoxon < 1e-6 and ease.test.mean_diff > 0
    assert report.rows[0].test is None and report.interval == "users"
    text = str(report)
    assert "ease" in text and "ndcg@10" in text
    report.save(tmp_path / "r")
    md = (tmp_path / "r" / "report.md").read_text()
    assert "| ease" in md and "95% interval over users" in md
    data = json.loads((tmp_path / "r" / "report.json").read_text())
    assert data["rows"][2]["means"]["ndcg@10"] == pytest.approx(ease.means["ndcg@10"])
    assert (tmp_path / "r" / "report.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_several_seeds_reseeds_models(p3):
    cfg = TrainConfig(epochs=2, batch_size=4096, lr=0.01, progress=False)
    report = compare([MostPopular(), BPRMF(dim=8, config=cfg)], p3, ["ndcg@10"], seeds=[1, 2], progress=False)
    mf = report.rows[1]
    assert report.interval == "seeds" and len(mf.per_seed) == 2
    assert mf.per_seed[0]["ndcg@10"] != mf.per_seed[1]["ndcg@10"]  # different seeds, different models
    assert mf.intervals["ndcg@10"] > 0


def test_compare_loads_saved_models(p3, tmp_path):
    EASE(lam=200).fit(p3.train).save(tmp_path / "ease")
    report = compare({"saved": tmp_path / "ease", "fresh": EASE(lam=200)}, p3, ["ndcg@10"], progress=False)
    assert report.rows[0].means["ndcg@10"] == pytest.approx(report.rows[1].means["ndcg@10"])
