"""LMRanker and its parts: encoder, item tower, user towers, scorers (losses: :mod:`lmrec.losses`)."""
from lmrec.models.lm.items import ItemTower
from lmrec.models.lm.presets import PRESETS
from lmrec.models.lm.ranker import LMRanker
from lmrec.models.lm.scorers import SCORERS, Cosine, Dot
from lmrec.models.lm.users import USER_TOWERS, AttentionUser, MeanUser, SequenceUser

__all__ = ["AttentionUser", "Cosine", "Dot", "ItemTower", "LMRanker", "MeanUser", "PRESETS", "SCORERS",
           "SequenceUser", "USER_TOWERS"]
