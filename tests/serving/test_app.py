"""Every route of a real `lmrec serve` process, over HTTP: answers, errors, API-key enforcement."""
from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from lmrec.serving.app import ROUTERS, create_app
from lmrec.serving.config import ServeConfig
from lmrec.serving.events import SQLiteEventStore

from tests.serving.conftest import API_KEY, Server, new_store

AUTH = {"X-API-Key": API_KEY}


@pytest.fixture(scope="module")
def live(tiny_model, tmp_path_factory):
    server = Server(new_store(tiny_model, tmp_path_factory.mktemp("live") / "models").root, "--max-batch", "50")
    yield server
    server.stop()


def get(live, path, **kw):
    return httpx.get(live.url + path, timeout=60, **kw)


def post(live, path, body, **kw):
    return httpx.post(live.url + path, json=body, timeout=60, **kw)


def ids(response):
    return [x["item"] for x in response.json()["items"]]


def test_health_and_openapi(live):
    h = get(live, "/health").json()
    assert h["status"] == "ok" and h["version"] == "v0001" and h["items"] >= 10 and h["model_class"] == "lm-ranker"
    assert h["uptime_seconds"] >= 0
    spec = get(live, "/openapi.json").json()
    for route in ("/users/{user_id}/recommendations", "/recommendations", "/rank", "/items", "/events",
                  "/admin/reload", "/items/{item_id}/similar", "/users/{user_id}/explain"):
        assert route in spec["paths"]
    assert get(live, "/docs").status_code == 200


def test_known_user_recommendations(live):
    r = get(live, "/users/u00/recommendations", params={"k": 3})
    assert r.status_code == 200 and len(ids(r)) == 3
    assert ids(r)[0] == "3", "the tiny dataset's known best item for u00 is 3 (grape)"
    assert "0" not in ids(r), "seen items are excluded by default"
    r = get(live, "/users/u00/recommendations", params={"k": 20, "exclude_seen": "false"})
    assert "0" in ids(r)


def test_new_user_by_history_and_profile(live):
    r = post(live, "/recommendations", {"history": ["4", "5", "6"], "k": 1})
    assert r.status_code == 200 and ids(r) == ["7"]
    r = post(live, "/recommendations", {"profile": "I love fresh fruit", "k": 4})
    assert len(set(ids(r)) & {"0", "1", "2", "3"}) >= 3


def test_rank_orders_the_candidates(live):
    r = post(live, "/rank", {"user": "u10", "items": ["0", "7", "1"]})
    assert r.status_code == 200 and ids(r)[0] == "7" and sorted(ids(r)) == ["0", "1", "7"]
    scores = [x["score"] for x in r.json()["items"]]
    assert scores == sorted(scores, reverse=True)
    r = post(live, "/rank", {"history": ["0", "1"], "items": ["5", "2"]})
    assert ids(r) == ["2", "5"]


def test_similar_items(live):
    r = get(live, "/items/0/similar", params={"k": 3})
    assert r.status_code == 200 and "0" not in ids(r) and len(set(ids(r)) & {"1", "2", "3"}) >= 2


def test_explain(live):
    r = get(live, "/users/u00/explain", params={"item_id": "3"})
    assert r.status_code == 200
    e = r.json()
    assert e["method"] == "leave-one-out" and {h["item_id"] for h in e["history"]} <= {"0", "1", "2"}
    assert abs(sum(h["share"] for h in e["history"]) - 1.0) < 1e-6
    assert [f["field"] for f in e["fields"]] == ["title"] and e["fields"][0]["value"] == "grape"
    assert {h["title"] for h in e["history"]} <= {"apple", "banana", "cherry"}


def test_search_items_by_title(live):
    def found(q, **params):
        r = get(live, "/items/search", params={"q": q, **params})
        assert r.status_code == 200, r.text
        return [(x["item"], x["title"]) for x in r.json()["items"]]

    assert found("PIAN") == [("9", "piano")]
    assert [t for _, t in found("an")] == ["piano", "banana"]  # titles containing "an", the shorter first
    assert found("e", limit=2) == [("0", "apple"), ("3", "grape")]
    assert found("gr")[0] == ("3", "grape"), "a title that starts with the query first"
    assert found("7")[0] == ("7", "pliers"), "an item id matches too, first"
    assert found("zzz") == []
    assert get(live, "/items/search", params={"q": "x" * 201}).status_code == 422
    assert get(live, "/items/search", params={"q": "a", "limit": 51}).status_code == 422


