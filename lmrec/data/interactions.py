"""The `Interactions` container: who interacted with what, when, and how much.

Users and items are kept as dense indices ``0..n-1``; the raw ids from the source file are
kept in ``user_ids`` / ``item_ids`` so results can always be mapped back. Item and user
attribute tables are pandas DataFrames indexed by the dense index.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lmrec.errors import DataError


@dataclass
class Interactions:
    """User-item interactions with id maps and attribute tables.

    Attributes
    ----------
    users, items:
        int64 arrays of dense indices, one entry per interaction.
    ratings:
        float32 array (1.0 for implicit data).
    timestamps:
        int64 array, or ``None`` when the source has no time (then temporal splits refuse).
    user_ids, item_ids:
        raw ids, ``user_ids[u]`` is the raw id of user index ``u``.
    item_table, user_table:
        attributes indexed by dense index (title, genres, ... / gender, age, ...).
    name:
        a short dataset name used in reports and protocol cards.

    Example
    -------
    >>> data = Interactions.from_frame(pd.DataFrame({"user": ["a", "b"], "item": [1, 2]}))
    >>> data.n_users, data.n_items, len(data)
    (2, 2, 2)
    """

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray | None
    user_ids: np.ndarray
    item_ids: np.ndarray
    item_table: pd.DataFrame = field(default_factory=pd.DataFrame)
    user_table: pd.DataFrame = field(default_factory=pd.DataFrame)
    name: str = "data"

    def __post_init__(self) -> None:
        n = len(self.users)
        for label, arr in (("items", self.items), ("ratings", self.ratings)):
            if len(arr) != n:
                raise DataError(f"'{label}' has {len(arr)} entries but 'users' has {n}.")
        if self.timestamps is not None and len(self.timestamps) != n:
            raise DataError(f"'timestamps' has {len(self.timestamps)} entries but 'users' has {n}.")
        if n and (self.users.max() >= len(self.user_ids) or self.items.max() >= len(self.item_ids)):
            raise DataError("an interaction refers to a user or item index outside the id maps.")

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        item_table: pd.DataFrame | None = None,
        user_table: pd.DataFrame | None = None,
        name: str = "data",
        source: str | None = None,
    ) -> Interactions:
        """Build from a frame with columns ``user``, ``item`` and optional ``rating``, ``timestamp``.

        Users and items are indexed in ascending raw-id order. ``item_table`` / ``user_table``
        are indexed by raw id (or have an ``item`` / ``user`` column); rows for ids that have
        no interaction are dropped, ids without a row get empty attributes. A ``line`` column,
        when present, is used to name the source line of a missing id.
        """
        for col in ("user", "item"):
            if col not in frame.columns:
                raise DataError(f"missing column '{col}'; columns are {list(frame.columns)}.", path=source)
            missing = frame[col].isna().to_numpy()
            if missing.any():
                row = int(np.flatnonzero(missing)[0])
                line = int(frame["line"].iloc[row]) if "line" in frame.columns else None
                raise DataError(
                    f"missing {col} id ({int(missing.sum())} rows); clean the data first "
                    "(lmrec.data.clean with missing='drop').",
                    path=source, line=line, column=col,
                )
        user_ids, users = np.unique(frame["user"].to_numpy(), return_inverse=True)
        item_ids, items = np.unique(frame["item"].to_numpy(), return_inverse=True)
        ratings = (
            frame["rating"].to_numpy(dtype=np.float32)
            if "rating" in frame.columns
            else np.ones(len(frame), dtype=np.float32)
        )
        ts = frame["timestamp"].to_numpy(dtype=np.int64) if "timestamp" in frame.columns else None
        return cls(
            users=users.astype(np.int64),
            items=items.astype(np.int64),
            ratings=ratings,
            timestamps=ts,
            user_ids=user_ids,
            item_ids=item_ids,
            item_table=align_table(item_table, item_ids, "item"),
            user_table=align_table(user_table, user_ids, "user"),
            name=name,
        )

    # ----------------------------------------------------------------- basic views
    def __len__(self) -> int:
        return len(self.users)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def has_timestamps(self) -> bool:
        return self.timestamps is not None

    def to_frame(self) -> pd.DataFrame:
        """A DataFrame with columns user, item, rating (and timestamp), in dense indices."""
        cols: dict[str, Any] = {"user": self.users, "item": self.items, "rating": self.ratings}
        if self.timestamps is not None:
            cols["timestamp"] = self.timestamps
        return pd.DataFrame(cols)

    def to_csr(self, *, binary: bool = True, order: bool = False) -> sp.csr_matrix:
        """Users x items sparse matrix (duplicates collapse to 1 when ``binary``).

        With ``order=True`` each entry holds the recency of the user's latest interaction with
        the item: larger is more recent (by timestamp, then by position), so sequence models
        can rebuild the time order from a CSR history.
        """
        if order:
            ts = self.timestamps if self.timestamps is not None else np.zeros(len(self), dtype=np.int64)
            seq = np.lexsort((np.arange(len(self)), ts, self.users))  # per user, oldest first
            keys = self.users[seq] * self.n_items + self.items[seq]
            _, first_rev = np.unique(keys[::-1], return_index=True)
            keep = np.sort(len(seq) - 1 - first_rev)  # latest occurrence of each user-item pair
            rank = (keep + 1).astype(np.float32)  # increasing within each user
            idx = seq[keep]
            return sp.csr_matrix((rank, (self.users[idx], self.items[idx])), shape=(self.n_users, self.n_items))
        vals = np.ones(len(self), dtype=np.float32) if binary else self.ratings
        mat = sp.csr_matrix((vals, (self.users, self.items)), shape=(self.n_users, self.n_items))
        mat.sum_duplicates()
        if binary:
            mat.data[:] = 1.0
        return mat

    def item_popularity(self) -> np.ndarray:
        """Number of interactions of each item (length ``n_items``)."""
        return np.bincount(self.items, minlength=self.n_items)

    def subset(self, mask: np.ndarray) -> Interactions:
        """The interactions selected by a boolean mask or index array; id maps are unchanged."""
        return replace(
            self,
            users=self.users[mask],
            items=self.items[mask],
            ratings=self.ratings[mask],
            timestamps=None if self.timestamps is None else self.timestamps[mask],
        )

    def concat(self, other: Interactions) -> Interactions:
        """Interactions of ``self`` followed by ``other`` (same id maps)."""
        if other.n_users != self.n_users or other.n_items != self.n_items:
            raise DataError("cannot concatenate interactions with different id maps.")
        ts = None
        if self.timestamps is not None and other.timestamps is not None:
            ts = np.concatenate([self.timestamps, other.timestamps])
        return replace(
            self,
            users=np.concatenate([self.users, other.users]),
            items=np.concatenate([self.items, other.items]),
            ratings=np.concatenate([self.ratings, other.ratings]),
            timestamps=ts,
        )

    def compact(self) -> Interactions:
        """Re-index so that only users and items with interactions remain."""
        keep_u = np.unique(self.users)
        keep_i = np.unique(self.items)
        return replace(
            self,
            users=np.searchsorted(keep_u, self.users).astype(np.int64),
            items=np.searchsorted(keep_i, self.items).astype(np.int64),
            user_ids=self.user_ids[keep_u],
            item_ids=self.item_ids[keep_i],
            item_table=_take_rows(self.item_table, keep_i),
            user_table=_take_rows(self.user_table, keep_u),
        )

    # ----------------------------------------------------------------- id lookups
    def user_index(self, raw_ids: Any) -> np.ndarray:
        """Dense indices of raw user ids; raises :class:`DataError` for unknown ids."""
        return _lookup(self.user_ids, raw_ids, "user")

    def item_index(self, raw_ids: Any) -> np.ndarray:
        """Dense indices of raw item ids; raises :class:`DataError` for unknown ids."""
        return _lookup(self.item_ids, raw_ids, "item")

    def fingerprint(self) -> str:
        """A short hash of the interactions and id maps, stored in protocol cards."""
        h = hashlib.sha256()
        for arr in (self.users, self.items, self.ratings):
            h.update(np.ascontiguousarray(arr).tobytes())
        if self.timestamps is not None:
            h.update(np.ascontiguousarray(self.timestamps).tobytes())
        h.update("\x00".join(map(str, self.user_ids)).encode())
        h.update("\x00".join(map(str, self.item_ids)).encode())
        return h.hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        """Counts and density, as printed by ``lmrec data info``."""
        n = len(self)
        density = n / max(1, self.n_users * self.n_items)
        per_user = np.bincount(self.users, minlength=self.n_users)
        return {
            "name": self.name,
            "interactions": n,
            "users": self.n_users,
            "items": self.n_items,
            "density": round(density, 6),
            "timestamps": self.has_timestamps,
            "ratings": sorted(np.unique(self.ratings).tolist())[:10],
            "min_per_user": int(per_user.min()) if n else 0,
            "mean_per_user": round(float(per_user.mean()), 2) if n else 0.0,
            "item_fields": list(self.item_table.columns),
            "user_fields": list(self.user_table.columns),
        }


def _lookup(known: np.ndarray, raw_ids: Any, kind: str) -> np.ndarray:
    raw = np.atleast_1d(np.asarray(raw_ids, dtype=known.dtype if known.dtype != object else object))
    pos = np.searchsorted(known, raw)
    pos = np.clip(pos, 0, max(0, len(known) - 1))
    ok = len(known) > 0 and (known[pos] == raw)
    if not np.all(ok):
        bad = raw[~np.asarray(ok, dtype=bool)] if len(known) else raw
        raise DataError(f"unknown {kind} id {bad[0]!r} ({len(bad)} unknown).")
    return pos.astype(np.int64)


def align_table(table: pd.DataFrame | None, ids: np.ndarray, key: str) -> pd.DataFrame:
    if table is None or table.empty:
        return pd.DataFrame(index=pd.RangeIndex(len(ids)))
    if key in table.columns:
        table = table.set_index(key)
    table = table[~table.index.duplicated(keep="first")]
    aligned = table.reindex(pd.Index(ids))
    return aligned.reset_index(drop=True)


def _take_rows(table: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    if table.empty and len(table.columns) == 0:
        return pd.DataFrame(index=pd.RangeIndex(len(rows)))
    return table.iloc[rows].reset_index(drop=True)
