"""Hostile requests against a real `lmrec serve`: each gets its stated status (never 500), a short
answer that does not echo the input, and /health keeps answering within 100 ms during and after."""
from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest

from lmrec.storage.versions import ModelStore
from tests.serving.conftest import API_KEY, HealthProbe, Server

AUTH = {"X-API-Key": API_KEY}
SMALL = 4096  # bytes: the most an error answer may take


@pytest.fixture(scope="module")
def live(tiny_model, tmp_path_factory):
    """A server whose manifest asks for an embedding cache outside the store, started with HOME in a
    temporary folder: neither may receive a file, whatever the requests."""
    base = tmp_path_factory.mktemp("limits")
    root = base / "models"
    root.mkdir()
    shutil.copytree(tiny_model, root / "v0001")
    manifest = json.loads((root / "v0001" / "manifest.json").read_text())
    manifest["params"]["cache_dir"] = str(base / "outside-cache")
    (root / "v0001" / "manifest.json").write_text(json.dumps(manifest))
    ModelStore(root).set_current("v0001")
    home = base / "home"
    home.mkdir()
    server = Server(root, "--max-batch", "50", "--max-text", "500", env={"HOME": str(home)})
    yield server
    server.stop()


def post(live, path, body=None, *, content=None, headers=None):
    headers = {**AUTH, **(headers or {})}
    if content is not None:
        return httpx.post(live.url + path, content=content, headers={"Content-Type": "application/json", **headers},
                          timeout=60)
    return httpx.post(live.url + path, json=body, headers=headers, timeout=60)


def attacked(live, attack):
    """Run ``attack()`` while probing /health; return its answer after checking the probe."""
    with HealthProbe(live) as probe:
        answer = attack()
    probe.check()
    return answer


FIVE_MB = "x" * 5_000_000
DEEP = "[" * 100_000 + "]" * 100_000

