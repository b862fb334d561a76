"""Raw ids <-> dense indices for a fitted model's users and items.

Users of the library speak raw ids (MovieLens' 260, Amazon's "B00005N5PF"); models compute on
dense indices. The public methods take ``ids="raw"`` (the default) or ``ids="index"``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from lmrec.errors import ConfigError, check_choice

IDS = ("raw", "index")


class IdMap:
    """The raw ids of one axis (users or items), in index order, with a lookup back."""

    def __init__(self, raw: np.ndarray, what: str) -> None:
        self.raw, self.what = raw, what
        self._lookup = {_key(v): i for i, v in enumerate(raw.tolist())}

    def __len__(self) -> int:
        return len(self.raw)

    def indices(self, values: Any, ids: str = "raw") -> np.ndarray:
        """Dense indices of ``values`` (raw ids, or indices when ``ids="index"``), checked."""
        check_choice("the model", "ids", ids, IDS)
        values = np.atleast_1d(np.asarray([] if values is None else values, dtype=object if ids == "raw" else None))
        if ids == "index":
            out = np.asarray(values, dtype=np.int64)
            bad = out[(out < 0) | (out >= len(self.raw))]
            if len(bad):
                raise ConfigError(f"{self.what} index out of range [0, {len(self.raw)}): {int(bad[0])}.")
            return out
        out = np.empty(len(values), dtype=np.int64)
        for j, value in enumerate(values.tolist()):
            index = self._lookup.get(_key(value))
            if index is None:
                raise ConfigError(f"unknown {self.what} id {value!r}: not among the model's {len(self.raw)} "
                                  f"{self.what}s (pass ids='index' for dense indices).")
            out[j] = index
        return out

    def ids(self, index: np.ndarray, ids: str = "raw") -> np.ndarray:
        """``index`` as raw ids (same shape), or unchanged with ``ids="index"``."""
        check_choice("the model", "ids", ids, IDS)
        return index if ids == "index" else self.raw[index]


def _key(value: Any) -> Any:
    """Raw ids compare by value: 260, np.int64(260) and 260.0 alike; text as text."""
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    return value
