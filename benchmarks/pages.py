"""The first screens of the results pages: one short table and three sentences, the appendix below.

Each page answers one question. A page whose grid has stored cells (``lmrec study benchmarks/specs/NAME.toml``
writes them under ``benchmarks/results/NAME/cells``) is built from them: intervals and paired tests by
:mod:`lmrec.study.grid_report` (:mod:`lmrec.evaluation.stats`). A page whose cells were never committed is
built from its committed JSON: every number copied by this script, none typed; what its benchmark wrote
stays below as the appendix (with the command, date, machine and commit of each run).

    .venv/bin/python -m benchmarks.pages [baselines parity presets lm_ranker efficiency scale study]
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lmrec.evaluation.stats import mean_interval, paired_on_keys, paired_test
from lmrec.study.grid import grid_metrics, section_name
from lmrec.study.grid_report import grid_page
from lmrec.study.pages import ResultsPage, grid_table
from lmrec.study.provenance import RESULTS
from lmrec.study.render import Table
from lmrec.study.spec import load_spec
from lmrec.storage.artifacts import load_arrays
from lmrec.study.store import CellStore

SPECS = Path(__file__).parent / "specs"
MARK = "<!-- the page as its benchmark wrote it -->"


def _json(path: str) -> Any:
    return json.loads((RESULTS / path).read_text())


def _body(name: str) -> str:
    """What the benchmark wrote for ``NAME.md``, without a first screen this script put on top of it."""
    text = (RESULTS / f"{name}.md").read_text()
    if MARK not in text:
        return text.strip()
    below = text.split(MARK, 1)[1].strip().splitlines()  # written one heading level down: undo that
    return "\n".join(line[1:] if line.startswith("##") else line for line in below)


def _demote(text: str) -> str:
    """The benchmark's page one heading level down, to sit under the appendix."""
    return "\n".join("#" + line if line.startswith("#") else line for line in text.splitlines())


def from_cells(name: str) -> ResultsPage | None:
    """The page of spec ``NAME.toml`` from its stored cells (None when none are stored)."""
    spec = load_spec(SPECS / f"{name}.toml")
    store = Path(spec.out) / "cells"
    if not store.exists():
        return None
    stored = list(CellStore(store))
    pages = []
    for gname, grid in spec.grid.items():
        cells = [(c.params, {**c.result, "arrays": c.arrays}) for c in stored if c.section == section_name(gname, grid)]
        if cells:
            pages.append(grid_page(spec.name, grid.question or spec.name, cells, grid.protocols, grid.models,
                                   grid_metrics(spec, grid), grid.reference, f"lmrec study benchmarks/specs/{name}.toml "
                                   f"&& python -m benchmarks.pages {name}", [c for _, c in cells if "date" in c]))
    return pages[0] if pages else None


def _legacy(title: str, question: str, table: Table, sentences: list[str], name: str, appendix: list[Any]) -> ResultsPage:
    return ResultsPage(title, question, table, sentences, [*appendix, MARK, _demote(_body(name))],
                       regenerate=f"lmrec study benchmarks/specs/{name}.toml && python -m benchmarks.pages {name}"
                       if (SPECS / f"{name}.toml").exists() else f"python -m benchmarks.pages {name}")


def intervals(res: dict[str, Any]) -> dict[str, tuple[float, float | None]]:
    """model -> (95% half-width over users of test NDCG@10, paired Wilcoxon p against the protocol's best row,
    None for the best) by :mod:`lmrec.evaluation.stats`, from the per-user values beside the JSON; a run
    committed before those were kept gives the numbers its JSON recorded."""
    rows = res["rows"]
    best = max(rows, key=lambda r: r["test"]["ndcg@10"])["model"]
    path = RESULTS / f"baselines_{res['code']}.per-user.safetensors"
    if not path.exists():
        return {r["model"]: (r["ndcg@10_ci95"], r["vs_best"]["p_wilcoxon"] if "vs_best" in r else None) for r in rows}
    arrays = load_arrays(path)
    return {r["model"]: (mean_interval(arrays[r["model"]])[1],
                         None if r["model"] == best else paired_test(arrays[best], arrays[r["model"]]).p_wilcoxon)
            for r in rows}


