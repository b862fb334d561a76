"""Text templates: item and user text built from the attribute tables' fields.

A template is a Python format string over field names, e.g.
``"Title: {title}. Genres: {genres}. Year: {year}."``. Missing values render as empty
strings; numbers that are whole render without ".0". Templates are saved with a model so
serving rebuilds exactly the same text.
"""
from __future__ import annotations

import math
import string
from typing import Any

import pandas as pd

from lmrec.errors import ConfigError

ITEM_TEMPLATES: dict[str, str] = {
    "movielens": "Title: {title}. Genres: {genres}. Year: {year}.",
    "amazon": "{text}",
    "title": "{title}",
}
USER_TEMPLATES: dict[str, str] = {
    "movielens": "Gender: {gender}. Age: {age}. Occupation: {occupation}.",
}


def template_fields(template: str) -> list[str]:
    """Field names used by ``template``."""
    try:
        return [f for _, f, _, _ in string.Formatter().parse(template) if f]
    except ValueError as exc:
        raise ConfigError(f"Bad text template {template!r}: {exc}.") from None


def default_item_template(table: pd.DataFrame) -> str | None:
    """The first built-in item template whose fields the table has (None when none fits)."""
    for template in ITEM_TEMPLATES.values():
        if set(template_fields(template)) <= set(table.columns):
            return template
    return None


def default_user_template(table: pd.DataFrame) -> str | None:
    for template in USER_TEMPLATES.values():
        if set(template_fields(template)) <= set(table.columns):
            return template
    return None


def _clean(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def render(template: str, table: pd.DataFrame, *, what: str = "item") -> list[str]:
    """One text per row of ``table``; raises ConfigError naming a field the table lacks."""
    fields = template_fields(template)
    missing = [f for f in fields if f not in table.columns]
    if missing:
        raise ConfigError(f"The {what} template uses field(s) {missing} that the {what} table lacks; "
                          f"available fields: {sorted(map(str, table.columns))}.")
    rows = table[fields].to_dict("records") if fields else [{}] * len(table)
    return [" ".join(template.format(**{k: _clean(v) for k, v in row.items()}).split()) for row in rows]
