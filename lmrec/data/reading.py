"""Reading delimited, Parquet and JSON-lines files into frames, with errors that name the line.

pandas errors ("Expected 4 fields in line 7, saw 5", UnicodeDecodeError at byte 1234) are
turned into :class:`~lmrec.errors.DataError` naming the file, the 1-based line and what was
expected. Numeric columns are checked value by value only when the fast path fails. A
:class:`BadLines` decides what an unreadable line does: raise (``"error"``, the default) or
get skipped and counted, with examples (``"skip"``).
"""
from __future__ import annotations

import gzip
import io
import json
import re
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from lmrec.data.report import MAX_EXAMPLES, show
from lmrec.errors import DataError, check_choice

FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".jsonl": "jsonl", ".json": "jsonl"}
ON_BAD_LINES = ("error", "skip")
_SKIPPED = re.compile(r"Skipping line (\d+): ([^\n]*)")


class BadLines:
    """What an unreadable line does: raise :class:`DataError` naming file, line and column
    (``mode="error"``) or get skipped and counted, keeping five examples (``mode="skip"``).

    Example
    -------
    >>> bad = BadLines("skip", "events.csv")
    >>> bad.reject([7], "expected 3 fields, saw 4")
    >>> bad.count, bad.examples
    (1, ['line 7: expected 3 fields, saw 4'])
    """

    def __init__(self, mode: str = "error", path: str | Path | None = None) -> None:
        check_choice("load_interactions", "on_bad_lines", mode, ON_BAD_LINES)
        self.mode = mode
        self.path = path
        self.lines: set[int] = set()
        self._examples: dict[int, str] = {}  # line -> what was wrong (the first reason found)

    @property
    def count(self) -> int:
        """Number of distinct lines skipped."""
        return len(self.lines)

    @property
    def examples(self) -> list[str]:
        """The first five skipped lines, in file order, with what was wrong."""
        return [self._examples[n] for n in sorted(self._examples)[:MAX_EXAMPLES]]

    def reject(self, lines: Sequence[int], reason: str, values: Sequence[object] | None = None, *,
               column: str | None = None, hint: str = "") -> None:
        """Raise for the first of ``lines`` or skip them all; ``values[i]`` is what line i held.

        ``hint`` (a sentence) is added to the error, before the advice on ``on_bad_lines``.
        """
        if len(lines) == 0:
            return
        got = (lambda i: f"{reason}, got {show(values[i])}") if values is not None else (lambda i: reason)
        if self.mode == "error":
            many = f" ({len(lines)} such lines)" if len(lines) > 1 else ""
            raise DataError(f"{got(0)}{many}. {hint}{' ' if hint else ''}To skip and count such lines pass "
                            "on_bad_lines='skip' (--on-bad-lines skip).", path=self.path, line=int(lines[0]),
                            column=column)
        where = f", column '{column}'" if column else ""
        for i, line in enumerate(lines[:MAX_EXAMPLES]):  # lines come in file order
            self._examples.setdefault(int(line), f"line {int(line)}{where}: {got(i)}")
        self.lines.update(int(x) for x in lines)


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


def parse_numbers(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """``(numbers, bad)``: empty cells become NaN; ``bad`` marks cells that are not numbers."""
    if pd.api.types.is_numeric_dtype(values):
        return values, np.zeros(len(values), dtype=bool)
    stripped = values.astype("string").str.strip()
    out = pd.to_numeric(stripped, errors="coerce")
    bad = (out.isna() & stripped.notna() & (stripped != "")).to_numpy(dtype=bool)
    return out, bad


def to_number(values: pd.Series, *, path: str | Path, column: str, lines: pd.Series | None = None) -> pd.Series:
    """Parse a column as numbers; empty cells become NaN, other junk raises DataError."""
    out, bad = parse_numbers(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        line = int(lines.iloc[row]) if lines is not None else row + 2
        raise DataError(
            f"expected a number, got {str(values.iloc[row]).strip()!r} ({int(bad.sum())} such rows).",
            path=path, line=line, column=column,
        )
    return out


def read_table(
    path: str | Path,
    *,
    fmt: str | None = None,
    sep: str | None = None,
    encoding: str = "utf-8",
    bad_lines: BadLines | None = None,
) -> pd.DataFrame:
    """Read a CSV/TSV (with header), Parquet or JSON-lines file; adds a 1-based ``line`` column.

    For CSV/TSV and JSON lines, ``line`` is the line in the file (the header is line 1);
    for Parquet it is the row number + 1. A malformed line raises DataError, unless
    ``bad_lines`` is in "skip" mode, which skips and counts it.
    """
    path = Path(path)
    bad = bad_lines or BadLines("error", path)
    fmt = fmt or _guess_format(path)
    if fmt == "parquet":
        return _read_parquet(path)
    text = open_text(path, encoding)
    if fmt == "jsonl":
        frame = _read_jsonl(text, bad)
    else:
        frame = _read_delimited_text(text, path, sep or ("\t" if fmt == "tsv" else ","), bad)
    if frame.empty:
        what = "no readable data lines" if bad.count else "a header but no data lines"
        raise DataError(f"the file has {what}.", path=path)
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
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


def _read_delimited_text(text: str, path: Path, delim: str, bad: BadLines) -> pd.DataFrame:
    """pandas' parser; in skip mode its "Skipping line N: ..." warnings are the skipped lines."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            frame = pd.read_csv(io.StringIO(text), sep=delim, dtype=str, keep_default_na=False, na_values=[""],
                                skip_blank_lines=True, on_bad_lines="warn" if bad.mode == "skip" else "error",
                                engine="c" if len(delim) == 1 else "python")
    except pd.errors.ParserError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise DataError(f"malformed line: {str(exc).strip()}; pass on_bad_lines='skip' (--on-bad-lines skip) "
                        "to skip and count such lines.", path=path, line=int(m.group(1)) if m else None) from None
    except pd.errors.EmptyDataError:
        raise DataError("the file has no header line.", path=path) from None
    skipped = [(int(n), why) for w in caught for n, why in _SKIPPED.findall(str(w.message))]
    for line, why in skipped:
        bad.reject([line], why)
    # line numbers: header is line 1; blank lines and skipped lines have no row
    gone = {line for line, _ in skipped}
    nonblank = [i + 1 for i, ln in enumerate(text.splitlines()) if ln.strip()]
    kept = [n for n in nonblank[1:] if n not in gone]
    frame["line"] = np.asarray(kept[: len(frame)], dtype=np.int64)
    return frame


def _read_jsonl(text: str, bad: BadLines) -> pd.DataFrame:
    records, lines = [], []
    for i, ln in enumerate(text.splitlines(), start=1):
        if not ln.strip():
            continue
        try:
            obj = json.loads(ln)
        except json.JSONDecodeError as exc:
            bad.reject([i], f"not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(obj, dict):
            bad.reject([i], f"expected a JSON object per line, got {type(obj).__name__}")
            continue
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
