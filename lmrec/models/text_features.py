"""Shared text plumbing for text-based models: templates, the encoder, cached item/user vectors."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lmrec.data.interactions import Interactions
from lmrec.errors import ConfigError
from lmrec.text.encoders import TextEncoder, encode_texts, get_encoder
from lmrec.text.templates import default_item_template, default_user_template, render, template_fields

DEFAULT_CACHE = str(Path.home() / ".cache" / "lmrec" / "embeddings")


class TextFeatures:
    """Mixin: expects ``encoder``, ``encoder_backend``, ``max_length``, ``encode_batch_size``,
    ``item_template``, ``user_template``, ``cache_dir`` hyperparameters and a ``device``."""

    encoder: str
    encoder_backend: str
    max_length: int
    encode_batch_size: int
    item_template: str | None
    user_template: str | None
    cache_dir: str | None

    def _text_encoder(self, device: str = "cpu") -> TextEncoder:
        if getattr(self, "_encoder_obj", None) is None:
            self._encoder_obj = get_encoder(self.encoder, self.encoder_backend, max_length=self.max_length,
                                            batch_size=self.encode_batch_size, device=device)
        return self._encoder_obj

    def _encode(self, texts: list[str], device: str = "cpu", progress: bool = True, what: str = "items") -> np.ndarray:
        """Encode through the cache; ``encode_stats_[what]`` records texts, seconds, encoded, cache hits."""
        enc = self._text_encoder(device)
        start = time.perf_counter()
        vecs = encode_texts(enc, texts, None if self.cache_dir is None else Path(self.cache_dir).expanduser(),
                            progress=progress)
        cache = getattr(encode_texts, "last_cache", None) if self.cache_dir is not None else None
        if not isinstance(getattr(self, "encode_stats_", None), dict):
            self.encode_stats_: dict[str, dict[str, Any]] = {}
        self.encode_stats_[what] = {"texts": len(texts), "unique": len(set(texts)),
                                    "seconds": round(time.perf_counter() - start, 3),
                                    "encoded": cache.misses if cache is not None else len(texts),
                                    "cache_hits": cache.hits if cache is not None else 0}
        return vecs

    def _resolve_templates(self, train: Interactions) -> None:
        self.item_template_ = self.item_template or default_item_template(train.item_table)
        if self.item_template_ is None:
            raise ConfigError(f"{type(self).__name__} needs item text, but the item table of '{train.name}' has no "
                              f"field a built-in template uses; fields: {list(train.item_table.columns)}. "
                              "Pass item_template='...{field}...'.")
        fields = list(dict.fromkeys(template_fields(self.item_template_) + ["title"]))
        self.item_table_ = train.item_table[[f for f in fields if f in train.item_table.columns]].reset_index(drop=True)
        self.user_template_ = self.user_template if self.user_template is not None else \
            default_user_template(train.user_table)
        if self.user_template_ == "":
            self.user_template_ = None
        ufields = template_fields(self.user_template_) if self.user_template_ else []
        self.user_table_ = train.user_table[[f for f in ufields if f in train.user_table.columns]].reset_index(drop=True)

    def _item_texts(self, table: pd.DataFrame) -> list[str]:
        return render(self.item_template_, table, what="item")

    def _user_texts(self, table: pd.DataFrame) -> list[str]:
        return render(self.user_template_, table, what="user")

    def _grow_item_table(self, table: pd.DataFrame, index: np.ndarray) -> None:
        """Write the template fields of added/updated items (rows of ``table``) at ``index``."""
        cols = list(self.item_table_.columns)
        grown = self.item_table_.reindex(range(max(len(self.item_table_), int(index.max()) + 1)))
        for col in cols:
            if col in table.columns:
                grown[col] = grown[col].astype(object)
                grown.loc[index, col] = table[col].to_numpy()
        self.item_table_ = grown

    def item_text(self, item: int) -> str:
        """The text the encoder read for an item index."""
        return self._item_texts(self.item_table_.iloc[[item]])[0]

    def _text_manifest(self) -> dict[str, Any]:
        return {"item_template": self.item_template_, "user_template": self.user_template_,
                "encode_stats": getattr(self, "encode_stats_", None),
                "item_table": _columns(self.item_table_), "user_table": _columns(self.user_table_)}

    def _set_text_manifest(self, extra: dict[str, Any]) -> None:
        self.item_template_ = extra.get("item_template")
        self.user_template_ = extra.get("user_template")
        self.item_table_ = pd.DataFrame(extra.get("item_table") or {})
        self.user_table_ = pd.DataFrame(extra.get("user_table") or {})


def _columns(table: pd.DataFrame) -> dict[str, list[Any]]:
    """A table as JSON-able columns (missing values as null)."""
    table = table.astype(object).where(table.notna(), None)
    return {str(c): table[c].tolist() for c in table.columns}
