"""A tiny trained LMRanker in a version store, and real uvicorn servers started on it."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
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
    root = tmp_path / "models"
    root.mkdir()
    shutil.copytree(tiny_model, root / "v0001")
    ModelStore(root).set_current("v0001")
    return ModelStore(root)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``lmrec serve`` in a subprocess on 127.0.0.1."""

    def __init__(self, model_dir: Path, *args: str, api_key: str | None = API_KEY, events: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
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
