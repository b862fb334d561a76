"""How every report of the study layer is drawn: tables and figures as Markdown, self-contained
HTML (PNG plots inline) and JSON. The study report, ``compare``'s Report and the benchmark results
pages all write through :func:`write_page`."""
from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tabulate import tabulate

from lmrec.evaluation.stats import mean_interval
from lmrec.storage.artifacts import atomic_write_text

ALPHA = 0.05


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[Any]]
    note: str = ""


@dataclass
class Section:
    title: str
    intro: str
    tables: list[Table] = field(default_factory=list)
    figures: list[tuple[str, bytes]] = field(default_factory=list)  # (caption, PNG)


def fmt(x: Any, digits: int = 4) -> str:
    if isinstance(x, float):
        return "—" if math.isnan(x) else f"{x:.{digits}f}"
    return str(x)


def ci(values: list[float] | np.ndarray, digits: int = 4) -> str:
    """"mean ± half-width" of a 95% interval (the mean alone for one value)."""
    mean, half = mean_interval(np.asarray(values, dtype=np.float64))
    return fmt(mean, digits) if math.isnan(half) else f"{mean:.{digits}f} ± {half:.{digits}f}"


def mark(diff: float, p: float) -> str:
    return ("▲" if diff > 0 else "▼") if p < ALPHA else "·"


def markdown_table(t: Table, level: int = 3) -> list[str]:
    head = [f"{'#' * level} {t.title}", ""] if t.title else []
    body = tabulate([[fmt(v) for v in row] for row in t.rows], t.headers, tablefmt="github", disable_numparse=True)
    return [*head, body, "", *([t.note, ""] if t.note else [])]


def html_table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.headers)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in t.rows)
    note = f'<p class="note">{html.escape(t.note)}</p>' if t.note else ""
    title = f"<h3>{html.escape(t.title)}</h3>" if t.title else ""
    return f"{title}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"


def _cell(value: Any) -> str:
    text = html.escape(fmt(value))
    return f"<b>{text[2:-2]}</b>" if text.startswith("**") and text.endswith("**") else text


CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:3px 7px;text-align:left}
th{background:#f3f3f3}h2{border-bottom:2px solid #444;margin-top:2em}.note{color:#555;font-size:12px}
figure{margin:1em 0}img{max-width:100%}dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}dt{font-weight:600}"""


def page_html(title: str, meta: dict[str, str], sections: list[Section], extra: str = "") -> str:
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1><dl>"
             + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in meta.items()) + "</dl>"]
    for s in sections:
        parts.append(f"<section><h2>{html.escape(s.title)}</h2><p>{html.escape(s.intro)}</p>")
        parts += [html_table(t) for t in s.tables]
        for caption, png in s.figures:
            data = base64.b64encode(png).decode()
            parts.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        parts.append("</section>")
    return "\n".join([*parts, extra, "</body></html>"])


def sections_json(meta: dict[str, str], sections: list[Section]) -> dict[str, Any]:
    return {"provenance": meta, "sections": [{"title": s.title, "tables": [
        {"title": t.title, "headers": t.headers, "rows": [[fmt(v) for v in row] for row in t.rows]} for t in s.tables]}
        for s in sections]}


def write_page(out: str | Path, title: str, meta: dict[str, str], sections: list[Section], *,
               html_extra: str = "", name: str = "report") -> Path:
    """Write ``index.html`` (self-contained), ``<name>.md`` (its figures in ``plots/``) and ``<name>.json``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md = [f"# {title}\n", *[f"- {k}: `{v}`" if k in ("command", "commit") else f"- {k}: {v}" for k, v in meta.items()], ""]
    figure_no = 0
    for s in sections:
        md += [f"## {s.title}\n", s.intro, ""]
        for t in s.tables:
            md += markdown_table(t)
        for caption, png in s.figures:
            figure_no += 1
            (out / "plots").mkdir(parents=True, exist_ok=True)
            (out / "plots" / f"figure-{figure_no}.png").write_bytes(png)
            md += [f"![{caption}](plots/figure-{figure_no}.png)", ""]
    atomic_write_text(out / "index.html", page_html(title, meta, sections, html_extra))
    atomic_write_text(out / f"{name}.md", "\n".join(md) + "\n")
    atomic_write_text(out / f"{name}.json", json.dumps(sections_json(meta, sections), indent=1, ensure_ascii=False) + "\n")
    return out / "index.html"
