"""The text a text model reads: templates fixed on the training data, item and user tables, encoding.

A :class:`TextSide` belongs to one fitted model (``TextKNN``, ``LMRanker``). ``resolve(train)``
fixes the templates and keeps the template fields of the item and user tables (saved with the
model, so serving renders new items exactly as training did); ``encode`` turns texts into
vectors with the model's encoder through the on-disk embedding cache, and records what it did
per kind of text in ``stats``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lmrec.data.interactions import Interactions
from lmrec.errors import ConfigError
from lmrec.text.encoders import TextEncoder, build_encoder, encode_texts
from lmrec.text.options import Encoder
from lmrec.text.scripts import check_scripts
from lmrec.text.sources import languages_of
from lmrec.text.templates import default_item_template, default_user_template, render, template_fields

DEFAULT_CACHE = str(Path.home() / ".cache" / "lmrec" / "embeddings")
QUERY_TEXTS = ("users", "profile")  # what encode() encodes as a query (E5's "query: "); the rest are passages


class TextSide:
    """Templates, tables and the frozen encoder of one text model.

    ``encoder``: the :class:`Encoder` options; ``cache_dir``: embedding cache folder (None: none);
    ``item_template`` / ``user_template``: format strings, None for a built-in template chosen
    from the table's fields ("" disables user text).
    """

    def __init__(self, encoder: Encoder, cache_dir: str | None, item_template: str | None = None,
                 user_template: str | None = "") -> None:
        self.options, self.cache_dir = encoder, cache_dir
        self.item_template, self.user_template = item_template, user_template
        self.item_table = pd.DataFrame()
        self.user_table = pd.DataFrame()
        self.stats: dict[str, dict[str, Any]] = {}
        self._encoder: TextEncoder | None = None

    # ----------------------------------------------------------------- templates and tables
    def resolve(self, train: Interactions, owner: str) -> None:
        """Fix the templates on ``train``'s tables and keep their template fields."""
        template = self.item_template or default_item_template(train.item_table)
        if template is None:
            raise ConfigError(f"{owner} needs item text, but the item table of '{train.name}' has no field a "
                              f"built-in template uses; fields: {list(train.item_table.columns)}. "
                              "Pass item_template='...{field}...'.")
        self.item_template = template
        fields = list(dict.fromkeys(template_fields(template) + ["title"]))
        self.item_table = train.item_table[[f for f in fields if f in train.item_table.columns]].reset_index(drop=True)
        user = self.user_template if self.user_template is not None else default_user_template(train.user_table)
        self.user_template = user or None
        ufields = template_fields(self.user_template) if self.user_template else []
        self.user_table = train.user_table[[f for f in ufields if f in train.user_table.columns]].reset_index(drop=True)

    def item_texts(self, table: pd.DataFrame | None = None) -> list[str]:
        """Rendered item texts of ``table`` (default: the kept item table, one per item index)."""
        return render(self.item_template, self.item_table if table is None else table, what="item")

    def user_texts(self, table: pd.DataFrame | None = None) -> list[str]:
        if self.user_template is None:
            return []
        return render(self.user_template, self.user_table if table is None else table, what="user")

    def item_text(self, item: int) -> str:
        return self.item_texts(self.item_table.iloc[[item]])[0]

    def grow_items(self, table: pd.DataFrame, index: np.ndarray) -> None:
        """Write the template fields of added/updated items (rows of ``table``) at ``index``."""
        grown = self.item_table.reindex(range(max(len(self.item_table), int(index.max()) + 1)))
        for col in self.item_table.columns:
            if col in table.columns:
                grown[col] = grown[col].astype(object)
                grown.loc[index, col] = table[col].to_numpy()
        self.item_table = grown

    # ----------------------------------------------------------------- encoding
    def encoder(self, device: str = "cpu") -> TextEncoder:
        if self._encoder is None:
            self._encoder = build_encoder(self.options, device)
        return self._encoder

    def use_encoder(self, encoder: TextEncoder) -> None:
        """Encode with ``encoder`` from now on (a tuned encoder after training)."""
        self._encoder = encoder

    def encode(self, texts: list[str], device: str = "cpu", progress: bool = True, what: str = "items",
               cache: bool = True) -> np.ndarray:
        """(len(texts), T) float32 vectors through the cache (``cache=False``: never touch the disk)."""
        enc = self.encoder(device)
        start = time.perf_counter()
        folder = Path(self.cache_dir).expanduser() if cache and self.cache_dir is not None else None
        role = "query" if what in QUERY_TEXTS else "passage"
        if what == "items":  # once per fit: an English-only encoder on, say, Chinese item text ranks near chance
            check_scripts(texts, self.options.model, languages_of(self.options.model))
        vecs, hits = encode_texts(enc, texts, folder, progress=progress, prefix=self.options.prefix(role))
        self.stats[what] = {"texts": len(texts), "unique": len(set(texts)),
                            "seconds": round(time.perf_counter() - start, 3),
                            "encoded": len(texts) - hits, "cache_hits": hits}
        return vecs

    # ----------------------------------------------------------------- persistence
    def to_manifest(self) -> dict[str, Any]:
        return {"item_template": self.item_template, "user_template": self.user_template,
                "encode_stats": self.stats, "item_table": _columns(self.item_table),
                "user_table": _columns(self.user_table)}

    def set_manifest(self, extra: dict[str, Any]) -> None:
        self.item_template = extra.get("item_template")
        self.user_template = extra.get("user_template")
        self.stats = dict(extra.get("encode_stats") or {})
        self.item_table = pd.DataFrame(extra.get("item_table") or {})
        self.user_table = pd.DataFrame(extra.get("user_table") or {})


def _columns(table: pd.DataFrame) -> dict[str, list[Any]]:
    """A table as JSON-able columns (missing values as null)."""
    table = table.astype(object).where(table.notna(), None)
    return {str(c): table[c].tolist() for c in table.columns}
