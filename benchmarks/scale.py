"""Scale: data-parallel training, how cost grows with the work, and ANN on learned embeddings.

Usage (each section appends its rows to ``benchmarks/results/scale/<section>.json``; ``report``
rebuilds ``benchmarks/results/scale.md``)::

    LMREC_DATA_DIR=../shared/datasets HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.scale ddp [--device cuda]
    .venv/bin/python -m benchmarks.scale growth --factors 1 4 16 --models bpr-mf lm-ranker
    .venv/bin/python -m benchmarks.scale ann --sources P1 P2 synthetic-16
    .venv/bin/python -m benchmarks.scale report

1. ``ddp``: BPR-MF with its validation-chosen P1 configuration (benchmarks/baselines.py) for a
   fixed number of epochs, in one process (1 and 2 threads) and in 2 torchrun processes of one
   thread each; the global batch is the same, so the runs take the same steps (the weights agree
   to float rounding, tests/training/test_distributed.py) and only time differs. Throughput is
   training rows per second of training; "time to target" is the training time until validation
   NDCG@10 first reaches the target. ``--device cuda --nproc N`` runs the same on a GPU node.
2. ``growth``: the synthetic generator (lmrec/data/synthetic.py) at 1x = 12,500 users, 62,500
   items, 1.25M interactions, and 4x, 16x of each; written as Parquet and read back in batches
   (lmrec/data/parquet.py); one training epoch of BPR-MF (dim 64) and of LMRanker (frozen MiniLM,
   cached embeddings, mean tower), each in its own process so its peak memory is its own.
3. ``ann``: faiss HNSW, IVF-Flat and IVF-PQ over the item factors of trained models (BPR-MF on P1
   from the ddp section, the frozen-MiniLM LMRanker on P2 (Scientific) from benchmarks/finetune.py,
   BPR-MF on the 16x synthetic catalogue from growth), queried with 1,000 users' vectors one at a
   time on one thread; recall@10 against exact inner-product search.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from lmrec.storage.artifacts import atomic_write_text
from lmrec.study.provenance import RESULTS, ROOT, header, run_info
from benchmarks.baselines import chosen_params as baseline_params

OUT = RESULTS / "scale"
WORK = Path.home() / ".cache" / "lmrec" / "scale"  # generated data, trained factors (not committed)
CACHE = str(Path.home() / ".cache" / "lmrec" / "embeddings")
BASE = {"n_users": 12_500, "n_items": 62_500, "n_interactions": 1_250_000}
DDP_EPOCHS, DDP_TARGET = 12, 0.20


def peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def append(section: str, row: dict[str, Any]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{section}.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    rows.append({**row, **run_info()})
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows, indent=1, default=float) + "\n")
    tmp.replace(path)


# ---------------------------------------------------------------- 1. data-parallel training
def ddp_run(nproc: int, threads: int, device: str) -> dict[str, Any]:
    params = baseline_params("P1", "bpr-mf")
    config = {**params.pop("config"), "epochs": DDP_EPOCHS, "patience": DDP_EPOCHS, "device": device}
    spec = "bpr-mf:" + ",".join(f"{k}={v}" for k, v in params.items())
    with tempfile.TemporaryDirectory() as tmp:
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in config.items()]
        command = [sys.executable, "-m", "lmrec", "train", spec, "--protocol", "P1", "--out", f"{tmp}/model",
                   "--run-dir", f"{tmp}/run", *flags, "--nproc", str(nproc)]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        start = time.perf_counter()
        subprocess.run(command, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        records = [json.loads(line) for line in Path(f"{tmp}/run/metrics.jsonl").read_text().splitlines()]
        if nproc == 1 and device == "cpu":  # keep the factors for the ANN section
            WORK.mkdir(parents=True, exist_ok=True)
            (WORK / "P1-bpr-mf").mkdir(exist_ok=True)
            Path(f"{tmp}/model/model.safetensors").replace(WORK / "P1-bpr-mf" / "model.safetensors")
    from lmrec.data import get_protocol

    rows = len(get_protocol("P1").train)
    seconds = [r["train_seconds"] for r in records]
    elapsed, reached = 0.0, None
    for r in records:
        elapsed += r["train_seconds"]
        if reached is None and r.get("valid_ndcg@10", 0) >= DDP_TARGET:
            reached = (r["epoch"], round(elapsed, 1))
    return {"processes": nproc, "threads_per_process": threads, "device": device, "epochs": len(records),
            "train_rows": rows, "s_per_epoch": round(float(np.mean(seconds)), 2),
            "rows_per_s": round(rows / float(np.mean(seconds))), "wall_s": round(wall, 1),
            "target": DDP_TARGET, "epoch_at_target": reached[0] if reached else None,
            "train_s_to_target": reached[1] if reached else None,
            "best_valid_ndcg@10": round(max(r.get("valid_ndcg@10", 0) for r in records), 4), "config": spec}


def ddp(args: argparse.Namespace) -> None:
    layouts = [(1, 1), (1, 2), (2, 1)] if args.device == "cpu" else [(1, 1), (args.nproc, 1)]
    for nproc, threads in layouts:
        row = ddp_run(nproc, threads, args.device)
        print(json.dumps(row), flush=True)
        append("ddp", row)


# ---------------------------------------------------------------- 2. how cost grows
def sizes(factor: int) -> dict[str, int]:
    return {k: v * factor for k, v in BASE.items()}


def growth_model(model_name: str) -> Any:
    """The model of a growth cell: BPR-MF (dim 64) or the frozen-MiniLM LMRanker, one epoch."""
    from lmrec.models import BPRMF, LMRanker
    from lmrec.text.options import Encoder

    cfg = {"epochs": 1, "batch_size": 16384, "lr": 0.005, "progress": True}
    if model_name == "bpr-mf":
        return BPRMF(dim=64, config=cfg)
    return LMRanker(encoder=Encoder("minilm", max_length=32), cache_dir=CACHE, config=cfg)


def growth_cell(model_name: str, factor: int) -> dict[str, Any]:
    """One cell, in this process: generate (or reuse) the data, read it from Parquet, one epoch."""
    import pandas as pd
    import torch

    from lmrec.data.parquet import scan_parquet
    from lmrec.data.synthetic import generate, write_parquet

    folder = WORK / f"synthetic-{factor}"
    out: dict[str, Any] = {"model": model_name, "factor": factor, **sizes(factor)}
    if not (folder / "items.parquet").exists():
        start = time.perf_counter()
        write_parquet(generate(**sizes(factor), seed=2026), folder)
        out["generate_s"] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    data = scan_parquet(folder / "interactions.parquet", timestamp="timestamp",
                        items=pd.read_parquet(folder / "items.parquet"), progress=False)
    out.update(read_s=round(time.perf_counter() - start, 1), interactions=len(data), read_peak_mb=peak_mb())
    model = growth_model(model_name)
    start, cpu = time.perf_counter(), time.process_time()
    model.fit(data)
    out.update(fit_s=round(time.perf_counter() - start, 1), fit_cpu_s=round(time.process_time() - cpu, 1),
               epoch_s=model.training_log_[0]["train_seconds"], peak_mb=peak_mb(),
               torch_threads=torch.get_num_threads())
    if model_name == "bpr-mf" and factor == 16:  # the 1M-item factors for the ANN section
        (WORK / "synthetic-16-bpr-mf").mkdir(parents=True, exist_ok=True)
        users, items = model.factors()
        np.save(WORK / "synthetic-16-bpr-mf" / "users.npy", users.numpy())
        np.save(WORK / "synthetic-16-bpr-mf" / "items.npy", items.numpy())
    return out


def growth(args: argparse.Namespace) -> None:
    for factor in args.factors:
        for name in args.models:
            done = subprocess.run([sys.executable, "-m", "benchmarks.scale", "growth-cell", "--models", name, "--factors", str(factor)],
                                  capture_output=True, text=True, cwd=ROOT)
            if done.returncode != 0:
                row = {"model": name, "factor": factor, **sizes(factor), "failed": done.stderr[-500:]}
            else:
                row = json.loads(done.stdout.strip().splitlines()[-1])
            print(json.dumps(row), flush=True)
            append("growth", row)


# ---------------------------------------------------------------- 3. ANN on learned embeddings
def load_factors(source: str) -> tuple[np.ndarray, np.ndarray]:
    if source == "P2":  # the frozen-MiniLM LMRanker of benchmarks/finetune.py (stage 1, seed 2026)
        from lmrec.models import Recommender

        users, items = Recommender.load(Path.home() / ".cache/lmrec/finetune/stage1-P2-minilm-2026").factors()
        return users.numpy(), items.numpy()
    if source == "P1":
        from safetensors.numpy import load_file

        arrays = load_file(str(WORK / "P1-bpr-mf" / "model.safetensors"))
        return arrays["users"], arrays["items"]
    folder = WORK / f"{source}-bpr-mf"
    return np.load(folder / "users.npy"), np.load(folder / "items.npy")


def ann_rows(source: str, n_queries: int = 1000) -> list[dict[str, Any]]:
    import faiss

    faiss.omp_set_num_threads(1)
    users, items = load_factors(source)
    items = np.ascontiguousarray(items, dtype=np.float32)
    queries = np.ascontiguousarray(users[np.random.default_rng(0).choice(len(users), n_queries, replace=False)],
                                   dtype=np.float32)
    exact = faiss.IndexFlatIP(items.shape[1])
    exact.add(items)
    truth = exact.search(queries, 10)[1]
    n, d = items.shape
    nlist = int(4 * np.sqrt(n))
    configs: list[tuple[str, Any, list[tuple[str, Any]]]] = [
        ("exact (flat)", exact, [("-", None)]),
        ("HNSW M=32", lambda: hnsw(items, 32), [(f"efSearch={e}", ("hnsw", e)) for e in (32, 64, 128, 256)]),
        (f"IVF-Flat nlist={nlist}", lambda: ivf(items, nlist, None),
         [(f"nprobe={p}", ("ivf", p)) for p in (8, 16, 32, 64)]),
        (f"IVF-PQ nlist={nlist} m={d // 4}", lambda: ivf(items, nlist, d // 4),
         [(f"nprobe={p}", ("ivf", p)) for p in (16, 64)]),
    ]
    rows = []
    for name, build, settings in configs:
        start = time.perf_counter()
        index = build() if callable(build) else build
        build_s = round(time.perf_counter() - start, 1)
        for label, setting in settings:
            if setting is not None and setting[0] == "hnsw":
                index.hnsw.efSearch = setting[1]
            elif setting is not None:
                index.nprobe = setting[1]
            found, lat = np.empty((n_queries, 10), np.int64), np.empty(n_queries)
            for q in range(n_queries):
                t = time.perf_counter()
                found[q] = index.search(queries[q: q + 1], 10)[1][0]
                lat[q] = time.perf_counter() - t
            recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)]))
            rows.append({"source": source, "items": n, "dim": d, "index": name, "setting": label,
                         "recall@10": round(recall, 4), "p50_ms": round(float(np.median(lat)) * 1e3, 3),
                         "p99_ms": round(float(np.quantile(lat, 0.99)) * 1e3, 3), "build_s": build_s})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def hnsw(items: np.ndarray, m: int):  # type: ignore[no-untyped-def]
    import faiss

    index = faiss.IndexHNSWFlat(items.shape[1], m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 128
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # build on every core, search on one
    index.add(items)
    faiss.omp_set_num_threads(1)
    return index


def ivf(items: np.ndarray, nlist: int, pq: int | None):  # type: ignore[no-untyped-def]
    import faiss

    quantizer = faiss.IndexFlatIP(items.shape[1])
    index = faiss.IndexIVFFlat(quantizer, items.shape[1], nlist, faiss.METRIC_INNER_PRODUCT) if pq is None else \
        faiss.IndexIVFPQ(quantizer, items.shape[1], nlist, pq, 8, faiss.METRIC_INNER_PRODUCT)
    sample = items[np.random.default_rng(0).choice(len(items), min(len(items), 100 * nlist), replace=False)]
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    index.train(sample)
    index.add(items)
    faiss.omp_set_num_threads(1)
    return index


def ann(args: argparse.Namespace) -> None:
    for source in args.sources:
        for row in ann_rows(source):
            append("ann", row)


# ---------------------------------------------------------------- report
def table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    lines = ["| " + " | ".join(h for h, _ in columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join("—" if r.get(k) is None else f"{r[k]:,}" if isinstance(r.get(k), int)
                                       else str(r[k]) for _, k in columns) + " |")
    return "\n".join(lines)


def report(_: argparse.Namespace) -> None:
    parts = ["# Scale\n", "Written by `python -m benchmarks.scale report` from `benchmarks/results/scale/*.json`; "
             "each section names the command, date, machine and commit of its rows.\n"]
    for section, title, columns in (
        ("ddp", "Data-parallel training: BPR-MF on P1, 1 vs 2 processes (same global batch, same steps)",
         [("processes", "processes"), ("threads each", "threads_per_process"), ("device", "device"),
          ("epochs", "epochs"), ("s / epoch", "s_per_epoch"), ("rows / s", "rows_per_s"),
          ("epoch reaching NDCG@10 ≥ target", "epoch_at_target"), ("train s to target", "train_s_to_target"),
          ("best valid NDCG@10", "best_valid_ndcg@10"), ("wall s (incl. validation, start)", "wall_s")]),
        ("growth", "How cost grows: synthetic catalogue, one epoch (batch 16,384)",
         [("model", "model"), ("×", "factor"), ("users", "n_users"), ("items", "n_items"),
          ("interactions", "interactions"), ("Parquet read s", "read_s"), ("epoch s", "epoch_s"),
          ("fit CPU s", "fit_cpu_s"), ("peak MB", "peak_mb"), ("commit", "code"), ("failed", "failed")]),
        ("ann", "Approximate search on learned item factors (one query at a time, one thread)",
         [("factors", "source"), ("items", "items"), ("dim", "dim"), ("index", "index"), ("setting", "setting"),
          ("recall@10", "recall@10"), ("p50 ms", "p50_ms"), ("p99 ms", "p99_ms"), ("build s", "build_s")]),
    ):
        path = OUT / f"{section}.json"
        if not path.exists():
            parts.append(f"## {title}\n\nNot run yet.\n")
            continue
        rows = [{**r, "code": str(r.get("commit", ""))[:7]} for r in json.loads(path.read_text())]
        runs = {r["command"]: r for r in rows}  # each distinct command once, with its last row's date and commit
        parts.append(f"## {title}\n\n" + "".join(header(r) for r in runs.values()) + f"\n{table(rows, columns)}\n")
    notes = OUT / "notes.md"
    if notes.exists():
        parts.append("## Notes\n\n" + notes.read_text())
    from benchmarks.pages import write

    out = RESULTS / "scale.md"
    atomic_write_text(out, "\n".join(parts))
    print(write("scale").read_text())  # its first screen on top (benchmarks.pages)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["ddp", "growth", "growth-cell", "ann", "report"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--nproc", type=int, default=2, help="ddp on a GPU node: processes (one per GPU)")
    parser.add_argument("--factors", nargs="+", type=int, default=[1, 4, 16])
    parser.add_argument("--models", nargs="+", default=["bpr-mf", "lm-ranker"])
    parser.add_argument("--sources", nargs="+", default=["P1", "P2", "synthetic-16"])
    args = parser.parse_args(argv)
    if args.action == "growth-cell":
        print(json.dumps(growth_cell(args.models[0], args.factors[0])), flush=True)
        return 0
    {"ddp": ddp, "growth": growth, "ann": ann, "report": report}[args.action](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
