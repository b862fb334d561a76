"""User towers and training windows: shared causal windows give each row its own prefix state."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from lmrec.data import Interactions
from lmrec.models.lm.pooling import CausalTransformer
from lmrec.models.lm.windows import TrainingHistories


def sequences(lengths: list[int], seed: int = 0) -> Interactions:
    rng = np.random.default_rng(seed)
    rows = [(f"u{u}", int(rng.integers(0, 30)), 0.0, t) for u, n in enumerate(lengths) for t in range(n)]
    frame = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"]).drop_duplicates(["user", "item"])
    return Interactions.from_frame(frame, name="seq")


def per_row_states(tower: CausalTransformer, hist: TrainingHistories, emb: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    items, mask = hist.window(rows, prefix=True)
    return tower(emb[items], mask)


def shared_states(tower: CausalTransformer, hist: TrainingHistories, emb: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    items, mask, take = hist.shared_windows(rows)
    return tower.states_at(emb[items], mask, take)


def test_shared_windows_match_per_row_prefixes_within_the_window():
    torch.manual_seed(0)
    train = sequences([1, 4, 7, 12])
    hist = TrainingHistories(train, length=16)  # every history fits one window
    tower = CausalTransformer(8, 16).eval()
    torch.nn.init.normal_(tower.recency.weight)  # recency matters (it starts at zero)
    emb = torch.randn(train.n_items, 8)
    rows = torch.as_tensor(np.random.default_rng(1).permutation(len(train)))
    items, _, take = hist.shared_windows(rows)
    assert len(items) == train.n_users, "one window per user serves all of that user's rows"
    assert (take == -1).sum() == train.n_users, "each user's first interaction has an empty history"
    with torch.no_grad():
        torch.testing.assert_close(shared_states(tower, hist, emb, rows), per_row_states(tower, hist, emb, rows))


def test_recency_bias_changes_the_state():
    torch.manual_seed(0)
    tower = CausalTransformer(8, 4).eval()
    h, mask = torch.randn(1, 4, 8), torch.ones(1, 4, dtype=torch.bool)
    with torch.no_grad():
        before = tower(h, mask)
        tower.recency.weight[1:] = -30.0  # every head looks at the most recent item only
        after = tower(h, mask)
        alone = tower(h[:, -1:], mask[:, -1:])
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, alone, atol=1e-3, rtol=1e-3)


def test_long_histories_get_more_windows_and_a_state_at_the_right_item():
    train = sequences([40], seed=3)
    n = len(train)
    hist = TrainingHistories(train, length=8)
    rows = torch.arange(n)
    items, mask, take = hist.shared_windows(rows)
    assert len(items) == int(np.ceil(n / 8)), "windows of 8 cover the rows latest-first"
    flat_items = items.reshape(-1)
    for r in range(1, n):  # the state a row reads sits on the item just before it in time
        assert int(flat_items[take[r]]) == int(hist.items[hist.position[r] - 1])
    assert int(take[int(torch.argmin(hist.position))]) == -1


def test_a_batch_of_first_interactions_only_gives_empty_histories():
    train = sequences([3, 5])
    hist = TrainingHistories(train, length=4)
    firsts = torch.as_tensor([int(torch.argmin(torch.where(hist.start == s, hist.position, 10**9)))
                              for s in hist.start.unique()])
    items, mask, take = hist.shared_windows(firsts)
    assert (take == -1).all() and items.shape[1] == 1 and not mask.any()
    states = shared_states(CausalTransformer(8, 4).eval(), hist, torch.randn(train.n_items, 8), firsts)
    assert torch.equal(states, torch.zeros(2, 8))