CASES = [  # (name, method, path, body or raw bytes, status, words in the detail)
    ("5 MB profile", "POST", "/recommendations", {"profile": FIVE_MB}, 413, "limit is 1000000"),
    ("profile over MAX_TEXT", "POST", "/recommendations", {"profile": "y" * 20_000}, 422,
     "profile: String should have at most 10000 characters (got a string of 20000 characters)"),
    ("20,000 events", "POST", "/events", {"events": [{"user": "u", "item": "1"}] * 20_000}, 413,
     "20000 events in one request; the limit is 50 (--max-batch)"),
    ("9,000 bad events", "POST", "/events", {"events": [{"user": "", "item": "1"}] * 9000}, 413,
     "9000 events in one request; the limit is 50 (--max-batch)"),
    ("600 KB of bad ids", "POST", "/recommendations", {"history": ["h" * 600] * 1000}, 422,
     "body.history.0: String should have at most 256 characters (got a string of 600 characters); "),
    ("50 bad events", "POST", "/events", {"events": [{"user": "", "item": "1"}] * 50}, 422,
     "body.events.0.user: String should have at least 1 character (got \"\"); "),
    ("history too long", "POST", "/recommendations", {"history": ["1"] * 1001}, 422, "got a list of 1001 entries"),
    ("candidates too long", "POST", "/rank", {"user": "u00", "items": ["1"] * 1001}, 422, "body.items"),
    ("id too long", "POST", "/rank", {"user": "u" * 300, "items": ["1"]}, 422, "body.user"),
    ("NaN timestamp", "POST", "/events", b'{"events": [{"user": "u00", "item": "1", "timestamp": NaN}]}', 422,
     "events.0.timestamp: Input should be a finite number"),
    ("future timestamp", "POST", "/events", {"events": [{"user": "u00", "item": "1", "timestamp": 4e9}]}, 422,
     "events.0.timestamp"),
    ("negative timestamp", "POST", "/events", {"events": [{"user": "u00", "item": "1", "timestamp": -5}]}, 422,
     "events.0.timestamp"),
    ("infinite value", "POST", "/events", b'{"events": [{"user": "u00", "item": "1", "value": Infinity}]}', 422,
     "events.0.value"),
    ("lone surrogate", "POST", "/recommendations", b'{"profile": "\\ud800 robots"}', 422,
     "body.profile: Input should be a valid string"),
    ("deep JSON", "POST", "/recommendations", DEEP.encode(), 422, "body: Invalid JSON: nested too deeply"),
    ("not UTF-8", "POST", "/recommendations", b'{"profile": "\xff\xfe"}', 422, "body: Invalid JSON"),
    ("bulk wrong item fields", "POST", "/items", {"items": [{"item": "a", "t": [1]}] * 50}, 422,
     "and 190 more errors"),
    ("not an object", "POST", "/rank", b'[1, 2]', 422, "body: Input should be a valid dictionary"),
    ("nested item field", "POST", "/items", {"items": [{"item": "n1", "title": {"a": [1]}}]}, 422,
     "body.items.0.title"),
    ("too many item fields", "POST", "/items", {"items": [{"item": "n1", **{f"f{i}": "v" for i in range(40)}}]},
     422, "at most 32 fields"),
    ("too many events", "POST", "/events", {"events": [{"user": "u00", "item": "1"}] * 51}, 413, "limit is 50"),
    ("long path id", "GET", "/users/" + "u" * 300 + "/recommendations", None, 422, "user_id"),
    ("huge k", "GET", "/items/1/similar?k=100000", None, 422, "k"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hostile_request(live, case):
    _, method, path, body, status, words = case
    if method == "GET":
        r = attacked(live, lambda: httpx.get(live.url + path, headers=AUTH, timeout=60))
    elif isinstance(body, bytes):
        r = attacked(live, lambda: post(live, path, content=body))
    else:
        r = attacked(live, lambda: post(live, path, body))
    assert r.status_code in (status if isinstance(status, tuple) else (status,)), r.text[:500]
    assert len(r.content) < SMALL, f"{len(r.content)} bytes answered"
    assert words in r.json()["detail"]
    for header in ("content-security-policy", "x-content-type-options", "x-frame-options", "referrer-policy"):
        assert header in r.headers


def test_a_long_profile_is_cut_before_tokenising(live):
    start = time.perf_counter()
    r = attacked(live, lambda: post(live, "/recommendations", {"profile": "fresh fruit " * 800, "k": 3}))
    assert r.status_code == 200 and len(r.json()["items"]) == 3
    assert time.perf_counter() - start < 5


def test_encoding_does_not_stall_other_routes(live):
    """Unique profiles encoded back to back in four threads: /health stays within 100 ms and a known
    user's recommendations (no text to encode) keep answering."""
    stop = threading.Event()
    statuses: list[int] = []

    def encode_forever(t: int) -> None:
        with httpx.Client(timeout=60) as client:
            i = 0
            while not stop.is_set():
                body = {"profile": f"profile {t}-{i} " + "space opera with robots " * 20}
                statuses.append(client.post(live.url + "/recommendations", json=body).status_code)
                i += 1

    threads = [threading.Thread(target=encode_forever, args=(t,)) for t in range(4)]
    with HealthProbe(live) as probe:
        for t in threads:
            t.start()
        time.sleep(1.0)
        slowest = 0.0
        for _ in range(10):
            start = time.perf_counter()
            assert httpx.get(live.url + "/users/u00/recommendations", timeout=30).status_code == 200
            slowest = max(slowest, time.perf_counter() - start)
        stop.set()
        for t in threads:
            t.join(60)
    probe.check()
    assert len(statuses) > 8 and set(statuses) == {200}
    assert slowest < 1.0, f"a recommendation without text took {slowest:.2f} s while profiles were encoded"


def files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def test_no_request_writes_to_disk(live):
    home = Path(live.root).parent / "home"
    before = files(home)
    for i in range(5):
        assert post(live, "/recommendations", {"profile": f"unique profile {i} {time.time()}"}).status_code == 200
    r = post(live, "/items", {"items": [{"item": f"new-{time.time()}", "title": "a brand new thing"}]})
    assert r.status_code == 200
    assert httpx.get(live.url + "/users/u00/explain", params={"item_id": "3"}).status_code == 200
    outside = Path(live.root).parent / "outside-cache"
    assert not outside.exists(), "the manifest's cache_dir was used"
    assert not (home / ".cache" / "lmrec").exists() and files(home) == before, "a request wrote under HOME"
    assert sorted(p.name for p in Path(live.root).iterdir() if not p.name.startswith("events.db")) == \
        ["CURRENT", "v0001"]


def test_an_item_id_that_reads_like_an_integer_updates_that_item(live):
    items = httpx.get(live.url + "/health").json()["items"]
    r = post(live, "/items", {"items": [{"item": "3", "title": "grape"}]})
    assert r.status_code == 200 and r.json() == {"version": "v0001", "added": [], "updated": ["3"]}
    assert httpx.get(live.url + "/health").json()["items"] == items


def test_keys_are_compared_as_bytes(live):
    body = {"events": [{"user": "u00", "item": "1"}]}
    for key in (b"\xff\xfe", "tést-kéy".encode(), API_KEY.upper().encode()):
        r = httpx.post(live.url + "/events", json=body, headers=[(b"X-API-Key", key)], timeout=30)
        assert r.status_code == 401, (key, r.text)


STRICT = [  # (path, body, the field named): JSON booleans and strings are not numbers, numbers not booleans
    ("/recommendations", {"history": ["1"], "k": True}, "body.k"),
    ("/recommendations", {"history": ["1"], "k": "5"}, "body.k"),
    ("/recommendations", {"history": ["1"], "k": 5.0}, "body.k"),
    ("/recommendations", {"history": ["1"], "exclude_seen": 1}, "body.exclude_seen"),
    ("/recommendations", {"history": [1]}, "body.history.0"),
    ("/events", {"events": [{"user": "u00", "item": "1", "value": True}]}, "body.events.0.value"),
    ("/events", {"events": [{"user": "u00", "item": "1", "timestamp": "1700000000"}]}, "body.events.0.timestamp"),
    ("/events", {"events": [{"user": 7, "item": "1"}]}, "body.events.0.user"),
    ("/rank", {"user": "u00", "items": ["1", 2]}, "body.items.1"),
]


@pytest.mark.parametrize("path, body, field", STRICT, ids=[f"{c[2]}={json.dumps(c[1])[-24:]}" for c in STRICT])
def test_request_types_are_strict(live, path, body, field):
    r = post(live, path, body)
    assert r.status_code == 422 and r.json()["detail"].startswith(field), r.text
    ok = {**body, "k": 5} if "k" in body else None  # the same request with a real integer is served
    if ok is not None:
        assert post(live, path, ok).status_code == 200


def longest_echo(answer: str, request: str, n: int = 21) -> str | None:
    """The first piece of ``answer`` of ``n`` characters that ``request`` holds too, if any."""
    return next((answer[i: i + n] for i in range(len(answer) - n + 1) if answer[i: i + n] in request), None)


def unique(tag: str, n: int = 40) -> str:
    return (tag + "-" + "".join(f"{hash((tag, i)) & 0xffff:04x}" for i in range(n)))[:n]


ECHO_BODIES = [  # wrong values of every kind, each made of text found nowhere else
    ("/events", {"events": [{"user": "u00", "item": "1", "timestamp": "<script>alert(1)</script>SECRETTOKEN123"}]}),
    ("/events", {"events": [{"user": "u00", "item": "1", "value": unique("value")}]}),
    ("/events", {"events": [{"user": "u00", "item": "1", "type": unique("type", 90)}]}),
    ("/events", {"events": [{"user": unique("user", 300), "item": "1"}]}),
    ("/events", {"events": [{"user": "u00", "item": "1", "timestamp": 12345678901234567890123456789}]}),
    ("/events", {"events": [{"user": "u00", "item": "1", "timestamp": 3.1415926535897932e200}]}),
    ("/events", {"events": [{"user": "u00", "item": "1", "event_id": unique("event", 300)}]}),
    ("/events", {"events": [{"user": "u00", "item": "1", "event_id": 123456789012345678901234}]}),
    ("/events", {"events": {unique("eventskey"): unique("eventsvalue")}}),
    ("/recommendations", {"history": [unique("history")], "k": unique("k")}),
    ("/recommendations", {"profile": {unique("profilekey"): [unique("profilevalue")]}}),
    ("/recommendations", {"profile": unique("long profile", 10_050)}),
    ("/rank", {"user": unique("rankuser"), "items": unique("rankitems")}),
    ("/items", {"items": [{"item": "n1", unique("fieldname", 60): [unique("fieldvalue")]}]}),
    ("/items", {"items": [{"item": "n1", unique("fieldname2", 300): "x"}]}),
    ("/items", {"items": [{"item": unique("itemid", 300), "title": "x"}]}),
    ("/items", {"items": [{"item": "n1", "title": unique("title", 10_050)}]}),
    ("/admin/reload", {"version": unique("version", 300)}),
    ("/admin/reload", {"version": [unique("versionlist")]}),
]
ECHO_RAW = [  # bodies that are not JSON, each with a long unique tail
    ("/events", ('{"events": [{"user": "' + unique("unterminated")).encode()),
    ("/events", ('{"events": [' + unique("garbage") + "]}").encode()),
    ("/recommendations", b'{"profile": "\xff' + unique("notutf8").encode() + b'"}'),
]
ECHO_QUERIES = [f"/users/u00/recommendations?k={unique('querystring')}",
                f"/items/1/similar?k={unique('similar-k')}",
                f"/users/u00/explain?item_id=3&top={unique('explain-top')}",
                f"/users/{unique('pathuser', 300)}/recommendations",
                f"/items/search?q={unique('searchq', 300)}"]


def test_no_422_answer_repeats_the_request(live):
    """Every 422 names what was wrong in its own words: no 21 characters in a row of the request
    (body or URL) come back, whatever the field, its type or its length."""
    answered = 0
    for path, body in [(p, json.dumps(b).encode()) for p, b in ECHO_BODIES] + ECHO_RAW:
        r = post(live, path, content=body)
        assert r.status_code in (413, 422), (path, r.status_code, r.text[:300])
        echo = longest_echo(r.text, body.decode("utf-8", "replace"))
        assert echo is None, f"{path} answered {r.text[:300]!r}, which repeats {echo!r} of the request"
        answered += r.status_code == 422
    for url in ECHO_QUERIES:
        r = httpx.get(live.url + url, headers=AUTH, timeout=30)
        assert r.status_code == 422, (url, r.text[:300])
        assert longest_echo(r.text, url) is None, r.text[:300]
    assert answered >= len(ECHO_BODIES)
