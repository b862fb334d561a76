"""Experiment tracking: TensorBoard event files and a local MLflow store get every epoch."""
from __future__ import annotations

import pytest

from lmrec.errors import ConfigError
from lmrec.models import BPRMF
from lmrec.training import TrainConfig


def fit(tiny_split, tmp_path, tracking: str) -> BPRMF:
    cfg = TrainConfig(epochs=3, batch_size=16, lr=0.05, progress=False, seed=1, tracking=tracking,
                      tracking_dir=str(tmp_path / "runs"), run_dir=str(tmp_path / "run-a"))
    return BPRMF(dim=8, config=cfg).fit(tiny_split.train, tiny_split.valid)


def test_tensorboard_event_files_hold_each_epoch(tiny_split, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model = fit(tiny_split, tmp_path, "tensorboard")
    folder = tmp_path / "runs" / "tensorboard" / "run-a"
    assert (tmp_path / "run-a" / "tracking.txt").read_text().strip() == str(folder)
    events = EventAccumulator(str(folder))
    events.Reload()
    losses = [e.value for e in events.Scalars("loss")]
    assert [e.step for e in events.Scalars("loss")] == [1, 2, 3]
    assert losses == pytest.approx([r["loss"] for r in model.training_log_], rel=1e-6)
    assert "valid_ndcg@10" in events.Tags()["scalars"]


def test_mlflow_store_holds_parameters_and_metrics(tiny_split, tmp_path):
    from mlflow.tracking import MlflowClient

    model = fit(tiny_split, tmp_path, "mlflow")
    link = (tmp_path / "run-a" / "tracking.txt").read_text().strip()
    uri, run_id = link.split("#run=")
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.info.run_name == "run-a" and run.info.status == "FINISHED"
    assert run.data.params["train.batch_size"] == "16" and run.data.params["model.dim"] == "8"
    history = client.get_metric_history(run_id, "loss")
    assert [m.step for m in history] == [1, 2, 3]
    assert [m.value for m in history] == pytest.approx([r["loss"] for r in model.training_log_], rel=1e-6)


def test_unknown_tracker_is_refused():
    with pytest.raises(ConfigError, match="'tracking' parameter of TrainConfig must be one of 'none', 'tensorboard'"):
        TrainConfig(tracking="wandb").validate()
