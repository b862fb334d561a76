"""User towers: one mean implementation (leave-one-out, history dropout, per-user catalogue negatives)."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from lmrec.models import LMRanker
from lmrec.models.lm import Cosine, ItemTower, MeanUser
from lmrec.models.lm.training import per_user_step
from lmrec.models.lm.users import history_sums, leave_out
from lmrec.training import Negatives, TrainConfig, Unseen

SHARED = TrainConfig(epochs=120, batch_size=16, lr=0.05, progress=False, seed=3)
PER_USER = Unseen(per_user=True)


def fit(tiny_split, **kw) -> LMRanker:
    kw.setdefault("items", ItemTower(dim=8))
    kw.setdefault("negatives", PER_USER)
    return LMRanker(cache_dir=None, scorer=Cosine(), loss="softmax", config=kw.pop("config", SHARED),
                    **kw).fit(tiny_split.train)


def test_leave_out_removes_an_item_only_from_rows_that_have_it():
    history = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1]], dtype=np.float32))
    v = torch.tensor([[1.0, 0.0], [0.0, 2.0], [4.0, 4.0]])
    total, count = history_sums(v, history)
    sums, counts = leave_out(v, history, total, count, np.array([0, 0, 1]), torch.tensor([1, 2, 2]))
    torch.testing.assert_close(sums, torch.tensor([[1.0, 0.0], [1.0, 2.0], [0.0, 2.0]]))
    torch.testing.assert_close(counts, torch.tensor([1.0, 2.0, 1.0]))


def test_per_user_negatives_learn_and_equal_the_per_pair_softmax(tiny_split):
    """The batch loss must equal, pair by pair, the softmax of the positive (its user's mean without
    it) against the user's unseen items (scored from the user's whole history)."""
    model = fit(tiny_split, user=MeanUser())
    assert model.training_parts().negatives == PER_USER
    scores = model.score([0, 10], ids="index")
    assert scores[0, 3] > scores[0, 4:8].max() and scores[1, 7] > scores[1, 0:4].max()

    model = fit(tiny_split, items=ItemTower(dim=8, ids=True, graph_layers=1), user=MeanUser(ids=True),
                config=TrainConfig(epochs=2, batch_size=16, progress=False))
    train = tiny_split.train
    rows = np.arange(0, 40, 3)
    pos, users = torch.as_tensor(train.items[rows]), train.users[rows]
    step = per_user_step(model.training_parts(), train, Negatives(train, PER_USER))
    with torch.no_grad():
        got = step(rows)
        net, tau = model.net_, model.scorer_.temperature
        v = net.item_reps(model.adj_)

        def cos(u: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.cosine_similarity(u, items, dim=1) / tau

        expected = []
        for p, u in zip(pos.tolist(), users.tolist()):
            seen = train.items[train.users == u]
            others = seen[seen != p]
            who = torch.tensor([u])
            u_all = net.users.finish(v[seen].mean(0, keepdim=True), who)
            u_pos = net.users.finish(v[others].mean(0, keepdim=True) if len(others) else v[:1] * 0, who)
            unseen = np.setdiff1d(np.arange(train.n_items), seen)
            logits = torch.cat([cos(u_pos, v[[p]]), cos(u_all, v[unseen])])
            expected.append(-torch.log_softmax(logits, 0)[0])
    torch.testing.assert_close(got, torch.stack(expected).mean(), rtol=1e-5, atol=1e-5)


def test_history_ids_give_items_their_own_part_in_histories(tiny_split):
    model = fit(tiny_split, items=ItemTower(dim=8, ids=True, history_ids=True, graph_layers=1),
                user=MeanUser())
    tower = model.net_.items
    assert tower.history_id.weight.abs().sum() > 0  # trained
    with torch.no_grad():
        v = model.item_representations()
        seen = tiny_split.train.items[tiny_split.train.users == 0]
        by_hand = torch.nn.functional.cosine_similarity((v[seen] + tower.history_id.weight[seen]).mean(0), v, dim=1)
    np.testing.assert_allclose(model.score([0], ids="index")[0], by_hand / model.scorer_.temperature, rtol=1e-5, atol=1e-5)


def test_history_dropout_reads_a_random_part_of_each_history_in_training_only(tiny_split):
    model = fit(tiny_split, user=MeanUser(history_dropout=0.4))
    scores = model.score([0, 10], ids="index")
    assert scores[0, 3] > scores[0, 4:8].max() and scores[1, 7] > scores[1, 0:4].max()
    tower = model.net_.users
    users = np.arange(tiny_split.train.n_users)
    full = tiny_split.train.to_csr()[users]
    assert (tower.training_rows(users) != full).nnz == 0  # eval mode: the whole history
    tower.train()
    kept = [tower.training_rows(users) for _ in range(20)]
    assert all(((k - full).data > 0).sum() == 0 for k in kept)  # a part of the history, nothing added
    share = sum(k.nnz for k in kept) / (20 * full.nnz)
    assert 0.55 < share < 0.65  # about 1 - 0.4 of it
    assert len({k.nnz for k in kept}) > 1  # a fresh draw each step
