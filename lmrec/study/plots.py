"""The study's figures, drawn with matplotlib (Agg) and returned as PNG bytes."""
from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lmrec.extras import require

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Series = dict[str, tuple[Sequence[float], Sequence[float]]]  # label -> (x, y)


def _pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend, imported on first use (the [plots] extra)."""
    require("matplotlib", "plots", "the study's figures").use("Agg")
    return require("matplotlib.pyplot", "plots", "the study's figures")


def _png(fig: Figure) -> bytes:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def grouped_bars(groups: list[str], bars: dict[str, tuple[list[float], list[float]]], ylabel: str,
                 title: str) -> bytes:
    """Bars per group (x) and series (colour) with error bars: ``bars[label] = (means, half-widths)``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(groups) * max(1, len(bars)) / 3, 3.4))
    width = 0.8 / max(len(bars), 1)
    for i, (label, (means, errs)) in enumerate(bars.items()):
        xs = [g + (i - (len(bars) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, means, width, yerr=[0 if math.isnan(e) else e for e in errs], capsize=3, label=label)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    return _png(fig)


def lines(panels: dict[str, Series], xlabel: str, ylabel: str, title: str, annotate: dict[str, list[str]] | None = None,
          dashed: Sequence[str] = ()) -> bytes:
    """One subplot per panel, one line per series; ``annotate[label]`` labels each point."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(4.2 * max(len(panels), 1), 3.3), squeeze=False)
    for ax, (panel, series) in zip(axes[0], panels.items()):
        for label, (x, y) in series.items():
            ax.plot(x, y, "--" if label in dashed else "-", marker="o", ms=3, label=label)
            for xi, yi, text in zip(x, y, (annotate or {}).get(label, [])):
                ax.annotate(text, (xi, yi), fontsize=6, xytext=(2, 2), textcoords="offset points")
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return _png(fig)
