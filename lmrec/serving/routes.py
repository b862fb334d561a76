"""The routes of the service: pages, read routes, write routes (see :mod:`lmrec.serving.app`).

Routes that touch the model are plain functions, which FastAPI runs in its worker threads; only
``/health``, ``/metrics``, the pages and the API-key checks run on the event loop, and they take
no lock (a sync key check would cost every read a second hop into the thread pool). The one
exception is a user's recommendations: a small exact search answers on the loop when the model
is free that instant, and goes to a worker thread otherwise (``ServedModel.recommend_user_now``).
JSON bodies are parsed and validated in a worker thread too (:func:`json_body`; FastAPI would do
it on the event loop, where a 1 MB body of invalid entries costs a tenth of a second).
"""
from __future__ import annotations

import json
import secrets
import time
from importlib import resources
from itertools import islice
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import numpy as np
import pandas as pd
from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from lmrec.errors import ConfigError
from lmrec.serving import schemas as S
from lmrec.serving.events import Event
from lmrec.serving.guard import MAX_ERRORS
from lmrec.serving.state import ReloadBusy, ServedModel

if TYPE_CHECKING:
    from lmrec.serving.service import ServiceState

JSON = "application/json"  # the one media type of request bodies
ASSETS = {"page.js": "text/javascript", "page.css": "text/css", "docs.js": "text/javascript"}


B = TypeVar("B", bound=BaseModel)
BODIES: list[type[BaseModel]] = [S.NewUserRequest, S.RankRequest, S.ItemsRequest, S.EventsRequest, S.ReloadRequest]


class InvalidBody(Exception):
    """A request body that is not valid JSON for its model: the first errors and their total (422)."""

    def __init__(self, errors: list[dict[str, Any]], total: int) -> None:
        super().__init__(f"{total} validation errors")
        self.errors, self.total = errors, total


def _validated(model: type[B], raw: bytes, batch: tuple[str, int] | None) -> B:
    """``raw`` as ``model``: parsed by the json module (the fastest parser at hand: it holds the GIL,
    as every parser does, for the shortest time), then a batch length checked before validation."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # malformed, not UTF-8, or nested too deep
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
        raise InvalidBody([{"loc": ("body",), "msg": f"Invalid JSON: {reason}", "type": "json_invalid"}], 1) from None
    if batch is not None and isinstance(data, dict) and isinstance(data.get(batch[0]), list):
        n, (name, limit) = len(data[batch[0]]), batch
        if n > limit:
            raise HTTPException(413, f"{n} {name} in one request; the limit is {limit} (--max-batch)")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)[:MAX_ERRORS]]
        raise InvalidBody(errors, exc.error_count()) from None


def json_body(model: type[B], *, optional: bool = False, batch: tuple[str, int] | None = None) -> Any:
    """A route parameter: the request body as ``model``, validated in a worker thread (an empty body
    is None when ``optional``; ``batch``: a list field and the most entries it may have, 413 beyond).
    Only ``Content-Type: application/json`` bodies are read (415 otherwise). Document it with
    ``openapi_extra=body_doc(model)``."""

    async def parse(request: Request) -> B | None:
        raw = await request.body()  # already read whole by BodyGuard
        if optional and not raw.strip():
            return None
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != JSON:
            # text/plain or a form is what a page of another site can post without a CORS preflight
            raise HTTPException(415, f"send the body as JSON with the header Content-Type: {JSON}")
        return await run_in_threadpool(_validated, model, raw, batch)

    return Depends(parse)


def body_doc(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """The ``requestBody`` of a route's OpenAPI entry for :func:`json_body`."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": ref}}}}


def body_schemas() -> dict[str, Any]:
    """OpenAPI component schemas of the request bodies (and the models inside them)."""
    _, defs = models_json_schema([(m, "validation") for m in BODIES], ref_template="#/components/schemas/{model}")
    return defs.get("$defs", {})


def _id() -> Any:
    """A user or item id in the path (bounded like the ids of request bodies)."""
    return Path(..., min_length=1, max_length=S.MAX_ID)


