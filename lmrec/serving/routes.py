"""What the routers of the service share: the server's state, API-key checks and JSON bodies.

The routes themselves are module-level ``APIRouter``\\ s, which :func:`lmrec.serving.app.create_app`
includes: :mod:`~lmrec.serving.pages` (the web page and the API page), :mod:`~lmrec.serving.reads`
(health, metrics, rankings, explanations) and :mod:`~lmrec.serving.writes` (items, events, reloads).
A route finds the server's :class:`~lmrec.serving.service.ServiceState` on its app
(:func:`service`), so no router holds a server and the app imports the routers, never the reverse.

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
from typing import TYPE_CHECKING, Any, TypeVar

from lmrec.extras import needs

with needs("serve", "lmrec serve"):
    from fastapi import Depends, Header, HTTPException, Path, Request
    from fastapi.concurrency import run_in_threadpool
    from pydantic import BaseModel, ValidationError
    from pydantic.json_schema import models_json_schema

from lmrec.serving import schemas as S
from lmrec.serving.guard import MAX_ERRORS

if TYPE_CHECKING:
    from lmrec.serving.service import ServiceState

JSON = "application/json"  # the one media type of request bodies
B = TypeVar("B", bound=BaseModel)
BODIES: list[type[BaseModel]] = [S.NewUserRequest, S.RankRequest, S.ItemsRequest, S.EventsRequest, S.ReloadRequest]


def service(request: Request) -> ServiceState:
    """The state of the server that ``request`` reached (``create_app`` puts it on the app)."""
    return request.app.state.lmrec


# ----------------------------------------------------------------------------- API keys
def key_ok(state: ServiceState, given: str | None) -> bool:
    """Whether an ``X-API-Key`` header value is the server's key (compared as bytes in constant time;
    header values arrive decoded as latin-1, so they are encoded back to the bytes sent)."""
    key = (state.config.api_key or "").encode("utf-8")
    return bool(key) and given is not None and secrets.compare_digest(given.encode("latin-1"), key)


async def read_access(request: Request, x_api_key: str | None = Header(None)) -> None:
    """The dependency of read routes (cheap: on the event loop): the key, when the server protects reads."""
    state = service(request)
    if state.config.protect_reads and not key_ok(state, x_api_key):
        raise HTTPException(401, "missing or wrong X-API-Key header (this server protects its read routes)")


async def write_access(request: Request, x_api_key: str | None = Header(None)) -> None:
    """The dependency of write routes: the key, or ``--insecure-dev`` on a server without one."""
    state = service(request)
    if not state.config.api_key:
        if state.config.insecure_dev:
            return
        raise HTTPException(403, "write routes are disabled: start the server with LMREC_API_KEY set "
                                 "(or --insecure-dev on a development machine)")
    if not key_ok(state, x_api_key):
        raise HTTPException(401, "missing or wrong X-API-Key header")


# ----------------------------------------------------------------------------- request bodies
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


def json_body(model: type[B], *, optional: bool = False, batch: str | None = None) -> Any:
    """A route parameter: the request body as ``model``, validated in a worker thread (an empty body
    is None when ``optional``; ``batch``: a list field that may hold at most the server's
    ``--max-batch`` entries, 413 beyond). Only ``Content-Type: application/json`` bodies are read
    (415 otherwise). Document it with ``openapi_extra=body_doc(model)``."""

    async def parse(request: Request) -> B | None:
        raw = await request.body()  # already read whole by BodyGuard
        if optional and not raw.strip():
            return None
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != JSON:
            # text/plain or a form is what a page of another site can post without a CORS preflight
            raise HTTPException(415, f"send the body as JSON with the header Content-Type: {JSON}")
        limit = None if batch is None else (batch, service(request).config.max_batch)
        return await run_in_threadpool(_validated, model, raw, limit)

    return Depends(parse)


def body_doc(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """The ``requestBody`` of a route's OpenAPI entry for :func:`json_body`."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": ref}}}}


def body_schemas() -> dict[str, Any]:
    """OpenAPI component schemas of the request bodies (and the models inside them)."""
    _, defs = models_json_schema([(m, "validation") for m in BODIES], ref_template="#/components/schemas/{model}")
    return defs.get("$defs", {})


def path_id() -> Any:
    """A user or item id in the path (bounded like the ids of request bodies)."""
    return Path(..., min_length=1, max_length=S.MAX_ID)
