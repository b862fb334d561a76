"""A tiny trained LMRanker in a version store, and real uvicorn servers started on it."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from lmrec.models import LMRanker
from lmrec.models.lm import ItemTower
from lmrec.storage.versions import ModelStore
from lmrec.training import TrainConfig

API_KEY = "test-key"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tiny_data):
    cfg = TrainConfig(epochs=80, batch_size=16, lr=0.05, progress=False, seed=3)
    model = LMRanker(items=ItemTower(dim=8), cache_dir=str(tmp_path_factory.mktemp("cache")), config=cfg).fit(tiny_data)
    path = tmp_path_factory.mktemp("trained") / "model"
    model.save(path)
    return path


@pytest.fixture
def store(tiny_model, tmp_path) -> ModelStore:
    """A fresh version store whose v0001 is the tiny model."""
    return new_store(tiny_model, tmp_path / "models")


def new_store(tiny_model: Path, root: Path) -> ModelStore:
    """A version store at ``root`` whose v0001 (CURRENT) is a copy of the tiny model."""
    root.mkdir()
    shutil.copytree(tiny_model, root / "v0001")
    store = ModelStore(root)
    store.set_current("v0001")
    return store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``lmrec serve`` in a subprocess on 127.0.0.1."""

    def __init__(self, model_dir: Path, *args: str, api_key: str | None = API_KEY, events: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.root = Path(model_dir)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **(env or {})}
        env.pop("LMREC_API_KEY", None)
        if api_key:
            env["LMREC_API_KEY"] = api_key
        cmd = [sys.executable, "-m", "lmrec.cli", "serve", str(model_dir), "--port", str(self.port),
               "--log-level", "warning", *args]
        if events is not None:
            cmd += ["--events", str(events)]
        self.log = Path(model_dir).parent / f"server-{self.port}.log"
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        self.wait_ready()

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log.read_text()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def serve() -> Iterator:
    """serve(model_dir, *args, api_key=..., events=...) -> a running Server, stopped after the test."""
    servers: list[Server] = []

    def start(model_dir: Path, *args: str, **kw) -> Server:
        servers.append(Server(model_dir, *args, **kw))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


class HealthProbe:
    """Asks ``path`` (``/health``) every ``every`` seconds on one kept-alive connection while an attack
    runs, recording each answer's status and latency; ``check()`` asserts all were 200 within
    ``limit`` s, ``take()`` hands over the answers so far.

    >>> with HealthProbe(server) as probe:   # doctest: +SKIP
    ...     attack()
    >>> probe.check()                         # doctest: +SKIP
    """

    def __init__(self, server: Server, every: float = 0.05, limit: float = 0.25, path: str = "/health") -> None:
        self.url, self.every, self.limit = server.url + path, every, limit
        self.answers: list[tuple[int, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                start = time.perf_counter()
                try:
                    status = client.get(self.url).status_code
                except httpx.HTTPError:
                    status = -1
                self.answers.append((status, time.perf_counter() - start))
                self._stop.wait(self.every)

    def _wait_for(self, n: int, timeout: float = 15.0) -> None:
        deadline = time.time() + timeout
        while len(self.answers) < n and time.time() < deadline:
            time.sleep(0.01)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        self._wait_for(1)  # probing before the attack starts
        return self

    def __exit__(self, *exc: object) -> None:
        self._wait_for(len(self.answers) + 2)  # and after it ends
        self._stop.set()
        self._thread.join(15)

    def take(self) -> list[tuple[int, float]]:
        """The answers so far, forgotten here."""
        taken, self.answers = self.answers, []
        return taken

    def check(self) -> None:
        assert self.answers, "the probe asked nothing"
        bad = [(s, round(t, 3)) for s, t in self.answers if s != 200 or t > self.limit]
        worst = max(t for _, t in self.answers)
        assert not bad, f"/health failed or took over {self.limit} s in {len(bad)} of {len(self.answers)} probes: " \
                        f"{bad[:5]} (slowest {worst:.3f} s)"
