"""A ``[grid.NAME]`` spec end to end through ``lmrec study``: a TOML file, the command line, the report;
a second run trains nothing; a grid cell in its own process; a recipe the command lacks is refused."""
from __future__ import annotations

import json

import pytest

from lmrec.errors import ConfigError
from lmrec.models import ItemKNN
from lmrec.study.plan import plan
from lmrec.study.spec import load_spec

SPEC = """
[study]
name = "tiny grid"
seeds = [2026]
metrics = ["ndcg@10", "recall@10"]
data_dir = "{data_dir}"

[models.knn]
model = "itemknn"
k = 20
per_protocol = {{ P3 = {{ k = 50 }} }}

[grid.tiny]
protocols = ["P3"]
models = ["most-popular", "knn"]
question = "Does item-kNN beat popularity on P3?"

[grid.alone]
protocols = ["P3"]
models = ["random"]
isolate = true
"""


def _study(capsys, *argv: str, progress: str = "false") -> dict:
    """Run ``lmrec study`` in process: its JSON summary, with what it wrote to stderr under "stderr"."""
    from lmrec.cli import main

    assert main(["study", *argv, "--progress", progress]) == 0
    captured = capsys.readouterr()
    return {**json.loads(captured.out[captured.out.index("{"):]), "stderr": captured.err}


def test_a_grid_spec_runs_through_the_command_and_a_rerun_trains_nothing(data_dir, tmp_path, capsys, monkeypatch):
    spec = tmp_path / "grid.toml"
    spec.write_text(SPEC.format(data_dir=data_dir))
    out = tmp_path / "report"
    first = _study(capsys, str(spec), "--out", str(out), progress="true")
    assert (first["cells"], first["computed"], first["reused"]) == (3, 3, 0)
    # off a terminal (captured stderr), a line per computed cell instead of a redrawn bar
    assert first["stderr"].count(": computed in ") == 3 and "\r" not in first["stderr"], first["stderr"]
    cells = [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]
    knn = next(c for c in cells if c["params"]["name"] == "knn")
    assert knn["params"]["model"] == ["itemknn", {"k": 50}]  # per_protocol over the model's own k
    assert next(c for c in cells if c["params"]["name"] == "random")["result"]["peak_rss_mb"] > 0

    fits: list[str] = []
    monkeypatch.setattr(ItemKNN, "fit", lambda self, *a, **k: fits.append("knn") or self)
    again = _study(capsys, str(spec), "--out", str(out), progress="true")
    assert (again["computed"], again["reused"], fits) == (0, 3, [])
    assert ": computed in " not in again["stderr"]

    md = (out / "report.md").read_text()
    assert "## Does item-kNN beat popularity on P3?" in md
    page = md.split("## Does item-kNN beat popularity on P3?")[1]
    assert "| model" in page and "| knn" in page and "p " in page.split("| knn")[1].split("\n")[0]
    assert "Per-seed rows" in page and "2026" in page


def test_a_grid_recipe_the_command_lacks_is_refused(tmp_path):
    spec = tmp_path / "grid.toml"
    spec.write_text('[grid.ft]\nprotocols = ["P2"]\nmodels = ["minilm:lora"]\nrecipe = "finetune"\n')
    with pytest.raises(ConfigError, match=r"\[grid.ft\] recipe 'finetune' is not one this command computes"):
        plan(load_spec(spec))


@pytest.mark.parametrize("text, message", [
    ('[grid.g]\nprotocols = ["P3"]\nmodels = ["ease"]\nreference = "pop"\n', "reference 'pop' is not among"),
    ('[grid.g]\nprotocols = ["P3"]\nmodels = ["nope"]\n', r"\[grid.g\] names model 'nope'"),
    ('[grid.g]\nprotocols = ["P3"]\nmodels = ["ease"]\nseed = 1\n', r"\[grid.g\] has unknown field\(s\) \['seed'\]"),
    ('[models.e]\nmodel = "ease"\nper_protocol = { P1 = 3 }\n', "per_protocol must map a protocol"),
])
def test_bad_grids_name_the_file_and_field(tmp_path, text, message):
    spec = tmp_path / "bad.toml"
    spec.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_spec(spec)
