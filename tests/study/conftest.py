"""A small study on ML-100K (P3), run once per session: every section, a few seconds of training."""
from __future__ import annotations

from pathlib import Path

import pytest

SPEC = """
[study]
name = "test study"
seeds = [2026]
metrics = ["ndcg@10", "recall@10"]
data_dir = "{data_dir}"

[models.mf]
model = "bpr-mf"
dim = 8
config = {{ epochs = 2, batch_size = 8192, lr = 0.01, n_negatives = 2 }}

[losses]
protocols = ["P3"]
model = "mf"
losses = ["bpr", "pointwise-hinge", "softmax:all"]

[fairness]
protocols = ["P3"]
models = ["most-popular", "itemknn"]
lams = [0.0, 1.0]

[robustness]
protocol = "P3"
models = ["itemknn"]
false_positives = [0.2]
dropped = [0.3]
outlier_ratings = [0.05]
attacks = ["bandwagon"]
attack_sizes = [0.03]

[explanations]
protocol = "P3"
models = ["itemknn", "mf"]
users = 20
sizes = [1, 2]
"""


@pytest.fixture(scope="session")
def study_spec(data_dir, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("study") / "study.toml"
    path.write_text(SPEC.format(data_dir=data_dir))
    return path


@pytest.fixture(scope="session")
def study_out(study_spec) -> Path:
    """The study run once through the command line; its report folder."""
    from lmrec.cli import main

    out = study_spec.parent / "report"
    assert main(["study", str(study_spec), "--out", str(out), "--progress", "false"]) == 0
    return out
