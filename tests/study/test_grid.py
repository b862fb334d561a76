"""A tiny grid end to end through the one runner and store: synthetic data, two tiny models, two seeds.

It reports intervals and a paired test (Markdown, HTML, JSON); a rerun trains nothing; an
interrupted run resumes; a changed parameter recomputes only its own cells; stale cells follow
the policy (recomputed by default, kept with keep_stale, reported with report_only).
"""
from __future__ import annotations

import json

import pytest

from lmrec import compare
from lmrec.data.splits import random_split
from lmrec.data.synthetic import generate
from lmrec.models import EASE, BPRMF, MostPopular
from lmrec.study.runner import Cell, run_cells
from lmrec.study.store import CellStore
from lmrec.training import TrainConfig

SEEDS = [1, 2]


@pytest.fixture(scope="module")
def split():
    return random_split(generate(n_users=120, n_items=60, n_interactions=2400, seed=3), seed=3)


def models(dim: int = 4):
    return {"pop": MostPopular(), "mf": BPRMF(dim=dim, config=TrainConfig(epochs=1, batch_size=512, progress=False))}


@pytest.fixture
def fits(monkeypatch):
    """Counts fit calls per model class."""
    counts: dict[str, int] = {}
    for cls in (MostPopular, BPRMF, EASE):
        original = cls.fit

        def counted(self, *a, _original=original, **k):
            counts[type(self).__name__] = counts.get(type(self).__name__, 0) + 1
            return _original(self, *a, **k)

        monkeypatch.setattr(cls, "fit", counted)
    return counts


def test_a_grid_reports_intervals_and_a_paired_test_and_a_rerun_trains_nothing(split, tmp_path, fits):
    report = compare(models(), split, ["ndcg@10", "recall@10"], seeds=SEEDS, progress=False, cache_dir=tmp_path / "c")
    assert fits == {"MostPopular": 2, "BPRMF": 2}
    assert report.interval == "seeds" and report.rows[1].test is not None and 0 <= report.rows[1].test.p_wilcoxon <= 1
    report.save(tmp_path / "r")
    md = (tmp_path / "r" / "report.md").read_text()
    assert "| mf" in md and " ± " in md and "95% interval over seeds" in md and "p (Wilcoxon)" in md
    page = (tmp_path / "r" / "report.html").read_text()
    assert page.startswith("<!doctype html>") and "<table>" in page and "data:image/png;base64," in page
    data = json.loads((tmp_path / "r" / "report.json").read_text())
    assert [r["name"] for r in data["rows"]] == ["pop", "mf"] and data["rows"][1]["test"]["p_wilcoxon"] <= 1
    fits.clear()
    again = compare(models(), split, ["ndcg@10", "recall@10"], seeds=SEEDS, progress=False, cache_dir=tmp_path / "c")
    assert fits == {}, "a rerun trains nothing"
    assert [r.per_seed for r in again.rows] == [r.per_seed for r in report.rows]
    assert again.rows[1].test.p_wilcoxon == pytest.approx(report.rows[1].test.p_wilcoxon)


def test_an_interrupted_run_resumes_and_a_changed_parameter_recomputes_only_its_cells(split, tmp_path, fits,
                                                                                       monkeypatch):
    original = BPRMF.fit
    calls = {"n": 0}

    def dies_on_the_second_seed(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self, *a, **k)

    monkeypatch.setattr(BPRMF, "fit", dies_on_the_second_seed)
    with pytest.raises(KeyboardInterrupt):
        compare(models(), split, ["ndcg@10"], seeds=SEEDS, progress=False, cache_dir=tmp_path / "c")
    assert len(list((tmp_path / "c").glob("*.json"))) == 3, "the finished cells were kept"
    monkeypatch.setattr(BPRMF, "fit", original)
    fits.clear()
    compare(models(), split, ["ndcg@10"], seeds=SEEDS, progress=False, cache_dir=tmp_path / "c")
    assert fits == {"BPRMF": 1}, "only the interrupted cell is computed"
    fits.clear()
    compare(models(dim=6), split, ["ndcg@10"], seeds=SEEDS, progress=False, cache_dir=tmp_path / "c")
    assert fits == {"BPRMF": 2}, "a new dim recomputes the mf cells of both seeds, not most-popular's"


def test_stale_cells_are_recomputed_kept_or_reported_by_policy(tmp_path):
    store = CellStore(tmp_path)
    computed: list[int] = []

    def grid() -> list[Cell]:
        return [Cell("demo", {"x": x}, lambda ctx, key, x=x: computed.append(x) or {"y": x * x}) for x in (1, 2)]

    first = run_cells(grid(), store, code="old", progress=False)
    assert first.computed == 2 and computed == [1, 2]
    kept = run_cells(grid(), store, code="new", keep_stale=True, progress=False)
    assert kept.computed == 0 and kept.stale == 2 and kept.code_versions() == {"old": 2}
    shown = run_cells(grid()[:1] + [Cell("demo", {"x": 3}, lambda ctx, key: {"y": 9})], store, code="new",
                      report_only=True, progress=False)
    assert shown.reused == 1 and shown.missing == 1 and len(computed) == 2
    fresh = run_cells(grid(), store, code="new", progress=False)
    assert fresh.computed == 2 and fresh.code_versions() == {"new": 2}
    assert [r["y"] for _, r in fresh.cells] == [1, 4] and all("peak_rss_mb" in r for _, r in fresh.cells)


def test_isolated_cells_run_in_their_own_process_and_come_back_through_the_store(tmp_path):
    import os

    results = run_cells([Cell("demo", {"x": 1}, lambda ctx, key: {"pid": os.getpid()})], CellStore(tmp_path),
                        isolate=True, progress=False)
    assert results.computed == 1 and results.cells[0][1]["pid"] != os.getpid()


def test_labels_keep_every_distinguishing_parameter():
    from lmrec.study import labels

    assert labels(["text-knn:encoder=minilm", "text-knn:encoder=mpnet", "ease:lam=100", "pop"]) == \
        ["text-knn:encoder=minilm", "text-knn:encoder=mpnet", "ease", "pop"]
    assert labels(["ease", "ease"]) == ["ease", "ease #2"]
