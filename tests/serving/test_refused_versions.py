"""Hostile model versions against a real `lmrec serve`: each is refused with 409 while the old model
keeps serving and /health stays fast; a bad CURRENT at start-up ends with a message, not a crash."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import httpx
import numpy as np
from safetensors.numpy import load_file, save_file

from tests.serving.conftest import API_KEY, HealthProbe

AUTH = {"X-API-Key": API_KEY}


def edit_arrays(folder: Path, change: Callable[[dict[str, np.ndarray]], None]) -> None:
    arrays = load_file(str(folder / "model.safetensors"))
    change(arrays)
    save_file(arrays, str(folder / "model.safetensors"))


def edit_manifest(folder: Path, change: Callable[[dict], None]) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def corrupt_indices(a: dict[str, np.ndarray]) -> None:
    a["train.indices"] = a["train.indices"].copy()
    a["train.indices"][3] = 10**9  # far past the last item: scipy/torch would read out of bounds


def unsorted_row(a: dict[str, np.ndarray]) -> None:
    a["train.indices"] = a["train.indices"].copy()
    a["train.indices"][[0, 1]] = a["train.indices"][[1, 0]]  # user 0's first two items, swapped


def nan_weight(a: dict[str, np.ndarray]) -> None:
    a["net.items.proj.weight"] = a["net.items.proj.weight"].copy()
    a["net.items.proj.weight"][0, 0] = np.nan


def duplicate_items(m: dict) -> None:
    m["item_ids"][1] = m["item_ids"][0]


def too_few_users(m: dict) -> None:
    m["user_ids"] = m["user_ids"][:-1]


def foreign_encoder(m: dict) -> None:
    m["params"]["encoder"] = "/tmp/somewhere/else"  # a path, not a registered name


BAD_VERSIONS = [  # (how the copy of v0001 is spoiled, words the 409 must contain)
    (lambda v: edit_arrays(v, corrupt_indices), "'train' matrix is corrupt"),
    (lambda v: edit_arrays(v, unsorted_row), "not sorted"),
    (lambda v: edit_arrays(v, nan_weight), "non-finite"),
    (lambda v: edit_manifest(v, duplicate_items), "item_ids are not unique"),
    (lambda v: edit_manifest(v, too_few_users), "user_ids for 20 users"),
    (lambda v: edit_manifest(v, foreign_encoder), "params.encoder.model"),
]


def reload(server, version: str | None) -> httpx.Response:
    return httpx.post(server.url + "/admin/reload", json={} if version is None else {"version": version},
                      headers=AUTH, timeout=120)


def test_every_bad_version_is_refused_and_the_old_one_keeps_serving(store, serve, tiny_model):
    server = serve(store.root)
    before = httpx.get(server.url + "/users/u00/recommendations").json()["items"]
    for n, (spoil, words) in enumerate(BAD_VERSIONS, start=2):
        folder = store.root / f"v{n:04d}"
        shutil.copytree(tiny_model, folder)
        spoil(folder)
        with HealthProbe(server) as probe:
            r = reload(server, folder.name)
        assert r.status_code == 409, r.text
        detail = r.json()["detail"]
        assert "still serving v0001" in detail and words in detail, detail
        assert httpx.get(server.url + "/users/u00/recommendations").json()["items"] == before
        probe.check()
    assert httpx.get(server.url + "/health").json()["version"] == "v0001"


def test_versions_are_names_inside_the_store(store, serve):
    server = serve(store.root)
    with HealthProbe(server) as probe:
        for name in ("../v0001", "/etc", str(store.root / "v0001"), "v0001/../v0001", ".", "..", "v0001/",
                     "v0001\n", "CURRENT", "events.db", "v1", "v0009"):
            r = reload(server, name)
            assert r.status_code == 409 and "still serving v0001" in r.json()["detail"], (name, r.text)
    probe.check()
    r = reload(server, "x" * 300)
    assert r.status_code == 422 and "version" in r.json()["detail"]


def test_links_out_of_the_store_are_refused(store, serve, tiny_model, tmp_path):
    outside = tmp_path / "outside"
    shutil.copytree(tiny_model, outside)
    (store.root / "v0002").symlink_to(outside, target_is_directory=True)  # the whole version
    shutil.copytree(tiny_model, store.root / "v0003")  # one file of a version
    (store.root / "v0003" / "model.safetensors").unlink()
    (store.root / "v0003" / "model.safetensors").symlink_to(outside / "model.safetensors")
    os.symlink(store.root / "v0001", store.root / "v0004")  # a link that stays inside is fine
    server = serve(store.root)
    with HealthProbe(server) as probe:
        for version in ("v0002", "v0003"):
            r = reload(server, version)
            assert r.status_code == 409 and "outside the store" in r.json()["detail"], r.text
        r = reload(server, "v0004")
    assert r.status_code == 200 and r.json()["version"] == "v0004"
    probe.check()


def test_a_bad_current_at_start_up_ends_with_a_message(store, tiny_model):
    shutil.copytree(tiny_model, store.root / "v0002")
    edit_arrays(store.root / "v0002", corrupt_indices)
    store.set_current("v0002")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "LMREC_API_KEY": API_KEY}
    cmd = [sys.executable, "-m", "lmrec.cli", "serve", str(store.root), "--port", "9"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "lmrec: error:" in done.stderr and "'train' matrix is corrupt" in done.stderr
    assert "Traceback" not in done.stderr
    (store.root / "CURRENT").write_text("../../etc\n")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 2 and "not a version folder" in done.stderr and "Traceback" not in done.stderr


def test_watch_keeps_serving_through_a_bad_promotion(store, serve, tiny_model):
    server = serve(store.root, "--watch", "0.3")
    shutil.copytree(tiny_model, store.root / "v0002")
    edit_arrays(store.root / "v0002", corrupt_indices)
    with HealthProbe(server) as probe:
        store.set_current("v0002")
        deadline = time.monotonic() + 120  # the check runs in a child process: seconds, more on a loaded machine
        while "watch: not reloading" not in server.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.3)
        time.sleep(6)  # twenty more watch intervals: the refusal is remembered (no second check, no reload loop)
    probe.check()
    assert server.proc.poll() is None and httpx.get(server.url + "/health").json()["version"] == "v0001"
    assert server.log.read_text().count("watch: not reloading") == 1
    shutil.copytree(tiny_model, store.root / "v0003")
    store.set_current("v0003")
    deadline = time.time() + 60
    while time.time() < deadline and httpx.get(server.url + "/health").json()["version"] != "v0003":
        time.sleep(0.3)
    assert httpx.get(server.url + "/health").json()["version"] == "v0003"
