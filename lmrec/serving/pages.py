"""The pages router: ``/`` (the web page), ``/docs`` (the API reference, built in the browser from
/openapi.json) and their scripts and styles, all from this package: nothing is loaded from another server."""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

from lmrec.extras import needs

with needs("serve", "lmrec serve"):
    from fastapi import APIRouter, HTTPException
    from fastapi.responses import HTMLResponse, Response

ASSETS = {"page.js": "text/javascript", "page.css": "text/css", "docs.js": "text/javascript"}

pages = APIRouter(include_in_schema=False)


@lru_cache(maxsize=None)
def static_text(name: str) -> str:
    """A file of ``lmrec/serving/static``, read once."""
    return resources.files("lmrec.serving").joinpath(f"static/{name}").read_text()


@pages.get("/", response_class=HTMLResponse)
async def page() -> HTMLResponse:
    return HTMLResponse(static_text("index.html"))


@pages.get("/docs", response_class=HTMLResponse)
async def docs() -> HTMLResponse:
    return HTMLResponse(static_text("docs.html"))


@pages.get("/static/{name}")
async def static(name: str) -> Response:
    if name not in ASSETS:
        raise HTTPException(404, "no such file")
    return Response(static_text(name), media_type=ASSETS[name])