def _static(name: str) -> str:
    return resources.files("lmrec.serving").joinpath(f"static/{name}").read_text()


def add_pages(app: FastAPI) -> None:
    """``/`` (the web page), ``/docs`` (the API reference, built in the browser from /openapi.json)
    and their scripts and styles, all from this package: nothing is loaded from another server."""
    pages = {"/": _static("index.html"), "/docs": _static("docs.html")}
    assets = {name: (_static(name), kind) for name, kind in ASSETS.items()}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(pages["/"])

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(pages["/docs"])

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in assets:
            raise HTTPException(404, "no such file")
        text, kind = assets[name]
        return Response(text, media_type=kind)


def _key_check(state: ServiceState) -> Callable[[str | None], bool]:
    """Whether an ``X-API-Key`` header value is the server's key (compared as bytes in constant time)."""
    key = (state.config.api_key or "").encode("utf-8")

    def ok(given: str | None) -> bool:  # header values arrive decoded as latin-1: encode back to the sent bytes
        return bool(key) and given is not None and secrets.compare_digest(given.encode("latin-1"), key)

    return ok


def add_read_routes(app: FastAPI, state: ServiceState) -> None:
    config, key_ok = state.config, _key_check(state)

    async def read_access(x_api_key: str | None = Header(None)) -> None:  # cheap: on the event loop
        if config.protect_reads and not key_ok(x_api_key):
            raise HTTPException(401, "missing or wrong X-API-Key header (this server protects its read routes)")

    def ranking(served: ServedModel, items: np.ndarray, scores: np.ndarray, user: str | None = None) -> dict[str, Any]:
        ids = served.item_ids(items)
        return {"version": served.version, "user": user,
                "items": [{"item": i, "score": float(s), "title": served.title(int(j))}
                          for i, s, j in zip(ids, scores, items)]}

    @app.get("/health", response_model=S.Health)
    async def health() -> dict[str, Any]:
        info = state.served.info()
        return {"status": "ok", **info, "uptime_seconds": time.time() - state.started}

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4")

    read = [Depends(read_access)]

    @app.get("/users", summary="Some known user ids (for the web page)", dependencies=read)
    def users(limit: int = Query(50, ge=1, le=1000)) -> dict[str, Any]:
        served = state.served
        return {"users": list(islice(served.users, limit)), "count": len(served.users)}

    @app.get("/items/search", response_model=S.SearchResponse, dependencies=read)
    def search(q: str = Query(..., min_length=1, max_length=S.MAX_QUERY, description="part of a title, or an item id"),
               limit: int = Query(10, ge=1, le=S.MAX_SEARCH)) -> dict[str, Any]:
        served = state.served
        found = served.search(q, limit)
        return {"version": served.version, "items": [{"item": i, "title": served.title(j)}
                                                     for i, j in zip(served.item_ids(np.asarray(found, dtype=np.int64)), found)]}

    @app.get("/users/{user_id}/recommendations", response_model=S.Ranking, dependencies=read)
    async def recommend(user_id: str = _id(), k: int = Query(10, ge=1, le=1000), exclude_seen: bool = True) -> Any:
        served = state.served
        user = served.user_index(user_id)
        found = served.recommend_user_now(user, k, exclude_seen)  # None: too big, or the model is busy
        if found is None:
            found = await run_in_threadpool(served.recommend_user, user, k, exclude_seen)
        return JSONResponse(ranking(served, *found, user_id))

    @app.get("/users/{user_id}/history", response_model=S.HistoryResponse, dependencies=read)
    def history(user_id: str = _id(), limit: int = Query(50, ge=1, le=10000)) -> dict[str, Any]:
        served = state.served
        items = served.history(served.user_index(user_id))[-limit:][::-1]  # most recent first
        return {"user": user_id, "items": [{"item": i, "title": served.title(j)}
                                           for i, j in zip(served.item_ids(items), items)]}

    @app.post("/recommendations", response_model=S.Ranking, dependencies=read, openapi_extra=body_doc(S.NewUserRequest))
    def recommend_new(body: S.NewUserRequest = json_body(S.NewUserRequest)) -> dict[str, Any]:
        served = state.served
        if not body.history and not body.profile:
            raise ConfigError("give a history of item ids, a profile text, or both")
        items = [served.item_index(i) for i in body.history]
        top, scores = served.recommend_history(items, body.profile, body.k, body.exclude_seen)
        return ranking(served, top, scores)

    @app.post("/rank", response_model=S.Ranking, dependencies=read, openapi_extra=body_doc(S.RankRequest))
    def rank(body: S.RankRequest = json_body(S.RankRequest)) -> dict[str, Any]:
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

    @app.get("/items/{item_id}/similar", response_model=S.Ranking, dependencies=read)
    def similar(item_id: str = _id(), k: int = Query(10, ge=1, le=1000)) -> dict[str, Any]:
        served = state.served
        items, sims = served.similar(served.item_index(item_id), k)
        return ranking(served, items, sims)

    @app.get("/users/{user_id}/explain", response_model=S.ExplainResponse, dependencies=read)
    def explain(user_id: str = _id(), item_id: str = Query(..., min_length=1, max_length=S.MAX_ID),
                top: int = Query(5, ge=1, le=100)) -> Any:
        served = state.served
        e = served.explain(served.user_index(user_id), served.item_index(item_id), top)
        return {"version": served.version, **e, "user": user_id, "item": item_id}


