"""TextKNN: no training; cosine between the mean of a user's history embeddings and each item."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from lmrec.data.interactions import Interactions
from lmrec.models.base import Recommender
from lmrec.models.capabilities import ItemText
from lmrec.models.text_side import DEFAULT_CACHE, TextSide
from lmrec.sparse import csr_to_torch
from lmrec.text.options import Encoder, upgrade_encoder


class TextKNN(ItemText, Recommender):
    """score(u, i) = cos(mean_{j in history(u)} e_j, e_i) with frozen LM embeddings e.

    The text-only nearest-neighbour baseline: it shows what the language model knows before any
    training on interactions, and ranks cold items exactly like warm ones.

    Parameters
    ----------
    encoder: an :class:`~lmrec.text.options.Encoder` (or a model name: "minilm", "mpnet", a path);
        used frozen. item_template: format string over the item table (None: built in).
    cache_dir: embedding cache folder (None: no cache). device: where encoding runs.
    """

    name = "text-knn"
    layout = 2  # 2: the encoder's tuning is a part (layout 1's flat Encoder fields are converted on load)
    upgrades = {1: lambda params: {**params, "encoder": upgrade_encoder(params["encoder"])
                                   if isinstance(params.get("encoder"), dict) else params.get("encoder", "minilm")}}

    def __init__(self, encoder: Encoder | str | dict[str, Any] = "minilm", item_template: str | None = None,
                 cache_dir: str | None = DEFAULT_CACHE, device: str = "cpu") -> None:
        self.encoder = encoder
        self.item_template = item_template
        self.cache_dir = cache_dir
        self.device = device

    def _text(self) -> TextSide:
        options = Encoder(self.encoder) if isinstance(self.encoder, str) else Encoder.from_any(self.encoder)
        options.validate()
        return TextSide(options, self.cache_dir, self.item_template, user_template="")

    def check_params(self) -> None:
        self.text_ = self._text()

    def _fit(self, train: Interactions, valid: Interactions | None) -> None:  # text_: set by check_params
        self.text_.resolve(train, "TextKNN")
        emb = self.text_.encode(self.text_.item_texts(train.item_table), self.device)
        self.embeddings_ = F.normalize(torch.from_numpy(emb), dim=1)

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        profile = csr_to_torch(history) @ self.embeddings_  # (B, T): sum of history embeddings
        return F.normalize(profile, dim=1) @ self.embeddings_.T

    def _item_vectors(self) -> torch.Tensor:
        return self.embeddings_

    def item_table(self) -> pd.DataFrame:
        return self.text_.item_table

    def text_side(self) -> TextSide:
        return self.text_

    def item_text(self, item: int) -> str:
        return self.text_.item_text(item)

    def _state(self) -> dict[str, np.ndarray]:
        return {"embeddings": self.embeddings_.numpy()}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.embeddings_ = torch.from_numpy(arrays["embeddings"])

    def _extra_manifest(self) -> dict[str, Any]:
        return self.text_.to_manifest()

    def _set_extra(self, extra: dict[str, Any]) -> None:
        self.text_ = self._text()
        self.text_.set_manifest(extra)
