"""Reading delimited, Parquet and JSON-lines files into frames, with errors that name the line.

pandas errors ("Expected 4 fields in line 7, saw 5", UnicodeDecodeError at byte 1234) are
turned into :class:`~lmrec.errors.DataError` naming the file, the 1-based line and what was
expected. Numeric columns are checked value by value only when the fast path fails.
"""
from __future__ import annotations

import gzip
import io
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from lmrec.errors import DataError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".jsonl": "jsonl", ".json": "jsonl"}


def open_text(path: Path, encoding: str) -> str:
    """Whole file as text; ``.gz`` is decompressed. Raises DataError on empty or undecodable files."""
    path = Path(path)
    if not path.exists():
        raise DataError("file not found.", path=path)
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"not a valid gzip file ({exc}).", path=path) from None
    if not raw.strip():
        raise DataError("the file is empty; expected at least one data line.", path=path)
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"cannot decode byte 0x{raw[exc.start]:02x} as {encoding}; "
            f"pass encoding='latin-1' (or the file's real encoding).",
            path=path, line=line,
        ) from None


def read_delimited(
    path: str | Path,
    sep: str,
    names: Sequence[str],
    *,
    header: bool = False,
    encoding: str = "utf-8",
    numeric: Sequence[str] = (),
    optional: Sequence[str] = (),
) -> pd.DataFrame:
    """Read a delimited file into string/number columns with a ``line`` column (1-based).

    Parameters
    ----------
    sep:
        Field separator; multi-character separators such as ``"::"`` are supported.
    names:
        Column names, in file order (ignored for the header row when ``header`` is True).
    numeric:
        Columns that must parse as numbers; empty cells become NaN (missing values are for
        cleaning to handle), anything else raises DataError with the line.
    optional:
        Trailing columns that may be absent from the whole file (e.g. a timestamp).
    """
    path = Path(path)
    text = open_text(path, encoding)
    lines = text.splitlines()
    first = 1 if header else 0
    body = [(i + 1, ln) for i, ln in enumerate(lines[first:], start=first) if ln.strip()]
    if not body:
        raise DataError("the file has no data lines.", path=path)
    names = list(names)
    width = len(lines[0].split(sep)) if header else len(body[0][1].split(sep))
    if width < len(names) - len(optional) or width > len(names):
        expected = f"{len(names) - len(optional)}" + (f" or {len(names)}" if optional else "")
        line_no = 1 if header else body[0][0]
        raise DataError(
            f"expected {expected} fields ({', '.join(names)}) separated by {sep!r}; found {width}.",
            path=path, line=line_no,
        )
    names = names[:width]
    rows = [ln.split(sep) for _, ln in body]
    counts = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    bad = np.flatnonzero(counts != width)
    if len(bad):
        i = int(bad[0])
        raise DataError(
            f"expected {width} fields separated by {sep!r}; found {counts[i]}: {body[i][1][:80]!r}.",
            path=path, line=body[i][0],
        )
    frame = pd.DataFrame(rows, columns=names)
    frame["line"] = np.fromiter((n for n, _ in body), dtype=np.int64, count=len(body))
    for col in numeric:
        if col in frame.columns:
            frame[col] = to_number(frame[col], path=path, column=col, lines=frame["line"])
    return frame


def to_number(values: pd.Series, *, path: str | Path, column: str, lines: pd.Series | None = None) -> pd.Series:
    """Parse a column as numbers; empty cells become NaN, other junk raises DataError."""
    if pd.api.types.is_numeric_dtype(values):
        return values
    stripped = values.astype("string").str.strip()
    out = pd.to_numeric(stripped, errors="coerce")
    bad = out.isna() & stripped.notna() & (stripped != "")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        line = int(lines.iloc[row]) if lines is not None else row + 2
        raise DataError(
            f"expected a number, got {stripped.iloc[row]!r} ({int(bad.sum())} such rows).",
            path=path, line=line, column=column,
        )
    return out


def read_table(
    path: str | Path,
    *,
    fmt: str | None = None,
    sep: str | None = None,
    encoding: str = "utf-8",
) -> pd.DataFrame:
    """Read a CSV/TSV (with header), Parquet or JSON-lines file; adds a 1-based ``line`` column.

    For CSV/TSV and JSON lines, ``line`` is the line in the file (the header is line 1);
    for Parquet it is the row number + 1.
    """
    path = Path(path)
    fmt = fmt or _guess_format(path)
    if fmt == "parquet":
        if not path.exists():
            raise DataError("file not found.", path=path)
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for a broken file
            raise DataError(f"not a readable Parquet file ({exc}).", path=path) from None
        if frame.empty:
            raise DataError("the file is empty; expected at least one row.", path=path)
        frame["line"] = np.arange(1, len(frame) + 1)
        return frame
    text = open_text(path, encoding)
    if fmt == "jsonl":
        return _read_jsonl(text, path)
    delim = sep or ("\t" if fmt == "tsv" else ",")
    try:
        frame = pd.read_csv(io.StringIO(text), sep=delim, dtype=str, keep_default_na=False,
                            na_values=[""], skip_blank_lines=True)
    except pd.errors.ParserError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise DataError(f"malformed line: {exc}", path=path, line=int(m.group(1)) if m else None) from None
    except pd.errors.EmptyDataError:
        raise DataError("the file has no header line.", path=path) from None
    if frame.empty:
        raise DataError("the file has a header but no data lines.", path=path)
    # line numbers: header is line 1; skip blank lines the parser skipped
    nonblank = [i + 1 for i, ln in enumerate(text.splitlines()) if ln.strip()]
    frame["line"] = np.asarray(nonblank[1 : len(frame) + 1], dtype=np.int64)
    return frame


def _read_jsonl(text: str, path: Path) -> pd.DataFrame:
    import json

    records, lines = [], []
    for i, ln in enumerate(text.splitlines(), start=1):
        if not ln.strip():
            continue
        try:
            obj = json.loads(ln)
        except json.JSONDecodeError as exc:
            raise DataError(f"not valid JSON ({exc.msg} at column {exc.colno}).", path=path, line=i) from None
        if not isinstance(obj, dict):
            raise DataError(f"expected a JSON object per line, got {type(obj).__name__}.", path=path, line=i)
        records.append(obj)
        lines.append(i)
    frame = pd.DataFrame.from_records(records)
    frame["line"] = np.asarray(lines, dtype=np.int64)
    return frame


def _guess_format(path: Path) -> str:
    suffixes = [s for s in path.suffixes if s != ".gz"]
    fmt = FORMATS.get(suffixes[-1].lower()) if suffixes else None
    if fmt is None:
        raise DataError(
            f"cannot tell the format from the name; pass fmt= one of {sorted(set(FORMATS.values()))}.",
            path=path,
        )
    return fmt
