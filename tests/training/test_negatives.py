"""The negatives parts: each kind draws what it says, TrainConfig's fields map onto them, errors name the part."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lmrec.errors import ConfigError
from lmrec.training import (NEGATIVES, AllItems, Hard, InBatch, Negatives, Popularity, TrainConfig, Uniform, Unseen,
                            negatives_part)
from lmrec.training.negatives import negatives_from_config

USERS, POS = np.array([0, 0, 10, 10]), torch.tensor([1, 2, 5, 6])


def test_drawn_kinds_give_n_items_per_positive_that_the_user_has_not(tiny_split):
    train = tiny_split.train
    for part in (Uniform(5), Popularity(5, alpha=1.0), Hard(5, factor=2)):
        negatives = Negatives(train, part, seed=1)
        drawn = negatives.candidates(USERS, POS)
        assert drawn.shape == (4, part.draws()) and negatives.masks(USERS, POS, drawn) is None
        seen = negatives.seen(USERS)
        assert not seen.gather(1, drawn).any(), f"{part.kind}: a training item of the user was drawn"
    in_batch = Negatives(train, InBatch(2)).candidates(USERS, POS)
    assert in_batch.tolist() == [[2, 5], [5, 6], [6, 1], [1, 2]], "the next rows' positives"


def test_hard_keeps_the_highest_scoring_candidates(tiny_split):
    negatives = Negatives(tiny_split.train, Hard(2, factor=3), seed=4)
    pools = negatives.candidates(USERS, POS)  # (4, 6)
    kept = negatives.choose(pools, POS, lambda pool: pool.float())  # the score of an item: its index
    assert kept.shape == (4, 2)
    assert (kept == pools.sort(dim=1, descending=True).values[:, :2]).all()
    assert (negatives.choose(pools, POS) == pools).all(), "no scores: the pools themselves"


def test_catalogue_kinds_score_every_item_and_mask_what_they_leave_out(tiny_split):
    train, n = tiny_split.train, tiny_split.train.n_items
    for part in (AllItems(), Unseen()):
        negatives = Negatives(train, part)
        assert negatives.candidates(USERS, POS) is None
        neg = negatives.draw(USERS, POS)
        assert neg.shape == (4, n) and (neg == torch.arange(n)).all()
        masks = negatives.masks(USERS, POS, neg)
        assert masks[torch.arange(4), POS].all(), f"{part.kind}: the positive is never its own negative"
    unseen = Negatives(train, Unseen()).masks(USERS, POS, neg)
    assert (unseen.sum(1).numpy() == np.bincount(train.users, minlength=train.n_users)[USERS]).all()


@pytest.mark.parametrize("sampler", ["uniform", "popularity", "in-batch", "hard", "all", "unseen"])
def test_train_config_fields_give_the_same_draws_as_their_part(tiny_split, sampler):
    cfg = TrainConfig(sampler=sampler, n_negatives=3, hard_pool=2, pop_alpha=0.5, seed=7)
    part = negatives_from_config(cfg)
    assert part.kind == sampler and type(part) is NEGATIVES[sampler]
    a, b = Negatives(tiny_split.train, cfg), Negatives(tiny_split.train, part, seed=7)
    for _ in range(3):
        x, y = a.candidates(USERS, POS), b.candidates(USERS, POS)
        assert (x is None and y is None) or (x == y).all()


def test_parts_come_from_names_and_saved_dicts_and_name_their_errors():
    assert negatives_part("unseen", "LMRanker") == Unseen()
    assert negatives_part({"type": "hard", "n": 4, "factor": 8}, "LMRanker") == Hard(4, factor=8)
    assert negatives_part(Uniform(3).to_dict(), "LMRanker") == Uniform(3)
    with pytest.raises(ConfigError, match="'negatives' parameter of LMRanker must be one of 'uniform', 'popularity', "
                                          "'in-batch', 'hard', 'all', 'unseen'; got 'random'"):
        negatives_part("random", "LMRanker")
    with pytest.raises(ConfigError, match=r"Unknown AllItems field\(s\) \['n'\]"):
        negatives_part({"type": "all", "n": 4}, "LMRanker")  # the catalogue kinds draw nothing
    with pytest.raises(ConfigError, match=r"'alpha' parameter of Popularity must be a number >= 0.0; got -1"):
        negatives_part(Popularity(alpha=-1), "LMRanker")
    with pytest.raises(ConfigError, match="'per_user' parameter of Unseen must be true or false; got 'yes'"):
        negatives_part(Unseen(per_user="yes"), "LMRanker")
