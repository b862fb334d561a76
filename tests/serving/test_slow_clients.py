"""Slow and idle clients against a real `lmrec serve` (raw sockets): headers and bodies that trickle
in are cut off after their timeouts, idle connections are closed, oversized headers refused, and
/health keeps answering within 100 ms while it happens."""
from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.serving.conftest import API_KEY, HealthProbe, Server, new_store

LIMITS = ("--header-timeout", "1", "--body-timeout", "1", "--keep-alive", "1", "--limit-concurrency", "8")


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    server = Server(new_store(tiny_model, tmp_path_factory.mktemp("slow") / "models").root, *LIMITS)
    yield server
    server.stop()


def connect(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.settimeout(0.05)
    return sock


def trickle(server, head: bytes, every: float = 0.1, limit: float = 8.0) -> tuple[float, bytes]:
    """Send ``head``, then one more byte every ``every`` s, until the server answers or closes the
    connection (or ``limit`` s pass): (seconds it took, what the server sent)."""
    sock = connect(server)
    start = time.perf_counter()
    sock.sendall(head)
    answer = b""
    while time.perf_counter() - start < limit:
        try:
            sock.sendall(b"a")
        except OSError:  # the server closed the connection
            break
        try:
            data = sock.recv(4096)
        except socket.timeout:
            time.sleep(every)
            continue
        except OSError:
            break
        if not data:
            break
        answer += data
    sock.close()
    return time.perf_counter() - start, answer


def test_headers_sent_a_byte_at_a_time_are_cut_off(server):
    with HealthProbe(server) as probe:
        seconds, answer = trickle(server, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    probe.check()
    assert seconds < 3.0, f"a slowloris client held the connection for {seconds:.1f} s"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408")


def test_a_body_sent_a_byte_at_a_time_gets_408(server):
    head = (b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n"
            b"X-API-Key: " + API_KEY.encode() + b"\r\n\r\n{")
    with HealthProbe(server) as probe:
        seconds, answer = trickle(server, head)
    probe.check()
    assert seconds < 3.0 and answer.startswith(b"HTTP/1.1 408"), (seconds, answer[:200])
    assert b"--body-timeout" in answer and b"content-security-policy" in answer.lower()


@pytest.mark.parametrize("framing", [b"Content-Length: 1000\r\n\r\n", b"Transfer-Encoding: chunked\r\n\r\n3e8\r\n"])
def test_a_read_route_with_a_trickling_body_gets_408_too(server, framing):
    """Reads without a body skip the body guard; a GET that declares one (by length or chunks) does not."""
    head = b"GET /users/1/recommendations HTTP/1.1\r\nHost: x\r\n" + framing
    with HealthProbe(server) as probe:
        seconds, answer = trickle(server, head)
    probe.check()
    assert seconds < 3.0 and answer.startswith(b"HTTP/1.1 408"), (seconds, answer[:200])


def test_idle_and_silent_connections_are_closed(server):
    with HealthProbe(server) as probe:
        silent = [connect(server) for _ in range(5)]  # connect and never send a byte
        used = connect(server)  # one request, then idle on a kept-alive connection
        used.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        assert used.recv(65536).startswith(b"HTTP/1.1 200")
        time.sleep(2.5)
        for sock in silent + [used]:
            sock.settimeout(2)
            try:
                assert sock.recv(1024) in (b"",), "the connection should have been closed"
            except ConnectionResetError:
                pass
            sock.close()
    probe.check()


def test_oversized_headers_are_refused(server):
    sock = connect(server)
    sock.settimeout(5)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"b" * 100_000)
    answer = b""
    try:
        while chunk := sock.recv(4096):
            answer += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    sock.close()
    assert answer.startswith(b"HTTP/1.1 431") or answer == b"", answer[:100]
    assert httpx.get(server.url + "/health").status_code == 200


def test_a_full_house_answers_503_until_the_idle_connections_time_out(server):
    idle = [connect(server) for _ in range(8)]  # --limit-concurrency 8
    time.sleep(0.2)
    r = httpx.get(server.url + "/health", timeout=5)
    assert r.status_code == 503
    time.sleep(1.5)  # --header-timeout 1: the idle connections are gone
    with HealthProbe(server) as probe:
        time.sleep(0.3)
    probe.check()
    for sock in idle:
        sock.close()
