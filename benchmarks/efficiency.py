"""Efficiency options, each measured for speed, memory and quality.

Sections (each run alone on the machine; every measurement in its own process, so its peak
memory is its own):

* ``training`` -- LoRA tuning of MiniLM for two epochs from the frozen model of ``--protocol``
  (P3 by default, where an epoch takes about a minute and a half; P2's take 7 minutes; seed 2026,
  the frozen stage-1 model of ``python -m benchmarks.finetune run --grids minilm``, which must exist), under:
  fp32, bf16 autocast, gradient accumulation (4 micro-batches), gradient checkpointing, a shorter
  maximum text length, and one learning rate for encoder and heads: s / epoch, peak memory,
  validation NDCG@10 after the two epochs.
* ``encoding`` -- texts/s of each encoder in float32, bfloat16 and dynamic int8 on 512 P2
  item texts, and how close the vectors stay to float32 (mean cosine).
* ``serving`` -- the P2 model's item table in float32, float16, int8 and with fewer dimensions
  (principal directions): bytes, milliseconds per query, validation NDCG@10 and recall of the
  float32 top 10.

    LMREC_DATA_DIR=../shared/datasets HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.efficiency training encoding serving \\
        [--protocol P3]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

import numpy as np
import torch

from lmrec.study.provenance import RESULTS, header, run_info
from benchmarks.finetune import MAX_LENGTH, STAGE2, base_config, encoder_options, stage1_dir

from lmrec.data import get_protocol
from lmrec.evaluation import Evaluator
from lmrec.evaluation.evaluator import evaluate_task
from lmrec.evaluation.metrics import parse_metric
from lmrec.models import LMRanker, Recommender
from lmrec.models.text_side import TextSide
from lmrec.serving.index import build_index
from lmrec.storage.artifacts import atomic_write_text

from benchmarks.pages import write as write_page
from lmrec.text.encoders import HFEncoder
from lmrec.text.options import Encoder

OUT = RESULTS / "efficiency.json"
# name -> (encoder changes, changes to its LoRA tuning part, training changes)
OPTIONS: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    "fp32 (reference)": ({}, {}, {}),
    "bf16 autocast": ({}, {}, {"precision": "bf16"}),
    "gradient accumulation x4": ({}, {}, {"grad_accum": 4}),
    "gradient checkpointing": ({}, {"checkpointing": True}, {}),
    "max length halved": ({"max_length": 0.5}, {}, {}),  # a fraction of the protocol's MAX_LENGTH
    "encoder lr = heads lr": ({}, {"lr": None}, {}),
}


def option_model(name: str, code: str) -> LMRanker:
    """The LoRA-tuned MiniLM ranker of protocol ``code`` under option ``name``, two epochs, unfitted."""
    enc_change, tuning_change, train_change = OPTIONS[name]
    if "max_length" in enc_change:
        enc_change = {**enc_change, "max_length": int(MAX_LENGTH[code] * enc_change["max_length"])}
    params = base_config(code, 2026)
    params["config"] = {**params["config"], **STAGE2, "epochs": 2, "patience": 2, "lr": params["config"]["lr"] / 4,
                        **train_change}
    saved = encoder_options(code, "minilm", "lora", 2026).to_dict()
    options = Encoder.from_dict({**saved, **enc_change, "tuning": {**saved["tuning"], **tuning_change}})
    return LMRanker(encoder=options, **params)


def training_option(name: str, code: str) -> dict[str, Any]:
    """Two epochs of LoRA from the frozen model of protocol ``code`` under one option (in this process)."""
    split = get_protocol(code, seed=2026)
    model = option_model(name, code)
    start = time.perf_counter()
    model.fit(split.train, split.valid, init_from=Recommender.load(stage1_dir(code, "minilm", 2026)))
    log = model.training_log_
    return {"option": name, "fit_seconds": round(time.perf_counter() - start, 1),
            "seconds_per_epoch": round(float(np.mean([r["train_seconds"] for r in log])), 1),
            "cpu_seconds_per_epoch": round(float(np.mean([r["train_cpu_seconds"] for r in log])), 1),
            "valid_ndcg@10": Evaluator(split, ["ndcg@10"], stage="valid").evaluate(model).summary()["ndcg@10"],
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "refresh": model.text_.stats.get("refresh")}


def encoding_rows(encoders: list[str]) -> list[dict[str, Any]]:
    split = get_protocol("P2", seed=2026)
    side = TextSide(Encoder("minilm"), None)
    side.resolve(split.train, "efficiency")
    texts = side.item_texts()[:512]
    rows = []
    for name in encoders:
        base = None
        for dtype in ("float32", "bfloat16", "int8"):
            enc = HFEncoder(name, max_length=64, batch_size=32, dtype=dtype)
            enc.encode(texts[:32], progress=False)  # warm up
            start = time.perf_counter()
            vecs = enc.encode(texts, progress=False)
            seconds = time.perf_counter() - start
            base = vecs if dtype == "float32" else base
            rows.append({"encoder": name, "dtype": dtype, "texts_per_second": round(len(texts) / seconds, 1),
                         "mean_cosine_to_float32": round(float((vecs * base).sum(1).mean()), 4)})
            print(rows[-1], flush=True)
    return rows


class Factored:
    """Scores from an index over item factors (the evaluator's view of a served, compressed model)."""

    def __init__(self, users: np.ndarray, index: Any) -> None:
        self.users, self.index = users, index

    def score_batch(self, users: np.ndarray, history: Any) -> torch.Tensor:
        return torch.as_tensor(np.stack([self.index.scores(self.users[u]) for u in users]))


def serving_rows() -> list[dict[str, Any]]:
    split = get_protocol("P2", seed=2026)
    model = Recommender.load(stage1_dir("P2", "minilm", 2026))
    users, items = (f.numpy() for f in model.factors())
    task = Evaluator(split, ["ndcg@10"], stage="valid").task
    spec = parse_metric("ndcg@10")
    exact = build_index(items, "exact")
    sample = np.arange(0, len(users), max(1, len(users) // 500))
    truth = [set(exact.search(users[u], 10)[0].tolist()) for u in sample]
    rows = []
    for name, kw in (("float32", {}), ("float16", {"precision": "fp16"}), ("int8", {"precision": "int8"}),
                     ("64 dims", {"dims": 64}), ("32 dims", {"dims": 32}), ("32 dims, int8", {"dims": 32, "precision": "int8"})):
        index = build_index(items, "exact", **kw)
        start = time.perf_counter()
        found = [set(index.search(users[u], 10)[0].tolist()) for u in sample]
        ms = 1000 * (time.perf_counter() - start) / len(sample)
        ndcg = evaluate_task(Factored(users, index), task, [spec]).summary()["ndcg@10"]  # type: ignore[arg-type]
        size = {"fp32": 4, "fp16": 2, "int8": 1}[kw.get("precision", "fp32")]  # bytes a value
        dims = kw.get("dims", items.shape[1])
        rows.append({"table": name, "bytes": int(len(items) * dims * size), "ms_per_query": round(ms, 3),
                     "recall@10_vs_float32": round(float(np.mean([len(a & b) / 10 for a, b in zip(found, truth)])), 4),
                     "valid_ndcg@10": ndcg})
        print(rows[-1], flush=True)
    return rows


def markdown(res: dict[str, Any]) -> str:
    lines = ["# Efficiency options: speed, memory, quality", ""]
    if "training" in res:
        t = res["training"]
        code = t.get("protocol", "P2")  # results before --protocol were P2's
        lines += [f"## LoRA tuning of MiniLM on {code} (two epochs from the frozen {code} model, seed 2026)", "",
                  header(t["info"]), "| option | s / epoch (wall / CPU) | peak MB | valid NDCG@10 after 2 epochs | "
                  "commit |", "|---|---|---|---|---|"]
        lines += [f"| {r['option']} | failed: {r['error'][-120:]!r} | | | {r.get('commit', '')[:7]} |" if "error" in r else
                  f"| {r['option']} | {r['seconds_per_epoch']} / {r['cpu_seconds_per_epoch']} | {r['peak_rss_mb']:.0f} | "
                  f"{r['valid_ndcg@10']:.4f} | {r.get('commit', '')[:7]} |" for r in t["rows"]] + [""]
    if "encoding" in res:
        e = res["encoding"]
        lines += ["## Encoding throughput (512 P2 item texts, max 64 tokens, batch 32)", "", header(e["info"]),
                  "| encoder | dtype | texts / s | mean cosine to float32 |", "|---|---|---|---|"]
        lines += [f"| {r['encoder']} | {r['dtype']} | {r['texts_per_second']} | {r['mean_cosine_to_float32']} |"
                  for r in e["rows"]] + [""]
    if "serving" in res:
        s = res["serving"]
        lines += ["## Compressed item tables for serving (the frozen P2 model, 4,385 items, d = 128)", "",
                  header(s["info"]), "| table | bytes | ms / query (top 10) | recall@10 of the float32 top 10 | "
                  "valid NDCG@10 |", "|---|---|---|---|---|"]
        lines += [f"| {r['table']} | {r['bytes']:,} | {r['ms_per_query']} | {r['recall@10_vs_float32']} | "
                  f"{r['valid_ndcg@10']:.4f} |" for r in s["rows"]] + [""]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sections", nargs="+", choices=["training", "encoding", "serving", "option"])
    parser.add_argument("--option", help="(internal) one training option, in this process")
    parser.add_argument("--encoders", nargs="+", default=["minilm", "mpnet", "smollm2"])
    parser.add_argument("--protocol", default="P3", choices=["P2", "P3", "P4"], help="training: the protocol")
    parser.add_argument("--options", nargs="+", choices=list(OPTIONS), default=list(OPTIONS),
                        help="training: the options to (re)run; other rows of the same protocol are kept")
    args = parser.parse_args()
    if args.sections == ["option"]:
        print("RESULT " + json.dumps(training_option(args.option, args.protocol)), flush=True)
        return 0
    res = json.loads(OUT.read_text()) if OUT.exists() else {}
    for section in args.sections:
        info = run_info()
        if section == "training":
            kept = res.get("training", {}) if res.get("training", {}).get("protocol") == args.protocol else {}
            rows = [r for r in kept.get("rows", []) if r["option"] not in args.options]  # rerun: replaced
            for name in args.options:
                out = subprocess.run([sys.executable, "-m", "benchmarks.efficiency", "option", "--option", name, "--protocol",
                                      args.protocol], capture_output=True, text=True)
                line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
                rows.append({**(json.loads(line[-1][7:]) if line else {"option": name, "error": out.stderr[-500:]}),
                             "commit": info["commit"], "date": info["date"]})
                print(rows[-1], flush=True)
            order = list(OPTIONS)
            rows.sort(key=lambda r: order.index(r["option"]))
            res["training"] = {"info": info, "protocol": args.protocol, "rows": rows}
        elif section == "encoding":
            res["encoding"] = {"info": info, "rows": encoding_rows(args.encoders)}
        elif section == "serving":
            res["serving"] = {"info": info, "rows": serving_rows()}
        atomic_write_text(OUT, json.dumps(res, indent=2, default=float) + "\n")
        atomic_write_text(RESULTS / "efficiency.md", markdown(res))
        write_page("efficiency")  # its first screen on top (benchmarks.pages)
    print((RESULTS / "efficiency.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
