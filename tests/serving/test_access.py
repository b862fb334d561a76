"""Who may do what on a real `lmrec serve`: protected read routes, loopback-only --insecure-dev,
security headers on every answer, and an API reference page that needs no other server."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import httpx

from tests.serving.conftest import API_KEY

AUTH = {"X-API-Key": API_KEY}
READS = [("GET", "/users", None), ("GET", "/users/u00/recommendations", None), ("GET", "/users/u00/history", None),
         ("GET", "/users/u00/explain?item_id=3", None), ("GET", "/items/0/similar", None),
         ("POST", "/recommendations", {"history": ["0"]}), ("POST", "/rank", {"user": "u00", "items": ["1", "5"]})]
OPEN = ["/health", "/metrics", "/", "/docs", "/openapi.json", "/static/page.js", "/static/docs.js"]


def call(server, method, path, body=None, headers=None):
    return httpx.request(method, server.url + path, json=body, headers=headers, timeout=60)


def test_protect_reads(store, serve):
    server = serve(store.root, "--protect-reads")
    for method, path, body in READS:
        r = call(server, method, path, body)
        assert r.status_code == 401 and "X-API-Key" in r.json()["detail"], (path, r.text)
        assert call(server, method, path, body, {"X-API-Key": "wrong"}).status_code == 401
        assert call(server, method, path, body, AUTH).status_code == 200, path
    for path in OPEN:
        assert call(server, "GET", path).status_code == 200, path


def test_reads_are_open_on_loopback_and_protect_reads_needs_a_key(store, serve):
    server = serve(store.root)
    for method, path, body in READS:
        assert call(server, method, path, body).status_code == 200, path
    done = run_serve(store.root, "--protect-reads", api_key=None)
    assert done.returncode == 2 and "--protect-reads needs an API key" in done.stderr


def test_reads_are_protected_on_a_non_loopback_address(store, serve):
    """Bound to 0.0.0.0, anyone on the network reaches the server: /users lists every user id only
    to holders of the key, unless the operator opts out with --open-reads."""
    server = serve(store.root, "--host", "0.0.0.0")
    r = call(server, "GET", "/users?limit=1000")
    assert r.status_code == 401 and "u00" not in r.text
    for method, path, body in READS:
        assert call(server, method, path, body).status_code == 401, path
        assert call(server, method, path, body, AUTH).status_code == 200, path
    assert call(server, "GET", "/health").status_code == 200
    opened = serve(store.root, "--host", "0.0.0.0", "--open-reads")
    assert call(opened, "GET", "/users?limit=1000").status_code == 200
    done = run_serve(store.root, "--host", "0.0.0.0", api_key=None)
    assert done.returncode == 2 and "--open-reads" in done.stderr and "LMREC_API_KEY" in done.stderr
    done = run_serve(store.root, "--protect-reads", "--open-reads")
    assert done.returncode == 2 and "not allowed with argument" in done.stderr


def run_serve(root, *args: str, api_key: str | None = API_KEY) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env.pop("LMREC_API_KEY", None)
    if api_key:
        env["LMREC_API_KEY"] = api_key
    return subprocess.run([sys.executable, "-m", "lmrec.cli", "serve", str(root), "--port", "9", *args], env=env,
                          capture_output=True, text=True, timeout=180)


def test_insecure_dev_binds_loopback_only(store):
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.org"):
        done = run_serve(store.root, "--insecure-dev", "--host", host, api_key=None)
        assert done.returncode == 2 and "binds loopback hosts only" in done.stderr and host in done.stderr, done.stderr
        assert "Traceback" not in done.stderr


def test_security_headers_and_an_offline_docs_page(store, serve):
    server = serve(store.root)
    for path in OPEN + ["/users/nobody/recommendations", "/no/such/route"]:
        r = call(server, "GET", path)
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp
    for path in ("/", "/docs", "/static/page.js", "/static/docs.js", "/static/page.css"):
        text = call(server, "GET", path).text
        assert not re.search(r"https?://", text), f"{path} refers to another server"
        assert "<script>" not in text and " style=" not in text, f"{path} has inline code the CSP would block"
    spec = call(server, "GET", "/openapi.json").json()
    body = spec["paths"]["/events"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/EventsRequest"}
    assert {"EventsRequest", "EventIn", "NewUserRequest", "ItemRecord"} <= set(spec["components"]["schemas"])
    assert spec["components"]["schemas"]["NewUserRequest"]["properties"]["history"]["maxItems"] == 1000
