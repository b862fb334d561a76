"""Shared fixtures: the datasets folder and a tiny dataset whose right answers are known."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmrec.data import Interactions, Split
from lmrec.data.splits import _make

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = Path(os.environ.get("LMREC_DATA_DIR", ROOT.parent / "shared" / "datasets"))
    if not (d / "ml-100k").is_dir():
        pytest.skip(f"datasets not found in {d}; set LMREC_DATA_DIR")
    return d


def tiny_interactions() -> Interactions:
    """Two taste groups of 10 users: group A likes items 0-3 (fruit), group B items 4-7 (tools);
    8, 9 (instruments) are rare.

    Every user has all four items of their group except user 0 (lacks item 3) and user 10
    (lacks item 7): those are the test items, the "known best item" each model should find.
    """
    rows = []
    for u in range(20):
        group = range(0, 4) if u < 10 else range(4, 8)
        for t, i in enumerate(group):
            if (u, i) in ((0, 3), (10, 7)):
                continue
            rows.append((f"u{u:02d}", i, 5.0, 1000 * u + t))
    rows += [("u05", 8, 3.0, 99999), ("u15", 9, 3.0, 99998)]
    frame = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    titles = ["apple", "banana", "cherry", "grape", "hammer", "wrench", "screwdriver", "pliers", "violin", "piano"]
    items = pd.DataFrame({"item": range(10), "title": titles})
    return Interactions.from_frame(frame, item_table=items, name="tiny")


@pytest.fixture
def tiny_split() -> Split:
    """Train = tiny_interactions(); test = user 0 -> item 3 and user 10 -> item 7;
    valid = user 1 -> item 9 and user 11 -> item 8 (rare items, for early stopping only)."""
    train = tiny_interactions()
    extra = Interactions(users=np.array([1, 11, 0, 10]), items=np.array([9, 8, 3, 7]), ratings=np.ones(4, np.float32),
                         timestamps=np.full(4, 10**6), user_ids=train.user_ids, item_ids=train.item_ids,
                         item_table=train.item_table, name="tiny")
    n = len(train)
    return _make(train.concat(extra), (np.arange(n), np.arange(n, n + 2), np.arange(n + 2, n + 4)),
                 protocol="tiny", seed=0, kind="random")


@pytest.fixture(scope="session")
def tiny_data() -> Interactions:
    """tiny_interactions() once per session (for session-scoped trained models)."""
    return tiny_interactions()


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> str:
    """A randomly initialised 2-layer BERT (hidden size 32) with MiniLM's tokenizer, saved as a local
    Hugging Face folder: tuning tests train it in seconds."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from lmrec.text.encoders import builtin_path

    path = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(builtin_path("minilm"))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)
