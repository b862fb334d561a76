"""The write router: ``/items``, ``/events`` and ``/admin/reload``, behind the API key (``X-API-Key``);
a server started without a key answers them 403, unless it runs with ``--insecure-dev``."""
from __future__ import annotations

import time
from typing import Any

import pandas as pd

from lmrec.extras import needs

with needs("serve", "lmrec serve"):
    from fastapi import APIRouter, Depends, HTTPException, Request

from lmrec.errors import ConfigError
from lmrec.serving import schemas as S
from lmrec.serving.events import Event
from lmrec.serving.routes import body_doc, json_body, service, write_access
from lmrec.serving.state import ReloadBusy

writes = APIRouter(dependencies=[Depends(write_access)])


@writes.post("/items", response_model=S.ItemsResponse, openapi_extra=body_doc(S.ItemsRequest))
def add_items(request: Request, body: S.ItemsRequest = json_body(S.ItemsRequest, batch="items")) -> dict[str, Any]:
    state = service(request)
    served = state.served
    records = [r.model_dump() for r in body.items]
    known = [r["item"] for r in records if r["item"] in served.items]
    served.add_items(pd.DataFrame(records))  # raises 422 for models without a text side
    state.events.upsert_items(records)  # kept so reloads and retraining see them
    return {"version": served.version, "added": [r["item"] for r in records if r["item"] not in known],
            "updated": known}


@writes.post("/events", response_model=S.EventsResponse, openapi_extra=body_doc(S.EventsRequest))
def add_events(request: Request, body: S.EventsRequest = json_body(S.EventsRequest, batch="events")) -> dict[str, Any]:
    state = service(request)
    now, skew = time.time(), state.config.clock_skew
    for i, e in enumerate(body.events):
        if e.timestamp is not None and e.timestamp > now + skew:
            raise ConfigError(f"events.{i}.timestamp: {e.timestamp:.0f} is {e.timestamp - now:.0f} s in the "
                              f"future; a timestamp (Unix seconds) may be at most {skew:g} s ahead "
                              "of the server's clock (--clock-skew)")
    done = state.events.append(Event(e.user, e.item, e.type, e.value, now if e.timestamp is None else e.timestamp,
                                     e.event_id) for e in body.events)
    state.metrics.events.inc(done.stored)
    return {"stored": done.stored, "duplicates": done.duplicates, "first_id": done.first_id,
            "last_id": done.last_id}


@writes.post("/admin/reload", response_model=S.ReloadResponse, openapi_extra=body_doc(S.ReloadRequest, required=False))
def reload(request: Request, body: S.ReloadRequest | None = json_body(S.ReloadRequest, optional=True)) -> dict[str, Any]:
    try:
        done = service(request).reload(body.version if body else None)
    except ReloadBusy as exc:  # answered at once: a reload never waits for another in a worker thread
        raise HTTPException(409, str(exc)) from None
    return {"previous": done.previous, "version": done.version, "changed": done.changed}
