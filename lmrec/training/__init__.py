"""Training: TrainConfig, the one loop, the negatives parts and the pairwise step shared by trained models."""
from lmrec.training.config import TrainConfig
from lmrec.training.loop import RunLog, TrainingLog, TrainingTask, train, warm_start
from lmrec.training.negatives import (NEGATIVES, AllItems, Hard, InBatch, NegativeSampling, Negatives, Popularity,
                                      Uniform, Unseen, negatives_part)
from lmrec.training.pairwise import pairwise_step

__all__ = ["NEGATIVES", "AllItems", "Hard", "InBatch", "NegativeSampling", "Negatives", "Popularity", "RunLog",
           "TrainConfig", "TrainingLog", "TrainingTask", "Uniform", "Unseen", "negatives_part", "pairwise_step",
           "train", "warm_start"]
