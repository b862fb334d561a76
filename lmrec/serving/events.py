"""The event store: user-item interactions and item updates received by the service.

An event is acknowledged only once it is durable. The default store is SQLite in WAL mode with
``synchronous=FULL``: a committed transaction survives a killed process (and, with FULL, a
power loss), and readers (``lmrec retrain``) never block the writer. The store sits behind the
small :class:`EventStore` protocol so a server database can be added to :data:`STORES`.

Each event keeps two times: ``timestamp``, the client's (validated by the server, but still the
client's word), and ``received``, the server's clock when it stored the event. Retraining orders
events by ``received``, so a client cannot move its events into or out of the held-out set.
Stores written before ``received`` existed are migrated when opened (:func:`migrate`).

Each event is stored once: a client may give an ``event_id`` (unique in the store, a partial
unique index), and a batch retried after a lost answer stores only the events not stored yet;
events of one batch identical in every field are stored once too (:meth:`Event.key`).
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Protocol

import pandas as pd

from lmrec.errors import ConfigError


@dataclass(frozen=True)
class Event:
    """One interaction: ``value`` is e.g. a rating or a dwell time; ``timestamp`` is Unix seconds."""

    user: str
    item: str
    type: str = "click"
    value: float = 1.0
    timestamp: float = 0.0
    event_id: str | None = None  # the client's id: an event whose id is stored already is not stored again

    def key(self) -> tuple[Any, ...]:
        """What makes two events of one batch the same event: the client's id when it gave one,
        else every field."""
        return ("id", self.event_id) if self.event_id is not None else \
            ("fields", self.user, self.item, self.type, self.value, self.timestamp)


@dataclass(frozen=True)
class Appended:
    """What one append stored: ``first_id``..``last_id`` (None when every event was a duplicate)
    and how many events were duplicates (see :meth:`EventStore.append`)."""

    stored: int
    duplicates: int
    first_id: int | None
    last_id: int | None


class EventStore(Protocol):
    """What the service and the retraining loop need from an event store."""

    def append(self, events: Iterable[Event]) -> Appended:
        """Store events durably, each once: an event whose ``event_id`` is already stored (or repeats
        in the batch), or that is identical in every field to an earlier one of the batch, is
        counted as a duplicate and not stored. The stored events get consecutive ids."""

    def events(self, after_id: int = 0) -> pd.DataFrame:
        """Events with id > ``after_id``: columns id, user, item, type, value, timestamp, received."""

    def upsert_items(self, items: Iterable[dict[str, Any]], id_field: str = "item") -> int:
        """Store item records (raw id + text fields), replacing older versions; return the count."""

    def items(self) -> pd.DataFrame:
        """The latest record of every stored item: an ``item`` column plus its fields."""

    def count(self) -> int:
        """Number of stored events."""

    def close(self) -> None:
        """Release the connection."""


SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user TEXT NOT NULL, item TEXT NOT NULL, type TEXT NOT NULL,
    value REAL NOT NULL, timestamp REAL NOT NULL, received REAL NOT NULL, event_id TEXT);
CREATE TABLE IF NOT EXISTS items (
    item TEXT PRIMARY KEY, fields TEXT NOT NULL, updated REAL NOT NULL);
"""
EVENT_ID_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS events_event_id ON events (event_id) WHERE event_id IS NOT NULL"
SCHEMA_VERSION = 2  # PRAGMA user_version of a store with every column above


