"""Serving benchmark: HTTP load on a running `lmrec serve`, and in-process ranking latency by catalogue size.

Usage::

    LMREC_DATA_DIR=../shared/datasets HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.serving \
        [--duration 20] [--connections 32] [--workers 1 2] [--sizes 4000 100000 1000000]

1. Trains an LMRanker on P1 (the benchmark's default configuration, few epochs: serving cost does
   not depend on how long it trained), publishes it into a temporary version store and starts
   ``lmrec serve`` on 127.0.0.1. ``wrk`` (Debian package; ``make bench`` installs it) sends
   ``GET /users/{id}/recommendations?k=10`` for random P1 users over ``--connections`` keep-alive
   connections; every answer must be 200. The load generator shares the 2 cores with the server.
2. In-process: top-10 for one user vector against synthetic catalogues (d=64), exact search vs
   faiss HNSW, with HNSW's recall@10 against exact.

Writes ``benchmarks/results/serving.md`` and ``serving.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from lmrec.data import get_protocol
from lmrec.models import LMRanker
from lmrec.models.lm import Cosine, ItemTower
from lmrec.serving.index import ExactIndex, HNSWIndex
from lmrec.storage.artifacts import atomic_write_text
from lmrec.storage.versions import ModelStore
from lmrec.training.negatives import Uniform

from lmrec.study.provenance import RESULTS, header, run_info

CACHE = str(Path.home() / ".cache" / "lmrec" / "embeddings")
LUA = """
math.randomseed(42)
local users = {%s}
request = function()
  return wrk.format("GET", "/users/" .. users[math.random(#users)] .. "/recommendations?k=10")
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT {\\"requests\\": %%d, \\"seconds\\": %%f, \\"p50_us\\": %%d, \\"p90_us\\": %%d, "
    .. "\\"p99_us\\": %%d, \\"max_us\\": %%d, \\"connect\\": %%d, \\"read\\": %%d, \\"write\\": %%d, \\"status\\": %%d, "
    .. "\\"timeout\\": %%d}\\n", summary.requests, summary.duration / 1e6, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def serving_model(epochs: int) -> LMRanker:
    """The served model: cosine / sampled softmax on 64 uniform negatives, mean tower, d 64."""
    return LMRanker(items=ItemTower(dim=64), loss="softmax", scorer=Cosine(0.07), negatives=Uniform(64),
                    cache_dir=CACHE, config={"epochs": epochs, "batch_size": 1024, "progress": False})


def p1_store(data_dir: str | None, root: Path, epochs: int) -> tuple[ModelStore, list[str]]:
    split = get_protocol("P1", data_dir)
    model = serving_model(epochs)
    model.fit(split.train)
    store = ModelStore(root)
    store.publish(model)
    return store, [str(u) for u in model.user_ids_.tolist()]


def start_server(store: ModelStore, workers: int) -> tuple[subprocess.Popen, str]:
    port = 18000 + workers
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "lmrec.cli", "serve", str(store.root), "--port", str(port),
                             "--workers", str(workers), "--log-level", "warning"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    return proc, url


def load_test(url: str, users: list[str], duration: int, connections: int) -> dict[str, Any]:
    for u in users[:200]:  # warm-up; also checks the route answers
        assert httpx.get(f"{url}/users/{u}/recommendations?k=10").status_code == 200
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(LUA % ",".join(f'"{u}"' for u in users))
    out = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{duration}s", "--timeout", "5s",
                          "-s", f.name, url], capture_output=True, text=True, check=True).stdout
    res = json.loads(re.search(r"RESULT (\{.*\})", out).group(1))  # type: ignore[union-attr]
    res["rps"] = res["requests"] / res["seconds"]
    res["errors"] = sum(res[k] for k in ("connect", "read", "write", "status", "timeout"))
    return res


def in_process(sizes: list[int], ef_search: list[int], queries: int = 200, dim: int = 64) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    rows = []
    for n in sizes:
        v = rng.normal(size=(n, dim)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        q = rng.normal(size=(queries, dim)).astype(np.float32)
        exact = ExactIndex(v)
        t_exact, truth = [], []
        for x in q:
            t0 = time.perf_counter()
            truth.append(exact.search(x, 10)[0])
            t_exact.append(time.perf_counter() - t0)
        row: dict[str, Any] = {"items": n, "exact_p50_ms": 1e3 * np.median(t_exact),
                               "exact_p99_ms": 1e3 * np.quantile(t_exact, 0.99)}
        t0 = time.perf_counter()
        hnsw = HNSWIndex(v, m=16, ef_construction=40, ef_search=64)
        build = time.perf_counter() - t0
        for ef in ef_search:
            hnsw.ef_search = ef
            t_h, recall = [], []
            for x, t in zip(q, truth):
                t0 = time.perf_counter()
                got = hnsw.search(x, 10)[0]
                t_h.append(time.perf_counter() - t0)
                recall.append(len(set(got.tolist()) & set(t.tolist())) / 10)
            r = {**row, "hnsw_build_s": build, "ef_search": ef, "hnsw_p50_ms": 1e3 * np.median(t_h),
                 "hnsw_p99_ms": 1e3 * np.quantile(t_h, 0.99), "hnsw_recall_at_10": float(np.mean(recall))}
            print(f"  {n} items: {r}", flush=True)
            rows.append(r)
    return rows


def markdown(res: dict[str, Any]) -> str:
    lines = ["# Serving benchmark", "", header(res).rstrip("\n"),
             "- the server and the load generator share the machine's cores",
             f"- model: LMRanker on P1 ({res['users']} users, {res['items']} items; cosine/softmax, mean tower, "
             f"{res['epochs']} epochs), exact index; route `GET /users/{{id}}/recommendations?k=10`, random users;",
             f"  wrk, 2 threads, {res['connections']} connections, {res['duration']} s per run. "
             "Target: ≥ 1,000 requests/s, p99 < 50 ms, 0 errors.", "",
             "| uvicorn workers | requests | requests/s | p50 ms | p90 ms | p99 ms | max ms | errors |",
             "|---|---|---|---|---|---|---|---|"]
    for r in res["http"]:
        lines.append(f"| {r['workers']} | {r['requests']} | {r['rps']:.0f} | {r['p50_us'] / 1e3:.2f} | "
                     f"{r['p90_us'] / 1e3:.2f} | {r['p99_us'] / 1e3:.2f} | {r['max_us'] / 1e3:.1f} | {r['errors']} |")
    lines += ["", "## In-process top-10 latency per user vector (synthetic unit vectors, d=64, 200 queries)", "",
              "| items | exact p50 ms | exact p99 ms | HNSW build s | efSearch | HNSW p50 ms | HNSW p99 ms "
              "| HNSW recall@10 vs exact |", "|---|---|---|---|---|---|---|---|"]
    for r in res["in_process"]:
        lines.append(f"| {r['items']:,} | {r['exact_p50_ms']:.3f} | {r['exact_p99_ms']:.3f} | {r['hnsw_build_s']:.1f} | "
                     f"{r.get('ef_search', 64)} | {r['hnsw_p50_ms']:.3f} | {r['hnsw_p99_ms']:.3f} | {r['hnsw_recall_at_10']:.3f} |")
    lines += ["", "HNSW: faiss IndexHNSWFlat, inner product, M=16, efConstruction=40. Synthetic unit vectors "
              "drawn uniformly on the sphere are a hard case for graph indexes (no cluster structure); "
              "`lmrec serve --index auto` switches to HNSW from 200,000 items.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[4000, 100_000, 1_000_000])
    parser.add_argument("--ef-search", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--in-process-only", action="store_true",
                        help="rerun only the in-process section, keeping the HTTP rows of serving.json")
    args = parser.parse_args(argv)
    res: dict[str, Any] = {**run_info(), "duration": args.duration, "connections": args.connections,
                           "epochs": args.epochs, "http": []}
    if args.in_process_only:
        old = json.loads((RESULTS / "serving.json").read_text())
        res.update({k: old[k] for k in ("http", "users", "items", "duration", "connections", "epochs")})
        res["command"] = f"{old['command']} (commit {old.get('commit', 'not recorded')}) and {res['command']}"
    else:
        run_http(res, args)
    res["in_process"] = in_process(args.sizes, args.ef_search)
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / "serving.json", json.dumps(res, indent=2, default=float) + "\n")
    atomic_write_text(RESULTS / "serving.md", markdown(res))
    print((RESULTS / "serving.md").read_text())
    return 0


def run_http(res: dict[str, Any], args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store, users = p1_store(args.data_dir, Path(tmp) / "models", args.epochs)
        res["users"], res["items"] = len(users), json.loads((store.current_path() / "manifest.json").read_text())["n_items"]
        for workers in args.workers:
            proc, url = start_server(store, workers)
            try:
                r = load_test(url, users, args.duration, args.connections)
            finally:
                proc.terminate()
                proc.wait(30)
            r["workers"] = workers
            print(f"  workers={workers}: {r}", flush=True)
            res["http"].append(r)


if __name__ == "__main__":
    sys.exit(main())
