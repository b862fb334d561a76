"""benchmarks/results/finetune.md from the stored cells of benchmarks/finetune.py, as a results page:
one short table and three sentences, then the appendix (per-protocol tables, per-seed rows, searches)."""
from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import numpy as np

from lmrec.study.provenance import RESULTS
from lmrec.evaluation.stats import mean_interval, paired_on_keys
from lmrec.study.pages import ResultsPage, grid_table
from lmrec.study.render import Table
from lmrec.text.options import upgrade_encoder

ENCODERS = {"minilm": "MiniLM-L6 (22M)", "mpnet": "MPNet-base (110M)", "smollm2": "SmolLM2-135M (decoder)",
            "ease": "EASE", "text-knn": "text-kNN (MiniLM, frozen)", "text-knn-mpnet": "text-kNN (MPNet, frozen)"}
BASELINES = ("ease", "text-knn", "text-knn-mpnet")  # rows that are not the language-model ranker
TUNING = {"frozen": "frozen", "lora": "LoRA r8", "full": "full", "co": "co-interaction → frozen",
          "lora-cold": "LoRA r8, epochs read on the cold validation",
          "ease-blend": "frozen, blended with EASE", "-": "—"}
TUNED = ("lora", "full", "co", "lora-cold")  # rows whose encoder was trained (co: before the ranker)
METRIC = {"P2": "test", "P3": "test", "P4": "cold"}  # the headline metric per protocol (P4: among cold items)
TITLES = {"P2": "P2 Scientific leave-one-out: test NDCG@10",
          "P3": "P3 ML-100K temporal: test NDCG@10",
          "P4": "P4 Scientific cold items: NDCG@10 among cold items (and cold test items among all items)"}


def pooled(cells: list[dict[str, Any]], label: str) -> dict[tuple[int, int], float]:
    """(seed, user) -> per-user NDCG@10 of ``label`` ("test", "cold", "all")."""
    out = {}
    for c in cells:
        users, values = c["per_user"][f"{label}.users"], c["per_user"][f"{label}.ndcg@10"]
        out.update({(c["seed"], int(u)): float(v) for u, v in zip(users, values)})
    return out


def paired(row: list[dict[str, Any]], ref: list[dict[str, Any]], label: str) -> tuple[float, float] | None:
    """(Δ mean, paired Wilcoxon p) of ``row`` minus ``ref`` over the (seed, user) pairs present in
    both (a reference with one seed counts for every seed); None when there is nothing to pair."""
    if not ref or [id(c) for c in row] == [id(c) for c in ref]:
        return None
    mine = pooled(row, label)
    theirs = pooled(ref, label)
    if len({c["seed"] for c in ref}) == 1:  # a deterministic baseline: the same values for every seed
        only = ref[0]["seed"]
        theirs = {(s, u): theirs[(only, u)] for (s, u) in mine if (only, u) in theirs}
    test = paired_on_keys(theirs, mine)
    return None if test is None else (test.mean_diff, test.p_wilcoxon)


def versus(row: list[dict[str, Any]], ref: list[dict[str, Any]], label: str) -> str:
    found = paired(row, ref, label)
    return "—" if found is None else f"{found[0]:+.4f} (p {found[1]:.2g})"


def row_cost(cells: list[dict[str, Any]]) -> list[str]:
    c = cells[0]
    params = c.get("parameters") or {}
    trainable = params.get("trainable")
    encoder = params.get("encoder", {}).get("trainable")
    total = "—" if trainable is None else f"{trainable / 1e6:.2f}M" + (f" ({encoder / 1e6:.2f}M enc.)" if encoder else "")
    epochs = ", ".join(f"{x['epochs']} ({x['best_epoch']})" for x in cells if "epochs" in x) or "—"
    spe = np.mean([x["seconds_per_epoch"] for x in cells if "seconds_per_epoch" in x]) if "seconds_per_epoch" in c else None
    cpu = np.mean([x["cpu_seconds_per_epoch"] for x in cells]) if "cpu_seconds_per_epoch" in c else None
    refresh = c.get("refresh") or {}
    tps = f"{refresh['texts'] / refresh['seconds']:.0f}" if refresh.get("seconds") else "—"
    peak = max(x["peak_rss_mb"] for x in cells)
    return [total, "—" if spe is None else f"{spe:.0f} / {cpu:.0f}", tps, f"{peak:.0f}", epochs]


