"""The read routers: ``monitoring`` (``/health``, ``/metrics``: on the event loop, never behind a key) and
``reads`` (users, items, rankings, explanations), behind the read key when the server protects reads.

Each route finds the served model through :func:`lmrec.serving.routes.service` once, at its start,
and answers from that one model even if a reload swaps another in meanwhile.
"""
from __future__ import annotations

import time
from itertools import islice
from typing import Any

import numpy as np

from lmrec.extras import needs

with needs("serve", "lmrec serve"):
    from fastapi import APIRouter, Depends, Query, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse, Response

from lmrec.errors import ConfigError
from lmrec.serving import schemas as S
from lmrec.serving.routes import body_doc, json_body, path_id, read_access, service
from lmrec.serving.state import ServedModel

monitoring = APIRouter()
reads = APIRouter(dependencies=[Depends(read_access)])


def ranking(served: ServedModel, items: np.ndarray, scores: np.ndarray, user: str | None = None) -> dict[str, Any]:
    """A ranking answer: the version, the user asked about and the items with their scores and titles."""
    ids = served.item_ids(items)
    return {"version": served.version, "user": user,
            "items": [{"item": i, "score": float(s), "title": served.title(int(j))}
                      for i, s, j in zip(ids, scores, items)]}


@monitoring.get("/health", response_model=S.Health)
async def health(request: Request) -> dict[str, Any]:
    state = service(request)
    return {"status": "ok", **state.served.info(), "uptime_seconds": time.time() - state.started}


@monitoring.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    return Response(service(request).metrics.render(), media_type="text/plain; version=0.0.4")


@reads.get("/users", summary="Some known user ids (for the web page)")
def users(request: Request, limit: int = Query(50, ge=1, le=1000)) -> dict[str, Any]:
    served = service(request).served
    return {"users": list(islice(served.users, limit)), "count": len(served.users)}


@reads.get("/items/search", response_model=S.SearchResponse)
def search(request: Request,
           q: str = Query(..., min_length=1, max_length=S.MAX_QUERY, description="part of a title, or an item id"),
           limit: int = Query(10, ge=1, le=S.MAX_SEARCH)) -> dict[str, Any]:
    served = service(request).served
    found = served.search(q, limit)
    return {"version": served.version, "items": [{"item": i, "title": served.title(j)} for i, j in
                                                 zip(served.item_ids(np.asarray(found, dtype=np.int64)), found)]}


@reads.get("/users/{user_id}/recommendations", response_model=S.Ranking)
async def recommend(request: Request, user_id: str = path_id(), k: int = Query(10, ge=1, le=1000),
                    exclude_seen: bool = True) -> Any:
    served = service(request).served
    user = served.user_index(user_id)
    found = served.recommend_user_now(user, k, exclude_seen)  # None: too big, or the model is busy
    if found is None:
        found = await run_in_threadpool(served.recommend_user, user, k, exclude_seen)
    return JSONResponse(ranking(served, *found, user_id))


@reads.get("/users/{user_id}/history", response_model=S.HistoryResponse)
def history(request: Request, user_id: str = path_id(), limit: int = Query(50, ge=1, le=10000)) -> dict[str, Any]:
    served = service(request).served
    items = served.history(served.user_index(user_id))[-limit:][::-1]  # most recent first
    return {"user": user_id, "items": [{"item": i, "title": served.title(j)}
                                       for i, j in zip(served.item_ids(items), items)]}


@reads.post("/recommendations", response_model=S.Ranking, openapi_extra=body_doc(S.NewUserRequest))
def recommend_new(request: Request, body: S.NewUserRequest = json_body(S.NewUserRequest)) -> dict[str, Any]:
    served = service(request).served
    if not body.history and not body.profile:
        raise ConfigError("give a history of item ids, a profile text, or both")
    items = [served.item_index(i) for i in body.history]
    top, scores = served.recommend_history(items, body.profile, body.k, body.exclude_seen)
    return ranking(served, top, scores)


@reads.post("/rank", response_model=S.Ranking, openapi_extra=body_doc(S.RankRequest))
def rank(request: Request, body: S.RankRequest = json_body(S.RankRequest)) -> dict[str, Any]:
    served = service(request).served
    cand = [served.item_index(i) for i in body.items]
    if body.user is not None:
        order, scores = served.rank(cand, user=served.user_index(body.user))
    elif body.history or body.profile:
        order, scores = served.rank(cand, items=[served.item_index(i) for i in body.history or []],
                                    profile=body.profile)
    else:
        raise ConfigError("give a user, or a history and/or profile, to rank the items for")
    return ranking(served, order, scores, body.user)


@reads.get("/items/{item_id}/similar", response_model=S.Ranking)
def similar(request: Request, item_id: str = path_id(), k: int = Query(10, ge=1, le=1000)) -> dict[str, Any]:
    served = service(request).served
    items, sims = served.similar(served.item_index(item_id), k)
    return ranking(served, items, sims)


@reads.get("/users/{user_id}/explain", response_model=S.ExplainResponse)
def explain(request: Request, user_id: str = path_id(), item_id: str = Query(..., min_length=1, max_length=S.MAX_ID),
            top: int = Query(5, ge=1, le=100)) -> Any:
    served = service(request).served
    e = served.explain(served.user_index(user_id), served.item_index(item_id), top)
    return {"version": served.version, **e, "user": user_id, "item": item_id}
