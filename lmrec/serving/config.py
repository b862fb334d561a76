"""The settings of one server (:class:`ServeConfig`): ``lmrec serve`` flags map onto its fields."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lmrec.errors import ConfigError
from lmrec.serving.hosts import validate_hosts
from lmrec.serving.schemas import MAX_BATCH
from lmrec.serving.validate import LoadSettings
from lmrec.storage.versions import ModelStore


@dataclass
class ServeConfig:
    """Settings of one server (``lmrec serve`` flags map onto these fields one to one).

    model: a version store (v0001/, v0002/, CURRENT) or one model directory.
    events: event store location (a SQLite path or sqlite:///...); default ``<model>/events.db``
        for a store, ``<model parent>/events.db`` for a single model directory.
    api_key: the key write routes require; None disables them unless ``insecure_dev``.
    insecure_dev: write routes without a key (``lmrec serve`` allows it on loopback hosts only).
    protect_reads: read routes need the key too (all but /health, /metrics and the pages);
        ``lmrec serve`` turns it on whenever it binds a non-loopback address (``--open-reads`` opts out).
    allowed_hosts: the host names requests may name in ``Host`` (``*.example.com``, ``*``); empty:
        any (``lmrec serve`` gives the loopback names when it binds a loopback address). Requests
        from a foreign ``Origin`` are refused whatever this says (:mod:`lmrec.serving.hosts`).
    index: "auto", "exact" or "hnsw" (vector index for factorised models).
    max_batch: the most events or items one request may carry (413 beyond).
    watch: seconds between checks of the store's CURRENT for a promoted version (0 = off).
    cache_dir: embedding cache folder for items added through the API (None: memory only);
        replaces every manifest's ``cache_dir``.
    encoders: encoder folders a manifest may name (name -> folder); registered names always work.
    load_timeout: seconds a version may take to load and pass its checks in a child process.
    max_body: bytes of one request body (413 beyond).
    max_text: characters of a text kept before tokenising (profiles, item fields, rendered texts).
    text_cache: request-text vectors kept in memory (an LRU; never on disk).
    body_timeout: seconds a request body may take to arrive after its headers (408).
    header_timeout: seconds request headers may take to arrive (the connection is closed).
    keep_alive: seconds an idle keep-alive connection stays open.
    limit_concurrency: connections served at once (503 beyond).
    clock_skew: seconds a client's event timestamp may be ahead of the server's clock (422 beyond).
    """

    model: str
    events: str | None = None
    api_key: str | None = None
    insecure_dev: bool = False
    protect_reads: bool = False
    allowed_hosts: list[str] = field(default_factory=list)
    index: str = "auto"
    max_batch: int = 1000
    watch: float = 0.0
    cache_dir: str | None = None
    encoders: dict[str, str] = field(default_factory=dict)
    load_timeout: float = 300.0
    max_body: int = 1_000_000
    max_text: int = 2000
    text_cache: int = 4096
    body_timeout: float = 30.0
    header_timeout: float = 10.0
    keep_alive: int = 5
    limit_concurrency: int = 256
    clock_skew: float = 300.0

    def validate(self) -> None:
        for name in ("max_batch", "max_body", "max_text", "text_cache", "keep_alive", "limit_concurrency"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"The '{name}' setting of the server must be a positive integer; got {value!r}.")
        for name in ("load_timeout", "body_timeout", "header_timeout"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"The '{name}' setting of the server must be positive seconds; "
                                  f"got {getattr(self, name)!r}.")
        if self.max_batch > MAX_BATCH:
            raise ConfigError(f"The 'max_batch' setting of the server may be at most {MAX_BATCH}; got {self.max_batch}.")
        if self.clock_skew < 0 or self.watch < 0:
            raise ConfigError(f"'clock_skew' and 'watch' must be >= 0; got {self.clock_skew!r} and {self.watch!r}.")
        if self.protect_reads and not self.api_key:
            raise ConfigError("--protect-reads needs an API key: set LMREC_API_KEY (a server that binds a "
                              "non-loopback address protects its read routes unless started with --open-reads).")
        validate_hosts(self.allowed_hosts)

    def event_location(self) -> str:
        if self.events:
            return self.events
        root = Path(self.model)
        return str((root.parent if ModelStore(root).single else root) / "events.db")

    def load_settings(self) -> LoadSettings:
        return LoadSettings(cache_dir=self.cache_dir, encoders=dict(self.encoders), timeout=self.load_timeout)
