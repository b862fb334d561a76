"""Reloads against a real `lmrec serve`: a replaced model is released, an unchanged version is a
no-op, a refused version is remembered by content, and a storm of reloads runs one check at a time
while readers keep their latency. /metrics says what ran (checks in a child process, outcomes)."""
from __future__ import annotations

import os
import shutil
import statistics
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from lmrec.errors import ArtifactError
from lmrec.models import LMRanker
from lmrec.models.lm import ItemTower
from lmrec.serving import validate
from lmrec.serving.validate import KnownRefusal, LoadSettings, Verdicts, check_in_child
from lmrec.text.options import Encoder
from lmrec.training import TrainConfig
from tests.serving.conftest import API_KEY, HealthProbe, Server, new_store
from tests.serving.test_refused_versions import edit_arrays, edit_manifest, nan_weight
from tests.serving.test_validate import fake_python

AUTH = {"X-API-Key": API_KEY}


def reload(server: Server, body: dict | None) -> tuple[httpx.Response, float]:
    """POST /admin/reload (``None``: an empty body); the answer and its seconds."""
    start = time.perf_counter()
    kw = {"content": b""} if body is None else {"json": body}
    r = httpx.post(server.url + "/admin/reload", headers=AUTH, timeout=120, **kw)
    return r, time.perf_counter() - start


def metric(server: Server, name: str, **labels: str) -> float:
    """One sample of /metrics (0 when absent)."""
    want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else "")
    for line in httpx.get(server.url + "/metrics").text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return 0.0


def checks(server: Server) -> float:
    return metric(server, "lmrec_version_checks_total")


def rss_mb(server: Server) -> float:
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS line")


def check_processes(server: Server) -> int:
    """Child processes of the server that check a version now (Linux: /proc/PID/task/*/children)."""
    n = 0
    for children in Path(f"/proc/{server.proc.pid}/task").glob("*/children"):
        try:
            for pid in children.read_text().split():
                n += b"lmrec.serving.validate" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:  # a thread or child that just ended
            continue
    return n


def test_verdicts_read_files_only_when_their_stamp_changed(tiny_model, tmp_path, monkeypatch):
    folder = tmp_path / "v0001"
    shutil.copytree(tiny_model, folder)
    reads: list[Path] = []
    digest = validate.content_digest
    monkeypatch.setattr(validate, "content_digest", lambda f: reads.append(f) or digest(f))
    verdicts = Verdicts()
    first = verdicts.identify(folder)
    assert verdicts.identify(folder) == first and len(reads) == 1, "an unchanged stamp: no file read"
    for f in folder.iterdir():
        os.utime(f)
    assert verdicts.identify(folder) == first and len(reads) == 2, "touched: read again, same content"
    verdicts.refuse(first, "bad weights")
    with pytest.raises(KnownRefusal, match="^bad weights \\(refused before"):
        verdicts.check(first)
    edit_manifest(folder, lambda m: m.update(metrics={"note": 1.0}))
    changed = verdicts.identify(folder)
    assert changed != first and not verdicts.passed(changed)
    verdicts.check(changed)  # new content: not refused
    verdicts.accept(changed)
    assert verdicts.passed(changed)


def test_the_check_process_yields_the_cpu(tmp_path, monkeypatch):
    if not hasattr(os, "setpriority"):
        pytest.skip("no process priorities on this system")
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    script = 'sleep 0.5; echo "{\\"ok\\": false, \\"error\\": \\"niceness $(nice)\\"}"; exit 1'
    monkeypatch.setattr("sys.executable", fake_python(tmp_path, script))
    with pytest.raises(ArtifactError, match=f"^niceness {min(mine + validate.CHECK_NICENESS, 19)}$"):
        check_in_child(tmp_path, LoadSettings())


@pytest.fixture(scope="module")
def st_model(tmp_path_factory, tiny_data) -> Path:
    """A tiny LMRanker whose encoder is a sentence-transformers model: such a model refers to itself
    (through its model card), so only the cyclic garbage collector frees it."""
    encoder = Encoder("minilm", backend="sentence-transformers")
    cfg = TrainConfig(epochs=5, batch_size=16, lr=0.05, progress=False, seed=3)
    model = LMRanker(items=ItemTower(dim=8), encoder=encoder, cache_dir=None, config=cfg).fit(tiny_data)
    path = tmp_path_factory.mktemp("st") / "model"
    model.save(path)
    return path