@pytest.mark.parametrize("path,status,message", [
    ("/users/nobody/recommendations", 404, "unknown user 'nobody'"),
    ("/users/u00/recommendations?k=0", 422, "k"),
    ("/users/u00/recommendations?k=abc", 422, "k"),
    ("/users/u00/explain?item_id=zzz", 404, "unknown item 'zzz'"),
    ("/items/zzz/similar", 404, "unknown item"),
])
def test_read_errors(live, path, status, message):
    r = get(live, path)
    assert r.status_code == status and message in r.json()["detail"]


def test_post_errors(live):
    r = post(live, "/recommendations", {"k": 3})
    assert r.status_code == 422 and "history" in r.json()["detail"]
    r = post(live, "/recommendations", {"history": ["nope"]})
    assert r.status_code == 404 and "nope" in r.json()["detail"]
    r = post(live, "/rank", {"user": "u00", "items": []})
    assert r.status_code == 422
    r = httpx.post(live.url + "/rank", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422


def test_write_routes_need_the_key(live):
    body = {"events": [{"user": "u00", "item": "1"}]}
    assert post(live, "/events", body).status_code == 401
    assert post(live, "/events", body, headers={"X-API-Key": "wrong"}).status_code == 401
    assert post(live, "/items", {"items": [{"item": "x", "title": "y"}]}).status_code == 401
    assert post(live, "/admin/reload", {}).status_code == 401
    assert post(live, "/events", body, headers=AUTH).status_code == 200


def test_events_batches_and_limits(live):
    events = [{"user": f"u{i % 20:02d}", "item": str(i % 10), "type": "click", "value": 1.0, "timestamp": 1e9 + i}
              for i in range(50)]
    r = post(live, "/events", {"events": events}, headers=AUTH)
    assert r.status_code == 200 and r.json()["stored"] == 50 and r.json()["last_id"] - r.json()["first_id"] == 49
    r = post(live, "/events", {"events": events + events[:1]}, headers=AUTH)
    assert r.status_code == 413 and "limit is 50" in r.json()["detail"]
    r = post(live, "/events", {"events": [{"user": "", "item": "1"}]}, headers=AUTH)
    assert r.status_code == 422 and "user" in r.json()["detail"]


def test_a_retried_batch_with_event_ids_is_stored_once(live):
    """The answer to a batch is lost and the client sends it again, then again with three new events:
    each event is stored once; identical events without ids in one batch count once too."""
    def count() -> float:
        line = next(x for x in get(live, "/metrics").text.splitlines() if x.startswith("lmrec_events_stored_total"))
        return float(line.split()[-1])

    before = count()
    batch = [{"event_id": f"retry-{i}", "user": f"u{i % 20:02d}", "item": str(i % 10)} for i in range(20)]
    first = post(live, "/events", {"events": batch}, headers=AUTH).json()
    assert first["stored"] == 20 and first["duplicates"] == 0 and first["last_id"] - first["first_id"] == 19
    again = post(live, "/events", {"events": batch}, headers=AUTH).json()
    assert again == {"stored": 0, "duplicates": 20, "first_id": None, "last_id": None}
    more = batch + [{"event_id": f"retry-{i}", "user": "u00", "item": "5"} for i in range(20, 23)]
    third = post(live, "/events", {"events": more}, headers=AUTH).json()
    assert third["stored"] == 3 and third["duplicates"] == 20 and third["first_id"] == first["last_id"] + 1
    same = {"user": "u03", "item": "4", "timestamp": 1.5e9}
    fourth = post(live, "/events", {"events": [same, same, same]}, headers=AUTH).json()
    assert fourth["stored"] == 1 and fourth["duplicates"] == 2
    assert count() - before == 24, "the events counter counts stored events, not duplicates"
    rows = SQLiteEventStore(Path(live.root) / "events.db").events()
    stored = rows["event_id"].dropna()
    assert sorted(stored[stored.str.startswith("retry-")]) == sorted(f"retry-{i}" for i in range(23))
    assert len(rows[(rows["user"] == "u03") & (rows["timestamp"] == 1.5e9)]) == 1


def test_new_item_is_rankable_at_once(live):
    r = post(live, "/items", {"items": [{"item": "mango-1", "title": "mango"}, {"item": "drill-1", "title": "drill"}]},
             headers=AUTH)
    assert r.status_code == 200 and r.json()["added"] == ["mango-1", "drill-1"]
    fruit = ids(get(live, "/users/u00/recommendations", params={"k": 12}))
    tools = ids(get(live, "/users/u10/recommendations", params={"k": 12}))
    assert fruit.index("mango-1") < fruit.index("drill-1") and tools.index("drill-1") < tools.index("mango-1")
    assert "mango-1" in ids(post(live, "/rank", {"user": "u00", "items": ["mango-1", "4"]}))[:1]
    r = post(live, "/items", {"items": [{"item": "mango-1", "title": "ripe mango"}]}, headers=AUTH)
    assert r.json()["updated"] == ["mango-1"]
    assert get(live, "/health").json()["items"] >= 12


def test_reload_and_metrics(live):
    r = post(live, "/admin/reload", {}, headers=AUTH)
    assert r.status_code == 200 and r.json() == {"previous": "v0001", "version": "v0001", "changed": False}
    r = post(live, "/admin/reload", {"version": "v0009"}, headers=AUTH)
    assert r.status_code == 409 and "still serving v0001" in r.json()["detail"]
    assert get(live, "/users/u00/recommendations").status_code == 200  # counted below, whichever tests ran before
    text = get(live, "/metrics").text
    assert 'lmrec_requests_total{method="GET",route="/users/{user_id}/recommendations",status="200"}' in text
    assert 'lmrec_request_seconds_bucket{le="0.005",method="GET",route="/health"}' in text
    assert 'lmrec_model_info{model_id=' in text and 'version="v0001"' in text


def test_web_page_is_served(live):
    r = get(live, "/")
    assert r.status_code == 200 and "<title>lmrec</title>" in r.text and '<script src="/static/page.js">' in r.text
    script = get(live, "/static/page.js")
    assert script.status_code == 200 and "/recommendations" in script.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert get(live, "/static/../app.py").status_code == 404 and get(live, "/static/index.html").status_code == 404


def test_write_routes_disabled_without_a_key(store, serve):
    server = serve(store.root, api_key=None)
    r = post(server, "/events", {"events": [{"user": "u00", "item": "1"}]})
    assert r.status_code == 403 and "LMREC_API_KEY" in r.json()["detail"]
    assert get(server, "/users/u00/recommendations").status_code == 200
    dev = serve(store.root, "--insecure-dev", api_key=None)
    assert post(dev, "/events", {"events": [{"user": "u00", "item": "1"}]}).status_code == 200


def test_two_apps_in_one_process_share_the_routers_not_their_state(tiny_model, tmp_path):
    """The routes are module-level routers that find the server on the app: each app answers with its
    own key, limits and model, and every route of the routers is in it."""
    from fastapi.routing import APIRoute
    from fastapi.testclient import TestClient

    def app(name: str, **settings):
        root = new_store(tiny_model, tmp_path / name).root
        return create_app(ServeConfig(model=str(root), allowed_hosts=["testserver"], **settings))

    first, second = app("first", api_key="first-key", max_batch=2), app("second", api_key="second-key",
                                                                        protect_reads=True)
    documented = {(r.path, m.lower()) for router in ROUTERS for r in router.routes
                  if isinstance(r, APIRoute) and r.include_in_schema for m in r.methods}
    assert ("/users/{user_id}/recommendations", "get") in documented and ("/events", "post") in documented
    events = {"events": [{"user": "u00", "item": str(i)} for i in range(3)]}
    with TestClient(first) as a, TestClient(second) as b:
        assert a.get("/users/u00/recommendations").status_code == 200
        assert b.get("/users/u00/recommendations").status_code == 401, "only the second protects its reads"
        assert b.get("/users/u00/recommendations", headers={"X-API-Key": "second-key"}).status_code == 200
        assert a.post("/events", json=events, headers={"X-API-Key": "second-key"}).status_code == 401
        r = a.post("/events", json=events, headers={"X-API-Key": "first-key"})
        assert r.status_code == 413 and "limit is 2" in r.json()["detail"]
        assert b.post("/events", json=events, headers={"X-API-Key": "second-key"}).json()["stored"] == 3
        assert a.get("/health").json()["status"] == b.get("/health").json()["status"] == "ok"
        assert "<title>lmrec</title>" in a.get("/").text
        for client in (a, b):
            spec = client.get("/openapi.json").json()["paths"]
            assert documented == {(path, m) for path, ops in spec.items() for m in ops}, "every route, once"