def baselines() -> ResultsPage:
    runs = [_json(f"baselines_{c}.json") for c in ("P1", "P2", "P3")]
    models = [r["model"] for r in runs[0]["rows"]]
    got = {(res["code"], r["model"]): r for res in runs for r in res["rows"]}
    spread = {(res["code"], m): v for res in runs for m, v in intervals(res).items()}

    def cell(model: str, code: str) -> str:
        r = got.get((code, model))
        if r is None:
            return ""
        half, p = spread[(code, model)]
        return f"{r['test']['ndcg@10']:.4f} ± {half:.4f}" + (", best" if p is None else f", p {p:.2g} vs best")

    codes = [r["code"] for r in runs]
    best = {c: max((m for m in models if (c, m) in got), key=lambda m: got[(c, m)]["test"]["ndcg@10"]) for c in codes}
    table = grid_table(models, codes, cell, note="Test NDCG@10 with each model's validation-chosen setting, ± a 95% "
                       "interval over users; p: paired Wilcoxon test per user against the protocol's best row "
                       "(numbers from benchmarks/results/baselines_P*.json).")
    pop = "most-popular"
    second = {c: sorted((got[(c, m)]["test"]["ndcg@10"], m) for m in models if (c, m) in got)[-2] for c in codes}
    second_p = {c: spread[(c, m)][1] for c, (_, m) in second.items()}
    sentences = [f"The best baseline is {', '.join(f'{best[c]} on {c}' for c in codes)}.",
                 "The runner-up is " + "; ".join(f"{m} on {c} ({v:.4f}, p {second_p[c]:.2g})"
                                                 for c, (v, m) in second.items()) + ".",
                 "Popularity alone reaches " + ", ".join(f"{got[(c, pop)]['test']['ndcg@10']:.4f} on {c}" for c in codes)
                 + ": ""every learned row is tested against that floor and the best row."]
    return _legacy("Baselines: P1, P2, P3", "How well do the classic baselines rank, each with its validation-chosen "
                   "setting?", table, sentences, "baselines", [])


def parity() -> ResultsPage:
    res = _json("parity.json")
    committed = {"P2": 0.0908, "P3": 0.1439}  # the flag-based numbers benchmarks/specs/parity.toml names
    codes = sorted({r["protocol"] for r in res["rows"]})
    now = {c: mean_interval(np.array([r["test"] for r in res["rows"] if r["protocol"] == c])) for c in codes}
    table = Table("", ["protocol", "now: test NDCG@10 (mean ± 95% interval over seeds)", "committed (flag-based)",
                       "seeds"], [[c, f"{now[c][0]:.4f} ± {now[c][1]:.4f}", f"{committed[c]:.4f}",
                                   sum(r["protocol"] == c for r in res["rows"])] for c in codes],
                  "From benchmarks/results/parity.json; the interval is lmrec.evaluation.stats.mean_interval over seeds.")
    inside = [c for c in codes if abs(now[c][0] - committed[c]) <= now[c][1]]
    sentences = [f"On {', '.join(codes)} the parts-based LMRanker scores "
                 + "; ".join(f"{now[c][0]:.4f} ± {now[c][1]:.4f} against {committed[c]:.4f}" for c in codes) + ".",
                 f"The committed number lies inside the interval on {len(inside)} of {len(codes)} protocols "
                 f"({', '.join(inside) or 'none'}).",
                 f"Not rerun yet: {', '.join(sorted(set(committed) - set(codes))) or 'nothing'} (the spec holds it)."]
    seeds = Table("Per-seed rows", ["protocol", "seed", "test NDCG@10", "valid NDCG@10", "epochs (best)", "fit s"],
                  [[r["protocol"], r["seed"], r["test"], r["valid"], f"{r['epochs']} ({r['best_epoch']})",
                    f"{r['fit_seconds']:.0f}"] for r in res["rows"]])
    return _legacy("Parity: the parts-based LMRanker", "Does the parts-based LMRanker keep the quality of the "
                   "flag-based one?", table, sentences, "parity", [seeds])


