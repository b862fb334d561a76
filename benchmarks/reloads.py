"""Reload benchmark: what `POST /admin/reload` costs a running `lmrec serve`, in memory and in time.

Usage::

    HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.reloads [--code DIR] [--label NAME]

A tiny LMRanker (synthetic data, MiniLM through sentence-transformers: a model that refers to itself,
so only the cyclic garbage collector frees it) is published as v0001; v0002 is the same model with
other bytes, v0003 the same with another encoder setting (built anew on load), v0004 a copy with a
NaN weight (refused). On one server:

1. resident memory (VmRSS) after each of 10 reloads that really load (v0002, v0003, v0001, ...);
2. 9 reloads of the served, unchanged version (empty body, ``{}``, the version named);
3. the refused v0004 asked twice;
4. readers' latency (``GET /items/i00000000/similar``, a route that runs in FastAPI's worker threads,
   back to back) for 4 s alone, then for 6 s while 48 clients (more than the 40 worker threads) ask
   for reloads about once a second each.

``--code DIR`` serves another checkout's code (e.g. an older commit, ``git worktree add``), so the
same measurements can be set beside each other; ``--label`` names the rows. Appends to
``benchmarks/results/reloads.json`` and rewrites ``reloads.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from safetensors.numpy import load_file, save_file

from lmrec.data.synthetic import generate
from lmrec.models import LMRanker
from lmrec.models.lm import ItemTower
from lmrec.storage.artifacts import atomic_write_text
from lmrec.storage.versions import ModelStore
from lmrec.text.options import Encoder

from lmrec.study.provenance import RESULTS, header, run_info

KEY = "bench-key"
AUTH = {"X-API-Key": KEY}
ORDER = ["v0002", "v0003", "v0001", "v0003", "v0002", "v0003", "v0001", "v0002", "v0003", "v0001"]


def edit_manifest(folder: Path, change: Any) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def tiny_model() -> LMRanker:
    """The served model: MiniLM through sentence-transformers, d 16, three epochs."""
    return LMRanker(items=ItemTower(dim=16), encoder=Encoder("minilm", backend="sentence-transformers"),
                    cache_dir=None, config={"epochs": 3, "batch_size": 256, "progress": False, "seed": 3})


def build_store(root: Path) -> ModelStore:
    data = generate(n_users=200, n_items=300, n_interactions=3000, n_clusters=6, seed=7)
    model = tiny_model()
    store = ModelStore(root)
    store.publish(model.fit(data))
    for name, change in (("v0002", lambda m: m.update(metrics={"copy": 2.0})),
                         ("v0003", lambda m: m["params"]["encoder"].update(max_length=64)),
                         ("v0004", lambda m: m.update(metrics={"copy": 4.0}))):
        shutil.copytree(root / "v0001", root / name)
        edit_manifest(root / name, change)
    weights = load_file(str(root / "v0004" / "model.safetensors"))
    first = next(k for k, v in weights.items() if v.dtype.kind == "f")
    weights[first] = weights[first].copy()
    weights[first].flat[0] = np.nan
    save_file(weights, str(root / "v0004" / "model.safetensors"))
    store.set_current("v0001")
    return store


def start(store: ModelStore, code: str | None) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "LMREC_API_KEY": KEY}
    if code:
        env["PYTHONPATH"] = code
    proc = subprocess.Popen([sys.executable, "-m", "lmrec.cli", "serve", str(store.root), "--port", str(port),
                             "--log-level", "warning"], env=env, cwd=code or None, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.3)
    raise SystemExit("the server did not start")


def rss_mb(pid: int) -> float:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def reload(url: str, body: dict[str, str] | None) -> tuple[int, float]:
    start_time = time.perf_counter()
    kw: dict[str, Any] = {"content": b""} if body is None else {"json": body}
    r = httpx.post(url + "/admin/reload", headers=AUTH, timeout=300, **kw)
    return r.status_code, time.perf_counter() - start_time


def read_latencies(url: str, stop: threading.Event, out: list[float]) -> None:
    with httpx.Client(timeout=60) as client:
        while not stop.is_set():
            start_time = time.perf_counter()
            client.get(url + "/items/i00000000/similar")
            out.append(time.perf_counter() - start_time)


def storm(url: str) -> dict[str, float]:
    """Readers' p50/p99/max (ms) alone, then while 48 clients ask for reloads about once a second."""
    alone: list[float] = []
    stop = threading.Event()
    reader = threading.Thread(target=read_latencies, args=(url, stop, alone))
    reader.start()
    time.sleep(4)
    stop.set()
    reader.join()
    during: list[float] = []
    stop = threading.Event()

    def ask(i: int) -> None:
        bodies = [{"version": "v0002"}, {"version": "v0001"}, {}]
        while not stop.is_set():
            reload(url, bodies[i % 3])
            i += 1
            stop.wait(1.0)

    threads = [threading.Thread(target=read_latencies, args=(url, stop, during))]
    threads += [threading.Thread(target=ask, args=(i,)) for i in range(48)]
    for t in threads:
        t.start()
    time.sleep(6)
    stop.set()
    for t in threads:
        t.join(300)
    q = {name: np.asarray(v) * 1e3 for name, v in (("alone", alone), ("storm", during))}
    return {f"{name}_{stat}": round(float(f(v)), 1) for name, v in q.items()
            for stat, f in (("p50", np.median), ("p99", lambda a: np.quantile(a, 0.99)), ("max", np.max))}