def test_replaced_models_are_released(st_model, serve, tmp_path):
    store = new_store(st_model, tmp_path / "models")
    shutil.copytree(st_model, store.root / "v0002")  # v0002: the same model and encoder, other bytes
    edit_manifest(store.root / "v0002", lambda m: m.update(metrics={"note": 2.0}))
    shutil.copytree(st_model, store.root / "v0003")  # v0003: another encoder setting, built anew
    edit_manifest(store.root / "v0003", lambda m: m["params"]["encoder"].update(max_length=64))
    server = serve(store.root)
    before = checks(server)
    order = ["v0002", "v0003", "v0001", "v0003", "v0002", "v0003", "v0001", "v0002", "v0003", "v0001"]
    rss = []
    for version in order:
        r, _ = reload(server, {"version": version})
        assert r.status_code == 200 and r.json()["changed"] and r.json()["version"] == version, r.text
        r = httpx.post(server.url + "/recommendations", json={"profile": f"fruit {version}", "k": 3})  # uses the encoder
        assert r.status_code == 200, r.text
        rss.append(rss_mb(server))
    assert rss[-1] <= 1.1 * rss[0], f"RSS after each reload (MB): {[round(x) for x in rss]}"
    assert metric(server, "lmrec_reloads_total", outcome="loaded") == len(order)
    assert checks(server) - before == 2, "v0002 and v0003 are checked once each; v0001 passed at start-up"
    assert metric(server, "lmrec_encoders_shared_total") == 2, "v0001 <-> v0002 keep the served encoder"


def test_an_unchanged_version_is_a_no_op(store, serve):
    server = serve(store.root, "--watch", "0.2")
    loaded_at = httpx.get(server.url + "/health").json()["loaded_at"]
    before = checks(server)
    seconds = []
    for body in (None, {}, {"version": "v0001"}) * 3:
        r, dt = reload(server, body)
        assert r.status_code == 200, r.text
        assert r.json() == {"previous": "v0001", "version": "v0001", "changed": False}
        seconds.append(dt)
    assert statistics.median(seconds) < 0.1, f"no-op reloads took {[round(s, 3) for s in seconds]} s"
    for f in (store.root / "v0001").iterdir():  # new times, same bytes: the content digest decides
        os.utime(f)
    r, _ = reload(server, {"version": "v0001"})
    assert r.status_code == 200 and not r.json()["changed"]
    time.sleep(1.0)  # several watch intervals: the watcher loads nothing either
    assert checks(server) == before and metric(server, "lmrec_reloads_total", outcome="loaded") == 0
    assert metric(server, "lmrec_reloads_total", outcome="unchanged") == 10
    assert httpx.get(server.url + "/health").json()["loaded_at"] == loaded_at
    # the served version rewritten in place with other bytes: the watcher checks and loads it
    edit_manifest(store.root / "v0001", lambda m: m.update(metrics={"note": 1.0}))
    deadline = time.time() + 60
    while time.time() < deadline and httpx.get(server.url + "/health").json()["loaded_at"] == loaded_at:
        time.sleep(0.2)
    assert httpx.get(server.url + "/health").json()["loaded_at"] != loaded_at
    assert checks(server) == before + 1


def test_a_refused_version_is_remembered_until_its_files_change(store, serve, tiny_model):
    shutil.copytree(tiny_model, store.root / "v0002")
    edit_manifest(store.root / "v0002", lambda m: m.update(metrics={"note": 2.0}))  # repaired, it is new content
    edit_arrays(store.root / "v0002", nan_weight)
    server = serve(store.root)
    before = checks(server)
    first, _ = reload(server, {"version": "v0002"})
    assert first.status_code == 409 and "non-finite" in first.json()["detail"], first.text
    assert checks(server) == before + 1
    for f in (store.root / "v0002").iterdir():
        os.utime(f)  # touched, not changed
    shutil.copytree(store.root / "v0002", store.root / "v0003")  # the same content under another name
    for version in ("v0002", "v0003"):
        again, dt = reload(server, {"version": version})
        assert again.status_code == 409, again.text
        detail = again.json()["detail"]
        assert "non-finite" in detail and "not checked again" in detail and "still serving v0001" in detail, detail
        assert dt < 1.0, f"a remembered refusal took {dt:.2f} s"
    assert checks(server) == before + 1, "no second check process"
    assert metric(server, "lmrec_reloads_total", outcome="refused") == 3
    shutil.copy(tiny_model / "model.safetensors", store.root / "v0002" / "model.safetensors")  # repaired
    r, _ = reload(server, {"version": "v0002"})
    assert r.status_code == 200 and r.json()["version"] == "v0002" and r.json()["changed"], r.text
    assert checks(server) == before + 2


