"""Training: TrainConfig, the one loop, and the pairwise step shared by trained models."""
from lmrec.training.config import TrainConfig
from lmrec.training.loop import RunLog, TrainingLog, TrainingTask, train, warm_start
from lmrec.training.pairwise import Negatives, pairwise_step

__all__ = ["Negatives", "RunLog", "TrainConfig", "TrainingLog", "TrainingTask", "pairwise_step", "train",
           "warm_start"]