def measure(code: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        store = build_store(Path(tmp) / "models")
        proc, url = start(store, code)
        try:
            rss, seconds = [], []
            for version in ORDER:
                status, dt = reload(url, {"version": version})
                assert status == 200, f"reload of {version}: {status}"
                httpx.post(url + "/recommendations", json={"profile": f"fruit {version}", "k": 3}, timeout=60)
                rss.append(round(rss_mb(proc.pid)))
                seconds.append(round(dt, 2))
            noop = [reload(url, body)[1] for body in (None, {}, {"version": "v0001"}) * 3]
            refused = [reload(url, {"version": "v0004"}) for _ in range(2)]
            assert all(status == 409 for status, _ in refused), refused
            return {"rss_mb": rss, "reload_seconds": seconds, "noop_median_s": round(statistics.median(noop), 3),
                    "noop_max_s": round(max(noop), 3),
                    "refused_first_s": round(refused[0][1], 2), "refused_again_s": round(refused[1][1], 3),
                    **storm(url)}
        finally:
            proc.terminate()
            proc.wait(30)


def markdown(runs: list[dict[str, Any]]) -> str:
    lines = ["# Reloads: memory and time", "",
             "One `lmrec serve` (a tiny LMRanker, MiniLM through sentence-transformers); ten reloads that load "
             "(v0002 same model other bytes, v0003 another encoder setting, v0001), nine of the served version "
             "unchanged, a refused version (a NaN weight) asked twice, and readers of "
             "`/items/i00000000/similar` (a worker-thread route) alone and while 48 clients ask for reloads about "
             "once a second.", "",
             "| code | RSS after reload 1 → 10 (MB) | no-op reload: median / slowest (s) | refused: first / again (s) | "
             "readers alone p50 / p99 (ms) | during reloads p50 / p99 / max (ms) |", "|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['label']} | {r['rss_mb'][0]} → {r['rss_mb'][-1]} | {r['noop_median_s']} / {r['noop_max_s']} | "
                     f"{r['refused_first_s']} / {r['refused_again_s']} | {r['alone_p50']} / {r['alone_p99']} | "
                     f"{r['storm_p50']} / {r['storm_p99']} / {r['storm_max']} |")
    lines += ["", "## Appendix: each run", ""]
    for r in runs:
        lines += [f"### {r['label']}", "", header(r), f"- RSS after each reload (MB): {r['rss_mb']}",
                  f"- seconds of each reload: {r['reload_seconds']}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code", help="serve this checkout's code instead of the installed lmrec")
    parser.add_argument("--label", default="this commit", help="the name of these rows")
    args = parser.parse_args(argv)
    run = {**run_info(), "label": args.label, "code": args.code, **measure(args.code)}
    path = RESULTS / "reloads.json"
    runs = [r for r in (json.loads(path.read_text())["runs"] if path.exists() else []) if r["label"] != args.label]
    runs.append(run)
    atomic_write_text(path, json.dumps({"runs": runs}, indent=2) + "\n")
    atomic_write_text(RESULTS / "reloads.md", markdown(runs))
    print((RESULTS / "reloads.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
