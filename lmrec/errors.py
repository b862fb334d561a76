"""Exceptions raised by lmrec.

Every error names what was wrong, where (file, line, column or parameter) and what was
expected, so that a user can fix the input without reading a traceback.
"""
from __future__ import annotations

from pathlib import Path


class LmrecError(Exception):
    """Base class of every error lmrec raises on purpose."""


class DataError(LmrecError, ValueError):
    """Bad input data: a missing column, a malformed line, an empty file, ...

    Parameters
    ----------
    message:
        What was wrong and what was expected.
    path:
        The file the problem is in, when there is one.
    line:
        The 1-based line number in that file, when known.
    column:
        The column or field name, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.column = column
        where = []
        if self.path is not None:
            where.append(self.path)
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column '{column}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ConfigError(LmrecError, ValueError):
    """A parameter has a value outside what is allowed."""


class LeakageError(LmrecError):
    """A split lets evaluation data reach training."""


class ArtifactError(LmrecError):
    """A saved model or split directory is missing, corrupt or of another format."""


def check_choice(owner: str, name: str, value: object, allowed: object) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``allowed``.

    >>> check_choice("EASE", "loss", "bpr", ["bpr", "hinge"])
    """
    allowed = list(allowed)  # type: ignore[call-overload]
    if value not in allowed:
        names = ", ".join(repr(a) for a in allowed)
        raise ConfigError(
            f"The '{name}' parameter of {owner} must be one of {names}; got {value!r}."
        )


def check_positive(owner: str, name: str, value: float, *, allow_zero: bool = False) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a positive number."""
    ok = isinstance(value, (int, float)) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"The '{name}' parameter of {owner} must be a number {bound}; got {value!r}.")
