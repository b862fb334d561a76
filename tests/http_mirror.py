"""A local stand-in for a download site: a folder served over HTTP on 127.0.0.1, and ML-100K
repacked as its official zip (tests of the download path never reach the internet)."""
from __future__ import annotations

import http.server
import io
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def zip_ml100k(src: Path) -> bytes:
    """The files of an ml-100k folder as the official archive lays them out."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in ("u.data", "u.item", "u.user", "u.genre"):
            zf.write(src / name, f"ml-100k/{name}")
    return buf.getvalue()


@contextmanager
def serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """Run ``handler`` on 127.0.0.1 in a background thread; yields its base URL (ending in "/")."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()


@contextmanager
def serve_folder(root: Path) -> Iterator[str]:
    """Serve ``root`` quietly over HTTP; yields its base URL (ending in "/")."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *a):
            pass

    with serve(Quiet) as url:
        yield url
