"""lmrec: recommendation ranking with pretrained language models and pairwise losses.

>>> import lmrec
>>> split = lmrec.get_protocol("ml100k-temporal", data_dir="../shared/datasets")  # doctest: +SKIP
>>> report = lmrec.compare([lmrec.MostPopular(), lmrec.EASE(lam=200)], split)    # doctest: +SKIP
"""
from lmrec.data import Interactions, Split, get_protocol, load_dataset, load_interactions, load_split, save_split
from lmrec.errors import ArtifactError, ConfigError, DataError, LeakageError
from lmrec.evaluation import Evaluator
from lmrec.study.compare import compare
from lmrec.study.compare_report import Report
from lmrec.models import BPRMF, EASE, MODELS, ItemKNN, LMRanker, MostPopular, Random, Recommender, TextKNN, create_model
from lmrec.training import TrainConfig

from lmrec.version import __version__
__all__ = [
    "ArtifactError", "BPRMF", "ConfigError", "DataError", "EASE", "Evaluator", "Interactions", "ItemKNN", "LeakageError",
    "LMRanker", "MODELS", "MostPopular", "Random", "Recommender", "Report", "Split", "TextKNN", "TrainConfig", "compare",
    "create_model",
    "get_protocol", "load_dataset", "load_interactions", "load_split", "save_split",
]