def encoder_tuning(c: dict[str, Any]) -> dict[str, Any]:
    """The saved tuning part of a cell's encoder ({} for a baseline), whichever Encoder form its
    record holds (cells stored before the tuning part have flat ``tune``/``lr``/``grad_items`` fields)."""
    encoder = c.get("params", {}).get("encoder")
    return dict(upgrade_encoder(encoder).get("tuning") or {}) if isinstance(encoder, dict) else {}


def tuning_label(tuning: str, row: list[dict[str, Any]]) -> str:
    """The tuning's name, with the items encoded with gradients per step where a tuned row used
    fewer than the default 128."""
    grad = {tuned["grad_items"] for c in row if "grad_items" in (tuned := encoder_tuning(c))}
    fewer = tuning in ("lora", "full", "lora-cold") and grad and max(grad) < 128
    return TUNING[tuning] + (f", {max(grad)} items with gradients per step" if fewer else "")


def protocol_table(code: str, cells: list[dict[str, Any]]) -> list[str]:
    label = METRIC[code]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for c in cells:
        groups[(c["encoder"], c["tuning"])].append(c)
    ref, ease = groups.get(("minilm", "frozen"), []), groups.get(("ease", "-"), [])
    extra = " | cold among all items" if code == "P4" else ""
    lines = [f"### {TITLES[code]}", "",
             f"| encoder | tuning | NDCG@10 (mean ± 95% CI) | seeds{extra} | Δ vs frozen MiniLM (p) | "
             "Δ vs the same encoder frozen (p) | Δ vs EASE (p) | "
             "trainable params | s / epoch (wall / CPU) | refresh texts/s | peak MB | epochs (best) |",
             "|" + "---|" * (12 + (1 if code == "P4" else 0))]
    order = sorted(groups, key=lambda k: (list(ENCODERS).index(k[0]), list(TUNING).index(k[1])))
    for key in order:
        row = sorted(groups[key], key=lambda c: c["seed"])
        mean, half = mean_interval(np.array([c[f"{label}_ndcg@10"] for c in row]))
        ci = f"{mean:.4f}" + ("" if np.isnan(half) else f" ± {half:.4f}")
        cold_all = ""
        if code == "P4":
            m, h = mean_interval(np.array([c["all_ndcg@10"] for c in row]))
            cold_all = f" | {m:.4f}" + ("" if np.isnan(h) else f" ± {h:.4f}")
        lines.append(f"| {ENCODERS[key[0]]} | {tuning_label(key[1], row)} | {ci} | {len(row)}{cold_all} | "
                     f"{versus(row, ref, label)} | {versus(row, groups.get((key[0], 'frozen'), []), label)} | "
                     f"{versus(row, ease, label)} | " + " | ".join(row_cost(row)) + " |")
    return lines


def search_table(search: dict[str, list[dict[str, Any]]], cells: list[dict[str, Any]]) -> list[str]:
    """Validation NDCG@10 of the tuned rows at each setting tried (the encoder's learning rate, the
    catalogue table's refresh, the items encoded with gradients per step), beside the grid's setting
    and the start on the same seeds (seed 2026, and any seed a search row used)."""
    found = [c for rows in search.values() for c in rows]
    seeds = {2026} | {c["seed"] for c in found}
    rows = [c for c in cells if c["tuning"] in ("lora", "full") and c["seed"] in seeds] + found
    if not rows:
        return []
    frozen = {(c["protocol"], c["encoder"], c["seed"]): c["valid_ndcg@10"] for c in cells if c["tuning"] == "frozen"}
    lines = ["### Search (validation only): encoder learning rate, table refresh, items with gradients", "",
             "| protocol | encoder | tuning | seed | encoder lr | table refreshed | items with gradients per step "
             "| valid NDCG@10 | frozen start | epochs (best) |", "|---|---|---|---|---|---|---|---|---|---|"]

    def setting(c: dict[str, Any]) -> tuple[float, int, int]:
        tuned = encoder_tuning(c)
        return tuned["lr"], tuned["refresh_every"], tuned["grad_items"]

    for c in sorted(rows, key=lambda c: (c["protocol"], c["encoder"], c["tuning"], c["seed"], setting(c))):
        # the start as run: recorded, or kept (best epoch 0); else the frozen cell of the seed
        start = c.get("start_valid") or (c["valid_ndcg@10"] if c["best_epoch"] == 0 else
                                         frozen.get((c["protocol"], c["encoder"], c["seed"])))
        lr, every, grad = setting(c)
        lines.append(f"| {c['protocol']} | {ENCODERS[c['encoder']]} | {TUNING[c['tuning']]} | {c['seed']} | {lr:g} | "
                     f"{f'every {every} steps' if every else 'each epoch'} | {grad} | {c['valid_ndcg@10']:.4f} | "
                     f"{'—' if start is None else f'{start:.4f}'} | {c['epochs']} ({c['best_epoch']}) |")
    return lines + [""]


