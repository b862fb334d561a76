"""The HTTP ranking service: ``create_app(ServeConfig(...))``, served by uvicorn (``lmrec serve``).

Read routes rank, explain and describe; write routes (``/items``, ``/events``, ``/admin/*``)
need the API key in the ``X-API-Key`` header, and so do read routes with ``protect_reads``.
Errors are JSON ``{"detail": "..."}``: unknown user or item 404, bad parameters 422, oversized
batches or bodies 413, a slow body 408, a refused model version 409.

Routes that touch the model run in worker threads; the event loop only parses, routes, answers
``/health`` and runs searches known to take under 2 ms, so no request can stall the others (see
:mod:`lmrec.serving.state`).
Limits and timeouts live in :mod:`lmrec.serving.guard`, version checks in
:mod:`lmrec.serving.validate`, the routes in :mod:`lmrec.serving.routes`.
"""
from __future__ import annotations

import gc
import json
import logging
import os
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from lmrec.errors import ArtifactError, ConfigError, LmrecError
from lmrec.models.capabilities import AddsItems
from lmrec.serving.events import EventStore, open_event_store
from lmrec.serving.guard import BodyGuard, SecurityHeaders, validation_detail
from lmrec.serving.metrics import MetricsMiddleware, ServiceMetrics
from lmrec.serving.routes import InvalidBody, add_pages, add_read_routes, add_write_routes, body_schemas
from lmrec.serving.schemas import MAX_BATCH
from lmrec.serving.state import NotFound, ServedModel
from lmrec.serving.validate import LoadSettings
from lmrec.storage.versions import ModelStore

log = logging.getLogger("lmrec.serve")
CONFIG_ENV = "LMREC_SERVE_CONFIG"


@dataclass
class ServeConfig:
    """Settings of one server (``lmrec serve`` flags map onto these fields one to one).

    model: a version store (v0001/, v0002/, CURRENT) or one model directory.
    events: event store location (a SQLite path or sqlite:///...); default ``<model>/events.db``
        for a store, ``<model parent>/events.db`` for a single model directory.
    api_key: the key write routes require; None disables them unless ``insecure_dev``.
    insecure_dev: write routes without a key (``lmrec serve`` allows it on loopback hosts only).
    protect_reads: read routes need the key too (all but /health, /metrics and the pages).
    index: "auto", "exact" or "hnsw" (vector index for factorised models).
    max_batch: the most events or items one request may carry (413 beyond).
    watch: seconds between checks of the store's CURRENT for a promoted version (0 = off).
    cache_dir: embedding cache folder for items added through the API (None: memory only);
        replaces every manifest's ``cache_dir``.
    encoders: encoder folders a manifest may name (name -> folder); registered names always work.
    load_timeout: seconds a version may take to load and pass its checks in a child process.
    max_body: bytes of one request body (413 beyond).
    max_text: characters of a text kept before tokenising (profiles, item fields, rendered texts).
    text_cache: request-text vectors kept in memory (an LRU; never on disk).
    body_timeout: seconds a request body may take to arrive after its headers (408).
    header_timeout: seconds request headers may take to arrive (the connection is closed).
    keep_alive: seconds an idle keep-alive connection stays open.
    limit_concurrency: connections served at once (503 beyond).
    clock_skew: seconds a client's event timestamp may be ahead of the server's clock (422 beyond).
    """

    model: str
    events: str | None = None
    api_key: str | None = None
    insecure_dev: bool = False
    protect_reads: bool = False
    index: str = "auto"
    max_batch: int = 1000
    watch: float = 0.0
    cache_dir: str | None = None
    encoders: dict[str, str] = field(default_factory=dict)
    load_timeout: float = 300.0
    max_body: int = 1_000_000
    max_text: int = 2000
    text_cache: int = 4096
    body_timeout: float = 30.0
    header_timeout: float = 10.0
    keep_alive: int = 5
    limit_concurrency: int = 256
    clock_skew: float = 300.0

    def validate(self) -> None:
        for name in ("max_batch", "max_body", "max_text", "text_cache", "keep_alive", "limit_concurrency"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"The '{name}' setting of the server must be a positive integer; got {value!r}.")
        for name in ("load_timeout", "body_timeout", "header_timeout"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"The '{name}' setting of the server must be positive seconds; "
                                  f"got {getattr(self, name)!r}.")
        if self.max_batch > MAX_BATCH:
            raise ConfigError(f"The 'max_batch' setting of the server may be at most {MAX_BATCH}; got {self.max_batch}.")
        if self.clock_skew < 0 or self.watch < 0:
            raise ConfigError(f"'clock_skew' and 'watch' must be >= 0; got {self.clock_skew!r} and {self.watch!r}.")
        if self.protect_reads and not self.api_key:
            raise ConfigError("--protect-reads needs an API key: set LMREC_API_KEY.")

    def event_location(self) -> str:
        if self.events:
            return self.events
        root = Path(self.model)
        return str((root.parent if ModelStore(root).single else root) / "events.db")

    def load_settings(self) -> LoadSettings:
        return LoadSettings(cache_dir=self.cache_dir, encoders=dict(self.encoders), timeout=self.load_timeout)


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
        c = self.config
        served = ServedModel.load(self.store, version, index=c.index, settings=c.load_settings(),
                                  max_text=c.max_text, text_cache=c.text_cache)
        stored = self.events.items()
        if len(stored) and isinstance(served.model, AddsItems):  # items added through the API since training
            unknown = stored[~stored["item"].isin(list(served.items))]
            if len(unknown):
                served.add_items(unknown.reset_index(drop=True))
        self.metrics.set_model(served.version, served.model_id)
        return served

    def reload(self, version: str | None = None) -> tuple[str, str]:
        """Check, load and swap in a version; the old one keeps serving if anything fails."""
        with self._reload_lock:
            previous = self.served.version
            target = version or self.store.current()
            if target == previous and version is None:
                return previous, previous
            self.served = self._load(target)  # one reference assignment: requests see old or new
            freeze_long_lived()
            log.info("serving %s (was %s)", self.served.version, previous)
            return previous, self.served.version

    def watch(self, stop: threading.Event) -> None:
        """Reload whenever CURRENT names another version; a refused version is tried again only
        once its files change (each try loads it in a child process)."""
        refused: tuple[str, tuple[tuple[str, int, int], ...]] | None = None
        last_error = ""
        while not stop.wait(self.config.watch):
            mark = None
            try:
                target = self.store.current()
                mark = (target, _stamp(self.store.root / target))
                if target == self.served.version or mark == refused:
                    continue
                self.reload(target)
            except Exception as exc:  # a bad promotion must not kill the watcher
                refused = mark
                if str(exc) != last_error:  # said once, not every interval
                    log.error("watch: not reloading: %s", exc)
                last_error = str(exc)


