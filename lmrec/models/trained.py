"""TrainedRecommender: the part every model trained by the loop shares (BPR-MF, LightGCN, LMRanker)."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from torch import nn

from lmrec.data.interactions import Interactions
from lmrec.models.base import Recommender
from lmrec.training.config import TrainConfig
from lmrec.training.loop import TrainingTask, train, warm_start


class TrainedRecommender(Recommender):
    """A model with a torch ``module_`` trained by :func:`lmrec.training.loop.train`.

    After fitting, ``training_log_`` holds one record per epoch (loss, learning rate, seconds,
    validation metric) and ``best_epoch_`` the epoch whose weights were kept: 0 when the model
    was warm-started (``fit(init_from=...)``) and no epoch beat the start on validation
    (``start_valid_``, the start's validation metric).
    """

    module_: nn.Module
    config: TrainConfig | dict[str, Any] | None

    def _train_config(self) -> TrainConfig:
        cfg = TrainConfig.from_any(self.config)
        cfg.validate()
        return cfg

    def _run_training(self, task: TrainingTask, cfg: TrainConfig, train_data: Interactions,
                      valid: Interactions | None) -> None:
        """Warm-start from ``fit(init_from=...)`` when given, train, keep the log."""
        source = self._init_from
        task = replace(task, name=task.name or self.name)  # the progress lines name the model
        if isinstance(source, TrainedRecommender):
            warm_start(task.module, source.module_)
            task = replace(task, warm=True)
        log = train(task, cfg, self._validator(train_data, valid, cfg.metric), self.get_params())
        self.training_log_, self.best_epoch_, self.start_valid_ = log.records, log.best_epoch, log.start
