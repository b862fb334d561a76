"""Any interaction file (CSV, TSV, Parquet, JSON lines) with a column mapping.

Example
-------
>>> data = load_interactions(
...     "events.csv", user="customer_id", item="sku", rating="stars", timestamp="ts",
...     items="products.jsonl", item_key="sku", item_fields=["title", "brand"],
... )  # doctest: +SKIP
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from lmrec.data.cleaning import CleaningConfig, CleaningReport, clean
from lmrec.data.interactions import Interactions
from lmrec.data.reading import read_table, to_number
from lmrec.errors import DataError


def read_interactions(
    path: str | Path,
    *,
    user: str = "user",
    item: str = "item",
    rating: str | None = None,
    timestamp: str | None = None,
    fmt: str | None = None,
    sep: str | None = None,
    encoding: str = "utf-8",
) -> pd.DataFrame:
    """Read an interaction file into a frame with columns user, item, [rating], [timestamp], line.

    Missing cells stay missing (for :func:`~lmrec.data.clean` to handle and report); a missing
    column or a value that is not a number raises :class:`DataError` naming file, line and column.
    Timestamps may be numbers (Unix seconds) or ISO dates.
    """
    raw = read_table(path, fmt=fmt, sep=sep, encoding=encoding)
    mapping = {"user": user, "item": item, "rating": rating, "timestamp": timestamp}
    out = pd.DataFrame({"line": raw["line"].to_numpy()})
    for canon, col in mapping.items():
        if col is None:
            continue
        if col not in raw.columns:
            have = [c for c in raw.columns if c != "line"]
            raise DataError(f"missing column '{col}' (mapped to {canon}); the file has columns {have}.",
                            path=path, column=col)
        values = raw[col]
        if canon == "rating":
            values = to_number(values, path=path, column=col, lines=raw["line"])
        elif canon == "timestamp":
            values = _to_timestamp(values, path=path, column=col, lines=raw["line"])
        else:
            values = values.where(values.notna(), None)
            values = values.map(lambda v: v.strip() if isinstance(v, str) else v).replace("", None)
        out[canon] = values.to_numpy()
    return out[[c for c in ("user", "item", "rating", "timestamp", "line") if c in out.columns]]


def _to_timestamp(values: pd.Series, *, path: str | Path, column: str, lines: pd.Series) -> pd.Series:
    try:
        return to_number(values, path=path, column=column, lines=lines)
    except DataError:
        parsed = pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")
        bad = parsed.isna() & values.notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"expected a Unix time or an ISO date, got {values.iloc[row]!r}.",
                            path=path, line=int(lines.iloc[row]), column=column) from None
        seconds = (parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
        return pd.Series(seconds, index=values.index).where(parsed.notna())


def read_attribute_table(
    path: str | Path, *, key: str, fields: Sequence[str] | None = None, fmt: str | None = None,
    sep: str | None = None, encoding: str = "utf-8",
) -> pd.DataFrame:
    """An item or user metadata file: ``key`` column plus ``fields`` (all columns by default)."""
    raw = read_table(path, fmt=fmt, sep=sep, encoding=encoding)
    wanted = [c for c in raw.columns if c not in ("line", key)] if fields is None else list(fields)
    for col in [key, *wanted]:
        if col not in raw.columns:
            have = [c for c in raw.columns if c != "line"]
            raise DataError(f"missing column '{col}'; the file has columns {have}.", path=path, column=col)
    table = raw[[key, *wanted]].copy()
    table[key] = table[key].map(lambda v: v.strip() if isinstance(v, str) else v)
    return table.set_index(key)


def load_interactions(
    path: str | Path,
    *,
    user: str = "user",
    item: str = "item",
    rating: str | None = None,
    timestamp: str | None = None,
    fmt: str | None = None,
    sep: str | None = None,
    encoding: str = "utf-8",
    items: str | Path | None = None,
    item_key: str = "item",
    item_fields: Sequence[str] | None = None,
    users: str | Path | None = None,
    user_key: str = "user",
    user_fields: Sequence[str] | None = None,
    cleaning: CleaningConfig | None = None,
    name: str | None = None,
    return_report: bool = False,
) -> Interactions | tuple[Interactions, CleaningReport]:
    """Load any interaction file, optional item and user metadata, and clean it.

    Raw ids are matched between files as strings unless both sides are numeric. With the
    default ``cleaning=CleaningConfig()`` rows with a missing id or rating are dropped and
    exact duplicates collapse to the latest; pass ``return_report=True`` to get the
    :class:`CleaningReport` listing every row changed.
    """
    frame = read_interactions(path, user=user, item=item, rating=rating, timestamp=timestamp,
                              fmt=fmt, sep=sep, encoding=encoding)
    result = clean(frame, cleaning or CleaningConfig(), source=str(path))
    item_table = read_attribute_table(items, key=item_key, fields=item_fields, encoding=encoding) if items else None
    user_table = read_attribute_table(users, key=user_key, fields=user_fields, encoding=encoding) if users else None
    data = Interactions.from_frame(
        _match_key_types(result.frame, item_table, user_table),
        item_table=_coerce_index(item_table, result.frame["item"]),
        user_table=_coerce_index(user_table, result.frame["user"]),
        name=name or Path(path).stem, source=str(path),
    )
    return (data, result.report) if return_report else data


def _match_key_types(frame: pd.DataFrame, *_: object) -> pd.DataFrame:
    frame = frame.copy()
    for col in ("user", "item"):
        frame[col] = _as_key(frame[col])
    return frame


def _as_key(values: pd.Series) -> pd.Series:
    """Numeric-looking ids become int64, others str, so that files agree on keys."""
    num = pd.to_numeric(values, errors="coerce")
    if num.notna().all() and (num == np.floor(num)).all():
        return num.astype(np.int64)
    return values.astype(str)


def _coerce_index(table: pd.DataFrame | None, ids: pd.Series) -> pd.DataFrame | None:
    if table is None:
        return None
    table = table.copy()
    table.index = _as_key(pd.Series(table.index)).to_numpy()
    return table
