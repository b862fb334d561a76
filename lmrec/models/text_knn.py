"""TextKNN: no training; cosine between the mean of a user's history embeddings and each item."""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from lmrec.data.interactions import Interactions
from lmrec.models.base import Recommender
from lmrec.models.text_features import DEFAULT_CACHE, TextFeatures
from lmrec.sparse import csr_to_torch


class TextKNN(TextFeatures, Recommender):
    """score(u, i) = cos(mean_{j in history(u)} e_j, e_i) with frozen LM embeddings e.

    The text-only nearest-neighbour baseline: it shows what the language model knows before any
    training on interactions, and ranks cold items exactly like warm ones.
    """

    name = "text-knn"

    def __init__(self, encoder: str = "minilm", encoder_backend: str = "hf", item_template: str | None = None,
                 max_length: int = 128, encode_batch_size: int = 64, cache_dir: str | None = DEFAULT_CACHE,
                 device: str = "cpu") -> None:
        self.encoder = encoder
        self.encoder_backend = encoder_backend
        self.item_template = item_template
        self.user_template = ""
        self.max_length = max_length
        self.encode_batch_size = encode_batch_size
        self.cache_dir = cache_dir
        self.device = device

    def _fit(self, train: Interactions, valid: Interactions | None) -> None:
        self._resolve_templates(train)
        emb = self._encode(self._item_texts(train.item_table), self.device)
        self.embeddings_ = F.normalize(torch.from_numpy(emb), dim=1)

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        profile = csr_to_torch(history) @ self.embeddings_  # (B, T): sum of history embeddings
        return F.normalize(profile, dim=1) @ self.embeddings_.T

    def _item_vectors(self) -> torch.Tensor:
        return self.embeddings_

    def _state(self) -> dict[str, np.ndarray]:
        return {"embeddings": self.embeddings_.numpy()}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.embeddings_ = torch.from_numpy(arrays["embeddings"])

    def _extra_manifest(self) -> dict[str, Any]:
        return self._text_manifest()

    def _set_extra(self, extra: dict[str, Any]) -> None:
        self._set_text_manifest(extra)
