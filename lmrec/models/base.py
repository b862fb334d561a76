"""The one `Recommender` contract every lmrec model follows.

``fit(train, valid=None)`` returns self; ``score``, ``recommend`` and ``similar_items`` take and
return raw user/item ids (``ids="index"``: dense indices, as ``score_batch`` and the evaluator use);
``save(dir)`` / ``load(dir)`` write and read ``manifest.json`` + ``model.safetensors``.

A subclass implements:

* ``_fit(train, valid)`` -- learn the state (attributes ending in ``_``);
* ``_score(users, history)`` -- a ``(len(users), n_items)`` float32 tensor, where ``history``
  is the users x items CSR matrix of what each user interacted with (for history-based
  models such as EASE and ItemKNN it is the input row; ID models ignore it);
* ``_state()`` / ``_set_state(arrays)`` -- the learned arrays, for save / load.

What a model can do beyond this contract it declares by inheriting a capability of
:mod:`lmrec.models.capabilities` (factors for a vector index, new users, new items, ...).
"""
from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import scipy.sparse as sp
import torch

from lmrec.data.interactions import Interactions
from lmrec.version import __version__ as LMREC_VERSION
from lmrec.errors import ArtifactError, ConfigError
from lmrec.evaluation.evaluator import EvalTask, evaluate_task
from lmrec.evaluation.metrics import parse_metric
from lmrec.models.ids import IdMap
from lmrec.ranking import top_k
from lmrec.options import as_saved
from lmrec.storage.artifacts import (FORMAT_VERSION, atomic_directory, check_csr, ids_from_json, ids_to_json,
                                     load_arrays, read_manifest, save_arrays, write_json)


LoadRules = Callable[[dict[str, Any], Path], dict[str, Any]]  # (manifest, folder) -> parameters to replace
MODELS: dict[str, type[Recommender]] = {}  # name -> class; filled by lmrec.models.registry (the list of models)
"""Every registered model class by its name (``"ease"``, ``"lm-ranker"``, ...); ``create_model`` reads it."""


