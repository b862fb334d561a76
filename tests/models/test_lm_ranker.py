"""LMRanker beyond the shared contract: cold items and users, options, errors, reloads."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from lmrec.errors import ConfigError
from lmrec.models import LMRanker, Recommender
from lmrec.training import TrainConfig

CFG = TrainConfig(epochs=120, batch_size=16, lr=0.05, progress=False, seed=3)


def fit(tiny_split, **kw):
    return LMRanker(dim=8, cache_dir=None, config=kw.pop("config", CFG), **kw).fit(tiny_split.train)


@pytest.mark.parametrize("options", [
    {"user_tower": "attention"}, {"user_tower": "sequence", "max_history": 4},
    {"graph_layers": 2}, {"id_mode": "hybrid"}, {"id_mode": "items"}, {"scorer": "cosine", "loss": "softmax"},
    {"loss": "hinge", "projection": "mlp"}, {"history_dropout": 0.3}, {"id_mode": "hybrid", "history_ids": True},
], ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_options_learn_the_taste_groups(tiny_split, options):
    model = fit(tiny_split, **options)
    scores = model.score([0, 10])
    assert scores[0, 3] > scores[0, 4:8].max() and scores[1, 7] > scores[1, 0:4].max()


def test_unseen_item_with_text_is_scored_and_ranked(tiny_split, tmp_path):
    model = fit(tiny_split)
    new = model.add_items(pd.DataFrame({"item": [100, 101], "title": ["mango", "chisel"]}))
    assert new.tolist() == [10, 11] and model.n_items_ == 12
    items, _ = model.recommend([0, 10], k=12)
    fruit_user, tool_user = items[0].tolist(), items[1].tolist()
    assert fruit_user.index(10) < fruit_user.index(11), "a fruit lover should rank the new fruit above the new tool"
    assert tool_user.index(11) < tool_user.index(10)
    model.save(tmp_path / "m")  # the grown catalogue survives a save / load
    back = Recommender.load(tmp_path / "m")
    np.testing.assert_allclose(back.score([0]), model.score([0]), rtol=1e-5)
    assert back.item_ids_.tolist()[-2:] == [100, 101]


def test_new_users_from_history_and_profile(tiny_split):
    model = fit(tiny_split)
    items, _ = model.recommend_for_history([4, 5, 6], k=1)
    assert items.tolist() == [7]
    items, _ = model.recommend_for_profile("I love fresh fruit", k=4)
    assert len(set(items.tolist()) & {0, 1, 2, 3}) >= 3
    with pytest.raises(ConfigError, match="needs at least one item"):
        model.recommend_for_history([])


def test_reload_gives_identical_scores(tiny_split, tmp_path):
    model = fit(tiny_split, user_tower="sequence", graph_layers=1, id_mode="hybrid", dropout=0.3)
    model.save(tmp_path / "m")
    back = Recommender.load(tmp_path / "m")
    np.testing.assert_allclose(back.score(np.arange(20)), model.score(np.arange(20)), rtol=1e-5, atol=1e-6)
    assert back.item_template_ == "{title}"
    rates = {m.p for m in back.module_.tower.modules() if isinstance(m, torch.nn.Dropout)}
    assert rates == {0.3}, "the reloaded tower keeps the dropout it was trained with"


def test_user_text_is_used(data_dir):
    from lmrec.data import get_protocol

    split = get_protocol("P3", data_dir)
    model = LMRanker(dim=8, cache_dir=None, config=TrainConfig(epochs=1, progress=False))
    model.fit(split.train)
    assert model.user_template_.startswith("Gender:") and model.module_.user_proj is not None


def test_errors(tiny_split):
    with pytest.raises(ConfigError, match="'user_tower' parameter of LMRanker must be one of 'mean', 'attention', 'sequence'"):
        fit(tiny_split, user_tower="gru")
    with pytest.raises(ConfigError, match=r"The item template uses field\(s\) \['brand'\] that the item table lacks"):
        fit(tiny_split, item_template="{title} by {brand}")
    with pytest.raises(ConfigError, match="Could not load encoder 'nope/nothing'"):
        fit(tiny_split, encoder="nope/nothing")
    with pytest.raises(ConfigError, match=r"dropout must be in \[0, 1\); got 1.0"):
        fit(tiny_split, dropout=1.0)
    with pytest.raises(ConfigError, match=r"history_dropout must be in \[0, 1\); got -0.1"):
        fit(tiny_split, history_dropout=-0.1)
    with pytest.raises(ConfigError, match="history_dropout=0.2 needs user_tower='mean'; got user_tower='attention'"):
        fit(tiny_split, history_dropout=0.2, user_tower="attention")
    with pytest.raises(ConfigError, match="history_ids=True needs item IDs .*; got id_mode='none'"):
        fit(tiny_split, history_ids=True)
    bare = tiny_split.train
    bare.item_table = pd.DataFrame(index=range(10))
    with pytest.raises(ConfigError, match="LMRanker needs item text, but the item table of 'tiny' has no field"):
        LMRanker(cache_dir=None).fit(bare)


def test_fast_mean_tower_equals_the_sparse_path(tiny_split):
    """The linear mean tower trains through per-user text means; it must give the same batch scores
    as the exact sparse mean over item representations."""
    import torch

    model = fit(tiny_split, config=TrainConfig(epochs=2, batch_size=16, progress=False))
    assert model.text_means_ is not None
    rows, pos = torch.arange(0, 30, 3), torch.as_tensor(tiny_split.train.items[0:30:3])
    neg = torch.randint(0, 10, (10, 4))
    fast = model.batch_scores(rows, pos, neg)
    model.text_means_ = None
    slow = model.batch_scores(rows, pos, neg)
    for a, b in zip(fast[:2], slow[:2]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


SHARED = TrainConfig(epochs=120, batch_size=16, lr=0.05, sampler="unseen", progress=False, seed=3)


def test_shared_negatives_learn_and_equal_the_per_pair_softmax(tiny_split):
    """With shared negatives the batch loss must equal, pair by pair, the softmax of the positive (its
    user's mean without it) against the user's unseen items (scored from the user's whole history)."""
    from lmrec.data.sampling import NegativeSampler
    from lmrec.losses import softmax
    from lmrec.training.loop import shared_negatives_loss

    model = fit(tiny_split, loss="softmax", scorer="cosine", shared_negatives=True, config=SHARED)
    scores = model.score([0, 10])
    assert scores[0, 3] > scores[0, 4:8].max() and scores[1, 7] > scores[1, 0:4].max()

    model = fit(tiny_split, loss="softmax", scorer="cosine", id_mode="hybrid", graph_layers=1,
                shared_negatives=True, config=TrainConfig(epochs=2, batch_size=16, sampler="unseen", progress=False))
    train = tiny_split.train
    rows = torch.arange(0, 40, 3)
    pos, users = torch.as_tensor(train.items[rows.numpy()]), train.users[rows.numpy()]
    with torch.no_grad():
        got = shared_negatives_loss(model, NegativeSampler(train, "uniform", 1), users, rows, pos, softmax)
        net = model.module_
        v = net.item_reps(model.adj_, model.graph_layers)

        def cos(u: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.cosine_similarity(u, items, dim=1) / model.temperature

        expected = []
        for p, u in zip(pos.tolist(), users.tolist()):
            seen = train.items[train.users == u]
            others = seen[seen != p]
            who = torch.tensor([u])
            u_all = net._add_user_parts(v[seen].mean(0, keepdim=True), who)
            u_pos = net._add_user_parts(v[others].mean(0, keepdim=True) if len(others) else v[:1] * 0, who)
            unseen = np.setdiff1d(np.arange(train.n_items), seen)
            logits = torch.cat([cos(u_pos, v[[p]]), cos(u_all, v[unseen])])
            expected.append(-torch.log_softmax(logits, 0)[0])
    torch.testing.assert_close(got, torch.stack(expected).mean(), rtol=1e-5, atol=1e-5)


def test_shared_negatives_need_softmax_unseen_and_the_mean_tower(tiny_split):
    with pytest.raises(ConfigError, match="shared_negatives=True needs loss='softmax', config.sampler='unseen' "
                                          "and user_tower='mean'; got 'bpr', 'unseen' and 'mean'"):
        fit(tiny_split, shared_negatives=True, config=SHARED)
    with pytest.raises(ConfigError, match="got 'softmax', 'uniform' and 'mean'"):
        fit(tiny_split, loss="softmax", shared_negatives=True)


def test_cosine_heads_average_the_parts_cosines_and_serve_as_one_dot_product(tiny_split):
    model = fit(tiny_split, loss="softmax", scorer="cosine", heads=2, temperature=0.2)
    scores = model.score([0, 10])
    assert scores[0, 3] > scores[0, 4:8].max() and scores[1, 7] > scores[1, 0:4].max()
    u, v = torch.randn(3, 8), torch.randn(5, 8)
    cos = torch.nn.functional.cosine_similarity
    by_hand = (cos(u[:, None, :4], v[None, :, :4], dim=2) + cos(u[:, None, 4:], v[None, :, 4:], dim=2)) / 2 / 0.2
    torch.testing.assert_close(model._pair(u, v), by_hand)
    users, items = model.factors()  # the serving factorisation gives the same scores
    torch.testing.assert_close(users[[0, 10]] @ items.T, torch.as_tensor(scores), rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError, match="heads=3 needs scorer='cosine' and a dim that is a multiple of heads; "
                                          "got scorer='cosine' and dim=8"):
        fit(tiny_split, loss="softmax", scorer="cosine", heads=3)
    with pytest.raises(ConfigError, match="got scorer='dot'"):
        fit(tiny_split, heads=2)


@pytest.mark.parametrize("options", [{"config": SHARED, "shared_negatives": True},
                                     {"config": {**CFG.to_dict(), "sampler": "hard", "n_negatives": 2}}],
                         ids=["shared-negatives", "hard-negatives"])
def test_separate_heads_train_each_head_on_its_own_loss(tiny_split, options):
    from lmrec.losses import softmax

    model = fit(tiny_split, loss="softmax", scorer="cosine", heads=2, separate_heads=True, **options)
    scores = model.score([0, 10])
    assert scores[0, 3] > scores[0, 4:8].max() and scores[1, 7] > scores[1, 0:4].max()
    rows, pos = torch.arange(6), torch.as_tensor(tiny_split.train.items[:6])
    neg = torch.arange(10).expand(6, -1)
    with torch.no_grad():
        pos_s, neg_s, _ = model.batch_scores(rows, pos, neg)
        assert pos_s.shape == (2, 6) and neg_s.shape == (2, 6, 10)
        per_head = [softmax(pos_s[k], neg_s[k]) for k in range(2)]
        torch.testing.assert_close(softmax(pos_s, neg_s), (per_head[0] + per_head[1]) / 2)
        if model.shared_negatives:  # the shared log-sum is taken per head
            from lmrec.data.sampling import NegativeSampler
            from lmrec.training.loop import shared_negatives_loss

            sampler, users = NegativeSampler(tiny_split.train, "uniform", 1), tiny_split.train.users[:6]
            got = shared_negatives_loss(model, sampler, users, rows, pos, softmax)
            group_users, group = np.unique(users, return_inverse=True)
            p, catalogue, _ = model.catalogue_scores(rows, pos, group_users, torch.as_tensor(group))
            seen = torch.as_tensor(sampler.known_rows(group_users))
            per_head = [softmax(p[k], torch.logsumexp(catalogue[k].masked_fill(seen, -1e30), 1)[group][:, None])
                        for k in range(2)]
            torch.testing.assert_close(got, (per_head[0] + per_head[1]) / 2)
    u, v = torch.randn(3, 8), torch.randn(5, 8)  # each head scores its part's cosine / τ; served: their mean
    cos = torch.nn.functional.cosine_similarity
    heads = torch.stack([cos(u[:, None, :4], v[None, :, :4], dim=2), cos(u[:, None, 4:], v[None, :, 4:], dim=2)])
    torch.testing.assert_close(model._pair(u, v, training=True), heads / model.temperature)
    torch.testing.assert_close(model._pair(u, v), heads.mean(0) / model.temperature)
    with pytest.raises(ConfigError, match="separate_heads=True needs heads > 1; got heads=1"):
        fit(tiny_split, loss="softmax", scorer="cosine", separate_heads=True)


def test_item_id_mode_has_item_ids_but_no_user_ids_and_reloads(tiny_split, tmp_path):
    model = fit(tiny_split, id_mode="items", graph_layers=1)
    assert model.module_.user_id is None and model.module_.item_id.weight.abs().sum() > 0  # trained
    model.save(tmp_path / "m")
    back = Recommender.load(tmp_path / "m")
    np.testing.assert_allclose(back.score(np.arange(20)), model.score(np.arange(20)), rtol=1e-5, atol=1e-6)


def test_history_ids_give_items_their_own_part_in_histories(tiny_split, tmp_path):
    model = fit(tiny_split, id_mode="items", history_ids=True, graph_layers=1, loss="softmax", scorer="cosine",
                shared_negatives=True, config=SHARED)
    net = model.module_
    assert net.history_id.weight.abs().sum() > 0  # trained
    with torch.no_grad():
        v = model.item_representations()
        seen = tiny_split.train.items[tiny_split.train.users == 0]
        by_hand = torch.nn.functional.cosine_similarity((v[seen] + net.history_id.weight[seen]).mean(0), v, dim=1)
    np.testing.assert_allclose(model.score([0])[0], by_hand / model.temperature, rtol=1e-5, atol=1e-5)
    model.save(tmp_path / "m")
    back = Recommender.load(tmp_path / "m")
    np.testing.assert_allclose(back.score(np.arange(20)), model.score(np.arange(20)), rtol=1e-5, atol=1e-6)
    back.add_items(pd.DataFrame({"item": [100], "title": ["mango"]}))  # both ID tables grow by a zero row
    assert back.module_.history_id.weight[-1].abs().sum() == 0 and back.module_.item_id.weight.shape[0] == 11
    assert np.isfinite(back.score([0])[0, 10])


def test_history_dropout_reads_a_random_part_of_each_history_in_training_only(tiny_split):
    model = fit(tiny_split, loss="softmax", scorer="cosine", shared_negatives=True, history_dropout=0.4,
                config=SHARED)
    scores = model.score([0, 10])
    assert scores[0, 3] > scores[0, 4:8].max() and scores[1, 7] > scores[1, 0:4].max()
    users = np.arange(tiny_split.train.n_users)
    full = model.train_binary_[users]
    assert model.text_means_ is None and (model._training_rows(users) != full).nnz == 0  # eval: the whole history
    model.module_.train()
    kept = [model._training_rows(users) for _ in range(20)]
    assert all(((k - full).data > 0).sum() == 0 for k in kept)  # a part of the history, nothing added
    share = sum(k.nnz for k in kept) / (20 * full.nnz)
    assert 0.55 < share < 0.65  # about 1 - 0.4 of it
    assert len({k.nnz for k in kept}) > 1  # a fresh draw each step


def test_leave_out_removes_an_item_only_from_rows_that_have_it():
    import scipy.sparse as sp

    from lmrec.models.lm_net import LMNet

    history = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1]], dtype=np.float32))
    v = torch.tensor([[1.0, 0.0], [0.0, 2.0], [4.0, 4.0]])
    total, count = LMNet.history_sums(v, history)
    sums, counts = LMNet.leave_out(v, history, total, count, np.array([0, 0, 1]), torch.tensor([1, 2, 2]))
    torch.testing.assert_close(sums, torch.tensor([[1.0, 0.0], [1.0, 2.0], [0.0, 2.0]]))
    torch.testing.assert_close(counts, torch.tensor([1.0, 2.0, 1.0]))