def presets() -> ResultsPage:
    runs = _json("presets.json")
    codes = sorted(r["code"] for r in runs)
    names = ["preset", "most-popular", "itemknn", "ease"]
    got = {(r["code"], "preset" if i == 0 else row["name"]): (row, r["preset"]) for r in runs
           for i, row in enumerate(r["rows"])}

    def cell(name: str, code: str) -> str:
        row, preset = got[(code, name)]
        text = f"{row['means']['ndcg@10']:.4f} ± {row['intervals']['ndcg@10']:.4f}"
        text = f"{preset}: {text}" if name == "preset" else text
        return text + (f" ({-row['test']['mean_diff']:+.4f}, p {row['test']['p_wilcoxon']:.2g})" if row["test"] else "")

    table = grid_table(names, codes, cell, note="Test NDCG@10, ± a 95% interval over users; in brackets the preset "
                       "minus the row per user and its paired Wilcoxon p (numbers from benchmarks/results/presets.json).")
    best = {c: max(names[1:], key=lambda n: got[(c, n)][0]["means"]["ndcg@10"]) for c in codes}
    wins = [c for c in codes if got[(c, best[c])][0]["test"]["p_wilcoxon"] < 0.05
            and got[(c, best[c])][0]["test"]["mean_diff"] < 0]
    sentences = ["Against the best baseline, " + "; ".join(
                     f"the {got[(c, 'preset')][1]} preset on {c} is {-got[(c, best[c])][0]['test']['mean_diff']:+.4f} "
                     f"vs {best[c]} (p {got[(c, best[c])][0]['test']['p_wilcoxon']:.2g})" for c in codes) + ".",
                 f"The preset beats every baseline with paired p < 0.05 on {', '.join(wins) or 'no protocol'}.",
                 "Each preset ran with no argument but its name; one seed, so the interval is over users."]
    return _legacy("LMRanker presets against the baselines", "Does an LMRanker preset, with no other argument, beat "
                   "the tuned baselines?", table, sentences, "presets", [])


def lm_ranker() -> ResultsPage:
    cells = [json.loads(p.read_text()) for p in sorted((RESULTS / "lm_ranker").glob("P*.json"))]
    tests = {json.loads(p.read_text())["protocol"]: json.loads(p.read_text())
             for p in sorted((RESULTS / "lm_ranker" / "test").glob("*.json"))}
    codes = sorted({c["protocol"] for c in cells})
    rows = sorted({f"{c['loss']}, {c['tower']}" for c in cells})
    got = {(c["protocol"], f"{c['loss']}, {c['tower']}"): c for c in cells}
    table = grid_table(rows, codes, lambda r, c: f"{got[(c, r)]['valid_ndcg@10']:.4f}" if (c, r) in got else "",
                       row_header="loss, user tower", note="Validation NDCG@10, seed 2026 (one run per cell, so no "
                       "interval); numbers from benchmarks/results/lm_ranker/*.json.")
    sentences = [f"On {c} the validation-best cell is {t['loss']}, {t['tower']} ({t['valid_ndcg@10']:.4f}); its test "
                 f"NDCG@10, read once, is {t['test_ndcg@10']:.4f}." for c, t in sorted(tests.items())][:2]
    softmax = [c for c in codes if max((v for (p, r), v in got.items() if p == c), key=lambda v: v["valid_ndcg@10"])
               ["loss"] == "softmax"]
    sentences.append(f"The sampled softmax gives the best cell on {len(softmax)} of {len(codes)} protocols.")
    return _legacy("Which loss and which user tower for the language-model ranker?", "Which loss and which user "
                   "tower should the LM ranker use?", table, sentences, "lm_ranker", [])


