"""What the routes of one server share (:class:`ServiceState`): the served model, swapped whole on
reload, the event store and the metrics; and how a replaced model's memory is given back."""
from __future__ import annotations

import gc
import logging
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

from lmrec.errors import ArtifactError
from lmrec.models.capabilities import AddsItems
from lmrec.serving.config import ServeConfig
from lmrec.serving.events import EventStore, open_event_store
from lmrec.serving.metrics import ServiceMetrics
from lmrec.serving.state import ReloadBusy, ServedModel
from lmrec.serving.validate import CheckTimedOut, KnownRefusal, Verdicts
from lmrec.storage.versions import ModelStore

log = logging.getLogger("lmrec.serve")


RELEASE_WAIT = 300.0  # seconds the last requests on a replaced model may take before its release is given up


@dataclass(frozen=True)
class Reloaded:
    """What a reload did: ``changed`` when a model was loaded and swapped in; False when the version
    asked for is the served one and its files had not changed since it was loaded (nothing ran)."""

    previous: str
    version: str
    changed: bool


class ServiceState:
    """What the routes share: the served model (swapped whole on reload), the event store, metrics.

    Reloads run one at a time and never wait for one another: a reload asked while another runs
    raises ReloadBusy at once (HTTP 409), so no worker thread sits on a lock. Versions are known by
    content (:class:`~lmrec.serving.validate.Verdicts`): the served version unchanged since it was
    loaded is a no-op, content refused before is refused at once with the same reason, and content
    that passed before is not checked in a child process again.
    """

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.store = ModelStore(config.model)
        self.events: EventStore = open_event_store(config.event_location())
        self.metrics = ServiceMetrics()
        self.started = time.time()
        self.verdicts = Verdicts()
        self._reload_lock = threading.Lock()
        self._reloading: str | None = None
        self.served, self._digest = self._load(self.store.current(), None)

    def _load(self, name: str, previous: ServedModel | None) -> tuple[ServedModel, str]:
        """Version ``name`` loaded and ready, and its content digest. Checked in a child process unless
        this content passed before; refused at once if it was refused before (each refusal is
        remembered by content). ``previous``: the served model, whose encoder the new one may take over."""
        c = self.config
        digest = self.verdicts.identify(self.store.version_path(name))
        self.verdicts.check(digest)
        check = not self.verdicts.passed(digest)
        if check:
            self.metrics.checks.inc()
        try:
            served = ServedModel.load(self.store, name, index=c.index, settings=c.load_settings(), max_text=c.max_text,
                                      text_cache=c.text_cache, check=check, previous=previous)
        except CheckTimedOut:
            raise  # the machine was busy, or the content is slow: not a verdict to remember
        except ArtifactError as exc:
            self.verdicts.refuse(digest, str(exc))
            raise
        stored = self.events.items()
        if len(stored) and isinstance(served.model, AddsItems):  # items added through the API since training
            unknown = stored[~stored["item"].isin(list(served.items))]
            if len(unknown):
                served.add_items(unknown.reset_index(drop=True))
        self.verdicts.accept(digest)
        if served.encoder_shared:
            self.metrics.shared_encoders.inc()
        self.metrics.set_model(served.version, served.model_id)
        return served, digest

    def reload(self, version: str | None = None, *, watching: bool = False) -> Reloaded:
        """Swap in ``version`` (default: the store's CURRENT) unless it is the served version with its
        files unchanged; the old model keeps serving if anything fails. Raises ReloadBusy at once while
        another reload runs, ArtifactError (HTTP 409) for a refused version. ``watching``: asked by the
        watcher, whose unchanged answers and repeated refusals are not counted in the metrics."""
        if not self._reload_lock.acquire(blocking=False):
            if not watching:
                self.metrics.reloads.labels("busy").inc()
            running = f" of {self._reloading}" if self._reloading else ""
            raise ReloadBusy(f"a reload{running} is in progress, still serving {self.served.version}; "
                             "ask again once it ends")
        try:
            done = self._reload(version)
        except ArtifactError as exc:
            if not (watching and isinstance(exc, KnownRefusal)):
                self.metrics.reloads.labels("refused").inc()
            raise
        finally:
            self._reloading = None
            self._reload_lock.release()
        if done.changed or not watching:
            self.metrics.reloads.labels("loaded" if done.changed else "unchanged").inc()
        return done

    def _reload(self, version: str | None) -> Reloaded:
        previous = self.served
        target = version or self.store.current()
        self._reloading = target
        if target == previous.version and self.verdicts.identify(self.store.version_path(target)) == self._digest:
            return Reloaded(target, target, changed=False)
        served, digest = self._load(target, previous)
        self.served, self._digest = served, digest  # one reference assignment: requests see old or new
        freeze_long_lived()
        log.info("serving %s (was %s)", served.version, previous.version)
        parts = _weak_refs(previous.own_parts(served))
        released = threading.Event()
        weakref.finalize(previous, released.set)
        done = Reloaded(previous.version, served.version, changed=True)
        del previous  # now only requests still running on it hold the old model
        if released.is_set():
            self._collect_leftovers(released, parts, done.previous)
        else:
            threading.Thread(target=self._collect_leftovers, args=(released, parts, done.previous), daemon=True,
                             name="lmrec-release").start()
        return done

    def _collect_leftovers(self, released: threading.Event, parts: list[weakref.ref], name: str) -> None:
        """Once a replaced model is freed, free what of it only reference cycles keep (a frozen
        sentence-transformers model refers to itself through its model card, for one): the young
        garbage first, then, only if a part still lives, one full collection (frozen objects too)."""
        if not released.wait(RELEASE_WAIT):
            log.warning("%s is still in use %g s after it was replaced; not waiting to release it", name, RELEASE_WAIT)
            return
        if any(p() is not None for p in parts):
            gc.collect()
        if any(p() is not None for p in parts):
            collect_frozen()
            self.metrics.release_collections.inc()

    def watch(self, stop: threading.Event) -> None:
        """Reload whenever CURRENT names another version or the served version's files change (an
        unchanged version costs a look at its files' stamps); a refused version is checked again
        only once its files change, by the same memory as requests (one refusal logged once)."""
        last_error = ""
        while not stop.wait(self.config.watch):
            try:
                self.reload(watching=True)
            except ReloadBusy:
                continue  # a requested reload runs; CURRENT is looked at again next interval
            except Exception as exc:  # a bad promotion must not kill the watcher
                said = exc.reason if isinstance(exc, KnownRefusal) else str(exc)
                if said != last_error:  # said once, not every interval
                    log.error("watch: not reloading: %s", exc)
                last_error = said


def freeze_long_lived() -> None:
    """Take every object alive now out of the cyclic garbage collector's walks (``gc.freeze``).

    A full collection walks every tracked object while no other thread runs: with a model and an
    encoder loaded that is about half a million objects and 0.3-0.5 s of a frozen server, /health
    included. Objects that live as long as the server (the app, the model, the encoder) are frozen
    once loaded, so collections walk only what requests create. Garbage is collected first (a walk
    of the objects not frozen yet only), so none is frozen. A replaced model's objects that only
    reference cycles keep alive are not walked any more: :meth:`ServiceState._collect_leftovers`
    runs :func:`collect_frozen` once for them, when a replaced model's parts outlive it.
    """
    gc.collect()
    gc.freeze()


def _weak_refs(objects: list[Any]) -> list[weakref.ref]:
    """Weak references to those of ``objects`` that allow one (the others are not watched)."""
    refs = []
    for obj in objects:
        try:
            refs.append(weakref.ref(obj))
        except TypeError:
            pass
    return refs


def collect_frozen() -> None:
    """One full collection, frozen objects included; then everything still alive is frozen again."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
