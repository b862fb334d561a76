"""Any interaction file (CSV, TSV, Parquet, JSON lines) with a column mapping.

Nothing is hidden: unreadable lines raise a DataError naming file, line and column, or are
skipped and counted (``on_bad_lines="skip"``); ids get one type for all files (see
:mod:`lmrec.data.ids`); metadata mismatches, empty fields and items that cleaning empties
are counted in the :class:`CleaningReport` and issued as :class:`DataWarning` s.

Example
-------
>>> data = load_interactions(
...     "events.csv", user="customer_id", item="sku", rating="stars", timestamp="ts",
...     items="products.jsonl", item_key="sku", item_fields=["title", "brand"],
... )  # doctest: +SKIP
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from lmrec.data.cleaning import CleaningConfig, CleaningReport, clean
from lmrec.data.ids import ID_TYPES, finish_ids, id_kind, parse_ids
from lmrec.data.interactions import Interactions
from lmrec.data.metadata import match_metadata
from lmrec.data.reading import BadLines, parse_numbers, read_table
from lmrec.data.report import DataWarning
from lmrec.errors import ConfigError, DataError, check_choice


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
    id_type: str = "auto",
    on_bad_lines: str = "error",
) -> pd.DataFrame:
    """Read an interaction file into a frame with columns user, item, [rating], [timestamp], line.

    Missing cells stay missing (for :func:`~lmrec.data.clean` to handle and report); a missing
    column or a value that is not a number raises :class:`DataError` naming file, line and column
    (with ``on_bad_lines="skip"`` such lines are skipped, counted and warned about). Timestamps
    may be numbers (Unix seconds) or ISO dates. Ids are whole numbers (nullable Int64) or strings,
    per ``id_type`` ("auto", "int", "str"; see :mod:`lmrec.data.ids`).
    """
    bad = BadLines(on_bad_lines, path)
    frame, _ = _read(path, {"user": user, "item": item, "rating": rating, "timestamp": timestamp},
                     fmt=fmt, sep=sep, encoding=encoding, id_type=id_type, bad=bad)
    if bad.count:
        warnings.warn(_skipped_message(path, bad), DataWarning, stacklevel=2)
    return frame


def _read(path: str | Path, mapping: dict[str, str | None], *, fmt: str | None, sep: str | None, encoding: str,
          id_type: str, bad: BadLines) -> tuple[pd.DataFrame, dict[str, str]]:
    """(frame, {"user": kind, "item": kind}); rows with a rejected value are left out."""
    check_choice("load_interactions", "id_type", id_type, ID_TYPES)
    raw = read_table(path, fmt=fmt, sep=sep, encoding=encoding, bad_lines=bad)
    _require_columns(raw, mapping, path)
    lines = raw["line"]
    out = pd.DataFrame({"line": lines.to_numpy()})
    rejected = np.zeros(len(raw), dtype=bool)
    kinds: dict[str, str] = {}
    for canon, col in mapping.items():
        if col is None:
            continue
        if canon in ("user", "item"):
            ids = _strip(raw[col])
            kinds[canon] = id_kind(ids, id_type)
            values, wrong = parse_ids(ids, kind=kinds[canon], lines=lines, column=col, bad=bad)
        elif canon == "rating":
            values, wrong = parse_numbers(raw[col])
            bad.reject(lines[wrong].to_numpy(), "expected a number", raw[col][wrong].to_numpy(), column=col)
        else:
            values, wrong = _to_timestamp(raw[col])
            bad.reject(lines[wrong].to_numpy(), "expected a Unix time or an ISO date", raw[col][wrong].to_numpy(),
                       column=col)
        out[canon] = values.reset_index(drop=True)
        rejected |= wrong
    if rejected.all():
        raise DataError(f"every one of the {len(raw)} data lines was skipped as unreadable; examples: "
                        f"{'; '.join(bad.examples)}.", path=path)
    columns = [c for c in ("user", "item", "rating", "timestamp", "line") if c in out.columns]
    return out.loc[~rejected, columns].reset_index(drop=True), kinds


def _require_columns(raw: pd.DataFrame, mapping: dict[str, str | None], path: str | Path) -> None:
    for canon, col in mapping.items():
        if col is not None and col not in raw.columns:
            have = [c for c in raw.columns if c != "line"]
            raise DataError(f"missing column '{col}' (mapped to {canon}); the file has columns {have}.",
                            path=path, column=col)


def _strip(values: pd.Series) -> pd.Series:
    """Text with surrounding spaces removed; empty cells become missing."""
    text = values.astype("string").str.strip()
    return text.mask((text == "").fillna(False))


def _to_timestamp(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """(Unix seconds, mask of unreadable cells): numbers, else ISO dates, whichever reads more cells."""
    numbers, bad_numbers = parse_numbers(values)
    if not bad_numbers.any():
        return numbers, bad_numbers
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")
    bad_dates = (parsed.isna() & values.notna()).to_numpy(dtype=bool)
    if bad_numbers.sum() <= bad_dates.sum():
        return numbers, bad_numbers
    seconds = (parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    return pd.Series(seconds, index=values.index).where(parsed.notna()), bad_dates


def _metadata_rows(path: str | Path, *, key: str, fields: Sequence[str] | None, fmt: str | None, sep: str | None,
                   encoding: str, bad: BadLines) -> pd.DataFrame:
    """The ``key`` column, ``fields`` (all columns by default) and ``line`` of a metadata file."""
    raw = read_table(path, fmt=fmt, sep=sep, encoding=encoding, bad_lines=bad)
    wanted = [c for c in raw.columns if c not in ("line", key)] if fields is None else list(fields)
    for col in [key, *wanted]:
        if col not in raw.columns:
            have = [c for c in raw.columns if c != "line"]
            raise DataError(f"missing column '{col}'; the file has columns {have}.", path=path, column=col)
    return raw[[key, *wanted, "line"]].copy()


def read_attribute_table(
    path: str | Path, *, key: str, fields: Sequence[str] | None = None, fmt: str | None = None,
    sep: str | None = None, encoding: str = "utf-8", on_bad_lines: str = "error",
) -> pd.DataFrame:
    """An item or user metadata file: ``key`` column (as text, stripped) plus ``fields`` (all by default)."""
    table = _metadata_rows(path, key=key, fields=fields, fmt=fmt, sep=sep, encoding=encoding,
                           bad=BadLines(on_bad_lines, path))
    table[key] = _strip(table[key])
    return table.drop(columns="line").set_index(key)


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
    id_type: str = "auto",
    on_bad_lines: str = "error",
) -> Interactions | tuple[Interactions, CleaningReport]:
    """Load any interaction file, optional item and user metadata, and clean it.

    Parameters
    ----------
    user, item, rating, timestamp:
        Column names in the interaction file (rating and timestamp optional).
    items, item_key, item_fields / users, user_key, user_fields:
        Metadata files, their key column and the fields to keep (all by default). Keys are
        converted to the interaction ids' type: "260" in movies.csv matches 260 in ratings.csv.
    id_type:
        "auto" (whole numbers when at least 90% of a column's ids are, else strings), "int" or "str".
        Under "auto" and "int", an id that is not a whole number is a bad line.
    on_bad_lines:
        "error" (default): an unreadable line, a bad number or a bad id raises :class:`DataError`
        naming file, line and column. "skip": such lines are skipped and counted in the report.
    cleaning:
        The :class:`CleaningConfig`; by default rows with a missing id or rating are dropped and
        exact duplicates collapse to the latest.
    return_report:
        Also return the :class:`CleaningReport`: every row changed, plus counted issues (skipped
        lines, metadata mismatches, empty fields, users and items left without interactions).
        Each issue is also issued as a :class:`DataWarning`.
    """
    cleaning = cleaning or CleaningConfig()
    _check_rating_steps(cleaning, rating)
    bad = BadLines(on_bad_lines, path)
    frame, kinds = _read(path, {"user": user, "item": item, "rating": rating, "timestamp": timestamp},
                         fmt=fmt, sep=sep, encoding=encoding, id_type=id_type, bad=bad)
    result = clean(frame, cleaning, source=str(path))
    report = result.report
    report.note("skipped: bad lines", bad.count, _skipped_message(path, bad), bad.examples)
    cleaned = result.frame.assign(user=finish_ids(result.frame["user"]), item=finish_ids(result.frame["item"]))
    tables = {}
    for what, file, key, fields in (("item", items, item_key, item_fields), ("user", users, user_key, user_fields)):
        if file is not None:
            tables[what] = _metadata(file, key=key, fields=fields, encoding=encoding, on_bad_lines=on_bad_lines,
                                     kind=kinds[what], seen=frame[what], kept=cleaned[what], what=what, report=report)
    data = Interactions.from_frame(cleaned, item_table=tables.get("item"), user_table=tables.get("user"),
                                   name=name or Path(path).stem, source=str(path))
    report.warn()
    return (data, report) if return_report else data


def _check_rating_steps(cleaning: CleaningConfig, rating: str | None) -> None:
    """A rating step without a rating column would silently do nothing."""
    steps = [f for f in ("rating_scale", "implicit_threshold", "normalize") if getattr(cleaning, f) is not None]
    if rating is None and steps:
        raise ConfigError(f"The '{steps[0]}' parameter of CleaningConfig needs ratings, but load_interactions "
                          "got no rating column; pass rating='COLUMN' (--rating COLUMN).")


def _metadata(path: str | Path, *, key: str, fields: Sequence[str] | None, encoding: str, on_bad_lines: str,
              kind: str, seen: pd.Series, kept: pd.Series, what: str, report: CleaningReport) -> pd.DataFrame:
    """A metadata file read, keyed by the interaction ids' type and matched (see lmrec.data.metadata)."""
    bad = BadLines(on_bad_lines, path)
    rows = _metadata_rows(path, key=key, fields=fields, fmt=None, sep=None, encoding=encoding, bad=bad)
    report.note(f"{what} metadata: skipped bad lines", bad.count, _skipped_message(path, bad), bad.examples)
    table = match_metadata(rows, key=key, kind=kind, seen=seen, kept=kept, what=what, path=path, report=report)
    table.index = finish_ids(table.index.to_series()).to_numpy()
    return table


def _skipped_message(path: str | Path, bad: BadLines) -> str:
    return f"{path}: skipped {bad.count} unreadable line{'s' if bad.count != 1 else ''} (on_bad_lines='skip')."
