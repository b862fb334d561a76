"""The study report: one self-contained HTML page (tables, inline PNG plots), Markdown and JSON.

Every table gives means with 95% intervals: over seeds when a cell has several, else over
users. Marks: ▲/▼ a difference with Wilcoxon p < 0.05 (per user, paired), · otherwise.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from lmrec.evaluation.fairness import group_gap
from lmrec.evaluation.stats import mean_interval, paired_test
from lmrec.study import plots
from lmrec.study.grid import grid_metrics, section_name
from lmrec.study.grid_report import grid_section
from lmrec.study.provenance import run_info
from lmrec.study.render import Section, Table, ci, fmt, mark, write_page
from lmrec.study.plan import StudyResults

def _per_user_mean(cells: list[dict[str, Any]], metric: str) -> dict[int, float]:
    """Per-user values of ``metric`` averaged over cells (seeds), by user index."""
    sums: dict[int, list[float]] = {}
    for r in cells:
        for u, v in zip(r["users"], r["per_user"][metric]):
            sums.setdefault(u, []).append(v)
    return {u: float(np.mean(v)) for u, v in sums.items()}


def _paired(a: dict[int, float], b: dict[int, float]) -> tuple[float, float]:
    users = sorted(set(a) & set(b))
    t = paired_test(np.array([a[u] for u in users]), np.array([b[u] for u in users]))
    return t.mean_diff, t.p_wilcoxon


# ------------------------------------------------------------------ losses
def losses_section(results: StudyResults) -> Section | None:
    cells = results.section("losses")
    sec = results.spec.losses
    if not cells or sec is None:
        return None
    metrics = results.spec.metrics
    out = Section("Losses side by side", f"One model ({sec.model}) trained with each loss on the same negatives, "
                  f"batches and epoch budget; test metrics, mean ± 95% interval over seeds "
                  f"({', '.join(map(str, results.spec.section_seeds(sec, True)))}). Paired test per user against "
                  f"{sec.reference}.")
    bars: dict[str, tuple[list[float], list[float]]] = {loss: ([], []) for loss in sec.losses}
    protocols = [p for p in sec.protocols if any(c["protocol"] == p for c, _ in cells)]
    for protocol in protocols:
        by_loss = {loss: [r for c, r in cells if c["protocol"] == protocol and c["loss"] == loss] for loss in sec.losses}
        ref = _per_user_mean(by_loss[sec.reference], metrics[0]) if by_loss[sec.reference] else {}
        rows = []
        for loss, rs in by_loss.items():
            if not rs:
                continue
            values = [r["summary"][metrics[0]] for r in rs]
            mean, half = mean_interval(np.array(values))
            bars[loss][0].append(mean)
            bars[loss][1].append(half)
            diff, p = _paired(ref, _per_user_mean(rs, metrics[0])) if loss != sec.reference and ref else (0.0, 1.0)
            rows.append([loss, *[ci([r["summary"][m] for r in rs]) for m in metrics],
                         fmt(float(np.mean([r["fit_seconds"] for r in rs])), 1),
                         fmt(float(np.mean([r.get("epochs", float("nan")) for r in rs])), 1),
                         "—" if loss == sec.reference else f"{diff:+.4f} {mark(diff, p)}",
                         "—" if loss == sec.reference else f"{p:.2g}"])
        best = max(rows, key=lambda r: float(r[1].split(" ")[0]))
        best[0] = f"**{best[0]}**"
        out.tables.append(Table(f"{protocol}", ["loss", *metrics, "fit s", "epochs",
                                                f"Δ{metrics[0]} vs {sec.reference}", "p (Wilcoxon)"], rows))
    out.figures.append((f"{metrics[0]} by loss (95% interval over seeds)",
                        plots.grouped_bars(protocols, {k: v for k, v in bars.items() if v[0]}, metrics[0],
                                           f"{sec.model}: test {metrics[0]} by loss")))
    return out


# ------------------------------------------------------------------ fairness
def fairness_section(results: StudyResults) -> Section | None:
    cells = results.section("fairness")
    sec = results.spec.fairness
    if not cells or sec is None:
        return None
    k = sec.k
    out = Section("Fairness: user groups and item exposure",
                  f"Per-user test NDCG@{k} by user group (gap = best group minus worst, bootstrap 95% interval, "
                  f"Kruskal-Wallis p); item exposure of the top-{k} lists (head = the 20% most popular items, mid "
                  f"the next 30%, tail the rest); the mitigation re-ranks each user's top-{sec.pool} by "
                  f"(1 - λ) score + λ (1 - popularity percentile).")
    for protocol in sec.protocols:
        rows_p = [(c, r) for c, r in cells if c["protocol"] == protocol]
        if not rows_p:
            continue
        gaps, items, curves = [], [], {}
        for c, r in rows_p:
            ndcg = np.array(r["per_user"][f"ndcg@{k}"])
            for attr, labels in r["groups"].items():
                try:
                    g = group_gap(ndcg, np.array(labels))
                except ValueError:
                    continue
                groups = "; ".join(f"{name} {n}: {m:.3f}" for name, (n, m, _) in sorted(g.groups.items()))
                gaps.append([c["name"], attr, groups, f"{g.best} − {g.worst}",
                             f"{g.gap:.4f} [{g.gap_low:.4f}, {g.gap_high:.4f}]", f"{g.p:.2g}"])
            e = r["exposure"]
            items.append([c["name"], ci(ndcg), fmt(e["coverage"], 3), fmt(e["gini"], 3), fmt(e["arp"], 1),
                          f"{e['head_exposure']:.2f} / {e['mid_exposure']:.2f} / {e['tail_exposure']:.2f}",
                          f"{fmt(e['head_recall'], 3)} / {fmt(e['mid_recall'], 3)} / {fmt(e['tail_recall'], 3)}",
                          fmt(e.get("attention_gap", float("nan")), 3)])
            curves[c["name"]] = r["tradeoff"]
        out.tables.append(Table(f"{protocol}: accuracy gaps between user groups (NDCG@{k})",
                                ["model", "attribute", "groups (users: mean)", "best − worst", "gap [95% CI]", "p"], gaps))
        out.tables.append(Table(f"{protocol}: item exposure of the top-{k} lists",
                                ["model", f"NDCG@{k}", "coverage", "Gini", "avg. rec. popularity",
                                 "exposure head / mid / tail", "recall head / mid / tail", "attention gap"], items,
                                "attention gap: half the L1 distance between items' exposure shares and their shares of "
                                "test interactions (0 = exposure in proportion to merit)."))
        lam_rows = [[name, *[f"{p['ndcg']:.4f} / {p['tail_exposure'] + p['mid_exposure']:.2f}" for p in curve]]
                    for name, curve in curves.items()]
        lams = [p["lam"] for p in next(iter(curves.values()))]
        out.tables.append(Table(f"{protocol}: mitigation trade-off (NDCG@{k} / mid+tail exposure share) by λ",
                                ["model", *[f"λ={lam:g}" for lam in lams]], lam_rows))
        series = {name: ([p["tail_exposure"] + p["mid_exposure"] for p in curve], [p["ndcg"] for p in curve])
                  for name, curve in curves.items()}
        out.figures.append((f"{protocol}: accuracy against exposure of non-head items as λ grows",
                            plots.lines({protocol: series}, "mid + tail exposure share", f"NDCG@{k}",
                                        "Popularity re-ranking: accuracy-fairness trade-off",
                                        {n: [f"{p['lam']:g}" for p in c] for n, c in curves.items()})))
    return out


# ------------------------------------------------------------------ robustness
def robustness_section(results: StudyResults) -> Section | None:
    cells = results.section("robustness")
    sec = results.spec.robustness
    if not cells or sec is None:
        return None
    k = sec.k
    out = Section("Robustness: noise, attacks and a defence",
                  f"{sec.protocol}: each model trained on perturbed training data, evaluated on the clean test users "
                  f"(NDCG@{k}, mean ± 95% interval over users). Attacks add fake users (share of users) who push "
                  f"{sec.targets} tail items with {sec.filler} filler items; target hit ratio@{k} = share of real "
                  f"users whose top {k} holds a target, averaged over targets. Defence: remove users whose DegSim or "
                  f"RDMA robust z-score exceeds {sec.threshold} before training.")

    def find(name: str, kind: str, level: float = 0.0, defence: bool = False) -> dict[str, Any] | None:
        for c, r in cells:
            if (c["name"], c["kind"], c["level"], c["defence"]) == (name, kind, level, defence):
                return r
        return None

    noise_rows, panels = [], {"false positives": {}, "dropped interactions": {}}
    for name in sec.models:
        clean = find(name, "clean")
        if clean is None:
            continue
        base = clean["summary"][f"ndcg@{k}"]
        for kind, levels, panel in (("false-positives", sec.false_positives, "false positives"),
                                    ("dropped", sec.dropped, "dropped interactions")):
            got = [(lv, find(name, kind, lv)) for lv in levels]
            got = [(lv, r) for lv, r in got if r is not None]
            panels[panel][name] = ([0.0] + [lv for lv, _ in got], [base] + [r["summary"][f"ndcg@{k}"] for _, r in got])
            noise_rows.append([name, kind, ci(clean["per_user"][f"ndcg@{k}"]),
                               *[f"{ci(r['per_user'][f'ndcg@{k}'])} ({r['summary'][f'ndcg@{k}'] / base - 1:+.0%})"
                                 for _, r in got]])
    levels = max(len(sec.false_positives), len(sec.dropped))
    out.tables.append(Table("Noise: NDCG@10 on clean test users", ["model", "noise", "clean",
                                                                   *[f"level {i + 1}" for i in range(levels)]],
                            noise_rows, f"levels: false positives {sec.false_positives}, dropped {sec.dropped} "
                                        "(shares of training interactions)."))
    out.figures.append(("Accuracy under noise", plots.lines(panels, "share of training interactions", f"NDCG@{k}",
                                                            "Degradation under noisy training data")))
    attack_rows, attack_panels = [], {}
    for attack in sec.attacks:
        attack_panels[attack] = {}
        for name in sec.models:
            clean = find(name, "clean")
            got = [(x, find(name, attack, x)) for x in sec.attack_sizes]
            got = [(x, r) for x, r in got if r is not None]
            if clean is None or not got:
                continue
            attack_panels[attack][name] = ([0.0] + [x for x, _ in got], [clean["target_hr"]] + [r["target_hr"] for _, r in got])
            attack_rows.append([attack, name, fmt(clean["target_hr"]),
                                *[f"{r['target_hr']:.4f} (NDCG {r['summary'][f'ndcg@{k}']:.4f})" for _, r in got]])
    out.tables.append(Table(f"Attacks: target hit ratio@{k} (clean, then each attack size)",
                            ["attack", "model", "clean", *[f"{x:.1%} fake users" for x in sec.attack_sizes]], attack_rows))
    out.figures.append(("Target hit ratio against attack size", plots.lines(
        attack_panels, "fake users (share of users)", f"target hit ratio@{k}", "Data poisoning: target items pushed")))
    defence_rows = []
    top = max(sec.attack_sizes) if sec.attack_sizes else 0.0
    for name in sec.models:
        clean, clean_d = find(name, "clean"), find(name, "clean", 0.0, True)
        for attack in sec.attacks:
            hit, hit_d = find(name, attack, top), find(name, attack, top, True)
            if None in (clean, clean_d, hit, hit_d):
                continue
            assert clean is not None and clean_d is not None and hit is not None and hit_d is not None
            defence_rows.append([name, attack, f"{hit_d['flagged']} ({hit_d['caught']} of {hit_d['fake_users']} fakes)",
                                 fmt(hit_d["detect_precision"], 2), fmt(hit_d["detect_recall"], 2),
                                 f"{hit['target_hr']:.4f} → {hit_d['target_hr']:.4f}",
                                 f"{hit['summary'][f'ndcg@{k}']:.4f} → {hit_d['summary'][f'ndcg@{k}']:.4f}",
                                 f"{clean['summary'][f'ndcg@{k}']:.4f} → {clean_d['summary'][f'ndcg@{k}']:.4f} "
                                 f"({clean_d['flagged']} real users removed)"])
    out.tables.append(Table(f"Defence at {top:.1%} fake users: detection, then training without the flagged users",
                            ["model", "attack", "flagged", "precision", "recall", f"target HR@{k} attacked → defended",
                             f"NDCG@{k} attacked → defended", f"clean NDCG@{k} → with the defence (its cost)"],
                            defence_rows))
    cleaning = results.section("cleaning")
    if cleaning:
        out.tables.append(Table("Cleaning step on corrupted ratings (ratings set outside the scale)",
                                ["share corrupted", "rows corrupted", "rows removed", "left out of scale", "precision", "recall"],
                                [[f"{c['share']:.0%}", r["corrupted"], r["removed"], r["left_out_of_scale"],
                                  fmt(r["precision"], 3), fmt(r["recall"], 3)] for c, r in cleaning],
                                "The models here train on interactions, not rating values, so out-of-scale ratings change "
                                "nothing they learn; the cleaning step removes them before any rating-aware use."))
    return out


# ------------------------------------------------------------------ explanations
def explanations_section(results: StudyResults) -> Section | None:
    cells = results.section("explanations")
    sec = results.spec.explanations
    if not cells or sec is None:
        return None
    out = Section("Faithful explanations: the deletion test",
                  f"{sec.protocol}, {sec.users} test users, each model's top item: delete the n history items an "
                  "explainer ranks highest, re-score, and count how many items now rank above it (mean ± 95% interval "
                  "over users); the same for n random history items. A faithful explainer moves the item further "
                  "than random deletions (▲: Wilcoxon p < 0.05).")
    rows, panels = [], {}
    for c, r in cells:
        if not r["applicable"]:
            rows.append([c["name"], "—", "—", "not applicable: " + r["reason"], "", "", ""])
            continue
        panels[c["name"]] = {}
        sizes = sorted(int(n) for n in r["random"])
        rnd = {n: np.array(r["random"][str(n)], dtype=np.float64) for n in sizes}
        panels[c["name"]]["random"] = (sizes, [float(np.nanmean(rnd[n])) for n in sizes])
        for explainer, by_n in r["drops"].items():
            ys = []
            for n in sizes:
                att = np.array(by_n[str(n)], dtype=np.float64)
                ok = ~(np.isnan(att) | np.isnan(rnd[n]))
                t = paired_test(rnd[n][ok], att[ok])
                ys.append(float(np.mean(att[ok])) if ok.any() else float("nan"))
                rows.append([c["name"], explainer, n, ci(att[ok], 2), ci(rnd[n][ok], 2),
                             f"{t.mean_diff:+.2f} {mark(t.mean_diff, t.p_wilcoxon)}", f"{t.p_wilcoxon:.2g}"])
            panels[c["name"]][explainer] = (sizes, ys)
    out.tables.append(Table("Rank drop of the explained item after deletions",
                            ["model", "explainer", "n deleted", "attributed: rank drop", "random: rank drop",
                             "difference", "p"], rows))
    if panels:
        out.figures.append(("Deletion curves (dashed: random deletions)",
                            plots.lines(panels, "history items deleted", "items now ranked above", "Deletion test",
                                        dashed=["random"])))
    return out


# ------------------------------------------------------------------ grids
def grid_sections(results: StudyResults) -> list[Section]:
    """One section per ``[grid.NAME]`` of recipe "fit" that has cells (a script's recipe reports itself)."""
    out = []
    for name, grid in results.spec.grid.items():
        cells = results.section(section_name(name, grid))
        if cells and grid.recipe == "fit":
            out.append(grid_section(grid.question or f"Grid {name}", cells, grid.protocols, grid.models,
                                    grid_metrics(results.spec, grid), grid.reference))
    return out


# ------------------------------------------------------------------ rendering
def provenance(results: StudyResults, command: str) -> dict[str, str]:
    """How the report was made, and which code versions computed its cells."""
    info = run_info(command)
    codes = ", ".join(f"{code} ({n} cells)" for code, n in results.code_versions().most_common()) or "none"
    stale = f", {results.stale} of them by another code version than this one ({results.code})" if results.stale else ""
    return {**info, "code versions of the cells": codes,
            "cells": f"{len(results.cells)} ({results.computed} computed now, {results.reused} reused{stale}"
                     + (f"; {results.missing} planned but not stored" if results.missing else "") + ")",
            "seconds": f"{results.seconds:.0f}"}


def _tracking(out: Path, run: str) -> str:
    """Where a run's tracker (TensorBoard folder, MLflow run) is, when one was on."""
    path = out / "runs" / run / "tracking.txt"
    return f" (tracked: {html.escape(path.read_text().strip())})" if path.exists() else ""


def write_report(results: StudyResults, out: str | Path, command: str) -> Path:
    """Write ``index.html`` (self-contained), ``report.md`` (+ ``plots/*.png``) and ``report.json``."""
    out = Path(out)
    sections = [s for s in (losses_section(results), fairness_section(results), robustness_section(results),
                            explanations_section(results)) if s is not None]
    sections += grid_sections(results)
    runs = [(c.section, r.get("run")) for c, r in results.cells if r.get("run")]
    extra = ""
    if runs:
        extra = ("<section><h2>Training runs</h2><p>Each cell's run directory (config.json, metrics.jsonl, "
                 "tracking.txt when a tracker was on).</p><ul>"
                 + "".join(f'<li>{html.escape(sec)}: <a href="runs/{html.escape(run)}/metrics.jsonl">'
                           f"{html.escape(run)}</a>{_tracking(out, run)}</li>" for sec, run in runs)
                 + "</ul></section>")
    return write_page(out, results.spec.name, provenance(results, command), sections, html_extra=extra)
