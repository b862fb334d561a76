"""The model a server holds: raw-id lookups, a vector index, and the answers the routes give.

A :class:`ServedModel` is built completely (checked in a child process, loaded, checked again,
indexed, its encoder warmed by a test query) before the server swaps it in, so a reload never
exposes a half-ready model; requests already running keep the object they started with. A version
whose untuned encoder is built exactly as the served one's takes over that encoder (no second copy
of its weights, no seconds spent building it).

Routes call these methods from worker threads (a small exact search may run on the event loop:
:meth:`ServedModel.recommend_user_now`). One lock guards the model's state; the slow part
of a request, encoding text, happens before the lock is taken (the vectors wait in the encoder's
LRU), so a long encode never holds up requests that need no text.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from lmrec.analysis.explain import explain
from lmrec.errors import ArtifactError, ConfigError, LmrecError
from lmrec.models.base import Recommender
from lmrec.models.capabilities import AddsItems, Factorised, ItemText, NewUsers
from lmrec.models.text_side import TextSide
from lmrec.serving.encoding import BoundedEncoder
from lmrec.serving.index import AUTO_HNSW_FLOATS, ExactIndex, VectorIndex, build_index, top_k
from lmrec.serving.validate import LoadSettings, check_in_child, load_version, test_query
from lmrec.storage.versions import ModelStore


INLINE_FLOATS = AUTO_HNSW_FLOATS  # an exact index smaller than this searches in under 2 ms


def shown(raw: str, limit: int = 16) -> str:
    """An id for a message: quoted, and cut when long (messages never echo a large input)."""
    return repr(raw if len(raw) <= limit else raw[:limit] + "...")


class NotFound(LmrecError):
    """An unknown user or item id (HTTP 404)."""


class ReloadBusy(LmrecError):
    """A reload asked while another one runs (HTTP 409, answered at once: reloads never queue)."""


def encoder_key(side: TextSide, max_text: int, text_cache: int) -> dict[str, Any] | None:
    """What a served model's request-text encoder is built from: the untuned encoder's settings that
    change its output, its device and the server's bounds. None for a tuned encoder (its weights are
    its own version's files), which is never shared."""
    options = side.options
    if options.trainable:
        return None
    return {**options.inference_key(), "device": options.device, "max_text": max_text, "text_cache": text_cache}


