"""Model specs on the command line: ``NAME``, ``NAME:key=value,...`` or ``NAME:{JSON object}``.

A value may hold commas when it is quoted (``key="Title: {title}, {year}"``) or when the
parameters are given as JSON (``lm-ranker:{"item_template": "Title: {title}, {year}"}``).
A malformed spec raises :class:`~lmrec.errors.ConfigError` naming the spec and what was
expected, which the ``lmrec`` command prints as one ``lmrec: error:`` line (exit status 2).
"""
from __future__ import annotations

import json
from typing import Any

from lmrec.errors import ConfigError

SPEC_FORMS = "NAME, NAME:key=value,key=value (quote a value holding commas: key=\"a, b\") or NAME:{JSON object}"


def parse_value(text: str) -> Any:
    """'500' -> 500, '1e-3' -> 0.001, 'true' -> True, 'none' -> None, else the string."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _bad(spec: str, problem: str) -> ConfigError:
    return ConfigError(f"model spec {spec!r}: {problem}; expected {SPEC_FORMS}.")


def _split_params(spec: str, rest: str) -> list[tuple[str, bool]]:
    """``rest`` cut at commas outside quotes: (text, quoted) per part, quotes removed, ``\\"`` kept as ``"``."""
    parts: list[tuple[str, bool]] = []
    buf: list[str] = []
    quote, quoted, i = "", False, 0
    while i < len(rest):
        ch = rest[i]
        if quote:
            if ch == "\\" and i + 1 < len(rest) and rest[i + 1] in (quote, "\\"):
                buf.append(rest[i + 1])
                i += 1
            elif ch == quote:
                quote = ""
            else:
                buf.append(ch)
        elif ch in "\"'":
            quote, quoted = ch, True
        elif ch == ",":
            parts.append(("".join(buf), quoted))
            buf, quoted = [], False
        else:
            buf.append(ch)
        i += 1
    if quote:
        raise _bad(spec, f"a {quote} quote is not closed")
    parts.append(("".join(buf), quoted))
    return parts


def _key_value_params(spec: str, rest: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for part, quoted in _split_params(spec, rest):
        if not part.strip() and not quoted:
            continue
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or not key:
            raise _bad(spec, f"parameter {part.strip()!r} is not key=value")
        if key in params:
            raise _bad(spec, f"parameter {key!r} is given twice")
        params[key] = value if quoted else parse_value(value.strip())
    return params


def _json_params(spec: str, rest: str) -> dict[str, Any]:
    try:
        params = json.loads(rest)
    except json.JSONDecodeError as exc:
        raise _bad(spec, f"the parameters are not valid JSON ({exc.msg} at character {exc.pos + 1})") from None
    return params  # a dict: the text starts with "{"


def parse_model_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """'ease:lam=500' -> ('ease', {'lam': 500}); 'bpr-mf:dim=64,loss=hinge' likewise.

    >>> parse_model_spec('lm-ranker:item_template="Title: {title}, {year}",dim=64')
    ('lm-ranker', {'item_template': 'Title: {title}, {year}', 'dim': 64})
    >>> parse_model_spec('lm-ranker:{"item_template": "Title: {title}, {year}", "dim": 64}')
    ('lm-ranker', {'item_template': 'Title: {title}, {year}', 'dim': 64})

    A quoted value stays a string; an unquoted one is typed by :func:`parse_value`.
    """
    name, _, rest = spec.partition(":")
    if not name.strip():
        raise _bad(spec, "the model name is missing")
    params = _json_params(spec, rest) if rest.lstrip().startswith("{") else _key_value_params(spec, rest)
    return name.strip(), params