def freeze_long_lived() -> None:
    """Take every object alive now out of the cyclic garbage collector's walks (``gc.freeze``).

    A full collection walks every tracked object while no other thread runs: with a model and an
    encoder loaded that is about half a million objects and half a second of a frozen server,
    /health included. Objects that live as long as the server (the app, the model, the encoder)
    are frozen once loaded, so collections walk only what requests create. The price: objects of
    a replaced model reachable only through reference cycles stay in memory (reference counting
    frees the rest).
    """
    gc.freeze()


def _stamp(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and modification times of a folder's files: changes when a version is rewritten."""
    try:
        return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()))
    except OSError:
        return ()


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def create_app(config: ServeConfig) -> FastAPI:
    """Build the app; checks and loads the model now, so a bad model fails here with a clear ArtifactError."""
    config.validate()
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

    # /docs is the offline page of lmrec.serving.routes (FastAPI's own loads its assets from a CDN)
    app = FastAPI(title="lmrec", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Rank items for users with language-model representations.")
    app.state.lmrec = state
    app.add_middleware(BodyGuard, max_body=config.max_body, body_timeout=config.body_timeout)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    app.add_middleware(SecurityHeaders)  # outermost: answers of the guards get the headers too

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return _error(404, str(exc))

    @app.exception_handler(ArtifactError)
    async def refused(_: Request, exc: ArtifactError) -> JSONResponse:
        return _error(409, f"model not loaded, still serving {state.served.version}: {exc}")

    @app.exception_handler(LmrecError)  # ConfigError, DataError, ...: the request asked for something impossible
    async def bad_request(_: Request, exc: LmrecError) -> JSONResponse:
        return _error(422, str(exc)[:2000])

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail, errors = validation_detail(list(exc.errors()))
        return JSONResponse({"detail": detail, "errors": errors}, status_code=422)

    @app.exception_handler(InvalidBody)
    async def invalid_body(_: Request, exc: InvalidBody) -> JSONResponse:
        detail, errors = validation_detail(exc.errors, exc.total)
        return JSONResponse({"detail": detail, "errors": errors}, status_code=422)

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return _error(500, f"internal error ({type(exc).__name__}); the server log has the details")

    add_pages(app)
    add_read_routes(app, state)
    add_write_routes(app, state)

    def openapi() -> dict[str, Any]:  # FastAPI's, plus the request bodies that json_body validates
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            schema.setdefault("components", {}).setdefault("schemas", {}).update(body_schemas())
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    freeze_long_lived()
    return app


def app_from_env() -> FastAPI:
    """uvicorn factory for ``lmrec serve`` (each worker process builds its app from the env config)."""
    raw = os.environ.get(CONFIG_ENV)
    if not raw:
        raise ConfigError(f"{CONFIG_ENV} is not set; start the server with `lmrec serve MODEL_DIR`.")
    return create_app(ServeConfig(**json.loads(raw)))


def config_to_env(config: ServeConfig) -> str:
    return json.dumps(asdict(config))
