"""The HTTP ranking service: ``create_app(ServeConfig(...))``, served by uvicorn (``lmrec serve``).

Read routes rank, explain and describe; write routes (``/items``, ``/events``, ``/admin/*``)
need the API key in the ``X-API-Key`` header. Errors are JSON ``{"detail": "..."}``: unknown
user or item 404, bad parameters 422, oversized batches 413, a refused model reload 409.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any, AsyncIterator

import numpy as np
import pandas as pd
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response

from lmrec.errors import ArtifactError, ConfigError
from lmrec.models.capabilities import AddsItems
from lmrec.serving import schemas as S
from lmrec.serving.events import Event, EventStore, open_event_store
from lmrec.serving.metrics import MetricsMiddleware, ServiceMetrics
from lmrec.serving.state import NotFound, ServedModel
from lmrec.storage.versions import ModelStore

log = logging.getLogger("lmrec.serve")
CONFIG_ENV = "LMREC_SERVE_CONFIG"


@dataclass
class ServeConfig:
    """Settings of one server.

    model: a version store (v0001/, v0002/, CURRENT) or one model directory.
    events: event store location (a SQLite path or sqlite:///...); default ``<model>/events.db``
        for a store, ``<model parent>/events.db`` for a single model directory.
    api_key: the key write routes require; None disables them unless ``insecure_dev``.
    index: "auto", "exact" or "hnsw" (vector index for factorised models).
    max_batch: the most events or items one request may carry (413 beyond).
    watch: seconds between checks of the store's CURRENT for a promoted version (0 = off).
    """

    model: str
    events: str | None = None
    api_key: str | None = None
    insecure_dev: bool = False
    index: str = "auto"
    max_batch: int = 1000
    watch: float = 0.0

    def event_location(self) -> str:
        if self.events:
            return self.events
        root = Path(self.model)
        return str((root.parent if ModelStore(root).single else root) / "events.db")


class ServiceState:
    """What the routes share: the served model (swapped whole on reload), the event store, metrics."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.store = ModelStore(config.model)
        self.events: EventStore = open_event_store(config.event_location())
        self.metrics = ServiceMetrics()
        self.started = time.time()
        self._reload_lock = threading.Lock()
        self.served = self._load(None)

    def _load(self, version: str | None) -> ServedModel:
        served = ServedModel.load(self.store, version, index=self.config.index)
        stored = self.events.items()
        if len(stored) and isinstance(served.model, AddsItems):  # items added through the API since training
            unknown = stored[~stored["item"].isin(list(served.items))]
            if len(unknown):
                served.add_items(unknown.reset_index(drop=True))
        self.metrics.set_model(served.version, served.model_id)
        return served

    def reload(self, version: str | None = None) -> tuple[str, str]:
        """Load and swap in a version; the old one keeps serving if anything fails."""
        with self._reload_lock:
            previous = self.served.version
            target = version or self.store.current()
            if target == previous and version is None:
                return previous, previous
            self.served = self._load(version)  # one reference assignment: requests see old or new
            log.info("serving %s (was %s)", self.served.version, previous)
            return previous, self.served.version

    def watch(self, stop: threading.Event) -> None:
        while not stop.wait(self.config.watch):
            try:
                self.reload()
            except Exception as exc:  # a bad promotion must not kill the watcher
                log.error("watch: not reloading: %s", exc)


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def create_app(config: ServeConfig) -> FastAPI:
    """Build the app; loads the model now, so a bad model fails here with a clear ArtifactError."""
    state = ServiceState(config)
    if not config.api_key and not config.insecure_dev:
        log.warning("no API key: write routes (/items, /events, /admin) are disabled; set LMREC_API_KEY "
                    "or pass --insecure-dev")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        if config.watch > 0:
            threading.Thread(target=state.watch, args=(stop,), daemon=True, name="lmrec-watch").start()
        yield
        stop.set()

    app = FastAPI(title="lmrec", version="0.1.0", lifespan=lifespan,
                  description="Rank items for users with language-model representations.")
    app.state.lmrec = state
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return _error(404, str(exc))

    @app.exception_handler(ConfigError)
    async def bad_request(_: Request, exc: ConfigError) -> JSONResponse:
        return _error(422, str(exc))

    @app.exception_handler(ArtifactError)
    async def refused(_: Request, exc: ArtifactError) -> JSONResponse:
        return _error(409, f"model not loaded, still serving {state.served.version}: {exc}")

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return JSONResponse({"detail": "; ".join(parts), "errors": json.loads(json.dumps(exc.errors(), default=str))},
                            status_code=422)

    def write_access(x_api_key: str | None = Header(None)) -> None:
        if not config.api_key:
            if config.insecure_dev:
                return
            raise HTTPException(403, "write routes are disabled: start the server with LMREC_API_KEY set "
                                     "(or --insecure-dev on a development machine)")
        if x_api_key is None or not secrets.compare_digest(x_api_key, config.api_key):
            raise HTTPException(401, "missing or wrong X-API-Key header")

    def batch_limit(n: int, what: str) -> None:
        if n > config.max_batch:
            raise HTTPException(413, f"{n} {what} in one request; the limit is {config.max_batch} (--max-batch)")

    def ranking(served: ServedModel, items: np.ndarray, scores: np.ndarray, user: str | None = None) -> dict[str, Any]:
        ids = served.item_ids(items)
        return {"version": served.version, "user": user,
                "items": [{"item": i, "score": float(s), "title": served.title(int(j))}
                          for i, s, j in zip(ids, scores, items)]}

    # ------------------------------------------------------------------ read routes
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(resources.files("lmrec.serving").joinpath("static/index.html").read_text())

    @app.get("/health", response_model=S.Health)
    async def health() -> dict[str, Any]:
        info = state.served.info()
        return {"status": "ok", **info, "uptime_seconds": time.time() - state.started}

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/users", summary="Some known user ids (for the web page)")
    async def users(limit: int = Query(50, ge=1, le=1000)) -> dict[str, Any]:
        served = state.served
        return {"users": list(served.users)[:limit], "count": len(served.users)}

    @app.get("/users/{user_id}/recommendations", response_model=S.Ranking)
    async def recommend(user_id: str, k: int = Query(10, ge=1, le=1000), exclude_seen: bool = True) -> Any:
        served = state.served
        items, scores = served.recommend_user(served.user_index(user_id), k, exclude_seen)
        return JSONResponse(ranking(served, items, scores, user_id))

    @app.get("/users/{user_id}/history", response_model=S.HistoryResponse)
    async def history(user_id: str, limit: int = Query(50, ge=1, le=10000)) -> dict[str, Any]:
        served = state.served
        items = served.history(served.user_index(user_id))[-limit:][::-1]  # most recent first
        return {"user": user_id, "items": [{"item": i, "title": served.title(j)}
                                           for i, j in zip(served.item_ids(items), items)]}

    @app.post("/recommendations", response_model=S.Ranking)
    def recommend_new(body: S.NewUserRequest) -> dict[str, Any]:
        served = state.served
        if not body.history and not body.profile:
            raise ConfigError("give a history of item ids, a profile text, or both")
        items = [served.item_index(i) for i in body.history]
        top, scores = served.recommend_history(items, body.profile, body.k, body.exclude_seen)
        return ranking(served, top, scores)

    @app.post("/rank", response_model=S.Ranking)
    def rank(body: S.RankRequest) -> dict[str, Any]:
        served = state.served
        cand = [served.item_index(i) for i in body.items]
        if body.user is not None:
            order, scores = served.rank(cand, user=served.user_index(body.user))
        elif body.history or body.profile:
            order, scores = served.rank(cand, items=[served.item_index(i) for i in body.history or []],
                                        profile=body.profile)
        else:
            raise ConfigError("give a user, or a history and/or profile, to rank the items for")
        return ranking(served, order, scores, body.user)

    @app.get("/items/{item_id}/similar", response_model=S.Ranking)
    async def similar(item_id: str, k: int = Query(10, ge=1, le=1000)) -> dict[str, Any]:
        served = state.served
        items, sims = served.similar(served.item_index(item_id), k)
        return ranking(served, items, sims)

    @app.get("/users/{user_id}/explain", response_model=S.ExplainResponse)
    def explain(user_id: str, item_id: str = Query(..., min_length=1), top: int = Query(5, ge=1, le=100)) -> Any:
        served = state.served
        e = served.explain(served.user_index(user_id), served.item_index(item_id), top)
        return {"version": served.version, **e, "user": user_id, "item": item_id}

    # ------------------------------------------------------------------ write routes
    @app.post("/items", response_model=S.ItemsResponse, dependencies=[Depends(write_access)])
    def add_items(body: S.ItemsRequest) -> dict[str, Any]:
        batch_limit(len(body.items), "items")
        served = state.served
        records = [r.model_dump() for r in body.items]
        known = [r["item"] for r in records if r["item"] in served.items]
        served.add_items(pd.DataFrame(records))  # raises 422 for models without a text side
        state.events.upsert_items(records)  # kept so reloads and retraining see them
        return {"version": served.version, "added": [r["item"] for r in records if r["item"] not in known],
                "updated": known}

    @app.post("/events", response_model=S.EventsResponse, dependencies=[Depends(write_access)])
    def add_events(body: S.EventsRequest) -> dict[str, Any]:
        batch_limit(len(body.events), "events")
        now = time.time()
        first, last = state.events.append(Event(e.user, e.item, e.type, e.value,
                                                now if e.timestamp is None else e.timestamp) for e in body.events)
        state.metrics.events.inc(len(body.events))
        return {"stored": len(body.events), "first_id": first, "last_id": last}

    @app.post("/admin/reload", response_model=S.ReloadResponse, dependencies=[Depends(write_access)])
    def reload(body: S.ReloadRequest | None = None) -> dict[str, Any]:
        previous, version = state.reload(body.version if body else None)
        return {"previous": previous, "version": version, "changed": previous != version}

    return app


def app_from_env() -> FastAPI:
    """uvicorn factory for ``lmrec serve`` (each worker process builds its app from the env config)."""
    raw = os.environ.get(CONFIG_ENV)
    if not raw:
        raise ConfigError(f"{CONFIG_ENV} is not set; start the server with `lmrec serve MODEL_DIR`.")
    return create_app(ServeConfig(**json.loads(raw)))


def config_to_env(config: ServeConfig) -> str:
    return json.dumps(asdict(config))