def efficiency() -> ResultsPage:
    res = _json("efficiency.json")["training"]
    rows = res["rows"]
    ref = rows[0]
    table = Table("", ["option", "s / epoch (wall)", "peak MB", "valid NDCG@10 after 2 epochs"],
                  [[r["option"], f"{r['seconds_per_epoch']:.1f}", f"{r['peak_rss_mb']:.0f}", f"{r['valid_ndcg@10']:.4f}"]
                   for r in rows], f"LoRA tuning of MiniLM on {res.get('protocol', 'P3')}, one seed (no interval); "
                                   "numbers from benchmarks/results/efficiency.json.")
    fastest = min(rows, key=lambda r: r["seconds_per_epoch"])
    leanest = min(rows, key=lambda r: r["peak_rss_mb"])
    worst = min(rows, key=lambda r: r["valid_ndcg@10"])
    sentences = [f"{fastest['option']} is the fastest ({fastest['seconds_per_epoch']:.1f} s per epoch against "
                 f"{ref['seconds_per_epoch']:.1f} for {ref['option']}).",
                 f"{leanest['option']} needs the least memory ({leanest['peak_rss_mb']:.0f} MB against "
                 f"{ref['peak_rss_mb']:.0f}).",
                 f"Validation NDCG@10 moves by at most {abs(worst['valid_ndcg@10'] - ref['valid_ndcg@10']):.4f} "
                 f"({worst['option']}), a single seed's difference."]
    return _legacy("Efficiency options: speed, memory, quality", "What does each efficiency option cost or save "
                   "when tuning the encoder?", table, sentences, "efficiency", [])


def scale() -> ResultsPage:
    rows = _json("scale/growth.json")
    latest = {(r["model"], r["factor"]): r for r in sorted(rows, key=lambda r: r["date"]) if "epoch_s" in r}
    models = sorted({m for m, _ in latest})
    factors = sorted({f for _, f in latest})
    table = grid_table(models, [f"×{f}" for f in factors],
                       lambda m, f: (lambda r: f"{r['epoch_s']:.1f} s, {r['peak_mb']:.0f} MB" if r else "")(
                           latest.get((m, int(f[1:])))),
                       note="One training epoch on the synthetic catalogue (×1 = 12,500 users, 62,500 items), the "
                            "latest run of each cell; one run each (no interval); from benchmarks/results/scale/growth.json.")
    big = max(factors)
    ratios = {m: latest[(m, big)]["epoch_s"] / latest[(m, 1)]["epoch_s"] for m in models if (m, big) in latest}
    sentences = [f"From ×1 to ×{big} the epoch time grows " + ", ".join(f"{v:.0f}-fold for {m}" for m, v in
                                                                           ratios.items()) + ".",
                 "Peak memory at ×%d: %s." % (big, ", ".join(f"{m} {latest[(m, big)]['peak_mb']:.0f} MB"
                                                            for m in models if (m, big) in latest)),
                 "Data-parallel training and approximate search are in the appendix."]
    return _legacy("Scale", "How do training cost and memory grow with the catalogue?", table, sentences, "scale", [])


