"""The code blocks of the README and the docs, as the tests run them.

One reader for every page: fenced blocks with their language and line, a block marked as not run
by an HTML comment on the line before it (``<!-- no-run: why -->``, the reason is required), the
``lmrec ...`` command lines of a ``bash`` block, and running a page's Python blocks in one scope,
top to bottom, as a reader would paste them.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)[^\n]*\n(?P<code>.*?)^(?P=indent)```[ \t]*$", re.S | re.M)
NO_RUN = re.compile(r"<!--\s*no-run:\s*(?P<why>\S[^>]*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown page."""

    page: str      # path relative to the repository root
    line: int      # 1-based line of the opening fence
    lang: str
    code: str
    no_run: str | None  # the reason given by a preceding ``<!-- no-run: ... -->``, else None


def page_text(page: str) -> str:
    return (ROOT / page).read_text(encoding="utf-8")


def blocks(page: str) -> list[Block]:
    """The fenced blocks of ``page``, in order."""
    text = page_text(page)
    found = []
    for m in FENCE.finditer(text):
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = NO_RUN.search(before)
        code = "\n".join(ln[len(m.group("indent")):] for ln in m.group("code").splitlines())
        found.append(Block(page, text[: m.start()].count("\n") + 1, m.group("lang"), code,
                           marker.group("why") if marker else None))
    return found


def section_blocks(page: str, heading: str) -> list[Block]:
    """The blocks of the ``heading`` section of ``page`` (e.g. ``"## Your own data"``), up to the next
    heading of that level or above."""
    lines = page_text(page).splitlines()
    level = len(heading.split(" ", 1)[0])
    first = lines.index(heading) + 1
    last = next((i + 1 for i in range(first, len(lines))
                 if re.match(r"#{1,%d} " % level, lines[i])), len(lines) + 1)
    return [b for b in blocks(page) if first <= b.line < last]


def lmrec_commands(block: Block) -> list[list[str]]:
    """The ``lmrec ...`` command lines of a bash block (continuations joined, comments dropped), as argv
    without the leading ``lmrec``; a line starting with ``VAR=value`` assignments keeps only the command."""
    commands = []
    for line in block.code.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
            words = words[1:]
        if words and words[0] == "lmrec":
            commands.append(words[1:])
    return commands


def run_python(page_blocks: list[Block], scope: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the Python blocks not marked no-run in one shared scope, in page order; return the scope."""
    scope = {} if scope is None else scope
    for b in page_blocks:
        if b.lang == "python" and b.no_run is None:
            # padded with blank lines so a traceback points at the page's own line numbers
            exec(compile("\n" * b.line + b.code, b.page, "exec"), scope)
    return scope
