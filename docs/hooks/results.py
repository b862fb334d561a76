"""MkDocs hook: the committed result pages of benchmarks/results/ served as the site's results/ section.

The pages are read where they are committed (no copy that could drift): every file under
benchmarks/results/ except the per-user arrays (``*.safetensors``) becomes ``results/<same path>``
in the site, so the pages' links to each other, to their JSON files and to their plots keep
working. ``study/README.md`` is published as ``results/study/about.md`` (a README would become the
folder's index.html, which the study's own HTML report already is). A Markdown file without a
``# `` title is a fragment that its page's generator includes (``finetune/notes.md``) and is not
published by itself. The "Results" entry of the navigation gets one line per page, titled by the
page's first heading, and ``results/index.md`` lists them all.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
SKIP_SUFFIXES = {".safetensors"}
RENAMED = {"README.md": "about.md"}


def _site_path(path: Path) -> str:
    rel = path.relative_to(RESULTS)
    return "results/" + rel.with_name(RENAMED.get(rel.name, rel.name)).as_posix()


def _title(path: Path) -> str | None:
    """The page's ``# `` title (its first line), or None for a fragment."""
    first = path.read_text(encoding="utf-8").lstrip().split("\n", 1)[0]
    return first[2:].strip() if first.startswith("# ") else None


def _pages() -> list[Path]:
    """The result pages: top-level ones in name order, then those in sub-folders."""
    pages = [p for p in RESULTS.rglob("*.md") if _title(p) is not None]
    return sorted(pages, key=lambda p: (len(p.relative_to(RESULTS).parts) > 1, p.as_posix()))


def _published(path: Path) -> bool:
    return path.is_file() and path.suffix not in SKIP_SUFFIXES and (path.suffix != ".md" or _title(path) is not None)


def on_config(config: MkDocsConfig, **_: Any) -> MkDocsConfig:
    entries: list[Any] = [{"Overview": "results/index.md"}]
    entries += [{_title(p): _site_path(p)} for p in _pages()]
    for item in config.nav or []:
        if isinstance(item, dict) and "Results" in item:
            item["Results"] = entries
    return config


def on_files(files: Files, config: MkDocsConfig, **_: Any) -> Files:
    for path in sorted(RESULTS.rglob("*")):
        if _published(path):
            files.append(File.generated(config, _site_path(path), abs_src_path=str(path)))
    lines = ["# Results", "",
             "Every table here is a committed file of `benchmarks/results/`, written by the benchmark "
             "script it names; each page ends with the command, date, machine and commit that produced it.", "",
             "| page | file |", "|---|---|"]
    lines += [f"| [{_title(p)}]({_site_path(p)[len('results/'):]}) | `{p.relative_to(ROOT).as_posix()}` |"
              for p in _pages()]
    files.append(File.generated(config, "results/index.md", content="\n".join(lines) + "\n"))
    return files


def on_page_markdown(markdown: str, page: Page, **_: Any) -> str:
    if page.file.src_uri.startswith("results/"):
        markdown = re.sub(r"\]\((README\.md)(#[^)]*)?\)", lambda m: f"](about.md{m.group(2) or ''})", markdown)
    return markdown