def study() -> ResultsPage:
    report = _json("study/report.json")
    losses = next(s for s in report["sections"] if s["title"].startswith("Losses"))
    codes = [t["title"] for t in losses["tables"]]
    got = {(t["title"], row[0].strip("*")): row for t in losses["tables"] for row in t["rows"]}
    names = list(dict.fromkeys(row[0].strip("*") for t in losses["tables"] for row in t["rows"]))

    def cell(loss: str, code: str) -> str:
        row = got.get((code, loss))
        return "" if row is None else row[1] + ("" if row[-1] == "—" else f" ({row[-2].split()[0]}, p {row[-1]})")

    table = grid_table(names, codes, cell, row_header="loss", note="BPR-MF test NDCG@10, mean ± 95% interval over "
                       "seeds; in brackets Δ and paired Wilcoxon p against BPR (from benchmarks/results/study/report.json).")
    best = {c: next(row[0].strip("*") for row in t["rows"] if row[0].startswith("**"))
            for c, t in zip(codes, losses["tables"])}
    worse = sum(1 for row in got.values() if row[-2].endswith("▼"))
    sentences = [f"The best loss: {', '.join(f'{b} on {c}' for c, b in best.items())}.",
                 f"{worse} of {sum(1 for r in got.values() if r[-1] != '—')} loss rows are below BPR with paired p < 0.05.",
                 "Fairness, robustness and explanations follow in the appendix (report.md, index.html)."]
    page = _legacy("The study: losses, fairness, robustness, explanations", "Which pairwise loss should BPR-MF "
                   "train with, and what do fairness, robustness and explanations show?", table, sentences,
                   "study/README", [])
    page.regenerate = "lmrec study examples/study.toml --out benchmarks/results/study && python -m benchmarks.pages study"
    page.appendix.insert(0, "The study's cells were not committed, so that command computes them again (the committed "
                            "run is described below); the numbers above are copied from the committed report.json.")
    return page


# reproduce.toml's rows -> where their committed numbers live: finetune cells (protocol, encoder, tuning), with
# per-user values for a paired test on the same seed, or presets.json (one seed, means only)
REPRODUCED = {"minilm-ease-blend": ("finetune", ("P2", "minilm", "ease-blend")),
              "minilm-frozen": ("finetune", ("P3", "minilm", "frozen")),
              "sequential": ("presets", ("P3", "sequential"))}


def _committed(model: str) -> dict[int, tuple[float, dict[object, float] | None]]:
    """seed -> (committed test NDCG@10, per-user values by user or None) of a reproduced row."""
    source, key = REPRODUCED[model]
    if source == "presets":
        run = next(r for r in _json("presets.json") if r["code"] == key[0] and r["preset"] == key[1])
        return {int(run["seed"]): (float(run["rows"][0]["means"]["ndcg@10"]), None)}
    out: dict[int, tuple[float, dict[object, float] | None]] = {}
    for c in CellStore(RESULTS / "finetune" / "cells"):
        p = c.params
        if (p.get("protocol"), p.get("encoder"), p.get("tuning")) == key and not p.get("search"):
            users = dict(zip(c.arrays["test.users"].tolist(), c.arrays["test.ndcg@10"].tolist()))
            out[int(p["seed"])] = (float(c.result["test_ndcg@10"]), users)
    return out