def cold_search_table(rows: list[dict[str, Any]], p4_choice: str) -> list[str]:
    """The P4 candidates on the cold validation (pseudo-cold items held out of P4's training data);
    ``p4_choice``: the candidate chosen (finetune.P4_CHOICE)."""
    if not rows:
        return []

    lines = ["### Search (validation only, seed 2026): the P4 configuration on a cold validation", "",
             f"A random 20% of the items with P4 training interactions ({rows[0]['pseudo_cold_items']} items, "
             f"{rows[0]['rows']} interactions) are held out of P4's training data and ranked as cold items; "
             f"the real cold items and test set are not read. Chosen (highest pseudo-cold NDCG@10): "
             f"**{p4_choice}**.", "",
             "| candidate | pseudo-cold NDCG@10 (among cold) | among all items | epochs (best) |", "|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: -r["cold_ndcg@10"]):
        epochs = f"{r['epochs']} ({r['best_epoch']})" if "epochs" in r else "—"
        lines.append(f"| {r['candidate']} | {r['cold_ndcg@10']:.4f} | {r['all_ndcg@10']:.4f} | {epochs} |")
    return lines + [""]


def cold_tune_table(rows: list[dict[str, Any]], cold_tune: dict[str, Any]) -> list[str]:
    """P4 stage 2 (MiniLM LoRA) with its validation on the pseudo-cold items: NDCG@10 per epoch;
    ``cold_tune``: the epochs searched and chosen (finetune.COLD_TUNE)."""
    if not rows:
        return []

    lines = ["### Search (validation only): P4 LoRA epochs on the cold validation", "",
             "The cold validation above (pseudo-cold items held out of P4's training data; the real cold items and "
             "test set unread): the chosen P4 configuration trained frozen, then LoRA-tuned with the pseudo-cold "
             "items' rows as its validation (NDCG@10 among all items, the start competing). The `lora-cold` cells "
             f"train the best epoch count on P4 itself: **{cold_tune['chosen'] or 'none chosen'}**.", "",
             "| seed | start | " + " | ".join(f"epoch {e}" for e in range(1, cold_tune["epochs"] + 1)) +
             " | best | start → best, among pseudo-cold items | CPU s / epoch |",
             "|---|---|" + "---|" * cold_tune["epochs"] + "---|---|---|"]
    for r in sorted(rows, key=lambda r: r["seed"]):
        values = {e["epoch"]: e.get("valid_ndcg@10") for e in r["epochs"]}
        cells = [f"{values[e]:.4f}" if values.get(e) is not None else "—" for e in range(1, cold_tune["epochs"] + 1)]
        cpu = np.mean([e["train_cpu_seconds"] for e in r["epochs"]])
        moved = f"{r['start_cold_ndcg@10']:.4f} → {r['tuned_cold_ndcg@10']:.4f}"
        lines.append(f"| {r['seed']} | {r['start_valid']:.4f} | " + " | ".join(cells) +
                     f" | {r['best_epoch']} | {moved} | {cpu:.0f} |")
    return lines + [""]


GRID = {"encoders": ("minilm", "mpnet", "smollm2"), "tunings": ("frozen", "lora", "full", "co"),
        "protocols": ("P2", "P4", "P3"), "seeds": (2026, 2027, 2028)}


def _rows(cells: list[dict[str, Any]], code: str) -> dict[tuple[str, str], list[dict[str, Any]]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for c in cells:
        if c["protocol"] == code:
            groups[(c["encoder"], c["tuning"])].append(c)
    return groups


def threads(cell: dict[str, Any]) -> str:
    """The torch threads a cell ran with, from its machine line ('?' when the line does not say)."""
    found = re.search(r"torch threads (\d+)", cell.get("machine", ""))
    return found.group(1) if found else "?"


def paired_line(text: str, enc: str, tun: str, found: tuple[float, float]) -> str:
    """A targets-table row for a paired comparison (Δ, p): 'yes' for a significant gain, else 'no'
    (', worse' for a significant loss)."""
    met = "yes" if found[0] > 0 and found[1] < 0.05 else "no" + (", worse" if found[1] < 0.05 else "")
    value = f"Δ {found[0]:+.4f} (p {found[1]:.2g})"
    return f"| {text} (paired, p < 0.05) | {ENCODERS[enc]}, {TUNING[tun]} | {value} | {met} |"


def targets_table(cells: list[dict[str, Any]]) -> list[str]:
    """Each target of the study against the best row measured so far (mean over its seeds)."""
    lines = ["### Targets", "", "| target | best row so far | value | met? |", "|---|---|---|---|"]
    for code, label, goal, text, blends in (
            ("P2", "test", 0.100, "P2 test NDCG@10 ≥ 0.100", True),
            ("P2", "test", 0.100, "P2 test NDCG@10 ≥ 0.100, the language-model ranker alone (no EASE)", False),
            ("P4", "cold", 0.150, "P4 cold items, NDCG@10 among cold items ≥ 0.150", True),
            ("P4", "all", 0.0601, "P4 cold items ranked among all items ≥ text-kNN's 0.0601", True)):
        rows = {k: float(np.mean([c[f"{label}_ndcg@10"] for c in v])) for k, v in _rows(cells, code).items()
                if k[0] not in BASELINES and (blends or k[1] != "ease-blend")}
        if not rows:
            lines.append(f"| {text} | not run | — | — |")
            continue
        (enc, tun), value = max(rows.items(), key=lambda kv: kv[1])
        met = "yes" if value >= goal else f"no, short by {goal - value:.4f}"
        lines.append(f"| {text} | {ENCODERS[enc]}, {TUNING[tun]} | {value:.4f} | {met} |")
    groups = _rows(cells, "P4")
    knn = groups.get(("text-knn", "-"), [])
    for label, what in (("cold", "among cold items"), ("all", "among all items")):  # text-kNN, same seeds, paired
        best = best_paired({k: v for k, v in groups.items() if k[0] not in BASELINES}, knn, label)
        if best is not None:
            lines.append(paired_line(f"P4 cold items {what} beat text-kNN on the same seeds", *best))
    lora = sorted(_rows(cells, "P2").get(("minilm", "lora"), []), key=lambda c: c["seed"])
    if lora:  # each run's stage-2 fit with its torch threads; met when one run fits in 30 minutes
        runs = "; ".join(f"seed {c['seed']}: {c['fit_seconds'] / 60:.0f} min, {c['epochs']} epochs, "
                         f"{threads(c)} torch thread(s)" for c in lora)
        fastest = min(c["fit_seconds"] for c in lora) / 60
        lines.append(f"| LoRA tuning of MiniLM on P2 within 30 minutes on 2 cores | MiniLM, LoRA r8 (stage 2 fit) | "
                     f"{runs} | {'yes' if fastest <= 30 else 'no'} |")
    for code, label in (("P2", "test"), ("P4", "cold")):
        groups = _rows(cells, code)
        best = best_paired({k: v for k, v in groups.items() if k[1] in TUNED},
                           groups.get(("minilm", "frozen"), []), label)
        if best is not None:
            lines.append(paired_line(f"fine-tuning beats frozen MiniLM on {code}", *best))
        own = [(enc, tun, found) for (enc, tun), row in sorted(groups.items()) if tun in TUNED
               and (found := paired(row, groups.get((enc, "frozen"), []), label))]
        if own:  # each tuned row against the same encoder frozen, on the seeds both have
            lines.append(paired_line(f"fine-tuning beats the same encoder frozen on {code}",
                                     *max(own, key=lambda x: x[2][0])))
    return lines + [""]


def best_paired(groups: dict[tuple[str, str], list[dict[str, Any]]], ref: list[dict[str, Any]],
                label: str) -> tuple[str, str, tuple[float, float]] | None:
    """(encoder, tuning, (Δ, p)) of the row with the largest paired gain over ``ref`` (None: nothing to pair)."""
    found = [(enc, tun, f) for (enc, tun), row in sorted(groups.items()) if (f := paired(row, ref, label))]
    return max(found, key=lambda x: x[2][0]) if found else None


def coverage(cells: list[dict[str, Any]]) -> list[str]:
    """Which cells of the planned grid have a result, and which do not yet."""
    done = {(c["protocol"], c["encoder"], c["tuning"], c["seed"]) for c in cells}
    planned = [(p, e, t, s) for p in GRID["protocols"] for e in GRID["encoders"] for t in GRID["tunings"]
               for s in GRID["seeds"]]
    have = [k for k in planned if k in done]
    by_row: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for p, e, t, s in have:
        by_row[(p, e, t)].append(s)
    listed = "; ".join(f"{p} {e} {t} (seeds {', '.join(map(str, seeds))})" for (p, e, t), seeds in sorted(by_row.items()))
    return ["### Grid coverage", "",
            f"{len(have)} of the {len(planned)} planned cells (protocols × encoders {', '.join(GRID['encoders'])} × "
            f"tunings {', '.join(GRID['tunings'])} × seeds 2026-2028) have a result: {listed or 'none'}. "
            "Every other cell has not been run yet (`python -m benchmarks.finetune run` resumes the grid cell by cell).", ""]


def blend_table(cells: list[dict[str, Any]]) -> list[str]:
    """The blend's weight search per cell: each member alone and the chosen weight (validation only)."""
    rows = sorted((c for c in cells if c["tuning"] == "ease-blend"), key=lambda c: (c["protocol"], c["seed"]))
    if not rows:
        return []
    lines = ["### Search (validation only): the weight of the frozen ranker against EASE in the blend", "",
             "Grid step 0.05 over w (ranker) and 1 − w (EASE) on per-user z-scores; the ranker alone is w = 1, EASE "
             "alone w = 0. The ranker is the frozen row's stage-1 model of the seed (retrained with its configuration "
             "where that model was not kept).", "",
             "| protocol | encoder | seed | ranker alone | EASE alone | chosen w | blend | ranker retrained |",
             "|---|---|---|---|---|---|---|---|"]
    for c in rows:
        by_w = {round(r["weights"][0], 6): r["ndcg@10"] for r in c["selection"]}
        lines.append(f"| {c['protocol']} | {ENCODERS[c['encoder']]} | {c['seed']} | {by_w[1.0]:.4f} | {by_w[0.0]:.4f} "
                     f"| {c['weights'][0]:.2f} | {c['valid_ndcg@10']:.4f} | {'yes' if c['ranker_refit'] else 'no'} |")
    return lines + [""]


def headline(cells: list[dict[str, Any]]) -> tuple[Table, list[str]]:
    """The first screen: each row's headline NDCG@10 per protocol (mean ± 95% interval over seeds, Δ and
    paired p against frozen MiniLM) and three sentences read off it."""
    codes = [c for c in ("P2", "P4", "P3") if any(x["protocol"] == c for x in cells)]
    groups = {code: _rows(cells, code) for code in codes}
    keys = sorted({k for g in groups.values() for k in g}, key=lambda k: (list(ENCODERS).index(k[0]), list(TUNING).index(k[1])))
    label = {k: f"{ENCODERS[k[0]]}, {TUNING[k[1]]}" if k[1] != "-" else ENCODERS[k[0]] for k in keys}

    def cell(row: str, code: str) -> str:
        key = next(k for k in keys if label[k] == row)
        found = groups[code].get(key)
        if not found:
            return ""
        mean, half = mean_interval(np.array([c[f"{METRIC[code]}_ndcg@10"] for c in found]))
        vs = paired(found, groups[code].get(("minilm", "frozen"), []), METRIC[code])
        return (f"{mean:.4f}" + ("" if np.isnan(half) else f" ± {half:.4f}")
                + ("" if vs is None else f" ({vs[0]:+.4f}, p {vs[1]:.2g})"))

    table = grid_table([label[k] for k in keys], [f"{c} ({'cold items' if c == 'P4' else 'test'})" for c in codes],
                       lambda r, c: cell(r, c.split(" ")[0]), row_header="encoder, tuning",
                       note="Test NDCG@10 (P4: among cold items), mean ± 95% interval over seeds; in brackets Δ and "
                            "paired Wilcoxon p against frozen MiniLM over (seed, user) pairs.")
    sentences = []
    for code in codes:
        rows = {k: float(np.mean([c[f"{METRIC[code]}_ndcg@10"] for c in v])) for k, v in groups[code].items()}
        best = max(rows, key=lambda k: rows[k])
        vs = paired(groups[code][best], groups[code].get(("minilm", "frozen"), []), METRIC[code])
        sig = "" if vs is None else (f", {vs[0]:+.4f} against frozen MiniLM (p {vs[1]:.2g})")
        sentences.append(f"On {code} the best row is {label[best]} at {rows[best]:.4f}{sig}.")
    own = [(code, k, f) for code in codes for k, row in groups[code].items() if k[1] in TUNED
           and (f := paired(row, groups[code].get((k[0], "frozen"), []), METRIC[code]))]
    wins = [f"{label[k]} on {code}" for code, k, f in own if f[0] > 0 and f[1] < 0.05]
    sentences = sentences[:2] + [f"Tuning the encoder beat the same encoder frozen (paired p < 0.05) in "
                                 f"{len(wins)} of {len(own)} tuned rows" + (f": {', '.join(wins)}." if wins else ".")]
    return table, sentences


def per_seed_table(cells: list[dict[str, Any]]) -> Table:
    rows = []
    for c in sorted(cells, key=lambda c: (c["protocol"], list(ENCODERS).index(c["encoder"]),
                                          list(TUNING).index(c["tuning"]), c["seed"])):
        label = METRIC[c["protocol"]]
        rows.append([c["protocol"], ENCODERS[c["encoder"]], TUNING[c["tuning"]], c["seed"],
                     f"{c['valid_ndcg@10']:.4f}" if "valid_ndcg@10" in c else "—", f"{c[f'{label}_ndcg@10']:.4f}",
                     c.get("commit", "—")[:12], c.get("date", "—")])
    return Table("Per-seed rows", ["protocol", "encoder", "tuning", "seed", "valid NDCG@10", "headline NDCG@10",
                                   "commit", "date"], rows)


def write_report(cells: list[dict[str, Any]], choices: dict[str, Any], search: dict[str, list[dict[str, Any]]] | None = None,
                 cold: list[dict[str, Any]] | None = None, cold_tune: list[dict[str, Any]] | None = None) -> None:
    """finetune.md from the cells and search rows; ``choices``: the benchmark's choices the text names
    ({"p4_choice": finetune.P4_CHOICE, "cold_tune": finetune.COLD_TUNE}), passed in by finetune.py."""
    lines = ["One table per protocol; a row is an encoder and a tuning mode, over seeds 2026-2028 (P2 and P3: the "
             "split is fixed, seeds vary the model; P4: seeds vary the cold items and the model). Δ and p: the "
             "mean per-user difference and a paired Wilcoxon signed-rank test over the (seed, user) pairs both rows "
             "have. Cost columns: trainable parameters, wall and CPU seconds per training epoch, catalogue re-encoding "
             "speed of a tuned encoder, peak resident memory of the cell's process, epochs run (best kept).", ""]
    for code in ("P2", "P4", "P3"):
        mine = [c for c in cells if c["protocol"] == code]
        if mine:
            lines += protocol_table(code, mine) + [""]
    lines += targets_table(cells) + coverage(cells)
    lines += cold_search_table(cold or [], choices["p4_choice"]) + cold_tune_table(cold_tune or [], choices["cold_tune"])
    lines += search_table(search or {}, cells) + blend_table(cells)
    notes = RESULTS / "finetune" / "notes.md"  # conditions of the runs, written by whoever ran them
    lines += ["### Notes on the runs", "", notes.read_text().strip(), ""] if notes.exists() else []
    table, sentences = headline(cells)
    codes = sorted({c.get("code", "?") for c in cells})
    page = ResultsPage("Before and after fine-tuning the language model",
                       "Does fine-tuning the text encoder (LoRA, full, co-interaction) rank better than the frozen "
                       "encoder, and than EASE and text-kNN?", table, sentences,
                       ["\n".join(lines), per_seed_table(cells),
                        f"Cells: {len(cells)} in `benchmarks/results/finetune/cells` (the one study store); code "
                        f"versions that computed them: {', '.join(codes)} (`git-<commit>`: converted from the "
                        "benchmark's own files of that commit)."],
                       runs=cells, regenerate="python -m benchmarks.finetune report")
    page.write(RESULTS / "finetune.md")
