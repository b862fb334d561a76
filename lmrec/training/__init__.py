"""Training: TrainConfig and the pairwise loop."""
from lmrec.training.config import TrainConfig
from lmrec.training.loop import RunLog, train_pairwise

__all__ = ["RunLog", "TrainConfig", "train_pairwise"]