def p(latencies: list[float], q: float) -> float:
    return float(np.quantile(latencies, q))


def test_a_reload_storm_runs_one_check_at_a_time_and_readers_do_not_wait(store, serve, tiny_model):
    shutil.copytree(tiny_model, store.root / "v0002")  # v0002: other bytes, so checked once
    edit_manifest(store.root / "v0002", lambda m: m.update(metrics={"note": 2.0}))
    server = serve(store.root)
    answers: list[tuple[int, str, float]] = []
    most_checks, stop, wave = [0], threading.Event(), threading.Event()

    def storm(i: int) -> None:  # a first wave of more reloads than FastAPI has worker threads (40), then ~1/s each
        bodies = [{"version": "v0002"}, {"version": "v0001"}, {}]
        with httpx.Client(timeout=120, headers=AUTH) as client:
            wave.wait()
            while not stop.is_set():
                start = time.perf_counter()
                r = client.post(server.url + "/admin/reload", json=bodies[i % 3])
                answers.append((r.status_code, r.text, time.perf_counter() - start))
                stop.wait(0.8 + 0.4 * (i % 5) / 5)
                i += 1

    def watch_children() -> None:
        while not stop.is_set():
            most_checks[0] = max(most_checks[0], check_processes(server))
            time.sleep(0.02)

    threads = [threading.Thread(target=storm, args=(i,)) for i in range(48)]
    for t in threads:  # their clients made before the baseline: the test's own work weighs on both
        t.start()
    readers = [HealthProbe(server, every=0.01, path=path) for path in ("/users/u00/recommendations",  # event loop
                                                                        "/items/0/similar")]  # worker thread
    with readers[0], readers[1]:
        time.sleep(3.0)
        baseline = [r.take() for r in readers]
        threads.append(threading.Thread(target=watch_children))
        threads[-1].start()
        wave.set()
        time.sleep(8.0)
        stop.set()
        for t in threads:
            t.join(120)
        during = [r.take() for r in readers]
    assert most_checks[0] == 1, f"at most one check process at a time; saw {most_checks[0]}"
    assert checks(server) == 2, "v0001 at start-up, v0002 once"
    statuses = {s for s, _, _ in answers}
    assert statuses <= {200, 409} and 200 in statuses, statuses
    busy = [dt for s, text, dt in answers if s == 409]
    assert busy and all("in progress" in text for s, text, _ in answers if s == 409)
    assert max(busy) < 1.0, f"a busy answer waited {max(busy):.2f} s"
    for route, base, storm_answers in zip(("recommendations", "similar"), baseline, during):
        assert {s for s, _ in base + storm_answers} == {200}, route
        b, d = [t for _, t in base], [t for _, t in storm_answers]
        print(f"{route}: baseline p50 {p(b, .5) * 1e3:.1f} ms p99 {p(b, .99) * 1e3:.1f} ms max {max(b) * 1e3:.1f} ms "
              f"({len(b)}); storm p50 {p(d, .5) * 1e3:.1f} ms p99 {p(d, .99) * 1e3:.1f} ms max {max(d) * 1e3:.1f} ms "
              f"({len(d)}); reloads {len(answers)}, busy {len(busy)}")
        assert p(d, .99) < p(b, .99) + 0.1, f"{route}: p99 {p(d, .99):.3f} s during the storm, {p(b, .99):.3f} s before"
        assert max(d) < 1.0, f"{route}: a read waited {max(d):.2f} s during the storm"


def test_a_check_that_timed_out_is_not_remembered(store, tiny_model, monkeypatch):
    """A timeout says the machine was busy as much as anything about the content: asked again, the
    version is checked again (and loads), where a refusal would be answered from memory."""
    from lmrec.serving import state as served_state
    from lmrec.serving.config import ServeConfig
    from lmrec.serving.service import ServiceState
    from lmrec.serving.validate import CheckTimedOut

    service = ServiceState(ServeConfig(model=str(store.root)))
    shutil.copytree(tiny_model, store.root / "v0002")
    edit_manifest(store.root / "v0002", lambda m: m.update(metrics={"note": 2.0}))
    calls: list[Path] = []

    def busy_once(path: Path, settings: LoadSettings) -> None:
        calls.append(path)
        if len(calls) == 1:
            raise CheckTimedOut(f"{path}: loading and checking it took longer than 1 s.")

    monkeypatch.setattr(served_state, "check_in_child", busy_once)
    with pytest.raises(CheckTimedOut):
        service.reload("v0002")
    assert service.served.version == "v0001"
    assert service.reload("v0002").changed and service.served.version == "v0002" and len(calls) == 2