class Recommender:
    """Base class: stores hyperparameters, holds the training matrix, implements the contract.

    Class attributes
    ----------------
    name: the registry name ("ease", "bpr-mf", ...).
    uses_history: whether scores follow the history passed at scoring time. ID models that
        embed users at fit time cannot use a newer history (PROTOCOLS.md P2/P4) and say so here.
    uses_order: whether ``_score`` reads the order of the history. History matrices hold the
        recency of each interaction (``Interactions.to_csr(order=True)``); other models get a
        binary copy.
    """

    name: ClassVar[str] = "base"
    layout: ClassVar[int] = 1  # version of this class's saved parameters and arrays (raised on a breaking change)
    # older layouts this class still loads: layout -> a function from its saved params to this layout's
    upgrades: ClassVar[dict[int, Callable[[dict[str, Any]], dict[str, Any]]]] = {}
    uses_history: ClassVar[bool] = True
    uses_order: ClassVar[bool] = False  # reads the recency order stored in history entries
    _init_from: Recommender | None = None  # during fit(init_from=...): the model whose weights start training

    # ----------------------------------------------------------------- parameters
    def get_params(self) -> dict[str, Any]:
        """Constructor keyword arguments (scikit-learn style); options objects (parts, TrainConfig)
        as their saved dicts, so the result is JSON for manifests and rebuilds the model."""
        sig = inspect.signature(type(self).__init__)
        return {p: as_saved(getattr(self, p)) for p in sig.parameters if p != "self"}

    def clone(self, **overrides: Any) -> Recommender:
        """An unfitted copy with the same hyperparameters, some overridden."""
        params = {**self.get_params(), **overrides}
        return type(self)(**params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ----------------------------------------------------------------- fitting
    def fit(self, train: Interactions, valid: Interactions | None = None, *,
            init_from: Recommender | None = None) -> Recommender:
        """Learn from ``train``; ``valid`` (same id maps) drives early stopping where used.

        ``init_from``: a fitted model of the same class whose weights start the training
        (fine-tuning); its id maps must be a prefix of ``train``'s (new users/items appended).
        """
        self.check_params()
        if len(train) == 0:
            raise ConfigError(f"{type(self).__name__}.fit got an empty training set.")
        if valid is not None and (valid.n_users != train.n_users or valid.n_items != train.n_items):
            raise ConfigError("train and valid must share the same id maps (build them with one split).")
        if init_from is not None and (type(init_from) is not type(self) or not init_from.is_fitted):
            raise ConfigError(f"init_from must be a fitted {type(self).__name__}; got {type(init_from).__name__}.")
        self._init_from = init_from
        start = time.perf_counter()
        self.train_matrix_ = train.to_csr(order=True)
        self.n_users_, self.n_items_ = train.n_users, train.n_items
        self.user_ids_, self.item_ids_ = train.user_ids, train.item_ids
        self.fingerprint_ = train.fingerprint()
        self._fit(train, valid)
        self._init_from = None  # training has copied what it needed; do not keep the old model alive
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _fit(self, train: Interactions, valid: Interactions | None) -> None:
        raise NotImplementedError

    def check_params(self) -> None:
        """Check the hyperparameters without data (``fit`` starts with it): raises
        :class:`~lmrec.errors.ConfigError` naming the parameter, what it takes and what it got.
        Models whose checks need the data (id counts, item text) make those in ``fit``.

        >>> from lmrec.models import BPRMF
        >>> BPRMF(loss="bprr").check_params()
        Traceback (most recent call last):
        ...
        lmrec.errors.ConfigError: The 'loss' parameter of BPRMF must be one of ...
        """

    @property
    def is_fitted(self) -> bool:
        """Whether the model was fitted or loaded."""
        return "train_matrix_" in vars(self)

    def _validator(self, train: Interactions, valid: Interactions | None, metric: str):  # type: ignore[no-untyped-def]
        """A ``validate() -> float`` callback for the training loop: ``metric`` on ``valid`` with
        ``train`` as the history (None without validation data)."""
        if valid is None or not len(valid):
            return None
        task, spec = EvalTask.build(train, valid), parse_metric(metric)
        return lambda: evaluate_task(self, task, [spec]).summary()[spec.label]

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise ConfigError(f"{type(self).__name__} is not fitted; call fit(train) or load(dir) first.")

    # ----------------------------------------------------------------- scoring
    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        raise NotImplementedError

    def _users(self, users: Any) -> np.ndarray:
        u = np.atleast_1d(np.asarray(users, dtype=np.int64))
        if u.size and (u.min() < 0 or u.max() >= self.n_users_):
            raise ConfigError(f"user index out of range [0, {self.n_users_}): {u[(u < 0) | (u >= self.n_users_)][0]}.")
        return u

    def _map(self, axis: str) -> IdMap:
        """The raw-id map of "user" or "item" (rebuilt when the ids change, e.g. items added)."""
        raw = self.user_ids_ if axis == "user" else self.item_ids_
        cached = self.__dict__.get(f"_{axis}_map")
        if cached is None or cached.raw is not raw:
            cached = IdMap(raw, axis)
            self.__dict__[f"_{axis}_map"] = cached
        return cached

    def user_indices(self, users: Any, ids: str = "raw") -> np.ndarray:
        """Dense indices of raw user ids (or checked indices with ``ids="index"``)."""
        self._check_fitted()
        return self._map("user").indices(users, ids)

    def item_indices(self, items: Any, ids: str = "raw") -> np.ndarray:
        """Dense indices of raw item ids (or checked indices with ``ids="index"``)."""
        self._check_fitted()
        return self._map("item").indices(items, ids)

    def item_ids(self, index: np.ndarray, ids: str = "raw") -> np.ndarray:
        """Raw item ids of dense ``index`` (unchanged with ``ids="index"``)."""
        return self._map("item").ids(np.asarray(index), ids)

    def score_batch(self, users: np.ndarray, history: sp.csr_matrix | None = None) -> torch.Tensor:
        """Scores of all items for ``users`` as a float32 tensor; ``history`` rows are per user index."""
        self._check_fitted()
        users = self._users(users)
        hist = self.train_matrix_ if history is None else history
        return self.score_rows(users, hist[users])

    def score_rows(self, users: np.ndarray, rows: sp.csr_matrix) -> torch.Tensor:
        """Scores of all items for ``users`` given one explicit history row per user (recency values)."""
        self._check_fitted()
        if rows.shape != (len(users), self.n_items_):
            raise ConfigError(f"score_rows needs a ({len(users)}, {self.n_items_}) history; got {rows.shape}.")
        if not self.uses_order:
            rows = rows.copy()
            rows.data = np.ones_like(rows.data)
        return self._score(self._users(users), sp.csr_matrix(rows, dtype=np.float32))

    def history_row(self, items: Any) -> sp.csr_matrix:
        """A (1, n_items) history row from item indices, oldest first (their order is their recency)."""
        items = np.atleast_1d(np.asarray([] if items is None else items, dtype=np.int64))
        if items.size and (items.min() < 0 or items.max() >= self.n_items_):
            raise ConfigError(f"item index out of range [0, {self.n_items_}).")
        order = np.arange(1, len(items) + 1, dtype=np.float32)
        return sp.csr_matrix((order, (np.zeros(len(items), dtype=np.int64), items)), shape=(1, self.n_items_))

    def score_history(self, items: Any, profile: str | None = None, *, ids: str = "raw") -> torch.Tensor:
        """Scores (n_items,), in index order, for a new user who liked ``items`` (oldest first).

        Only models whose scores follow the history (``uses_history``) can do this; text models
        also take a ``profile`` text.
        """
        self._check_fitted()
        if profile is not None:
            raise ConfigError(f"{type(self).__name__} has no text side; it cannot score a profile text.")
        if not self.uses_history:
            raise ConfigError(f"{type(self).__name__} embeds users at fit time; it cannot score a new user "
                              "from a history. Use a history model (lm-ranker, ease, itemknn).")
        if items is None or len(np.atleast_1d(items)) == 0:
            raise ConfigError("a new user needs at least one item in the history.")
        return self.score_rows(np.zeros(1, dtype=np.int64), self.history_row(self.item_indices(items, ids)))[0]

    def score(self, users: Any, items: Any = None, history: sp.csr_matrix | None = None, *,
              ids: str = "raw") -> np.ndarray:
        """Scores for ``users`` x ``items`` (all items, in index order, when ``items`` is None)."""
        s = self.score_batch(self.user_indices(users, ids), history)
        if items is not None:
            s = s[:, torch.as_tensor(self.item_indices(items, ids), dtype=torch.long)]
        return s.cpu().numpy()

    def recommend(self, users: Any, k: int = 10, exclude_seen: bool = True,
                  history: sp.csr_matrix | None = None, *, ids: str = "raw") -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items and scores per user, best first: two ``(n_users, k)`` arrays.

        ``users`` and the returned items are raw ids (``ids="index"``: dense indices).
        ``exclude_seen`` removes the items of the user's history (the training matrix unless
        ``history`` is given, one row per user index). Example::

            items, scores = model.recommend([1, 2], k=5)     # MovieLens user ids -> movie ids
        """
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ConfigError(f"k must be a positive integer; got {k!r}.")
        users = self.user_indices(users, ids)
        hist = self.train_matrix_ if history is None else history
        top, scores = top_k(self.score_batch(users, hist), k, hist[users] if exclude_seen else None)
        return self.item_ids(top, ids), scores

    def similar_items(self, items: Any, k: int = 10, *, ids: str = "raw") -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar items to each of ``items`` (cosine of item vectors), itself excluded."""
        items = self.item_indices(items, ids)
        itself = sp.csr_matrix((np.ones(len(items)), (np.arange(len(items)), items)), shape=(len(items), self.n_items_))
        top, sims = top_k(self.item_similarity(items), min(k, self.n_items_ - 1), itself)
        return self.item_ids(top, ids), sims

    def _item_vectors(self) -> torch.Tensor:
        """Item representations for similarity; by default the item's user column."""
        return torch.as_tensor(self.train_matrix_.T.toarray() > 0, dtype=torch.float32)

    def item_similarity(self, items: np.ndarray) -> torch.Tensor:
        """(len(items), N) cosine similarity of the item vectors of ``items`` to every item."""
        vecs = torch.nn.functional.normalize(self._item_vectors().float(), dim=1)
        return vecs[torch.as_tensor(items)] @ vecs.T

    # ----------------------------------------------------------------- persistence
    def _state(self) -> dict[str, np.ndarray]:
        return {}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        pass

    def _extra_manifest(self) -> dict[str, Any]:
        """JSON-able learned state that is not an array (templates, statistics)."""
        return {}

    def _set_extra(self, extra: dict[str, Any]) -> None:
        pass

    def _save_files(self, directory: Path) -> None:
        """Write files beyond manifest and arrays (e.g. a tuned encoder) into the artifact folder."""

    def _load_files(self, directory: Path, rules: LoadRules | None) -> None:
        """Read what :meth:`_save_files` wrote (a model saved inside this one is loaded with ``rules``)."""

    def save(self, directory: str | Path, *, metrics: dict[str, float] | None = None) -> Path:
        """Write ``manifest.json`` + ``model.safetensors`` atomically into ``directory``."""
        self._check_fitted()
        m = self.train_matrix_
        arrays = {"train.indptr": m.indptr.astype(np.int64), "train.indices": m.indices.astype(np.int64),
                  "train.data": m.data.astype(np.float32), **self._state()}
        manifest = {
            "format_version": FORMAT_VERSION, "kind": "model", "class": self.name, "layout": self.layout,
            "lmrec_version": LMREC_VERSION, "params": self.get_params(),
            "n_users": self.n_users_, "n_items": self.n_items_, "fingerprint": self.fingerprint_,
            "user_ids": ids_to_json(self.user_ids_), "item_ids": ids_to_json(self.item_ids_),
            "metrics": metrics or {}, "extra": self._extra_manifest(), "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        with atomic_directory(directory) as tmp:
            save_arrays(tmp / "model.safetensors", arrays)
            self._save_files(tmp)
            write_json(tmp / "manifest.json", manifest)
        return Path(directory)

    @classmethod
    def load(cls, directory: str | Path, *, params: dict[str, Any] | None = None,
             rules: LoadRules | None = None) -> Recommender:
        """Load a saved model; ``Recommender.load`` picks the class from the manifest.

        ``params``: constructor parameters that replace the saved ones (a server's own settings,
        e.g. ``cache_dir``); the manifest read back in ``manifest_`` is left as saved.
        ``rules``: a function (manifest, folder) -> parameters that replace the saved ones, applied
        to this model and to every model saved inside it (a blend's members): a server's policy.
        """
        d = Path(directory)
        manifest = read_manifest(d, kind="model")
        params = {**(rules(manifest, d) if rules else {}), **(params or {})}
        name = manifest.get("class")
        if name not in MODELS:
            raise ArtifactError(f"{d}: unknown model class {name!r}; supported: {', '.join(MODELS)}.")
        klass = MODELS[name]
        if cls is not Recommender and klass is not cls:
            raise ArtifactError(f"{d} holds a {name!r} model, not {cls.name!r}.")
        layout = manifest.get("layout", 1)
        saved = manifest["params"]
        if layout != klass.layout and layout in klass.upgrades:  # an older layout this class converts
            saved = klass.upgrades[layout](dict(saved))
        elif layout != klass.layout:
            raise ArtifactError(f"{d} holds a {name!r} model of layout {layout} (saved by lmrec "
                                f"{manifest.get('lmrec_version', '0.1.0')}); this lmrec ({LMREC_VERSION}) reads "
                                f"{name!r} layout {klass.layout}. Retrain it with this version (lmrec train ...).")
        try:
            model = klass(**{**saved, **params})
        except TypeError as exc:
            raise ArtifactError(f"{d}/manifest.json: parameters do not fit {klass.__name__} ({exc}).") from None
        arrays = load_arrays(d / "model.safetensors")
        n_users, n_items = manifest["n_users"], manifest["n_items"]
        model.train_matrix_ = check_csr(arrays, "train", (n_users, n_items), d / "model.safetensors")
        model.n_users_, model.n_items_ = n_users, n_items
        model.user_ids_ = ids_from_json(manifest["user_ids"])
        model.item_ids_ = ids_from_json(manifest["item_ids"])
        model.fingerprint_ = manifest["fingerprint"]
        model.manifest_ = manifest
        model._set_extra(manifest.get("extra", {}))
        model._load_files(d, rules)
        model._set_state(arrays)
        return model
