"""The HTTP ranking service: ``create_app(ServeConfig(...))``, served by uvicorn (``lmrec serve``).

Read routes rank, explain and describe; write routes (``/items``, ``/events``, ``/admin/*``)
need the API key in the ``X-API-Key`` header, and so do read routes with ``protect_reads``.
Errors are JSON ``{"detail": "..."}``: unknown user or item 404, bad parameters 422, oversized
batches or bodies 413, a slow body 408, a refused model version 409.

Routes that touch the model run in worker threads; the event loop only parses, routes, answers
``/health`` and runs searches known to take under 2 ms, so no request can stall the others (see
:mod:`lmrec.serving.state`).
Settings live in :mod:`lmrec.serving.config`, the shared state and reloads in
:mod:`lmrec.serving.service`, limits and timeouts in :mod:`lmrec.serving.guard`, Host and Origin
checks in :mod:`lmrec.serving.hosts`, version checks in :mod:`lmrec.serving.validate`, the routes
in the routers of :mod:`lmrec.serving.pages`, :mod:`~lmrec.serving.reads` and :mod:`~lmrec.serving.writes`
(what they share: :mod:`lmrec.serving.routes`), which the app includes and which find the server's
state on the app (``app.state.lmrec``).
"""
from __future__ import annotations

import json
import logging
import os
import threading
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any, AsyncIterator

from lmrec.extras import needs

with needs("serve", "lmrec serve"):
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.openapi.utils import get_openapi
    from fastapi.responses import JSONResponse

from lmrec.errors import ArtifactError, ConfigError, LmrecError
from lmrec.serving.config import ServeConfig
from lmrec.serving.guard import BodyGuard, SecurityHeaders, quiet, validation_detail
from lmrec.serving.hosts import HostGuard
from lmrec.serving.metrics import MetricsMiddleware
from lmrec.serving.pages import pages
from lmrec.serving.reads import monitoring, reads
from lmrec.serving.routes import InvalidBody, body_schemas
from lmrec.serving.service import ServiceState, freeze_long_lived
from lmrec.serving.state import NotFound
from lmrec.serving.writes import writes

__all__ = ["CONFIG_ENV", "ServeConfig", "ServiceState", "app_from_env", "config_to_env", "create_app"]

log = logging.getLogger("lmrec.serve")
CONFIG_ENV = "LMREC_SERVE_CONFIG"
ROUTERS = (pages, monitoring, reads, writes)  # every route of the service, in the order they are matched


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

    # /docs is the offline page of lmrec.serving.pages (FastAPI's own loads its assets from a CDN)
    app = FastAPI(title="lmrec", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Rank items for users with language-model representations.")
    app.state.lmrec = state
    app.add_middleware(BodyGuard, max_body=config.max_body, body_timeout=config.body_timeout)
    app.add_middleware(HostGuard, allowed=config.allowed_hosts)  # before any body is read
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
        return _error(422, quiet(str(exc))[:2000])

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

    for router in ROUTERS:
        app.include_router(router)

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
