"""A study runs every section, resumes without retraining, and reports what it measured."""
from __future__ import annotations

import json

import pytest

from lmrec.models.base import Recommender
from lmrec.study.plan import plan, run_study
from lmrec.study.spec import load_spec


def test_a_second_run_reuses_every_cell_without_training(study_spec, study_out, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise AssertionError(f"{self.name} was trained again")

    monkeypatch.setattr(Recommender, "fit", refuse)
    spec = load_spec(study_spec)
    results = run_study(spec, study_out, progress=False)
    assert results.computed == 0 and results.reused == len(plan(spec)) == len(results.cells)


def test_an_extended_study_computes_only_the_new_cells(study_spec, study_out, tmp_path):
    spec = load_spec(study_spec)
    assert spec.fairness is not None
    spec.fairness.models.append("random")
    results = run_study(spec, study_out, progress=False)
    assert results.computed == 1 and results.reused == len(results.cells) - 1


def test_the_report_holds_every_section(study_out):
    report = json.loads((study_out / "report.json").read_text())
    titles = [s["title"] for s in report["sections"]]
    assert titles == ["Losses side by side", "Fairness: user groups and item exposure",
                      "Robustness: noise, attacks and a defence", "Faithful explanations: the deletion test"]
    losses = report["sections"][0]["tables"][0]
    assert [row[0].strip("*") for row in losses["rows"]] == ["bpr", "pointwise-hinge", "softmax:all"]
    assert sum(row[0].startswith("**") for row in losses["rows"]) == 1, "the best loss is marked"
    fairness = {t["title"]: t for t in report["sections"][1]["tables"]}
    gaps = fairness["P3: accuracy gaps between user groups (NDCG@10)"]["rows"]
    assert {(r[0], r[1]) for r in gaps} >= {("most-popular", "gender"), ("itemknn", "activity"), ("itemknn", "age")}
    explanations = report["sections"][3]["tables"][0]["rows"]
    assert any(r[0] == "mf" and "not applicable" in r[3] for r in explanations)
    assert (study_out / "index.html").stat().st_size > 10_000 and len(list((study_out / "plots").glob("*.png"))) == 5
    md = (study_out / "report.md").read_text()
    assert "- command: `lmrec study" in md and "- commit: `" in md


@pytest.mark.parametrize("text, message", [
    ("[study]\nseeds = []\n", "seeds must list at least one seed"),
    ("[losses]\nprotocols = ['P3']\nmodel = 'nope'\n", "names model 'nope', which is neither in"),
    ("[fairness]\nprotocols = ['P3']\nmodels = ['ease']\nlamdas = [1]\n", r"\[fairness\] has unknown field\(s\) \['lamdas'\]"),
    ("[losses]\nprotocols = ['P3']\nmodel = 'ease'\nlosses = ['mse']\n", "losses must be among"),
    ("[losses]\nprotocols = ['P3']\nmodel = 'ease'\nlosses = ['bpr', 'softmax:every']\n", "NAME:SAMPLER"),
    ("[models.x]\nmodel = 'bert'\n", r"\[models.x\] needs model = one of"),
    ("[study\n", "not valid TOML"),
    ("[robustnes]\n", r"unknown section\(s\) \['robustnes'\]"),
])
def test_bad_specs_name_the_file_and_field(tmp_path, text, message):
    from lmrec.errors import ConfigError

    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as err:
        load_spec(path)
    assert str(path) in str(err.value)


def test_cells_of_another_code_version_are_reported_kept_or_recomputed(study_spec, study_out, tmp_path):
    import shutil

    from lmrec.study.store import CellStore

    spec = load_spec(study_spec)
    copy = tmp_path / "copy"
    shutil.copytree(study_out / "cells", copy / "cells")
    store = CellStore(copy / "cells")
    for cell in list(store):  # as if another code version had computed every cell
        cell.code = "0123456789ab"
        store.put(cell)
    shown = run_study(spec, copy, progress=False, report_only=True)
    assert shown.computed == 0 and shown.stale == len(shown.cells) > 0
    assert shown.code_versions() == {"0123456789ab": len(shown.cells)}
    kept = run_study(spec, copy, progress=False, keep_stale=True)
    assert kept.computed == 0 and kept.stale == len(kept.cells)