class ServedModel:
    """A loaded model version ready to answer requests (thread-safe for reads and item updates).

    ``previous``: the model served until now; its encoder is taken over when this model's would be
    the same (:func:`encoder_key`), and ``encoder_shared`` says so.
    """

    def __init__(self, model: Recommender, *, path: Path, version: str, index: str = "auto",
                 max_text: int = 2000, text_cache: int = 4096, previous: ServedModel | None = None) -> None:
        self.model, self.path, self.version = model, path, version
        self.loaded_at = time.time()
        self._lock = threading.RLock()
        self.text: TextSide | None = None
        self.encoder: BoundedEncoder | None = None
        self.encoder_key: dict[str, Any] | None = None
        self.encoder_shared = False
        side = model.text_side() if isinstance(model, ItemText) else None
        if side is not None:  # request texts: cut, cached in memory, never on disk
            self.text, self.encoder_key = side, encoder_key(side, max_text, text_cache)
            if previous is not None and previous.encoder is not None and self.encoder_key is not None \
                    and previous.encoder_key == self.encoder_key:
                self.encoder, self.encoder_shared = previous.encoder, True
            else:
                self.encoder = BoundedEncoder(side.encoder(), max_text, text_cache)
            side.use_encoder(self.encoder)
        self.users = {str(raw): i for i, raw in enumerate(model.user_ids_.tolist())}
        self.items = {str(raw): i for i, raw in enumerate(model.item_ids_.tolist())}
        self.seen = model.train_matrix_
        self._refresh_titles()
        self.user_vectors: np.ndarray | None = None
        self.index: VectorIndex | None = None
        if isinstance(model, Factorised):
            users, items = model.factors()
            self.user_vectors = users.numpy().astype(np.float32)
            self.index = build_index(items.numpy(), index)

    @classmethod
    def load(cls, store: ModelStore, version: str | None = None, *, index: str = "auto",
             settings: LoadSettings | None = None, max_text: int = 2000, text_cache: int = 4096,
             check: bool = True, previous: ServedModel | None = None) -> ServedModel:
        """Load the store's current version (or ``version``, a name inside the store), checked as
        :mod:`lmrec.serving.validate` describes, first in a child process (``check=False``: not in a
        child, for content that passed before); any defect raises ArtifactError. ``previous``: the
        served model, whose encoder this one may take over."""
        settings = settings or LoadSettings()
        name = version or store.current()
        path = store.version_path(name)
        if check:
            check_in_child(path, settings)
        try:
            model = load_version(path, settings)
            served = cls(model, path=path, version=name, index=index, max_text=max_text, text_cache=text_cache,
                         previous=previous)
            test_query(model, path)  # also builds and warms the encoder before the first request
        except ArtifactError:
            raise
        except LmrecError as exc:  # e.g. an encoder this server does not have: still a version it cannot serve
            raise ArtifactError(f"{path}: {exc}") from None
        except Exception as exc:  # anything the checks did not foresee is still a defect of the artifact
            raise ArtifactError(f"{path}: cannot serve this model ({type(exc).__name__}: {str(exc)[:300]}).") from None
        return served

    def own_parts(self, successor: ServedModel) -> list[Any]:
        """What should be freed together with this model once ``successor`` replaced it: the model, and
        its encoder with the encoder's torch modules unless ``successor`` took the encoder over."""
        parts: list[Any] = [self.model]
        if self.encoder is not None and self.encoder is not successor.encoder:
            inner = self.encoder.inner
            modules = [v for v in getattr(inner, "__dict__", {}).values() if isinstance(v, torch.nn.Module)]
            parts += [self.encoder, inner, *modules]
        return parts

    # ---------------------------------------------------------------- lookups
    @property
    def model_id(self) -> str:
        return f"{self.model.name}:{self.model.fingerprint_}"

    def user_index(self, raw: str) -> int:
        try:
            return self.users[str(raw)]
        except KeyError:
            raise NotFound(f"unknown user {shown(raw)}; known users are the model's training users "
                           "(use POST /recommendations with a history for others).") from None

    def item_index(self, raw: str) -> int:
        try:
            return self.items[str(raw)]
        except KeyError:
            raise NotFound(f"unknown item {shown(raw)}; add it with POST /items first.") from None

    def item_ids(self, index: np.ndarray) -> list[str]:
        ids = self.model.item_ids_
        return [str(ids[i]) for i in index]

    def _refresh_titles(self) -> None:
        table = self.model.item_table() if isinstance(self.model, ItemText) else pd.DataFrame()
        self.titles: list[str | None] = [] if "title" not in table.columns else \
            [None if pd.isna(t) else str(t) for t in table["title"].tolist()]
        self._folded = [(t or "").casefold() for t in self.titles]  # what search() matches against

    def title(self, item: int) -> str | None:
        return self.titles[item] if item < len(self.titles) else None

    def search(self, query: str, limit: int) -> list[int]:
        """Items whose title contains ``query`` (case-insensitive), titles that start with it first,
        then shorter titles; an item whose id equals ``query`` comes first of all."""
        q = query.strip().casefold()
        if not q:
            return []
        with self._lock:
            hits = [(t.find(q) != 0, len(t), i) for i, t in enumerate(self._folded) if q in t]
            exact = self.items.get(query.strip())
        found = [i for _, _, i in sorted(hits)]
        if exact is not None:
            found = [exact] + [i for i in found if i != exact]
        return found[:limit]

    def history(self, user: int) -> list[int]:
        row = self.seen[user]
        return row.indices[np.argsort(row.data, kind="stable")].tolist()

    # ---------------------------------------------------------------- ranking
    def _user_scores(self, user: int) -> np.ndarray:
        if self.user_vectors is not None and self.index is not None:
            return self.index.scores(self.user_vectors[user])
        return self.model.score([user], ids="index")[0]

    def recommend_user(self, user: int, k: int, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            return self._recommend_user(user, k, exclude_seen)

    def recommend_user_now(self, user: int, k: int, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray] | None:
        """:meth:`recommend_user` if it is cheap and the model is free this instant, else None.

        For the event loop: a hop into the thread pool costs more than a small exact search (with one
        worker on several cores its two threads pass the GIL between cores; one worker answered 883
        requests/s with the hop and 1,373 without, benchmarks/results/serving.md). Cheap: an exact
        index below :data:`INLINE_FLOATS` (under 2 ms a query). It never waits for the lock, so a
        long item update cannot block the loop.
        """
        if not (isinstance(self.index, ExactIndex) and self.user_vectors is not None
                and self.index.vectors.size < INLINE_FLOATS):
            return None
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return self._recommend_user(user, k, exclude_seen)
        finally:
            self._lock.release()

    def _recommend_user(self, user: int, k: int, exclude_seen: bool) -> tuple[np.ndarray, np.ndarray]:
        exclude = self.seen.indices[self.seen.indptr[user]: self.seen.indptr[user + 1]] if exclude_seen else None
        if self.user_vectors is not None and self.index is not None:
            return self.index.search(self.user_vectors[user], k, exclude)
        return top_k(self.model.score([user], ids="index")[0], k, exclude)

    def _prepare(self, texts: list[str]) -> None:
        """Encode ``texts`` into the encoder's LRU before the lock is taken (the model then finds them there)."""
        if self.encoder is not None and texts:
            self.encoder.encode(texts)

    def history_scores(self, items: list[int], profile: str | None) -> np.ndarray:
        if profile is not None:
            self._prepare([profile])
        with self._lock:
            if isinstance(self.model, NewUsers) and self.index is not None:
                return self.index.scores(self.model.new_user_vector(items, profile, ids="index").numpy())
            return self.model.score_history(items, profile, ids="index").numpy()

    def recommend_history(self, items: list[int], profile: str | None, k: int,
                          exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        scores = self.history_scores(items, profile)
        return top_k(scores, k, np.asarray(items, dtype=np.int64) if exclude_seen else None)

    def rank(self, candidates: list[int], *, user: int | None = None, items: list[int] | None = None,
             profile: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Candidates re-ordered by score, best first."""
        scores = self._user_scores(user) if user is not None else self.history_scores(items or [], profile)
        cand = np.asarray(candidates, dtype=np.int64)
        s = scores[cand]
        order = np.argsort(-s, kind="stable")
        return cand[order], s[order]

    def similar(self, item: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            idx, sims = self.model.similar_items([item], k, ids="index")
        return idx[0], sims[0]

    def explain(self, user: int, item: int, top: int = 5) -> dict[str, Any]:
        with self._lock:
            vec = None if self.user_vectors is None else torch.from_numpy(self.user_vectors[user])
            e = explain(self.model, user, item, top=top, user_vector=vec, ids="index").to_dict()
        for h in e["history"]:
            index = h.pop("item")
            h["item_id"], h["title"] = self.item_ids([index])[0], self.title(index)
        return e

    # ---------------------------------------------------------------- updates
    def add_items(self, table: pd.DataFrame) -> list[int]:
        """Encode and index new or updated items (text models); returns their indices."""
        if not isinstance(self.model, AddsItems):
            raise ConfigError(f"the served {self.model.name} model scores items from IDs learnt in training; "
                              "it cannot take new items until it is retrained (serve an lm-ranker for that).")
        table = table.assign(item=[self._raw_item(str(raw)) for raw in table["item"]])
        if self.text is not None:
            self._prepare(self.text.item_texts(table))
        with self._lock:
            n_before = self.model.n_items_
            index = self.model.add_items(table, ids="index")
            self.items = {str(raw): i for i, raw in enumerate(self.model.item_ids_.tolist())}
            self.seen = self.model.train_matrix_
            self._refresh_titles()
            if isinstance(self.model, Factorised) and self.index is not None:
                v = self.model.item_factors().numpy()
                old = index[index < n_before]
                if len(old):
                    self.index.update(old, v[old])
                if self.model.n_items_ > n_before:
                    self.index.add(v[n_before:])
        return index.tolist()

    def _raw_item(self, raw: str) -> Any:
        """A known item's id as the model stores it (an int for integer ids), so "5" updates item 5
        rather than adding a second item that reads "5"."""
        index = self.items.get(raw)
        if index is None:
            return raw
        stored = self.model.item_ids_[index]
        return stored.item() if isinstance(stored, np.generic) else stored

    def info(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "model_class": self.model.name, "version": self.version,
                "path": str(self.path), "items": int(self.model.n_items_), "users": int(self.model.n_users_),
                "index": type(self.index).__name__ if self.index is not None else "model.score",
                "loaded_at": self.loaded_at}
