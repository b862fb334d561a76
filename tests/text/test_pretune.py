"""Co-interaction pre-fine-tuning: pairs from training histories, InfoNCE, a reusable model folder."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from lmrec.data import Interactions
from lmrec.errors import ConfigError
from lmrec.text.encoders import HFEncoder
from lmrec.text.options import Encoder
from lmrec.text.pretune import INFO, CoInteraction, co_interaction_pairs, info_nce, pretune


def test_pairs_follow_each_users_time_order_within_the_window():
    frame = pd.DataFrame({"user": ["a", "a", "a", "b", "b"], "item": [3, 1, 2, 1, 1],
                          "rating": 1.0, "timestamp": [30, 10, 20, 5, 6]})
    data = Interactions.from_frame(frame, name="t")
    raw = data.item_ids
    pairs = {tuple(raw[p]) for p in co_interaction_pairs(data, window=1)}
    assert pairs == {(1, 2), (2, 3)}, "a's items in time order; b's repeat of one item gives no pair"
    assert {tuple(raw[p]) for p in co_interaction_pairs(data, window=2)} == {(1, 2), (2, 3), (1, 3)}


def test_info_nce_ignores_copies_of_the_positive_among_the_negatives():
    a = torch.nn.functional.normalize(torch.randn(3, 4), dim=1)
    b = a.clone()
    ids = torch.tensor([0, 1, 2])
    base = info_nce(a, b, ids, ids, 0.1)
    dup = info_nce(a, torch.cat([b[:2], b[:1]]), ids, torch.tensor([0, 1, 0]), 0.1)
    assert torch.isfinite(base) and torch.isfinite(dup)
    assert float(info_nce(a, b, ids, ids, 0.01)) < float(base), "aligned pairs: a sharper temperature lowers it"


def test_pretune_pulls_co_consumed_items_together(tiny_data, tiny_encoder, tmp_path):
    texts = tiny_data.item_table["title"].tolist()
    before = HFEncoder(tiny_encoder).encode(texts, progress=False)
    folder = pretune(Encoder(tiny_encoder, tuning="full"), tiny_data, texts,
                     CoInteraction(epochs=40, batch_size=8, lr=1e-3), tmp_path / "co", progress=False)
    info = json.loads((folder / INFO).read_text())
    assert info["pairs"] > 0 and info["last_loss"] < info["first_loss"]
    after = HFEncoder(str(folder)).encode(texts, progress=False)

    def gap(v: np.ndarray) -> float:  # within-group minus across-group cosine (fruit 0-3, tools 4-7)
        s = v @ v.T
        within = (s[:4, :4].sum() - 4 + s[4:8, 4:8].sum() - 4) / 24
        return float(within - s[:4, 4:8].mean())

    assert gap(after) > gap(before) + 0.1, f"co-consumed items should move together: {gap(before)} -> {gap(after)}"
    lora = pretune(Encoder(tiny_encoder, tuning="lora"), tiny_data, texts, CoInteraction(epochs=1), tmp_path / "lo",
                   progress=False)
    assert HFEncoder(str(lora)).identity != HFEncoder(str(folder)).identity, "each folder has its own cache identity"


def test_pretune_errors(tiny_data, tiny_encoder, tmp_path):
    texts = tiny_data.item_table["title"].tolist()
    with pytest.raises(ConfigError, match=r"pretune needs an encoder with tuning=LoRA\(...\) or FullTune\(...\); got Frozen\(\)"):
        pretune(Encoder(tiny_encoder), tiny_data, texts, CoInteraction(), tmp_path / "x")
    with pytest.raises(ConfigError, match="one text per item"):
        pretune(Encoder(tiny_encoder, tuning="full"), tiny_data, texts[:3], CoInteraction(), tmp_path / "x")
    with pytest.raises(ConfigError, match="'temperature' parameter of CoInteraction must be a number > 0"):
        pretune(Encoder(tiny_encoder, tuning="full"), tiny_data, texts, CoInteraction(temperature=0), tmp_path / "x")
    assert not (tmp_path / "x").exists()
