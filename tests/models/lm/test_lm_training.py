"""LMRanker training steps: over a large catalogue a step projects only its batch's items, and
that changes nothing but the cost."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lmrec.data.synthetic import generate
from lmrec.models import LMRanker
from lmrec.models.lm import AttentionUser, ItemTower, MeanUser, SequenceUser
from lmrec.models.lm import training as lm_training
from lmrec.training import TrainConfig, Uniform


@pytest.fixture(scope="module")
def catalogue():
    return generate(60, 400, 600, n_clusters=8, seed=7)


@pytest.mark.parametrize("parts", [
    {"items": ItemTower(dim=8, ids=True, history_ids=True), "user": MeanUser(ids=True, history_dropout=0.2)},
    {"items": ItemTower(dim=8), "user": AttentionUser(max_history=5)},
    {"items": ItemTower(dim=8, ids=True), "user": SequenceUser(max_history=6, dropout=0.0)},
], ids=["mean", "attention", "sequence"])
def test_batch_items_only_equals_the_whole_catalogue(catalogue, parts, monkeypatch, tmp_path):
    cfg = TrainConfig(epochs=3, batch_size=32, lr=0.01, progress=False, seed=5)
    parts = {**parts, "negatives": Uniform(4)}
    scores = {}
    for share in (0.0, 1.0):  # 0: every step projects the whole catalogue; 1: only the batch's items
        monkeypatch.setattr(lm_training, "BATCH_ITEMS_SHARE", share)
        model = LMRanker(cache_dir=tmp_path, config=cfg, **parts).fit(catalogue)
        scores[share] = model.score(np.arange(20), ids="index")
    assert np.isfinite(scores[1.0]).all()
    np.testing.assert_allclose(scores[1.0], scores[0.0], atol=1e-4, rtol=1e-4)


def test_batch_items_cover_positives_negatives_and_histories(catalogue):
    histories = catalogue.to_csr()
    users = np.array([0, 0, 3])
    read = lm_training.batch_items(users, torch.tensor([1, 2, 5]), torch.tensor([[7, 9], [9, 11], [13, 1]]), histories)
    want = set(histories[0].indices) | set(histories[3].indices) | {1, 2, 5, 7, 9, 11, 13}
    assert read.tolist() == sorted(want)


@pytest.mark.parametrize("parts, sampler, dense", [
    ({"items": ItemTower(dim=8)}, Uniform(4), True),
    ({"items": ItemTower(dim=8, ids=True, history_ids=True), "user": MeanUser(ids=True)}, Uniform(4), True),
    ({"items": ItemTower(dim=8), "loss": "softmax"}, "unseen", True),  # every unseen item a negative
    ({"items": ItemTower(dim=8, ids=True), "loss": "softmax"}, "unseen", False),
], ids=["text", "ids", "catalogue-negatives", "catalogue-negatives-gathered"])
def test_text_space_means_equal_projected_means(catalogue, parts, sampler, dense, monkeypatch, tmp_path):
    cfg = TrainConfig(epochs=3, batch_size=32, lr=0.01, progress=False, seed=5)
    parts = {**parts, "negatives": sampler}
    if not dense:  # scores through v[candidates] instead of a gather from all (B, K) scores
        monkeypatch.setattr(lm_training, "score_all_rows", lambda *sizes: False)
    scores, used = {}, []
    for allowed in (False, True):
        monkeypatch.setattr(lm_training, "text_space", lambda model, allowed=allowed: used.append(allowed) or allowed)
        model = LMRanker(cache_dir=tmp_path, config=cfg, **parts).fit(catalogue)
        scores[allowed] = model.score(np.arange(20), ids="index")
    assert used == [False, True]
    np.testing.assert_allclose(scores[True], scores[False], atol=1e-4, rtol=1e-4)


def test_catalogue_wide_negatives_score_all_rows_at_any_batch(monkeypatch):
    """Gathering B (1 + m) candidate rows of size d costs d times the (B, K) scores when the
    negatives span the catalogue: those are scored in full however large the batch."""
    assert lm_training.score_all_rows(8, 100, 8 * 5, 16)  # small: always in full
    monkeypatch.setattr(lm_training, "DENSE_SCORES", 0)
    assert lm_training.score_all_rows(4096, 4386, 4096 * 4386, 768)  # every unseen item a negative
    assert not lm_training.score_all_rows(4096, 10**6, 4096 * 65, 128)  # 64 sampled from a million items


def test_text_space_applies_to_frozen_affine_mean_models_only(catalogue, tmp_path):
    def built(**parts):
        model = LMRanker(cache_dir=tmp_path, config=TrainConfig(epochs=1, batch_size=512, progress=False), **parts)
        return model.fit(catalogue).net_

    assert lm_training.text_space(built(items=ItemTower(dim=8, ids=True)))
    assert not lm_training.text_space(built(items=ItemTower(dim=8, projection="mlp")))
    assert not lm_training.text_space(built(items=ItemTower(dim=8, graph_layers=1)))
    assert not lm_training.text_space(built(user=MeanUser(history_dropout=0.1)))
    assert not lm_training.text_space(built(user="attention"))


def test_bf16_autocast_trains_graph_and_sequence_towers(catalogue, tmp_path):
    """The P3 parts (IDs, graph propagation, sequence tower) under bf16 autocast: the sparse graph
    product meets bf16 item rows; the model trains and its weights stay float32."""
    cfg = TrainConfig(epochs=2, batch_size=64, lr=0.01, precision="bf16", progress=False, seed=5)
    model = LMRanker(cache_dir=tmp_path, config=cfg, items=ItemTower(dim=8, ids=True, graph_layers=2),
                     user=SequenceUser(ids=True, max_history=6), scorer="cosine", negatives=Uniform(4)).fit(catalogue)
    assert np.isfinite(model.score(np.arange(5), ids="index")).all()
    assert len(model.training_log_) == 2 and model.training_log_[-1]["loss"] < model.training_log_[0]["loss"] * 1.5
    assert all(p.dtype == torch.float32 for p in model.module_.parameters())
