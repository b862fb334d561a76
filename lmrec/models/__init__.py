"""Models under one Recommender contract."""
from lmrec.models.base import Recommender
from lmrec.models.blend import Blend
from lmrec.models.ease import EASE
from lmrec.models.itemknn import ItemKNN
from lmrec.models.lightgcn import LightGCN
from lmrec.models.lm import LMRanker
from lmrec.models.mf import BPRMF
from lmrec.models.popularity import MostPopular, Random
from lmrec.models.text_knn import TextKNN
from lmrec.models.registry import MODELS, create_model

__all__ = ["BPRMF", "EASE", "MODELS", "Blend", "ItemKNN", "LMRanker", "LightGCN", "MostPopular", "Random",
           "Recommender", "TextKNN", "create_model"]
