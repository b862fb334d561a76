"""Pages of other sites against a real `lmrec serve --insecure-dev` (no API key): cross-site posts,
"simple" text/plain requests, DNS rebinding (a foreign Host), and the --allowed-hosts list."""
from __future__ import annotations

import socket

import httpx
import pytest

from lmrec.errors import ConfigError
from lmrec.serving.hosts import LOOPBACK_NAMES, host_allowed, same_site, split_host, validate_hosts

EVENTS = '{"events": [{"user": "u00", "item": "1"}]}'


def raw_request(server, head: str, body: str = "") -> tuple[int, bytes]:
    """Send one request exactly as written (any Host, any headers); (status, whole answer)."""
    data = (head.rstrip("\r\n") + f"\r\nContent-Length: {len(body.encode())}\r\nConnection: close\r\n\r\n" + body)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(data.encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]), answer


def test_cross_site_writes_are_refused(store, serve):
    server = serve(store.root, "--insecure-dev", api_key=None)
    base = server.url
    before = httpx.get(base + "/metrics").text.count("lmrec_events_stored_total 0.0")
    # what a page on evil.example can send without a CORS preflight: a text/plain POST
    simple = {"Content-Type": "text/plain", "Origin": "http://evil.example"}
    for path, body in (("/events", EVENTS), ("/admin/reload", "{}"), ("/items", '{"items": [{"item": "x"}]}')):
        r = httpx.post(base + path, content=body, headers=simple, timeout=30)
        assert r.status_code == 403 and "cross-site" in r.json()["detail"], (path, r.text)
    # the same body without an Origin (curl, or a browser that left it out) still needs JSON
    r = httpx.post(base + "/events", content=EVENTS, headers={"Content-Type": "text/plain"}, timeout=30)
    assert r.status_code == 415 and "application/json" in r.json()["detail"]
    for ctype in ("application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""):
        assert httpx.post(base + "/events", content=EVENTS, headers={"Content-Type": ctype}).status_code == 415
    # a JSON post from another site, and from the sites browsers call "null" or another port
    for origin in ("http://evil.example", "null", "http://127.0.0.1:1", f"http://localhost:{server.port}",
                   "file://", "http://127.0.0.1.evil.example"):
        r = httpx.post(base + "/events", content=EVENTS, headers={"Content-Type": "application/json",
                                                                  "Origin": origin}, timeout=30)
        assert r.status_code == 403, (origin, r.text)
    assert httpx.get(base + "/metrics").text.count("lmrec_events_stored_total 0.0") == before == 1, \
        "no refused event was stored"
    # the server's own page (same origin) and clients that send no Origin are served
    own = {"Content-Type": "application/json; charset=utf-8", "Origin": f"http://127.0.0.1:{server.port}"}
    r = httpx.post(base + "/events", content=EVENTS, headers=own, timeout=30)
    assert r.status_code == 200 and r.json()["stored"] == 1
    assert httpx.post(base + "/events", json={"events": [{"user": "u01", "item": "2"}]}).status_code == 200
    assert httpx.post(base + "/admin/reload").status_code == 200  # no body: no Content-Type needed


def test_a_foreign_host_is_refused(store, serve):
    """DNS rebinding: the attacker's name resolves to 127.0.0.1, so the browser sends its requests
    (and lets the page read the answers) with Host: rebind.attacker.example."""
    server = serve(store.root, "--insecure-dev", api_key=None)
    for path in ("/users?limit=1000", "/users/u00/recommendations", "/", "/openapi.json", "/metrics"):
        status, answer = raw_request(server, f"GET {path} HTTP/1.1\r\nHost: rebind.attacker.example:{server.port}")
        assert status == 400 and b"--allowed-hosts" in answer and b"u00" not in answer, answer[:300]
    status, _ = raw_request(server, "POST /events HTTP/1.1\r\nHost: rebind.attacker.example\r\n"
                                    "Content-Type: application/json", EVENTS)
    assert status == 400
    for host in (f"127.0.0.1:{server.port}", "localhost", f"[::1]:{server.port}"):
        status, answer = raw_request(server, f"GET /users?limit=5 HTTP/1.1\r\nHost: {host}")
        assert status == 200 and b"u00" in answer, host
    status, _ = raw_request(server, "GET /health HTTP/1.1\r\nHost: 10.1.2.3:8000")  # a probe dials an address
    assert status == 200


def test_allowed_hosts(store, serve):
    server = serve(store.root, "--allowed-hosts", "api.example.com,*.internal.example")
    for host, status in (("api.example.com", 200), ("API.Example.com:443", 200), ("a.b.internal.example", 200),
                         ("internal.example", 400), ("127.0.0.1", 400), ("example.com", 400), ("", 400)):
        got, _ = raw_request(server, f"GET /users/u00/recommendations HTTP/1.1\r\nHost: {host}")
        assert got == status, (host, got)
    got, _ = raw_request(server, "GET /users/u00/recommendations HTTP/1.0")  # no Host at all
    assert got == 400
    with pytest.raises(ConfigError, match="--allowed-hosts takes host names"):
        validate_hosts(["api.example.com:8000"])


def test_host_and_origin_rules():
    assert split_host("[::1]:8000") == ("::1", 8000) and split_host("Example.ORG") == ("example.org", None)
    assert split_host("a:b") == ("", None)
    assert host_allowed("::1", LOOPBACK_NAMES) and not host_allowed("127.0.0.2", LOOPBACK_NAMES)
    assert host_allowed("x.example.com", ["*.example.com"]) and not host_allowed("example.com", ["*.example.com"])
    assert host_allowed("anything", ["*"]) and not host_allowed("evil-example.com", ["*.example.com"])
    assert same_site("https://api.example.com", "api.example.com", None)
    assert same_site("http://127.0.0.1:8000", "127.0.0.1", 8000)
    assert not same_site("http://localhost:3000", "localhost", 8000), "another local server is another site"
    assert not same_site("null", "localhost", None) and not same_site("http://a.example", "", None)
    for bad in ("http://a.example", "a.example/x", "*a.example", "a..example", ""):
        with pytest.raises(ConfigError, match="--allowed-hosts"):
            validate_hosts([bad])
