"""One type per id column: integers or strings, decided once and applied to every file.

Interaction ids decide the type: ``id_type="auto"`` makes a column integer when (nearly) all its
ids are whole numbers, so that "260" in a metadata file matches 260 in the interactions. A
column that is integer except a few values ("abc") does not silently turn into strings: those
lines are bad lines (an error naming file, line and column, or skipped and counted). Metadata
keys are then converted to the type of the interaction ids.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from lmrec.data.reading import BadLines

ID_TYPES = ("auto", "int", "str")
# with id_type="auto", a column is integer when at least this share of its ids are whole numbers;
# the other ids are then taken as bad values rather than as a reason to make every id a string
INTEGER_SHARE = 0.9


def _whole_numbers(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """(Int64 numbers, mask of cells holding a whole number that fits int64).

    Parsed from the text ("260", "260.0"), never through float, so 18-digit ids stay exact.
    """
    text = values.astype("string").str.strip()
    whole = text.str.fullmatch(r"[+-]?\d{1,18}(\.0*)?").fillna(False).to_numpy(dtype=bool)
    num = pd.Series(pd.NA, index=values.index, dtype="Int64")
    if whole.any():
        num[whole] = pd.to_numeric(text[whole].str.replace(r"\.0*$", "", regex=True)).astype("Int64")
    return num, whole


def id_kind(values: pd.Series, id_type: str = "auto") -> str:
    """``"int"`` or ``"str"``: the type an id column gets under ``id_type``."""
    if id_type != "auto":
        return id_type
    present = values.notna().to_numpy(dtype=bool)
    if not present.any():
        return "str"
    _, whole = _whole_numbers(values)
    return "int" if whole[present].mean() >= INTEGER_SHARE else "str"


def parse_ids(values: pd.Series, *, kind: str, lines: pd.Series, column: str,
              bad: BadLines) -> tuple[pd.Series, np.ndarray]:
    """Typed ids (nullable Int64 or str; missing stays missing) and the mask of rejected rows.

    With ``kind="int"`` an id that is not a whole number goes to ``bad`` (raise or skip).
    """
    present = values.notna().to_numpy(dtype=bool)
    if kind == "str":
        return _as_str(values), np.zeros(len(values), dtype=bool)
    num, whole = _whole_numbers(values)
    rejected = present & ~whole
    if rejected.any():
        n_ok = int((present & whole).sum())
        bad.reject(lines.to_numpy()[rejected], f"expected a whole-number id like the other {n_ok} ids of this column",
                   values.to_numpy()[rejected], column=column,
                   hint="If the ids are strings, pass id_type='str' (--id-type str).")
    return num, rejected


def _as_str(values: pd.Series) -> pd.Series:
    def one(v: object) -> object:
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            return None
        if isinstance(v, float) and v.is_integer():
            return str(int(v))  # a key read as 260.0 (Parquet, JSON) matches "260"
        return str(v).strip()

    return pd.Series([one(v) for v in values.to_numpy(dtype=object)], index=values.index, dtype=object)


def convert_keys(keys: pd.Series, kind: str) -> tuple[pd.Series, np.ndarray]:
    """Metadata keys in the interaction ids' type, and the mask of keys that cannot be of it."""
    if kind == "str":
        return _as_str(keys), np.zeros(len(keys), dtype=bool)
    num, whole = _whole_numbers(keys)
    wrong = keys.notna().to_numpy(dtype=bool) & ~whole
    return num, wrong


def finish_ids(values: pd.Series) -> pd.Series:
    """After cleaning: Int64 without missing values becomes int64 (missing ones stay for the error)."""
    if isinstance(values.dtype, pd.Int64Dtype) and not values.isna().any():
        return values.astype(np.int64)
    return values