def reproduce() -> ResultsPage:
    spec = load_spec(SPECS / "reproduce.toml")
    cells = [c for c in CellStore(Path(spec.out) / "cells")]
    rows, seeds_rows = [], []
    for model in REPRODUCED:
        mine = sorted((c for c in cells if c.params["name"] == model), key=lambda c: c.params["seed"])
        if not mine:
            continue
        old = _committed(model)
        now = {int(c.params["seed"]): c for c in mine}
        pairs = []
        for seed, c in now.items():
            value = float(c.result["summary"]["ndcg@10"])
            before, users = old.get(seed, (None, None))
            test = paired_on_keys(dict(zip(c.arrays["users"].tolist(), c.arrays["per_user.ndcg@10"].tolist())),
                                  users) if users else None
            pairs.append((value, before))
            seeds_rows.append([c.params["protocol"], model, seed, f"{before:.4f}" if before is not None else "—",
                               f"{value:.4f}", f"{value - before:+.4f}" if before is not None else "—",
                               f"{test.p_wilcoxon:.2g}" if test else "—", c.code])
        now_mean, now_ci = mean_interval(np.array([v for v, _ in pairs]))
        old_all = np.array([v for v, _ in old.values()])
        old_mean, old_ci = mean_interval(old_all)
        spread = f"{old_all.min():.4f}-{old_all.max():.4f}" if len(old_all) > 1 else f"{old_all[0]:.4f}"
        rows.append([mine[0].params["protocol"], model, f"{old_mean:.4f}" + (f" ± {old_ci:.4f}" if len(old_all) > 1
                     else ""), spread, f"{now_mean:.4f}" + (f" ± {now_ci:.4f}" if len(pairs) > 1 else ""),
                     ", ".join(str(s) for s in now), f"{now_mean - np.mean([b for _, b in pairs if b is not None]):+.4f}"])
    table = Table("", ["protocol", "model", "committed NDCG@10 (its seeds)", "committed per-seed range",
                       "now", "seeds rerun", "Δ now − committed (same seeds)"], rows,
                  "Test NDCG@10; ± a 95% interval over seeds where there are several. Committed numbers from "
                  "benchmarks/results/finetune/cells and presets.json; now from benchmarks/results/reproduce/cells.")
    worst = min(rows, key=lambda r: float(r[-1]))
    sentences = [f"After the refactor the {len(rows)} chosen configurations were retrained from their specs: "
                 + "; ".join(f"{r[1]} on {r[0]} {r[4]} against {r[2]}" for r in rows) + ".",
                 f"The largest drop is {worst[-1]} ({worst[1]} on {worst[0]}); the per-seed appendix gives each "
                 "rerun seed beside its committed value and a paired Wilcoxon p over users where per-user values "
                 "were kept.",
                 "CPU training is not bit-identical run to run (two runs of one seed differ in the sixth decimal "
                 "of the loss after two epochs, and more once the plateau schedule turns differently), so a rerun is "
                 "compared with the seed spread, not for equality."]
    per_seed = Table("Per-seed rows", ["protocol", "model", "seed", "committed", "now", "Δ", "paired p (users)",
                                       "code version"], seeds_rows)
    return ResultsPage("Reproduction after the refactor", "Do the chosen P2 and P3 configurations reproduce their "
                       "committed numbers after the product-shape refactor?", table, sentences, [per_seed],
                       regenerate="lmrec study benchmarks/specs/reproduce.toml --keep-stale && "
                                  "python -m benchmarks.pages reproduce")


PAGES: dict[str, tuple[Callable[[], ResultsPage], str]] = {
    "baselines": (baselines, "baselines.md"), "parity": (parity, "parity.md"), "presets": (presets, "presets.md"),
    "lm_ranker": (lm_ranker, "lm_ranker.md"), "efficiency": (efficiency, "efficiency.md"), "scale": (scale, "scale.md"),
    "study": (study, "study/README.md"), "reproduce": (reproduce, "reproduce.md")}

OWN = {"reproduce"}  # pages built from their cells by their own function, not the generic grid page


def write(name: str) -> Path:
    """Rebuild ``name``'s page: from its spec's stored cells when there are any, else its committed JSON."""
    build, path = PAGES[name]
    page = from_cells(name) if (SPECS / f"{name}.toml").exists() and name not in OWN else None
    if page is not None and (RESULTS / path).exists() and MARK in (RESULTS / path).read_text():
        page.appendix += [MARK, _demote(_body(name))]  # what the benchmark script wrote (its searches) stays below
    page = page or build()
    page.write(RESULTS / path)
    return RESULTS / path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pages", nargs="*", help=f"of {', '.join(PAGES)} (default: every page)")
    names = parser.parse_args(argv).pages or list(PAGES)
    if set(names) - set(PAGES):
        parser.error(f"unknown page(s) {sorted(set(names) - set(PAGES))}; pages: {', '.join(PAGES)}")
    for name in names:
        print(write(name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
