"""The Report returned by `compare`: a terminal table, Markdown, self-contained HTML, JSON and a PNG plot."""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tabulate import tabulate

from lmrec.evaluation.stats import PairedTest
from lmrec.extras import MissingExtra, require
from lmrec.storage.artifacts import atomic_directory
from lmrec.study.render import Section, Table, page_html


@dataclass
class ModelRow:
    """One model's results: metric means, 95% half-widths, times, paired test vs the first row."""

    name: str
    params: dict[str, Any]
    means: dict[str, float]
    intervals: dict[str, float]
    fit_seconds: float
    eval_seconds: float
    uses_history: bool
    per_seed: list[dict[str, float]] = field(default_factory=list)
    test: PairedTest | None = None


@dataclass
class Report:
    """Rows per model, columns per metric. ``print(report)`` shows the table.

    ``interval`` says what the ± is: "seeds" (t-interval over seeds) or "users" (over users).
    """

    protocol: str
    metrics: list[str]
    seeds: list[int]
    rows: list[ModelRow]
    interval: str
    card: dict[str, Any]
    candidates: str = "all"

    def table(self, fmt: str = "github") -> str:
        headers, body = self.rows_as_text()
        return tabulate(body, headers=headers, tablefmt=fmt, disable_numparse=True)

    def rows_as_text(self) -> tuple[list[str], list[list[str]]]:
        """(headers, rows) of the table, formatted."""
        headers = ["model", *self.metrics, "fit s", "eval s",
                   f"Δ{self.metrics[0]} vs {self.rows[0].name}" if self.rows else "", "p (Wilcoxon)"]
        body = []
        for row in self.rows:
            cells = [row.name + ("" if row.uses_history or self.card.get("test_history") == "train" else " †")]
            for m in self.metrics:
                mean, half = row.means.get(m, math.nan), row.intervals.get(m, math.nan)
                cells.append(f"{mean:.4f}" + ("" if math.isnan(half) else f" ± {half:.4f}"))
            cells += [f"{row.fit_seconds:.1f}", f"{row.eval_seconds:.2f}"]
            cells += ["—", "—"] if row.test is None else [f"{row.test.mean_diff:+.4f}", f"{row.test.p_wilcoxon:.2g}"]
            body.append(cells)
        return headers, body

    def __str__(self) -> str:
        return self.table("simple")

    def to_markdown(self) -> str:
        seeds = ", ".join(map(str, self.seeds))
        notes = [f"Protocol **{self.protocol}** ({self.card.get('code', '')}), candidates: {self.candidates}, "
                 f"seeds: {seeds}; ± is a 95% interval over {self.interval}; p is a paired Wilcoxon "
                 f"signed-rank test per user on {self.metrics[0]} against the first row."]
        if any(not r.uses_history for r in self.rows) and self.card.get("test_history") == "train+valid":
            notes.append("† cannot use the validation item as history at test time (ID model fixed at fit time).")
        return "\n\n".join([self.table("github"), *notes]) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "metrics": self.metrics, "seeds": self.seeds,
                "interval": self.interval, "candidates": self.candidates, "card": self.card,
                "rows": [asdict(r) for r in self.rows]}

    def plot(self, path: str | Path, metric: str | None = None) -> Path:
        """Bar chart of ``metric`` (the first by default) per model with 95% intervals."""
        require("matplotlib", "plots", "Report.plot").use("Agg")
        plt = require("matplotlib.pyplot", "plots", "Report.plot")

        metric = metric or self.metrics[0]
        names = [r.name for r in self.rows]
        means = [r.means.get(metric, math.nan) for r in self.rows]
        errs = [0 if math.isnan(r.intervals.get(metric, math.nan)) else r.intervals[metric] for r in self.rows]
        fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(names)), 3.5))
        ax.bar(names, means, yerr=errs, capsize=4, color="#4C72B0")
        ax.set_ylabel(metric)
        ax.set_title(f"{self.protocol}: {metric} (95% interval over {self.interval})")
        ax.tick_params(axis="x", rotation=30)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return Path(path)

    def section(self) -> Section:
        """The comparison as one section of a study page (its table and its plot)."""
        table = Table("", *self.rows_as_text())
        return Section(f"{self.protocol}: {', '.join(self.metrics)}", self.to_markdown().split("\n\n", 1)[1].strip(),
                       [table])

    def save(self, directory: str | Path) -> Path:
        """Write report.md, report.html (self-contained), report.json and report.png into ``directory``
        (atomically)."""
        with atomic_directory(directory) as tmp:
            (tmp / "report.md").write_text(self.to_markdown())
            section = self.section()
            try:
                png = self.plot(tmp / "report.png").read_bytes()
                section.figures.append((f"{self.metrics[0]} per model (95% interval over {self.interval})", png))
            except MissingExtra as exc:  # a core install: the tables without the figure
                warnings.warn(f"report.png skipped: {exc}", stacklevel=2)
            meta = {"protocol": self.protocol, "seeds": ", ".join(map(str, self.seeds))}
            (tmp / "report.html").write_text(page_html(f"lmrec compare: {self.protocol}", meta, [section]))
            (tmp / "report.json").write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n")
        return Path(directory)
