"""What a grid's cells say: per (protocol, model) the first metric's mean with its 95% interval (over
seeds when there are several, else over users) and a paired Wilcoxon test against the reference
model over the (seed, user) pairs both have; the study report's section and a results page of it.
Every interval and test is :mod:`lmrec.evaluation.stats`'s."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmrec.evaluation.stats import PairedTest, mean_interval, paired_on_keys
from lmrec.study.pages import ResultsPage, grid_table
from lmrec.study.render import Section, Table


@dataclass
class Entry:
    """One (protocol, model) of a grid: the figure that matters over its seeds."""

    mean: float
    half: float  # 95% half-width (NaN when there is nothing to spread over)
    over: str  # "seeds" or "users"
    seeds: list[int]
    per_seed: list[dict[str, float]]
    fit_seconds: float
    test: PairedTest | None = None  # against the reference row (None for the reference itself)

    def text(self, digits: int = 4) -> str:
        out = f"{self.mean:.{digits}f}" + ("" if math.isnan(self.half) else f" ± {self.half:.{digits}f}")
        if self.test is not None:
            out += f" ({self.test.mean_diff:+.{digits}f}, p {self.test.p_wilcoxon:.2g})"
        return out


def _per_user(result: dict[str, Any], seed: int, metric: str) -> dict[object, float]:
    arrays = result.get("arrays", {})
    users, values = arrays.get("users"), arrays.get(f"per_user.{metric}")
    if users is None or values is None:
        return {}
    return {(seed, int(u)): float(v) for u, v in zip(np.asarray(users).tolist(), np.asarray(values).tolist())}


def summarize(cells: list[tuple[dict[str, Any], dict[str, Any]]], models: list[str], metric: str,
              reference: str | None = None) -> dict[tuple[str, str], Entry]:
    """(protocol, model) -> :class:`Entry` of fit-recipe cells (parameters, result) on ``metric``."""
    reference = reference or models[0]
    grouped: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}
    for params, result in cells:
        grouped.setdefault((params["protocol"], params["name"]), []).append((params["seed"], result))
    out: dict[tuple[str, str], Entry] = {}
    pooled: dict[tuple[str, str], dict[object, float]] = {}
    for (protocol, name), runs in grouped.items():
        runs.sort(key=lambda r: r[0])
        values = np.array([r["summary"][metric] for _, r in runs], dtype=np.float64)
        per_user: dict[object, float] = {}
        for seed, r in runs:
            per_user.update(_per_user(r, seed, metric))
        pooled[(protocol, name)] = per_user
        if len(runs) > 1 or not per_user:
            (mean, half), over = mean_interval(values), "seeds"
        else:
            (_, half), over = mean_interval(np.array(list(per_user.values()))), "users"
            mean = float(values[0])
        out[(protocol, name)] = Entry(mean, half, over, [s for s, _ in runs], [r["summary"] for _, r in runs],
                                      float(np.mean([r.get("fit_seconds", math.nan) for _, r in runs])))
    for (protocol, name), entry in out.items():
        base = pooled.get((protocol, reference))
        if name != reference and base:
            entry.test = paired_on_keys(base, pooled[(protocol, name)])
    return out


def first_table(entries: dict[tuple[str, str], Entry], protocols: list[str], models: list[str], metric: str,
                reference: str) -> Table:
    """One row per model, one column per protocol: mean ± interval (Δ, p against the reference)."""
    rows = [m for m in models if any((p, m) in entries for p in protocols)]
    cols = [p for p in protocols if any((p, m) in entries for m in models)]
    over = sorted({e.over for e in entries.values()})
    table = grid_table(rows, cols, lambda m, p: entries[(p, m)].text() if (p, m) in entries else "")
    table.note = (f"Test {metric}, mean ± 95% interval over {' or '.join(over)}; in brackets Δ and paired "
                  f"Wilcoxon p against {reference} over the (seed, user) pairs both rows have.")
    return table


def sentences(entries: dict[tuple[str, str], Entry], protocols: list[str], metric: str, reference: str) -> list[str]:
    """Three sentences of what the table says, computed from it."""
    best = []
    for p in protocols:
        here = {m: e for (q, m), e in entries.items() if q == p}
        if here:
            name, e = max(here.items(), key=lambda kv: kv[1].mean)
            best.append(f"{p}: {name} ({e.mean:.4f})")
    tested = [(k, e) for k, e in entries.items() if e.test is not None]
    above = [f"{m} on {p}" for (p, m), e in tested if e.test and e.test.p_wilcoxon < 0.05 and e.test.mean_diff > 0]
    below = sum(1 for _, e in tested if e.test and e.test.p_wilcoxon < 0.05 and e.test.mean_diff < 0)
    seeds = sorted({s for e in entries.values() for s in e.seeds})
    return [f"The best {metric} per protocol: {'; '.join(best) or 'none'}.",
            f"Against {reference}, {len(above)} of {len(tested)} rows are higher with paired p < 0.05"
            + (f" ({', '.join(above)})" if above else "") + f", and {below} lower.",
            f"Seeds {', '.join(map(str, seeds))}; with one seed the interval is over users, with several over seeds."]


def seed_table(entries: dict[tuple[str, str], Entry], metrics: list[str]) -> Table:
    """The appendix: one row per (protocol, model, seed) with every metric."""
    rows = [[p, m, s, *[per.get(k, math.nan) for k in metrics]]
            for (p, m), e in sorted(entries.items()) for s, per in zip(e.seeds, e.per_seed)]
    return Table("Per-seed rows", ["protocol", "model", "seed", *metrics], rows)


def grid_section(title: str, cells: list[tuple[dict[str, Any], dict[str, Any]]], protocols: list[str],
                 models: list[str], metrics: list[str], reference: str | None = None) -> Section:
    """A grid as one section of the study report: the short table, what it says, the per-seed rows."""
    reference = reference or models[0]
    entries = summarize(cells, models, metrics[0], reference)
    out = Section(title, " ".join(sentences(entries, protocols, metrics[0], reference)))
    out.tables += [first_table(entries, protocols, models, metrics[0], reference), seed_table(entries, metrics)]
    return out


def grid_page(title: str, question: str, cells: list[tuple[dict[str, Any], dict[str, Any]]], protocols: list[str],
              models: list[str], metrics: list[str], reference: str | None = None, regenerate: str = "",
              runs: list[dict[str, Any]] | None = None) -> ResultsPage:
    """A grid as a results page: first screen the short table and three sentences, the rest below."""
    reference = reference or models[0]
    entries = summarize(cells, models, metrics[0], reference)
    return ResultsPage(title, question, first_table(entries, protocols, models, metrics[0], reference),
                       sentences(entries, protocols, metrics[0], reference), [seed_table(entries, metrics)],
                       runs or [], regenerate)
