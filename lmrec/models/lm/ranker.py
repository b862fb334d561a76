"""LMRanker: rank items from pretrained language-model representations with a pairwise loss.

The model is composed of parts, each an options object that owns and saves its settings:

* ``encoder`` -- :class:`~lmrec.text.options.Encoder`: the language model, and its ``tuning`` part
  (:class:`~lmrec.text.options.Frozen`, :class:`~lmrec.text.options.LoRA`, :class:`~lmrec.text.options.FullTune`);
* ``items`` -- :class:`ItemTower`: projection of the text embedding, optional item IDs, graph layers;
* ``user`` -- :class:`MeanUser`, :class:`AttentionUser` or :class:`SequenceUser`: a user from
  their history (plus their text and an optional ID);
* ``scorer`` -- :class:`Dot` or :class:`Cosine`; ``loss`` -- :class:`BPR`, :class:`Hinge`, :class:`Softmax`;
* ``negatives`` -- where a step's negatives come from (:mod:`lmrec.training.negatives`): :class:`Uniform`,
  :class:`Popularity`, :class:`InBatch`, :class:`Hard`, :class:`AllItems` or :class:`Unseen`.

The parts are resolved once, in ``fit`` (:meth:`LMRanker._resolve`), into ``encoder_``, ``items_``,
``user_``, ``scorer_``, ``loss_`` and ``negatives_``; training reads them and the network
(:func:`~lmrec.models.lm.training.training_task`), never the model.

Without IDs (the default) there are no per-user or per-item parameters, so any new item with
text and any new user with a history or a profile text is scored without retraining.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from lmrec.data.interactions import Interactions
from lmrec.errors import ArtifactError, ConfigError
from lmrec.models.lm.upgrade import upgrade_layout2
from lmrec.losses import LOSSES, Loss, Softmax
from lmrec.models.base import LoadRules
from lmrec.models.capabilities import AddsItems, AttributesHistory, ExplainsFields, ItemText, NewUsers
from lmrec.models.graph import normalized_adjacency
from lmrec.models.lm.items import ItemTower
from lmrec.models.lm.net import LMNet
from lmrec.models.lm.presets import preset_params
from lmrec.models.lm.scorers import SCORERS, Scorer
from lmrec.models.lm.text_table import TextTable
from lmrec.models.lm.training import TrainingParts, training_task
from lmrec.models.lm.tuned_table import TunedTable
from lmrec.models.lm.users import USER_TOWERS, MeanUser, UserTower
from lmrec.ranking import top_k
from lmrec.models.text_side import DEFAULT_CACHE, TextSide
from lmrec.models.trained import TrainedRecommender
from lmrec.options import Options, resolve
from lmrec.text.options import Encoder, Tuned
from lmrec.text.templates import template_fields
from lmrec.text.tuning import TunableEncoder, load_tuned
from lmrec.training.config import TrainConfig
from lmrec.training.negatives import CONFIG_FIELDS, NegativeSampling, Unseen, negatives_from_config, negatives_part

Part = Options | str | dict[str, Any]


class LMRanker(NewUsers, AddsItems, ItemText, ExplainsFields, AttributesHistory, TrainedRecommender):
    """Language-model representations + pairwise ranking.

    Parameters
    ----------
    encoder: an :class:`Encoder` or a model name ("minilm", "mpnet", "smollm2", a path); its
        ``tuning`` part says whether and how its weights learn.
    items: an :class:`ItemTower`, or "linear" / "mlp" for the projection with default settings.
    user: a user tower: "mean", "attention", "sequence" or its options (:class:`MeanUser`, ...).
    scorer: "dot", "cosine" or :class:`Cosine`\\ (temperature=...).
    loss: "bpr", "hinge", "softmax" or :class:`Hinge`\\ (margin=...).
    negatives: "uniform", "popularity", "in-batch", "hard", "all", "unseen", or a part such as
        ``Uniform(n=8)`` or ``Unseen(pool="train-items", per_user=True)`` (saved dict: ``{"type": ...}``).
    item_template, user_template: format strings over the item / user table fields; None picks
        a built-in template for the dataset ("" disables user text).
    cache_dir: embedding cache folder (None: no cache).
    config: :class:`TrainConfig` (learning rate, epochs, precision, ...; negatives are the part above).

    Example
    -------
    >>> model = LMRanker(items=ItemTower(dim=128, graph_layers=2), user="sequence",
    ...                  scorer=Cosine(temperature=0.05), loss="softmax",
    ...                  negatives="unseen").fit(split.train, split.valid)                   # doctest: +SKIP
    >>> model.recommend_for_profile("space opera with robots", k=5)                       # doctest: +SKIP
    """

    name = "lm-ranker"
    layout = 3  # 3: the encoder's tuning and the negatives are parts (2 loads, converted: upgrade.py)
    upgrades = {2: upgrade_layout2}
    uses_order = True
    _reps: torch.Tensor | None = None  # item representations of the fitted model (item_representations)
    _keep_reps = False
    tuned_: TunableEncoder | None = None  # the encoder trained in this fit (tune "lora" or "full")
    encoder_files_: dict[str, bytes] = {}  # a loaded tuned encoder's files, written again on save

    def __init__(self, encoder: Part = "minilm", items: Part = "linear", user: Part = "mean",
                 scorer: Part = "dot", loss: Part = "bpr", negatives: Part = "uniform",
                 item_template: str | None = None, user_template: str | None = None,
                 cache_dir: str | None = DEFAULT_CACHE, config: TrainConfig | dict[str, Any] | None = None) -> None:
        self.encoder = encoder
        self.items = items
        self.user = user
        self.scorer = scorer
        self.loss = loss
        self.negatives = negatives
        self.item_template = item_template
        self.user_template = user_template
        self.cache_dir = cache_dir
        self.config = config

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> LMRanker:
        """An LMRanker configured as preset ``name`` ("sequential", "warm", "cold-start"; see
        :mod:`lmrec.models.lm.presets`), with keyword ``overrides`` (``config`` dicts merge)."""
        return cls(**preset_params(name, **overrides))

    # ----------------------------------------------------------------- parts
    def _resolve(self) -> None:
        """Turn what the constructor was given (shorthands, saved dicts, options objects) into
        validated parts, once: ``encoder_``, ``items_``, ``user_``, ``scorer_``, ``loss_``, ``negatives_``."""
        owner = "LMRanker"
        encoder = Encoder(self.encoder) if isinstance(self.encoder, str) else Encoder.from_any(self.encoder)
        items = ItemTower(projection=self.items) if isinstance(self.items, str) else ItemTower.from_any(self.items)
        for part in (encoder, items):
            part.validate()
        self.encoder_, self.items_ = encoder, items
        self.user_: UserTower = resolve(USER_TOWERS, self.user, owner=owner, param="user")
        self.scorer_: Scorer = resolve(SCORERS, self.scorer, owner=owner, param="scorer")
        self.loss_: Loss = resolve(LOSSES, self.loss, owner=owner, param="loss")
        self.negatives_: NegativeSampling = negatives_part(self.negatives, owner)
        if isinstance(self.negatives_, Unseen) and self.negatives_.per_user and \
                (not isinstance(self.user_, MeanUser) or not isinstance(self.loss_, Softmax)):
            raise ConfigError("LMRanker: Unseen(per_user=True) needs user='mean' and loss='softmax'; "
                              f"got user={self.user_.kind!r} and loss={self.loss_.kind!r}.")

    def check_params(self) -> None:
        self._resolve()
        self._check_config(self._train_config())

    def _check_config(self, cfg: TrainConfig) -> None:
        """TrainConfig's negatives fields belong to models without a negatives part: refuse them here."""
        default = TrainConfig()
        given = [name for name in CONFIG_FIELDS if getattr(cfg, name) != getattr(default, name)]
        if given:
            part = negatives_from_config(cfg).to_dict()
            raise ConfigError(f"LMRanker takes its negatives as a part, not TrainConfig's {given}: "
                              f"give negatives={part!r} (lmrec.training.negatives) and leave them out of config.")

    def _build(self, text: TextTable, user_text: torch.Tensor | None) -> None:
        """Build the network of the resolved parts around a text table (fit and load alike)."""
        items = self.items_.build(text.table.shape[1], text.table.shape[0])
        self.net_ = LMNet(text, items, self.user_.build(items.dim, self.n_users_, user_text))
        self.module_ = self.net_

    def training_parts(self) -> TrainingParts:
        """The network and parts training reads (after the network is built and its graph prepared)."""
        tuning = self.encoder_.tuning
        return TrainingParts(self.net_, self.scorer_, self.loss_, self.negatives_, self.adj_, self.user_,
                             tuning.lr if isinstance(tuning, Tuned) else None)

    def _prepare_graph(self) -> None:
        self.adj_ = normalized_adjacency(self.train_matrix_, self._device()) if self.items_.graph_layers else None

    def _device(self) -> torch.device:
        return self.net_.text.table.device

    # ----------------------------------------------------------------- fitting
    def _fit(self, train: Interactions, valid: Interactions | None) -> None:
        encoder, cfg = self.encoder_, self._train_config()  # the parts: resolved by check_params, fit's first step
        self.text_ = TextSide(encoder, self.cache_dir, self.item_template, self.user_template)
        self.text_.resolve(train, "LMRanker")
        device = encoder.device or cfg.device
        texts = self.text_.item_texts()
        # a tuned encoder starts as the pretrained one (LoRA's update starts at zero): its first table
        # is the frozen encoder's, from the embedding cache
        table = torch.from_numpy(self.text_.encode(texts, device, cfg.progress))
        user_text = None
        if self.text_.user_template:  # user attributes are read by the pretrained encoder, frozen
            user_text = torch.from_numpy(self.text_.encode(self.text_.user_texts(), device, cfg.progress, "users"))
        torch.manual_seed(cfg.seed)
        self._reps, self._keep_reps, self.encoder_files_ = None, False, {}
        self.tuned_ = TunableEncoder(encoder, device) if encoder.trainable else None
        # the tuned table tokenizes the item texts itself: with the prefix the cached table was encoded with
        tuned_texts = [encoder.prefix("passage") + t for t in texts]
        self._build(TunedTable(table, self.tuned_, tuned_texts, cfg.seed) if self.tuned_ else TextTable(table), user_text)
        self._start_encoder()
        self.net_.to(cfg.device)
        self._prepare_graph()  # on the training device
        self.net_.users.prepare(train, cfg.seed)
        self._run_training(training_task(self.training_parts(), train, cfg), cfg, train, valid)
        if isinstance(self.net_.text, TunedTable):  # serve from the final table; new texts go through the tuned encoder
            self.text_.stats["refresh"] = dict(self.net_.text.refreshes)
            self.net_.text = TextTable(self.net_.text.table)
            self.text_.use_encoder(self.tuned_.inference())  # type: ignore[union-attr]
        self._keep_reps = True

    def _start_encoder(self) -> None:
        """With ``fit(init_from=...)`` of a model tuned the same way, start from its tuned encoder
        (a retraining round must not fall back to the pretrained weights) and re-encode the table."""
        source = self._init_from
        if self.tuned_ is None or not isinstance(source, LMRanker) or source.encoder_.tune != self.encoder_.tune:
            return
        weights = source.tuned_.saved_weights() if source.tuned_ is not None else source.saved_encoder_weights()
        if weights:
            self.tuned_.load_weights(weights)
            self.net_.text.refresh()

    def saved_encoder_weights(self) -> dict[str, torch.Tensor]:
        """A loaded tuned model's encoder weights as saved (empty for a frozen encoder)."""
        from safetensors.torch import load as load_safetensors

        return {k: v for name, data in self.encoder_files_.items() if name.endswith(".safetensors")
                for k, v in load_safetensors(data).items()}

    # ----------------------------------------------------------------- scoring
    @torch.no_grad()
    def item_representations(self) -> torch.Tensor:
        """(N, d) item representations before the scorer (projection, IDs, graph).

        Kept once the model is fitted or loaded (serving asks for them on every new user), and
        recomputed whenever items change; during training the weights change, so never kept.
        """
        if self._reps is not None:
            return self._reps
        v = self.net_.item_reps(self.adj_)
        if self._keep_reps:
            self._reps = v
        return v

    def user_representations(self, v: torch.Tensor, history: sp.csr_matrix, users: torch.Tensor | None,
                             extra: torch.Tensor | None = None) -> torch.Tensor:
        """(B, d) users from item representations ``v`` and history rows (recency values)."""
        return self.net_.users.score_users(self.net_.items.history(v), history, users, extra)

    @torch.no_grad()
    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        v = self.item_representations()
        u = self.user_representations(v, history, torch.as_tensor(users))
        return self.scorer_.pair(u, v).float().cpu()

    def _item_vectors(self) -> torch.Tensor:
        return self.item_representations().cpu()

    @torch.no_grad()
    def history_attributions(self, user: int | None, item: int, row: sp.csr_matrix) -> np.ndarray | None:
        """With the mean tower, u = mean_j h_j + (user text, user ID), and both scorers are
        linear in u at a fixed |u| (dot: u · v; cosine: u · v̂ / (|u| τ)), so item j's part is
        h_j · item_side(v) · |user_side(u)| / |u| / n. Other towers: None."""
        if not isinstance(self.user_, MeanUser) or row.nnz == 0:
            return None
        v = self.item_representations()
        u = self.user_representations(v, row, None if user is None else torch.as_tensor([user]))[0]
        scale = self.scorer_.user_side(u[None])[0].norm() / u.norm().clamp(min=1e-12)
        target = self.scorer_.item_side(v[item][None])[0]
        h = self.net_.items.history(v)[torch.as_tensor(row.indices, device=v.device)]
        return (h @ target * scale / row.nnz).float().cpu().numpy()

    @torch.no_grad()
    def factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        v = self.item_representations()
        users = [self.user_representations(v, self.train_matrix_[lo: lo + 1024],
                                           torch.arange(lo, min(lo + 1024, self.n_users_)))
                 for lo in range(0, self.n_users_, 1024)]
        return self.scorer_.user_side(torch.cat(users)).cpu(), self.scorer_.item_side(v).cpu()

    @torch.no_grad()
    def item_factors(self) -> torch.Tensor:
        return self.scorer_.item_side(self.item_representations()).cpu()

    # ----------------------------------------------------------------- new users
    @torch.no_grad()
    def new_user_vector(self, items: Any, profile: str | None = None, *, ids: str = "raw") -> torch.Tensor:
        """(d,) user vector in the space of :meth:`item_factors` (scores = item_factors() @ u).

        ``items``: liked items (raw ids, or indices with ``ids="index"``), oldest first;
        ``profile``: a text that reads like one more liked item (encoded without touching the disk cache).
        """
        self._check_fitted()
        if profile is None and (items is None or len(np.atleast_1d(items)) == 0):
            raise ConfigError("a new user needs at least one item in the history or a profile text.")
        items = self.item_indices(items, ids)
        v = self.item_representations()
        extra = None
        if profile is not None:
            text = torch.from_numpy(self.text_.encode([profile], str(self._device()), False, "profile", cache=False))
            extra = self.net_.items.proj(text.to(v.device))
        u = self.user_representations(v, self.history_row(items), None, extra)
        return self.scorer_.user_side(u)[0].cpu()

    def score_history(self, items: Any, profile: str | None = None, *, ids: str = "raw") -> torch.Tensor:
        return self.item_factors() @ self.new_user_vector(items, profile, ids=ids)

    def recommend_for_history(self, items: Any, k: int = 10, exclude_seen: bool = True,
                              profile: str | None = None, *, ids: str = "raw") -> tuple[np.ndarray, np.ndarray]:
        """Top-k (items, scores) for a new user who liked ``items`` (raw ids, oldest first) and/or
        wrote ``profile``; returned items are raw ids too (``ids="index"``: indices both ways)."""
        scores = self.score_history(items, profile, ids=ids)[None].float()
        seen = self.history_row(self.item_indices(items, ids)) if exclude_seen else None
        top, best = top_k(scores, k, seen)
        return self.item_ids(top[0], ids), best[0]

    def recommend_for_profile(self, text: str, k: int = 10, *, ids: str = "raw") -> tuple[np.ndarray, np.ndarray]:
        """Top-k for a new user described only by a text profile."""
        return self.recommend_for_history([], k, profile=text, ids=ids)

    # ----------------------------------------------------------------- items and text
    def add_items(self, table: pd.DataFrame, id_column: str = "item", *, ids: str = "raw") -> np.ndarray:
        """Add (or update) items from a table of raw ids (``id_column``) and template fields; returns
        their raw ids (``ids="index"``: their indices).

        New items are encoded and rankable at once; their ID parts (with item IDs) are zero.
        """
        self._check_fitted()
        if id_column not in table.columns:
            raise ConfigError(f"add_items needs an '{id_column}' column; got {list(table.columns)}.")
        vecs = torch.from_numpy(self.text_.encode(self.text_.item_texts(table), str(self._device()), False,
                                                  "new_items"))
        known = {raw: i for i, raw in enumerate(self.item_ids_.tolist())}
        raw_ids = table[id_column].tolist()
        index, new = [], []
        for raw in raw_ids:
            if raw not in known:
                known[raw] = len(known)
                new.append(raw)
            index.append(known[raw])
        at = torch.as_tensor(index)
        self.net_.text.put(at, vecs)
        self.net_.items.grow(len(new))
        if new:
            self.item_ids_ = np.append(self.item_ids_.astype(object), new)
            self.n_items_ += len(new)
        self.text_.grow_items(table.reset_index(drop=True), np.asarray(index, dtype=np.int64))
        self._reps = None
        self.train_matrix_ = sp.csr_matrix((self.train_matrix_.data, self.train_matrix_.indices,
                                            self.train_matrix_.indptr), shape=(self.n_users_, self.n_items_))
        self._prepare_graph()
        return self.item_ids(np.asarray(index, dtype=np.int64), ids)

    def item_table(self) -> pd.DataFrame:
        return self.text_.item_table

    def text_side(self) -> TextSide:
        return self.text_

    def item_text(self, item: int) -> str:
        return self.text_.item_text(item)

    def user_table(self) -> pd.DataFrame:
        return self.text_.user_table

    @torch.no_grad()
    def field_contributions(self, user_vector: torch.Tensor, item: int) -> tuple[list[str], list[str], list[float]]:
        """Leave-one-field-out on an item's text: (fields, their values, score drop when blanked).

        Scores go through the item projection only (no IDs, no graph), the text part of the model.
        """
        row = self.text_.item_table.iloc[[item]].reset_index(drop=True)
        fields = [f for f in dict.fromkeys(template_fields(self.text_.item_template)) if f in row.columns]
        variants = [row] + [row.assign(**{f: ""}) for f in fields]
        texts = [self.text_.item_texts(v)[0] for v in variants]
        e = torch.from_numpy(self.text_.encode(texts, str(self._device()), False, "explain", cache=False))
        v = self.scorer_.item_side(self.net_.items.proj(e.to(self._device()))).cpu()
        s = (v @ user_vector.float()).tolist()
        values = ["" if pd.isna(row.at[0, f]) else str(row.at[0, f]) for f in fields]
        return fields, values, [s[0] - x for x in s[1:]]

    # ----------------------------------------------------------------- persistence
    def _state(self) -> dict[str, np.ndarray]:
        return {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()
                if not k.startswith("text.encoder.")}  # a tuned encoder is saved on its own (_save_files)

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        state = {k[4:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("net.")}
        if "text.table" not in state:
            raise ArtifactError("model.safetensors holds no text table ('net.text.table'); the file is corrupt.")
        self._build(TextTable(state["text.table"]), state.get("users.user_text_emb"))
        try:
            self.net_.load_state_dict(state)
        except RuntimeError as exc:
            raise ArtifactError(f"model.safetensors does not match the saved parameters ({exc}).") from None
        self.net_.eval()
        self.n_items_ = int(state["text.table"].shape[0])
        self._prepare_graph()
        self._reps, self._keep_reps = None, True

    def _extra_manifest(self) -> dict[str, Any]:
        return self.text_.to_manifest()

    def _set_extra(self, extra: dict[str, Any]) -> None:
        self._resolve()
        self.text_ = TextSide(self.encoder_, self.cache_dir, None, None)
        self.text_.set_manifest(extra)

    def _save_files(self, directory: Path) -> None:
        """A tuned encoder's weights go to ``encoder/`` (adapters, or the whole model) as safetensors."""
        target = directory / "encoder"
        if self.tuned_ is not None:
            self.tuned_.save(target)
        elif self.encoder_files_:
            target.mkdir()
            for name, data in self.encoder_files_.items():
                (target / name).write_bytes(data)

    def _load_files(self, directory: Path, rules: LoadRules | None) -> None:
        self.tuned_, self.encoder_files_ = None, {}
        options = self.text_.options
        if options.trainable:
            folder = directory / "encoder"
            self.text_.use_encoder(load_tuned(options, folder))
            self.encoder_files_ = {f.name: f.read_bytes() for f in folder.iterdir() if f.is_file()}