def migrate(conn: sqlite3.Connection) -> None:
    """Bring an older store up to :data:`SCHEMA_VERSION`: events without a ``received`` column get
    one, filled with their (client) timestamp, the best estimate left of when they arrived; events
    without an ``event_id`` column get one, empty (NULL) for the events already stored."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    steps = []
    if "received" not in columns:
        steps += ["ALTER TABLE events ADD COLUMN received REAL NOT NULL DEFAULT 0", "UPDATE events SET received = timestamp"]
    if "event_id" not in columns:
        steps.append("ALTER TABLE events ADD COLUMN event_id TEXT")
    conn.execute("BEGIN IMMEDIATE")
    try:
        for step in [*steps, EVENT_ID_INDEX]:
            conn.execute(step)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


class SQLiteEventStore:
    """Events in one SQLite file (WAL, synchronous=FULL); safe to share between threads.

    Example
    -------
    >>> store = SQLiteEventStore("events.db")                       # doctest: +SKIP
    >>> store.append([Event("u1", "i9", "click", 1.0, 1.7e9, event_id="c-17")])   # doctest: +SKIP
    Appended(stored=1, duplicates=0, first_id=1, last_id=1)
    """

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(str(self.path), timeout=timeout, check_same_thread=False,
                                         isolation_level=None)
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(SCHEMA)
            migrate(self._conn)
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{self.path}: not a usable SQLite event store ({exc}).") from None
        if str(mode).lower() != "wal":
            raise ConfigError(f"{self.path}: SQLite refused WAL mode (got {mode!r}); is it on a network file system?")
        self._lock = threading.Lock()

    def append(self, events: Iterable[Event]) -> Appended:
        batch = list(events)
        if not batch:
            raise ConfigError("append got no events.")
        unique = list({e.key(): e for e in reversed(batch)}.values())[::-1]  # the first of each, in order
        now = time.time()
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")  # the check for stored ids and the insert are one transaction
            try:
                stored = self._stored_ids(cur, [e.event_id for e in unique if e.event_id is not None])
                new = [e for e in unique if e.event_id is None or e.event_id not in stored]
                cur.executemany("INSERT INTO events (user, item, type, value, timestamp, received, event_id) "
                                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                                [(e.user, e.item, e.type, float(e.value), float(e.timestamp), now, e.event_id)
                                 for e in new])
                last = int(cur.execute("SELECT last_insert_rowid()").fetchone()[0])
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        if not new:
            return Appended(0, len(batch), None, None)
        return Appended(len(new), len(batch) - len(new), last - len(new) + 1, last)

    @staticmethod
    def _stored_ids(cur: sqlite3.Cursor, ids: list[str], chunk: int = 500) -> set[str]:
        """Which of ``ids`` the events table holds already (asked ``chunk`` at a time: SQLite bounds
        the parameters of one statement)."""
        found: set[str] = set()
        for lo in range(0, len(ids), chunk):
            part = ids[lo: lo + chunk]
            rows = cur.execute(f"SELECT event_id FROM events WHERE event_id IN ({','.join('?' * len(part))})", part)
            found.update(r[0] for r in rows)
        return found

    def _write(self, sql: str, rows: list[tuple[Any, ...]]) -> int:
        """Run ``sql`` for every row in one transaction; returns the last inserted rowid.

        Durable on return: in WAL mode with synchronous=FULL the commit is fsynced.
        """
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.executemany(sql, rows)
                last = int(cur.execute("SELECT last_insert_rowid()").fetchone()[0])
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return last

    def events(self, after_id: int = 0) -> pd.DataFrame:
        with self._lock:
            return pd.read_sql_query("SELECT * FROM events WHERE id > ? ORDER BY id", self._conn, params=(after_id,))

    def upsert_items(self, items: Iterable[dict[str, Any]], id_field: str = "item") -> int:
        now = time.time()
        rows = [(str(rec[id_field]), json.dumps({k: v for k, v in rec.items() if k != id_field}), now) for rec in items]
        self._write("INSERT INTO items (item, fields, updated) VALUES (?, ?, ?) "
                    "ON CONFLICT(item) DO UPDATE SET fields=excluded.fields, updated=excluded.updated", rows)
        return len(rows)

    def items(self) -> pd.DataFrame:
        with self._lock:
            rows = self._conn.execute("SELECT item, fields FROM items ORDER BY updated, item").fetchall()
        return pd.DataFrame([{"item": item, **json.loads(fields)} for item, fields in rows], columns=None) \
            if rows else pd.DataFrame({"item": pd.Series(dtype=str)})

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


STORES: dict[str, type[SQLiteEventStore]] = {"sqlite": SQLiteEventStore}


def open_event_store(location: str | Path) -> EventStore:
    """``"events.db"`` or ``"sqlite:///path/events.db"`` -> a store; other schemes name :data:`STORES`."""
    text = str(location)
    scheme, sep, rest = text.partition("://")
    if not sep:
        return SQLiteEventStore(text)
    if scheme not in STORES:
        raise ConfigError(f"Unknown event store scheme {scheme!r} in {text!r}; supported: {', '.join(STORES)}.")
    return STORES[scheme](rest[1:] if rest.startswith("/") and scheme == "sqlite" else rest)
