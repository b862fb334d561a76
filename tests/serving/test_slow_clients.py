"""Slow and idle clients against a real `lmrec serve` (raw sockets): headers and bodies that trickle
in are cut off after their timeouts, idle connections are closed, oversized headers refused, and
/health keeps answering within 100 ms while it happens, even when every connection is taken."""
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
        seconds, answer = trickle(server, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    probe.check()
    assert seconds < 3.0, f"a slowloris client held the connection for {seconds:.1f} s"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408")


def test_a_body_sent_a_byte_at_a_time_gets_408(server):
    head = (b"POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n"
            b"X-API-Key: " + API_KEY.encode() + b"\r\n\r\n{")
    with HealthProbe(server) as probe:
        seconds, answer = trickle(server, head)
    probe.check()
    assert seconds < 3.0 and answer.startswith(b"HTTP/1.1 408"), (seconds, answer[:200])
    assert b"--body-timeout" in answer and b"content-security-policy" in answer.lower()


@pytest.mark.parametrize("framing", [b"Content-Length: 1000\r\n\r\n", b"Transfer-Encoding: chunked\r\n\r\n3e8\r\n"])
def test_a_read_route_with_a_trickling_body_gets_408_too(server, framing):
    """Reads without a body skip the body guard; a GET that declares one (by length or chunks) does not."""
    head = b"GET /users/1/recommendations HTTP/1.1\r\nHost: 127.0.0.1\r\n" + framing
    with HealthProbe(server) as probe:
        seconds, answer = trickle(server, head)
    probe.check()
    assert seconds < 3.0 and answer.startswith(b"HTTP/1.1 408"), (seconds, answer[:200])


def test_idle_and_silent_connections_are_closed(server):
    with HealthProbe(server) as probe:
        silent = [connect(server) for _ in range(5)]  # connect and never send a byte
        used = connect(server)  # one request, then idle on a kept-alive connection
        used.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
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
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Big: " + b"b" * 100_000)
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
    """Except /health (see the next test)."""
    idle = [connect(server) for _ in range(8)]  # --limit-concurrency 8
    time.sleep(0.2)
    r = httpx.get(server.url + "/users/u00/recommendations", timeout=5)
    assert r.status_code == 503
    assert httpx.get(server.url + "/health", timeout=5).status_code == 200, "liveness is answered at the limit too"
    time.sleep(1.5)  # --header-timeout 1: the idle connections are gone
    assert httpx.get(server.url + "/users/u00/recommendations", timeout=5).status_code == 200
    with HealthProbe(server) as probe:
        time.sleep(0.3)
    probe.check()
    for sock in idle:
        sock.close()


def test_health_answers_while_300_slow_clients_hold_the_connections(tiny_model, tmp_path):
    """300 clients each hold a connection by sending their headers a byte a second (within the header
    timeout), past the default --limit-concurrency of 256: other requests get 503, but /health is
    answered, so a liveness probe does not restart a healthy server."""
    server = Server(new_store(tiny_model, tmp_path / "models").root, "--header-timeout", "60")
    held: list[socket.socket] = []
    try:
        for _ in range(300):
            sock = connect(server)
            sock.sendall(b"GET /users/u00/recommendations HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            held.append(sock)
        time.sleep(0.5)
        r = httpx.get(server.url + "/users/u00/recommendations", timeout=10)
        assert r.status_code == 503, "the slow clients should hold every connection the server serves"
        with HealthProbe(server, limit=0.25) as probe:
            for _ in range(3):
                for sock in held:
                    sock.sendall(b"a")  # one more byte each: still sending headers
                time.sleep(1.0)
        probe.check()
        assert len(probe.answers) >= 10
    finally:
        for sock in held:
            sock.close()
        server.stop()
    assert server.proc.returncode is not None
