"""Item and user metadata files matched to the interactions, with every mismatch counted.

A metadata table (``movies.csv``: movieId, title, genres) is keyed by the same ids as the
interactions. Its key column is converted to the interaction ids' type, so "260" matches 260.
Each problem becomes an issue of the :class:`~lmrec.data.CleaningReport`: rows without a key,
keys that cannot be of the ids' type, repeated keys (the first row is kept), keys that match
no interaction, interaction ids without a row, and empty fields. A file whose keys match no
interaction at all is an error: its fields would all be empty.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from lmrec.data.ids import convert_keys
from lmrec.data.report import MAX_EXAMPLES, CleaningReport, show
from lmrec.errors import DataError
from lmrec.data.values import empty_mask


def _lines(rows: pd.DataFrame) -> list[str]:
    return [f"line {int(n)}" for n in rows["line"].to_numpy()[:MAX_EXAMPLES]]


def match_metadata(rows: pd.DataFrame, *, key: str, kind: str, seen: pd.Series, kept: pd.Series,
                   what: str, path: str | Path, report: CleaningReport) -> pd.DataFrame:
    """The metadata ``rows`` (key, fields, line) indexed by typed key, with problems noted.

    Parameters
    ----------
    kind: "int" or "str", the type of the interaction ids.
    seen: the interaction ids before cleaning (a key matching none of them is reported).
    kept: the interaction ids after cleaning (ids without a row, empty fields are counted over them).
    what: "item" or "user", for messages.
    """
    src = f"{path} ({what} metadata)"
    missing = empty_mask(rows[key]).to_numpy()
    report.note(f"{what} metadata: rows without a key", int(missing.sum()),
                f"{src}: {int(missing.sum())} rows have no '{key}' value and were ignored.", _lines(rows[missing]))
    rows = rows[~missing]
    keys, wrong = convert_keys(rows[key], kind)
    _require_overlap(rows[key], keys, key, seen, what, path)
    report.note(f"{what} metadata: keys not whole numbers", int(wrong.sum()),
                f"{src}: {int(wrong.sum())} '{key}' values are not whole numbers like the interactions' {what} ids, "
                "so they match nothing.", [f"{ln}: {show(v)}" for ln, v in zip(_lines(rows[wrong]), rows[key][wrong])])
    rows = rows.assign(**{key: keys})[~wrong]
    dup = rows[key].duplicated(keep="first").to_numpy()
    report.note(f"{what} metadata: repeated keys (kept the first)", int(dup.sum()),
                f"{src}: {int(dup.sum())} rows repeat an earlier '{key}'; the first row of each key is used.",
                _lines(rows[dup]))
    rows = rows[~dup]
    _check_matches(rows, key, seen, src, what, report)
    _note_absent(rows[key], kept, src, what, report)
    _note_empty(rows[rows[key].isin(kept.unique())], [c for c in rows.columns if c not in (key, "line")],
                src, what, report)
    return rows.drop(columns="line").set_index(key)


def _require_overlap(raw: pd.Series, keys: pd.Series, key: str, seen: pd.Series, what: str, path: str | Path) -> None:
    """Raise when no key matches an interaction id: every field would silently be empty."""
    if len(raw) and not keys.isin(seen.dropna().unique()).any():
        raise DataError(f"none of the {len(raw)} '{key}' values matches a {what} id of the interactions "
                        f"(keys look like {_show(raw)}; {what} ids like {_show(seen.dropna())}); "
                        f"check the key column ({what}_key= / --{what}-key) and the id type (id_type=).",
                        path=path, column=key)


def _check_matches(rows: pd.DataFrame, key: str, seen: pd.Series, src: str, what: str,
                   report: CleaningReport) -> None:
    hit = rows[key].isin(seen.dropna().unique()).to_numpy()
    report.note(f"{what} metadata: keys matching no interaction", int((~hit).sum()),
                f"{src}: {int((~hit).sum())} of {len(rows)} '{key}' values match no {what} of the interactions; "
                "their rows are unused.", [f"{ln}: {show(v)}" for ln, v in zip(_lines(rows[~hit]), rows[key][~hit])])


def _note_absent(keys: pd.Series, kept: pd.Series, src: str, what: str, report: CleaningReport) -> None:
    ids = pd.Index(kept.unique())
    absent = ids.difference(pd.Index(keys.dropna().unique()))
    report.note(f"{what} metadata: {what}s without a row", len(absent),
                f"{src}: {len(absent)} of {len(ids)} {what}s have no metadata row; all their fields are empty.",
                [f"{what} {show(v)}" for v in absent[:MAX_EXAMPLES]])


def _note_empty(rows: pd.DataFrame, fields: Sequence[str], src: str, what: str, report: CleaningReport) -> None:
    for name in fields:
        empty = empty_mask(rows[name]).to_numpy()
        report.note(f"{what} metadata: empty '{name}'", int(empty.sum()),
                    f"{src}: '{name}' is missing or empty in {int(empty.sum())} of {len(rows)} rows; texts built "
                    "from it leave it out.", _lines(rows[empty]))


def _show(values: pd.Series) -> str:
    return ", ".join(show(v) for v in values.head(3).tolist())
