"""Crashes and swaps: kill -9 while events stream, corrupt model versions, reloads under load."""
from __future__ import annotations

import shutil
import threading
import time

import httpx

from lmrec.models.base import Recommender
from lmrec.serving.events import SQLiteEventStore
from tests.serving.conftest import API_KEY

AUTH = {"X-API-Key": API_KEY}


def test_kill_9_loses_no_acknowledged_event(store, serve, tmp_path):
    db = tmp_path / "events.db"
    server = serve(store.root, events=db)
    acked: list[tuple[int, int, list[str]]] = []
    stop = threading.Event()

    def stream() -> None:
        i = 0
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                batch = [{"user": f"s{i}-{j}", "item": "1", "timestamp": 1e9 + i} for j in range(5)]
                try:
                    r = client.post(server.url + "/events", json={"events": batch}, headers=AUTH)
                except httpx.HTTPError:
                    return  # the server died mid-request: this batch was never acknowledged
                if r.status_code == 200:
                    acked.append((r.json()["first_id"], r.json()["last_id"], [e["user"] for e in batch]))
                i += 1

    threads = [threading.Thread(target=stream) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(3.0)
    server.kill()  # SIGKILL: no shutdown handler runs
    stop.set()
    for t in threads:
        t.join(15)
    assert len(acked) > 20, "the stream should have been acknowledged many times before the kill"
    restarted = serve(store.root, events=db)  # the store opens cleanly after the crash
    assert httpx.get(restarted.url + "/health").status_code == 200
    stored = SQLiteEventStore(db).events()
    by_id = dict(zip(stored["id"], stored["user"]))
    for first, last, users in acked:
        assert [by_id.get(i) for i in range(first, last + 1)] == users


def test_corrupt_or_half_written_versions_are_refused(store, serve, tiny_model):
    server = serve(store.root)
    before = httpx.get(server.url + "/users/u00/recommendations").json()["items"]
    # a half-written version: manifest present, weights truncated
    shutil.copytree(tiny_model, store.root / "v0002")
    weights = store.root / "v0002" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    # a version whose manifest is not JSON
    shutil.copytree(tiny_model, store.root / "v0003")
    (store.root / "v0003" / "manifest.json").write_text('{"format_version": 1, "kind": "mod')
    for version, message in (("v0002", "model.safetensors"), ("v0003", "manifest.json")):
        r = httpx.post(server.url + "/admin/reload", json={"version": version}, headers=AUTH, timeout=60)
        assert r.status_code == 409, r.text
        assert "still serving v0001" in r.json()["detail"] and message in r.json()["detail"]
        assert httpx.get(server.url + "/users/u00/recommendations").json()["items"] == before
    # a promoted (CURRENT) corrupt version does not stop a restart-free server either
    store.set_current("v0002")
    r = httpx.post(server.url + "/admin/reload", json={}, headers=AUTH, timeout=60)
    assert r.status_code == 409 and httpx.get(server.url + "/health").json()["version"] == "v0001"


def test_reload_under_load_drops_no_request(store, serve, tiny_model):
    model = Recommender.load(tiny_model)
    store.publish(model, make_current=False)  # v0002, same weights, a different version name
    server = serve(store.root)
    results: list[int] = []
    versions: set[str] = set()
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                try:
                    r = client.get(server.url + "/users/u03/recommendations", params={"k": 5})
                    results.append(r.status_code)
                    versions.add(r.json()["version"])
                except httpx.HTTPError:
                    results.append(-1)

    threads = [threading.Thread(target=load) for _ in range(6)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    for target in ("v0002", "v0001", "v0002"):
        r = httpx.post(server.url + "/admin/reload", json={"version": target}, headers=AUTH, timeout=60)
        assert r.status_code == 200 and r.json()["version"] == target
        time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(30)
    assert len(results) > 50 and set(results) == {200}, f"failed requests: {[c for c in results if c != 200][:5]}"
    assert versions == {"v0001", "v0002"}


def test_watch_picks_up_a_promoted_version(store, serve, tiny_model):
    server = serve(store.root, "--watch", "0.5")
    assert httpx.get(server.url + "/health").json()["version"] == "v0001"
    store.publish(Recommender.load(tiny_model))  # v0002 becomes CURRENT
    deadline = time.time() + 30
    while time.time() < deadline and httpx.get(server.url + "/health").json()["version"] != "v0002":
        time.sleep(0.3)
    assert httpx.get(server.url + "/health").json()["version"] == "v0002"
