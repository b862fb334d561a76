"""Experiment tracking: every epoch's record of a training run, sent to TensorBoard or MLflow.

``TrainConfig(tracking="tensorboard" | "mlflow", tracking_dir="runs")`` turns it on (rank 0 only):

* TensorBoard: an event file per run in ``<tracking_dir>/tensorboard/<run name>``
  (``tensorboard --logdir runs/tensorboard``); scalars per epoch, the config as text.
* MLflow: a local SQLite store ``<tracking_dir>/mlflow.db`` with artifacts under
  ``<tracking_dir>/mlflow-artifacts``, experiment "lmrec"
  (``mlflow ui --backend-store-uri sqlite:///runs/mlflow.db``); parameters, metrics per epoch.

Both need the extra ``pip install 'lmrec[tracking]'``; a missing package is named in the error.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from lmrec.extras import needs, require

TRACKERS = ("none", "tensorboard", "mlflow")


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested settings as dotted keys with string values (what trackers store as parameters)."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = json.dumps(value, default=str) if not isinstance(value, str) else value
    return out


class Tracker:
    """No tracking: the base every tracker refines. ``link`` says where the run can be found."""

    link: str | None = None

    def log(self, record: dict[str, Any], step: int) -> None:
        """Numbers of one epoch's record."""

    def close(self) -> None:
        """Flush and end the run."""


class TensorBoardTracker(Tracker):
    def __init__(self, directory: Path, name: str, config: dict[str, Any]) -> None:
        SummaryWriter = require("torch.utils.tensorboard", "tracking", "tracking='tensorboard'").SummaryWriter
        path = directory / "tensorboard" / name
        self.writer = SummaryWriter(log_dir=str(path))
        self.writer.add_text("config", "```\n" + json.dumps(config, indent=2, default=str) + "\n```")
        self.link = str(path)

    def log(self, record: dict[str, Any], step: int) -> None:
        for key, value in record.items():
            if isinstance(value, (int, float)) and key != "epoch":
                self.writer.add_scalar(key, float(value), step)

    def close(self) -> None:
        self.writer.close()


class MLflowTracker(Tracker):
    def __init__(self, directory: Path, name: str, config: dict[str, Any]) -> None:
        with needs("tracking", "tracking='mlflow'"):
            from mlflow.entities import Metric, Param
            from mlflow.tracking import MlflowClient
        directory.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{directory.resolve() / 'mlflow.db'}"
        self.client, self.metric = MlflowClient(uri), Metric
        found = self.client.get_experiment_by_name("lmrec")
        experiment = found.experiment_id if found is not None else self.client.create_experiment(
            "lmrec", artifact_location=(directory.resolve() / "mlflow-artifacts").as_uri())
        self.run_id = self.client.create_run(experiment, run_name=name).info.run_id
        params = [Param(k[:250], v[:6000]) for k, v in flatten(config).items()]
        for lo in range(0, len(params), 100):  # MLflow takes at most 100 parameters per batch
            self.client.log_batch(self.run_id, params=params[lo: lo + 100])
        self.link = f"{uri}#run={self.run_id}"

    def log(self, record: dict[str, Any], step: int) -> None:
        now = int(time.time() * 1000)
        metrics = [self.metric(re.sub(r"[^\w\-. /]", "_", k), float(v), now, step) for k, v in record.items()
                   if isinstance(v, (int, float)) and k != "epoch"]
        self.client.log_batch(self.run_id, metrics=metrics)

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


def open_tracker(kind: str, directory: str | Path, name: str, config: dict[str, Any]) -> Tracker:
    """The tracker ``kind`` (one of :data:`TRACKERS`) for a run called ``name``."""
    if kind == "tensorboard":
        return TensorBoardTracker(Path(directory), name, config)
    if kind == "mlflow":
        return MLflowTracker(Path(directory), name, config)
    return Tracker()
