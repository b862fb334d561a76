"""Text templates: item and user text built from the attribute tables' fields.

A template is a Python format string over field names, e.g.
``"Title: {title}. Genres: {genres}. Year: {year}."``. It is read as segments, one per field:
the field with its label before it and its punctuation after it ("Genres: {genres}."). A row
whose field is missing or empty loses that whole segment, so no "Genres: ." fragment is
rendered; numbers that are whole render without ".0". Templates are saved with a model so
serving rebuilds exactly the same text.

:func:`default_item_template` composes a template from the known fields a table has (title,
genres, year, ..., text), so that no present field is dropped; :func:`empty_field_counts`
says how many rows would lose a segment.
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Sequence

import pandas as pd

from lmrec.data.values import as_text, empty_mask
from lmrec.errors import ConfigError

ITEM_TEMPLATES: dict[str, str] = {
    "movielens": "Title: {title}. Genres: {genres}. Year: {year}.",
    "amazon": "{text}",
    "title": "{title}",
}
"""Named item text templates; a ``{field}`` whose value is empty drops its segment."""
USER_TEMPLATES: dict[str, str] = {
    "movielens": "Gender: {gender}. Age: {age}. Occupation: {occupation}.",
}
"""Named user text templates (user attributes), as :data:`ITEM_TEMPLATES` for items."""
# known item fields, in the order a composed template uses them, with their labels; "text" is a
# ready-made free text (Amazon's "title. categories. brand.") and goes last, without a label
ITEM_FIELD_LABELS: dict[str, str] = {
    "title": "Title", "name": "Name", "genres": "Genres", "year": "Year", "author": "Author", "brand": "Brand",
    "category": "Category", "categories": "Categories", "tags": "Tags", "description": "Description",
}
FREE_TEXT = "text"


@dataclass(frozen=True)
class _Segment:
    """One field of a template with the literal text that belongs to it."""

    prefix: str
    field: str
    conversion: str | None
    spec: str
    suffix: str


def template_fields(template: str) -> list[str]:
    """Field names used by ``template``."""
    try:
        return [f for _, f, _, _ in string.Formatter().parse(template) if f]
    except ValueError as exc:
        raise ConfigError(f"Bad text template {template!r}: {exc}.") from None


def _segments(template: str) -> tuple[str, list[_Segment]]:
    """(literal text of a template without fields, segments).

    The literal between two fields is split at its first whitespace: what comes before it ends
    the previous segment (". "), the rest is the label of the next ("Genres: ").
    """
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"Bad text template {template!r}: {exc}.") from None
    fields, literal = [], ""  # fields: (literal before it, name, conversion, spec)
    for lit, name, spec, conv in parts:
        literal += lit  # escaped braces split one literal over several parts
        if name is not None:
            fields.append((literal, name, conv, spec or ""))
            literal = ""
    if not fields:
        return literal, []
    segments, prefix = [], fields[0][0]
    for i, (_, name, conv, spec) in enumerate(fields):
        if i + 1 == len(fields):
            suffix, label = literal, ""
        else:
            m = re.match(r"(\S*)\s+(.*)", fields[i + 1][0], re.S)
            suffix, label = (m.group(1), m.group(2)) if m else ("", fields[i + 1][0])
        segments.append(_Segment(prefix, name, conv, spec, suffix))
        prefix = label
    return "", segments


def default_item_template(table: pd.DataFrame) -> str | None:
    """A template over the known fields ``table`` has, in a fixed order (None when it has none).

    Labelled fields come first (``ITEM_FIELD_LABELS``: "Title: {title}. Genres: {genres}. ..."),
    then the free ``text`` field. A field whose value is, in every row, already part of that
    row's ``text`` (Amazon's title) is left out. Field names match case-insensitively. When the
    fields used are exactly those of a built-in template (``ITEM_TEMPLATES``), it is that one,
    so built-in datasets and title-only tables keep their text ("{title}", "{text}").

    >>> default_item_template(pd.DataFrame(columns=["movieId", "title", "genres"]))
    'Title: {title}. Genres: {genres}.'
    >>> default_item_template(pd.DataFrame(columns=["title", "genres", "year"]))
    'Title: {title}. Genres: {genres}. Year: {year}.'
    """
    columns = {str(c).lower(): c for c in table.columns if isinstance(c, str)}
    text = columns.get(FREE_TEXT)
    used = [columns[f] for f in ITEM_FIELD_LABELS
            if f in columns and not (text is not None and _inside(table[columns[f]], table[text]))]
    for template in ITEM_TEMPLATES.values():
        if set(template_fields(template)) == set(used + ([text] if text is not None else [])):
            return template
    parts = [f"{ITEM_FIELD_LABELS[str(f).lower()]}: {{{f}}}." for f in used] + ([f"{{{text}}}"] if text else [])
    return " ".join(parts) or None


def _inside(values: pd.Series, text: pd.Series) -> bool:
    """True when every value is empty or a substring of the same row's text."""
    return all(v == "" or v in t for v, t in zip(map(as_text, values), map(as_text, text)))


def default_user_template(table: pd.DataFrame) -> str | None:
    """The first built-in user template whose fields the table has (None when none fits)."""
    for template in USER_TEMPLATES.values():
        if set(template_fields(template)) <= set(table.columns):
            return template
    return None


def _format(segment: _Segment, value: str) -> str:
    if segment.conversion == "r":
        value = repr(value)
    elif segment.conversion == "a":
        value = ascii(value)
    return segment.prefix + format(value, segment.spec) + segment.suffix


def _check_fields(fields: Sequence[str], table: pd.DataFrame, what: str) -> None:
    missing = [f for f in fields if f not in table.columns]
    if missing:
        raise ConfigError(f"The {what} template uses field(s) {missing} that the {what} table lacks; "
                          f"available fields: {sorted(map(str, table.columns))}.")


def render(template: str, table: pd.DataFrame, *, what: str = "item") -> list[str]:
    """One text per row of ``table``; raises ConfigError naming a field the table lacks.

    A missing or empty value drops its segment (label and punctuation included):

    >>> render("Title: {title}. Year: {year}.", pd.DataFrame({"title": ["Heat", None], "year": [None, 1995.0]}))
    ['Title: Heat.', 'Year: 1995.']
    """
    literal, segments = _segments(template)
    fields = [s.field for s in segments]
    _check_fields(fields, table, what)
    if not segments:
        return [" ".join(literal.split())] * len(table)
    columns = [[as_text(v) for v in table[f].to_numpy(dtype=object)] for f in fields]
    texts = []
    for values in zip(*columns):
        pieces = [_format(seg, v) for seg, v in zip(segments, values) if v != ""]
        texts.append(" ".join(" ".join(pieces).split()))
    return texts


def empty_field_counts(table: pd.DataFrame, fields: Sequence[str] | None = None) -> dict[str, int]:
    """Rows of ``table`` whose value is missing or empty, per field (all columns by default).

    Use it with a template's fields to see how many texts lose a segment:

    >>> empty_field_counts(pd.DataFrame({"title": ["Heat", ""], "genres": [None, "Drama"]}))
    {'title': 1, 'genres': 1}
    """
    fields = list(table.columns) if fields is None else list(fields)
    _check_fields(fields, table, "item")
    return {f: int(empty_mask(table[f]).sum()) for f in fields}
