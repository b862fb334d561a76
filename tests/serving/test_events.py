"""The SQLite event store: durable appends, WAL mode, ids, item upserts, bad locations."""
from __future__ import annotations

import sqlite3
import threading

import pytest

from lmrec.errors import ConfigError
from lmrec.serving.events import Appended, Event, SQLiteEventStore, open_event_store


def test_append_read_and_reopen(tmp_path):
    store = SQLiteEventStore(tmp_path / "e.db")
    assert store.append([Event("u1", "i1", "click", 1.0, 10.0), Event("u2", "i2", "rating", 4.0, 11.0)]) == \
        Appended(2, 0, 1, 2)
    assert store.append([Event("u3", "i3")]) == Appended(1, 0, 3, 3)
    store.close()
    again = open_event_store(f"sqlite:///{tmp_path / 'e.db'}")
    frame = again.events()
    assert frame["user"].tolist() == ["u1", "u2", "u3"] and frame["value"].tolist() == [1.0, 4.0, 1.0]
    assert again.events(after_id=2)["id"].tolist() == [3] and again.count() == 3
    conn = sqlite3.connect(tmp_path / "e.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_concurrent_appends_get_distinct_ids(tmp_path):
    store = SQLiteEventStore(tmp_path / "e.db")
    ranges: list[tuple[int, int]] = []

    def work(t: int) -> None:
        for i in range(20):
            done = store.append([Event(f"t{t}", str(i), timestamp=float(j)) for j in range(3)])
            ranges.append((done.first_id, done.last_id))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = sorted(i for a, b in ranges for i in range(a, b + 1))
    assert ids == list(range(1, 241)) and store.count() == 240


def test_each_event_is_stored_once(tmp_path):
    """A retried batch with event ids stores only what is new; repeats inside a batch (the same id,
    or the same event in every field) count once; events without ids that differ are all kept."""
    store = SQLiteEventStore(tmp_path / "e.db")
    batch = [Event("u1", "i1", timestamp=1.0, event_id="a"), Event("u1", "i2", timestamp=2.0, event_id="b")]
    assert store.append(batch) == Appended(2, 0, 1, 2)
    assert store.append(batch) == Appended(0, 2, None, None)  # the answer was lost; the client retried
    retried = batch + [Event("u1", "i3", timestamp=3.0, event_id="c")]
    assert store.append(retried) == Appended(1, 2, 3, 3)
    same = Event("u2", "i1", "click", 1.0, 5.0)
    assert store.append([same, same, same, Event("u2", "i1", "click", 1.0, 6.0)]) == Appended(2, 2, 4, 5)
    repeated_id = [Event("u3", "i1", event_id="d"), Event("u3", "i9", event_id="d")]  # the first one counts
    assert store.append(repeated_id) == Appended(1, 1, 6, 6)
    frame = store.events()
    assert frame["event_id"].tolist()[:3] == ["a", "b", "c"] and len(frame) == 6 and store.count() == 6
    assert frame.loc[frame["event_id"] == "d", "item"].tolist() == ["i1"]
    many = [Event("u4", str(i), event_id=f"m{i}") for i in range(1200)]  # more ids than one SQL statement asks
    assert store.append(many).stored == 1200 and store.append(many) == Appended(0, 1200, None, None)


def test_items_are_upserted(tmp_path):
    store = SQLiteEventStore(tmp_path / "e.db")
    store.upsert_items([{"item": "a", "title": "Alpha"}, {"item": "b", "title": "Beta"}])
    store.upsert_items([{"item": "a", "title": "Alpha 2", "genres": "Drama"}])
    items = store.items().set_index("item")
    assert items.loc["a", "title"] == "Alpha 2" and items.loc["a", "genres"] == "Drama" and items.loc["b", "title"] == "Beta"


def test_errors(tmp_path):
    with pytest.raises(ConfigError, match="no events"):
        SQLiteEventStore(tmp_path / "e.db").append([])
    bad = tmp_path / "not-a-db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ConfigError, match="not a usable SQLite event store"):
        SQLiteEventStore(bad)
    with pytest.raises(ConfigError, match="Unknown event store scheme 'postgres'"):
        open_event_store("postgres://db/events")


def test_an_older_store_gains_the_received_column(tmp_path):
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL, item TEXT NOT NULL, "
                 "type TEXT NOT NULL, value REAL NOT NULL, timestamp REAL NOT NULL)")
    conn.execute("INSERT INTO events (user, item, type, value, timestamp) VALUES ('u1', 'i1', 'click', 1.0, 5.0)")
    conn.commit()
    conn.close()
    store = SQLiteEventStore(db)
    assert store.events()[["id", "timestamp", "received"]].values.tolist() == [[1, 5.0, 5.0]]
    store.append([Event("u2", "i2", timestamp=6.0)])
    assert store.events()["received"].iloc[-1] > 1e9, "new events get the server's clock"
    store.close()
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == 2
    again = SQLiteEventStore(db)  # a migrated store opens again unchanged, and takes event ids
    assert again.append([Event("u3", "i3", event_id="x")] * 2) == Appended(1, 1, 3, 3)
    assert again.events()["event_id"].isna().tolist() == [True, True, False]
