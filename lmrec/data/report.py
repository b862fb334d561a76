"""The cleaning report: every row changed, plus every problem counted instead of hidden.

Row changes (a duplicate dropped, a rating clipped) are rows of ``CleaningReport.changes``.
Problems that are not one interaction row (lines skipped as unreadable, items that lost all
their interactions, metadata rows without a key, empty text fields) are :class:`Issue` s with
a count and a few examples. ``summary()`` gives both as counts; ``warn()`` turns each issue
into a :class:`DataWarning`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

MAX_EXAMPLES = 5


def show(value: object) -> str:
    """A value as it reads in a message: ``'abc'`` for text, ``260`` for a number (numpy or not)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


class DataWarning(UserWarning):
    """The input data had a problem that lmrec counted and worked around (see the cleaning report)."""


@dataclass(frozen=True)
class Issue:
    """One counted problem: ``key`` is its summary name, ``message`` a sentence for people.

    Example
    -------
    >>> Issue("skipped: bad line", 2, "2 unreadable lines were skipped.", ("line 7: expected 3 fields, saw 4",)).text()
    '2 unreadable lines were skipped. Examples: line 7: expected 3 fields, saw 4.'
    """

    key: str
    count: int
    message: str
    examples: tuple[str, ...] = ()

    def text(self) -> str:
        """The message followed by the examples, on one line."""
        return self.message + (f" Examples: {'; '.join(self.examples)}." if self.examples else "")


@dataclass
class CleaningReport:
    """Every row changed by cleaning: ``changes`` has line, user, item, action, reason, old, new;
    ``issues`` lists the problems counted while loading (see :class:`Issue`)."""

    rows_in: int
    rows_out: int = 0
    changes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["line", "user", "item", "action", "reason", "old", "new"]))
    issues: list[Issue] = field(default_factory=list)

    def add(self, rows: pd.DataFrame, action: str, reason: str, new: object = None) -> None:
        """Record ``rows`` (with line, user, item, [rating]) as changed by ``action`` for ``reason``."""
        if rows.empty:
            return
        part = pd.DataFrame({
            "line": rows["line"].to_numpy() if "line" in rows else np.full(len(rows), -1),
            "user": rows["user"].to_numpy(dtype=object),  # object: nullable Int64 ids stay whole numbers
            "item": rows["item"].to_numpy(dtype=object),
            "action": action,
            "reason": reason,
            "old": rows["rating"].to_numpy() if "rating" in rows else np.nan,
            "new": new if new is not None else np.nan,
        })
        self.changes = part if self.changes.empty else pd.concat([self.changes, part], ignore_index=True)

    def note(self, key: str, count: int, message: str, examples: Sequence[object] = ()) -> None:
        """Record a counted problem (nothing when ``count`` is 0); at most five examples are kept."""
        if count > 0:
            self.issues.append(Issue(key, int(count), message, tuple(str(e) for e in examples[:MAX_EXAMPLES])))

    def summary(self) -> dict[str, int]:
        """Row counts per (action, reason) and issue counts by key, plus rows in and out."""
        counts = self.changes.groupby(["action", "reason"]).size() if len(self.changes) else {}
        out = {f"{a}: {r}": int(n) for (a, r), n in dict(counts).items()}
        issues = {i.key: i.count for i in self.issues}
        return {"rows_in": self.rows_in, **out, **issues, "rows_out": self.rows_out}

    def messages(self) -> list[str]:
        """One line per issue, with its examples."""
        return [issue.text() for issue in self.issues]

    def warn(self) -> None:
        """Issue a :class:`DataWarning` per issue (what :func:`~lmrec.data.load_interactions` does)."""
        for issue in self.issues:
            warnings.warn(issue.text(), DataWarning, stacklevel=3)

    def save(self, path: str | Path) -> None:
        """Write the changes as CSV (temp file, then rename)."""
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        self.changes.to_csv(tmp, index=False)
        tmp.replace(path)