def add_write_routes(app: FastAPI, state: ServiceState) -> None:
    config, key_ok = state.config, _key_check(state)

    async def write_access(x_api_key: str | None = Header(None)) -> None:
        if not config.api_key:
            if config.insecure_dev:
                return
            raise HTTPException(403, "write routes are disabled: start the server with LMREC_API_KEY set "
                                     "(or --insecure-dev on a development machine)")
        if not key_ok(x_api_key):
            raise HTTPException(401, "missing or wrong X-API-Key header")

    write = [Depends(write_access)]

    @app.post("/items", response_model=S.ItemsResponse, dependencies=write, openapi_extra=body_doc(S.ItemsRequest))
    def add_items(body: S.ItemsRequest = json_body(S.ItemsRequest, batch=("items", config.max_batch))) -> dict[str, Any]:
        served = state.served
        records = [r.model_dump() for r in body.items]
        known = [r["item"] for r in records if r["item"] in served.items]
        served.add_items(pd.DataFrame(records))  # raises 422 for models without a text side
        state.events.upsert_items(records)  # kept so reloads and retraining see them
        return {"version": served.version, "added": [r["item"] for r in records if r["item"] not in known],
                "updated": known}

    @app.post("/events", response_model=S.EventsResponse, dependencies=write, openapi_extra=body_doc(S.EventsRequest))
    def add_events(body: S.EventsRequest = json_body(S.EventsRequest, batch=("events", config.max_batch))) -> dict[str, Any]:
        now = time.time()
        for i, e in enumerate(body.events):
            if e.timestamp is not None and e.timestamp > now + config.clock_skew:
                raise ConfigError(f"events.{i}.timestamp: {e.timestamp:.0f} is {e.timestamp - now:.0f} s in the "
                                  f"future; a timestamp (Unix seconds) may be at most {config.clock_skew:g} s ahead "
                                  "of the server's clock (--clock-skew)")
        done = state.events.append(Event(e.user, e.item, e.type, e.value, now if e.timestamp is None else e.timestamp,
                                         e.event_id) for e in body.events)
        state.metrics.events.inc(done.stored)
        return {"stored": done.stored, "duplicates": done.duplicates, "first_id": done.first_id,
                "last_id": done.last_id}

    @app.post("/admin/reload", response_model=S.ReloadResponse, dependencies=write,
              openapi_extra=body_doc(S.ReloadRequest, required=False))
    def reload(body: S.ReloadRequest | None = json_body(S.ReloadRequest, optional=True)) -> dict[str, Any]:
        try:
            done = state.reload(body.version if body else None)
        except ReloadBusy as exc:  # answered at once: a reload never waits for another in a worker thread
            raise HTTPException(409, str(exc)) from None
        return {"previous": done.previous, "version": done.version, "changed": done.changed}
