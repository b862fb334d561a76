"""Results pages: each answers one question. The first screen is one short table (protocol x model,
the figure that matters with its interval and paired p) and three sentences of what it says; an
appendix below holds the per-seed rows and the reproducing command (command, date, machine, commit).
Every number comes from stored cells or committed JSON, never typed by hand."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lmrec.storage.artifacts import atomic_write_text
from lmrec.study.provenance import header
from lmrec.study.render import Table, markdown_table


@dataclass
class ResultsPage:
    title: str
    question: str
    table: Table
    sentences: list[str]  # three: what the table says
    appendix: list[str | Table] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)  # provenance of the runs behind the numbers
    regenerate: str = ""  # the command that rebuilds this page

    def markdown(self) -> str:
        lines = [f"# {self.title}", "", f"**{self.question}**", "", *markdown_table(self.table, level=0),
                 " ".join(self.sentences), "", "## Appendix", ""]
        if self.regenerate:
            lines += [f"Regenerate this page: `{self.regenerate}`.", ""]
        if self.runs:
            latest = max(self.runs, key=lambda r: r.get("date", ""))
            lines += ["Latest run:", "", header(latest)]
        for part in self.appendix:
            lines += markdown_table(part) if isinstance(part, Table) else [part, ""]
        return "\n".join(lines).rstrip() + "\n"

    def write(self, path: Any) -> None:
        atomic_write_text(path, self.markdown())


def grid_table(rows: list[str], columns: list[str], cell: Callable[[str, str], str], row_header: str = "model",
               note: str = "") -> Table:
    """The first-screen table: one row per model, one column per protocol, ``cell(row, column)`` each."""
    return Table("", [row_header, *columns], [[r, *[cell(r, c) for c in columns]] for r in rows], note)
