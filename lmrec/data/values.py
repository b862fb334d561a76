"""How a table value reads as text: missing, NaN and blank values are empty; whole floats lose ".0"."""
from __future__ import annotations

import math
from typing import Any

import pandas as pd


def as_text(value: Any) -> str:
    """A field value as text ("" for missing, NaN or blank; 1995.0 -> "1995")."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def empty_mask(values: pd.Series) -> pd.Series:
    """True where a value renders as nothing (missing, NaN, empty or blank text)."""
    return pd.Series([as_text(v) == "" for v in values.to_numpy(dtype=object)], index=values.index, dtype=bool)
