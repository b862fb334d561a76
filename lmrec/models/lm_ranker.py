"""LMRanker: rank items from pretrained language-model representations with a pairwise loss.

Item tower: frozen text embedding -> learned projection (linear or MLP) to ``dim``.
User tower: the user's history of item representations (mean, attention, or a causal
Transformer over the time-ordered sequence), plus the projected user text when the dataset has
user attributes. Optional LightGCN-style propagation of the item representations over the
user-item graph. ``id_mode="none"`` has no per-user or per-item parameters, so any new item
with text and any new user with a history or a profile text is scored without retraining.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from lmrec.data.interactions import Interactions
from lmrec.errors import ConfigError, check_choice, check_positive
from lmrec.losses import get_loss, make_loss
from lmrec.models.base import Recommender
from lmrec.models.graph import normalized_adjacency
from lmrec.models.lm_net import LMNet
from lmrec.models.text_features import DEFAULT_CACHE, TextFeatures
from lmrec.models.towers import TOWERS, TrainingHistories, csr_windows
from lmrec.sparse import csr_product, mask_seen
from lmrec.training.config import TrainConfig
from lmrec.training.loop import train_pairwise


DENSE_SCORES = 2**24  # batch x catalogue scores computed in full during training (64 MB of float32)


class LMRanker(TextFeatures, Recommender):
    """Language-model representations + pairwise ranking.

    Parameters
    ----------
    encoder: "minilm" (packaged all-MiniLM-L6-v2), a Hugging Face name available offline, or a path.
    encoder_backend: "hf" (mean pooling) or "sentence-transformers".
    item_template, user_template: format strings over the item / user table fields; None picks a
        built-in template for the dataset ("" disables user text).
    dim: representation size. projection: "linear" or "mlp".
    user_tower: "mean", "attention" or "sequence". max_history: items a user tower reads.
    graph_layers: LightGCN propagation layers over the item representations (0 = none).
    id_mode: "none" (ID-free), "hybrid" (item and user ID embeddings added to the text and history
        representations) or "items" (item ID embeddings only: a user is its history and text).
    history_ids: with item IDs, a second item ID table for the history role: an item in a user's
        history adds its history ID embedding, as a candidate its item ID embedding (asymmetric item
        roles, as in FISM; the text part is shared). Needs ``id_mode`` "hybrid" or "items".
    scorer: "dot" or "cosine" (divided by ``temperature``).
    heads: with the cosine scorer, split both vectors into this many equal parts and average the
        parts' cosines: score = (1/K) sum_k cos(u_k, v_k) / temperature. Each part keeps its own
        direction, so K > 1 scores like K cosine models side by side, still one dot product of
        (d,) factors for serving. ``dim`` must be a multiple of ``heads``.
    separate_heads: train each head with its own loss on its own score cos(u_k, v_k) / temperature
        (K cosine models of size dim / K trained side by side on the same batches: an ensemble,
        still scored by the mean) instead of one loss on the mean score. Needs ``heads`` > 1.
    loss: "bpr", "hinge" (with ``margin``) or "softmax". reg: L2 weight on batch representations.
    dropout: dropout rate inside the sequence tower's Transformer layers and the MLP projection.
    history_dropout: in training, the mean tower reads each user's history with every item left out
        with this probability, a fresh draw each step (a denoising regulariser on the user side;
        scoring reads the whole history). Needs the mean tower.
    shared_negatives: score the catalogue once per user of a batch instead of once per training
        pair: each user's unseen items, scored against the mean of the user's whole training
        history, are the negatives of all that user's positives (each positive is still scored with
        itself left out of the mean). Needs loss "softmax", sampler "unseen" and the mean tower;
        an epoch then costs about one catalogue row per user rather than per interaction.
    cache_dir: embedding cache folder (None: no cache). config: TrainConfig (negatives, lr, ...).

    Example
    -------
    >>> model = LMRanker(user_tower="sequence", loss="softmax",
    ...                  config=TrainConfig(n_negatives=64)).fit(split.train, split.valid)  # doctest: +SKIP
    >>> model.recommend_for_profile("space opera with robots", k=5)                       # doctest: +SKIP
    """

    name = "lm-ranker"
    uses_order = True

    def __init__(self, encoder: str = "minilm", encoder_backend: str = "hf", item_template: str | None = None,
                 user_template: str | None = None, max_length: int = 128, encode_batch_size: int = 64,
                 dim: int = 64, projection: str = "linear", user_tower: str = "mean", max_history: int = 50,
                 graph_layers: int = 0, id_mode: str = "none", scorer: str = "dot", temperature: float = 0.1,
                 history_ids: bool = False, heads: int = 1, separate_heads: bool = False, loss: str = "bpr",
                 margin: float = 1.0, reg: float = 0.0, dropout: float = 0.1, history_dropout: float = 0.0,
                 shared_negatives: bool = False, cache_dir: str | None = DEFAULT_CACHE,
                 config: TrainConfig | dict[str, Any] | None = None) -> None:
        self.encoder = encoder
        self.encoder_backend = encoder_backend
        self.item_template = item_template
        self.user_template = user_template
        self.max_length = max_length
        self.encode_batch_size = encode_batch_size
        self.dim = dim
        self.projection = projection
        self.user_tower = user_tower
        self.max_history = max_history
        self.graph_layers = graph_layers
        self.id_mode = id_mode
        self.scorer = scorer
        self.temperature = temperature
        self.history_ids = history_ids
        self.heads = heads
        self.separate_heads = separate_heads
        self.loss = loss
        self.margin = margin
        self.reg = reg
        self.dropout = dropout
        self.history_dropout = history_dropout
        self.shared_negatives = shared_negatives
        self.cache_dir = cache_dir
        self.config = config


    # ----------------------------------------------------------------- fitting
    def _validate(self) -> None:
        owner = "LMRanker"
        check_choice(owner, "projection", self.projection, ["linear", "mlp"])
        check_choice(owner, "user_tower", self.user_tower, TOWERS)
        check_choice(owner, "id_mode", self.id_mode, ["none", "hybrid", "items"])
        check_choice(owner, "scorer", self.scorer, ["dot", "cosine"])
        get_loss(self.loss, owner)
        for name in ("dim", "max_history", "temperature", "heads"):
            check_positive(owner, name, getattr(self, name))
        if self.heads > 1 and (self.scorer != "cosine" or self.dim % self.heads):
            raise ConfigError(f"{owner}: heads={self.heads!r} needs scorer='cosine' and a dim that is a multiple of "
                              f"heads; got scorer={self.scorer!r} and dim={self.dim!r}.")
        if self.history_ids and self.id_mode == "none":
            raise ConfigError(f"{owner}: history_ids=True needs item IDs (id_mode 'hybrid' or 'items'); "
                              f"got id_mode={self.id_mode!r}.")
        if self.separate_heads and self.heads == 1:
            raise ConfigError(f"{owner}: separate_heads=True needs heads > 1; got heads=1.")
        check_positive(owner, "graph_layers", self.graph_layers, allow_zero=True)
        for name in ("dropout", "history_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{owner}: {name} must be in [0, 1); got {getattr(self, name)!r}.")
        if self.history_dropout and self.user_tower != "mean":
            raise ConfigError(f"{owner}: history_dropout={self.history_dropout!r} needs user_tower='mean'; "
                              f"got user_tower={self.user_tower!r}.")

    def _fit(self, train: Interactions, valid: Interactions | None) -> None:
        self._validate()
        cfg = TrainConfig.from_any(self.config)
        if self.shared_negatives and (self.loss, cfg.sampler, self.user_tower) != ("softmax", "unseen", "mean"):
            raise ConfigError("LMRanker: shared_negatives=True needs loss='softmax', config.sampler='unseen' and "
                              f"user_tower='mean'; got {self.loss!r}, {cfg.sampler!r} and {self.user_tower!r}.")
        self.device_ = cfg.device
        self._resolve_templates(train)
        text = torch.from_numpy(self._encode(self._item_texts(train.item_table), cfg.device, cfg.progress))
        user_text = None
        if self.user_template_:
            user_text = torch.from_numpy(self._encode(self._user_texts(train.user_table), cfg.device, cfg.progress,
                                                      what="users"))
        torch.manual_seed(cfg.seed)
        self.drop_rng_ = np.random.default_rng(cfg.seed)
        self.module_ = self._net(text, user_text).to(cfg.device)
        self._prepare_graph()
        self.train_users_ = torch.as_tensor(train.users, device=cfg.device)
        self.histories_ = TrainingHistories(train, self.max_history)
        self.train_binary_ = train.to_csr()
        self._prepare_text_means()
        loss_fn = make_loss(self.loss, "LMRanker", margin=self.margin)
        self.history_ = train_pairwise(self, train, valid, cfg, loss_fn, self.get_params())

    def _net(self, text: torch.Tensor, user_text: torch.Tensor | None) -> LMNet:
        """The network for this configuration over item texts (N, T) and user texts (U, T) or None."""
        return LMNet(text, user_text, self.n_users_, dim=self.dim, projection=self.projection,
                     user_tower=self.user_tower, max_history=self.max_history, item_ids=self.id_mode != "none",
                     user_ids=self.id_mode == "hybrid", history_ids=self.history_ids, dropout=self.dropout)

    def _prepare_text_means(self) -> None:
        """Per-user sums of history text embeddings, for the fast mean tower.

        With a linear projection P, no graph and no IDs, mean_j P(e_j) = P(mean_j e_j), so a training
        step needs one (B, T) x (T, d) product instead of a sparse (B, N) x (N, d) one and its backward.
        """
        self.text_means_ = None
        if self.user_tower == "mean" and self.projection == "linear" and not self.graph_layers \
                and self.id_mode == "none" and not self.history_dropout:
            self.text_means_ = (csr_product(self.train_binary_, self.module_.text_emb),
                                torch.as_tensor(np.diff(self.train_binary_.indptr), device=self._device()))

    def _prepare_graph(self) -> None:
        self.adj_ = normalized_adjacency(self.train_matrix_, self._device()) if self.graph_layers else None

    def _device(self) -> torch.device:
        return self.module_.text_emb.device

    @property
    def user_grouped_batches(self) -> bool:
        """Training batches hold whole users, so the sequence tower shares one window per user and
        shared negatives one catalogue row."""
        return self.user_tower == "sequence" or self.shared_negatives

    # ----------------------------------------------------------------- scoring
    def _pair(self, u: torch.Tensor, v: torch.Tensor, training: bool = False) -> torch.Tensor:
        """Scores of users (B, d) against items (B, m, d) or (N, d) -> (B, m) or (B, N); in training
        with ``separate_heads``, each head's own score, heads first: (K, B, m) or (K, B, N)."""
        if self.scorer == "cosine":
            u, v = self._unit(u), self._unit(v)
        if training and self.separate_heads:  # a part's dot product is its cosine / K
            u, v = u.unflatten(-1, (self.heads, -1)), v.unflatten(-1, (self.heads, -1))
            s = torch.einsum("bkd,bmkd->kbm", u, v) if v.dim() == 4 else torch.einsum("bkd,nkd->kbn", u, v)
            return s * (self.heads / self.temperature)
        s = torch.einsum("bd,bmd->bm", u, v) if v.dim() == 3 else u @ v.T
        return s / self.temperature if self.scorer == "cosine" else s

    def _users_from_rows(self, v: torch.Tensor, history: sp.csr_matrix, users: torch.Tensor | None,
                         minus: torch.Tensor | None = None, extra: torch.Tensor | None = None) -> torch.Tensor:
        h = self.module_.history_reps(v)
        if self.user_tower == "mean" and extra is None:
            binary = history.copy()  # recency values -> 1
            binary.data = np.ones_like(binary.data)
            return self.module_.mean_user_reps(h, binary, users, minus)
        items, mask = csr_windows(history, self.max_history)
        return self.module_.user_reps(h, items.to(v.device), mask.to(v.device), users, extra)

    def batch_scores(self, rows: torch.Tensor, pos: torch.Tensor,
                     neg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        net = self.module_
        v = net.item_reps(self.adj_, self.graph_layers)  # (N, d)
        h = net.history_reps(v)
        users = self.train_users_[rows]
        if self.text_means_ is not None:
            total, count = self.text_means_
            n = (count[users] - 1).unsqueeze(1)  # the positive itself leaves the history
            mean = (total[users] - net.text_emb[pos]) / n.clamp(min=1)
            u = net._add_user_parts(net.item_proj(mean) * (n > 0), users)
        elif self.user_tower == "mean":
            u = net.mean_user_reps(h, self._training_rows(users.cpu().numpy()), users, minus=pos)
        elif self.user_tower == "sequence":
            items, mask, take = self.histories_.shared_windows(rows)
            u = net.shared_user_reps(h, items.to(v.device), mask.to(v.device), take.to(v.device), users)
        else:
            items, mask = self.histories_.window(rows, prefix=False)
            u = net.user_reps(h, items.to(v.device), mask.to(v.device), users)
        cand_idx = torch.cat([pos[:, None], neg], dim=1)  # (B, 1 + m)
        if len(u) * len(v) * (self.heads if self.separate_heads else 1) <= DENSE_SCORES:
            # all (B, N) scores, then gather: the backward of a gather is a cheap dense scatter, while
            # the backward of v[cand_idx] (an accumulating index_put over B * (1 + m) rows) is slow on CPU
            full = self._pair(u, v, training=True)
            scores = torch.gather(full, -1, cand_idx.expand(*full.shape[:-2], -1, -1))
        else:
            scores = self._pair(u, v[cand_idx], training=True)
        reg = scores.new_zeros(())
        if self.reg:
            reg = self.reg * (u.pow(2).sum(1).mean() + v[cand_idx].pow(2).sum(2).mean(0).sum())
        return scores[..., 0], scores[..., 1:], reg

    def _training_rows(self, users: np.ndarray) -> sp.csr_matrix:
        """The binary training histories of ``users`` as a training step's mean tower reads them: with
        ``history_dropout`` p, each item left out with probability p (the mean is over the rest)."""
        rows = self.train_binary_[users]
        if self.history_dropout and self.module_.training:
            rows.data = (self.drop_rng_.random(rows.nnz) >= self.history_dropout).astype(rows.dtype)
            rows.eliminate_zeros()
        return rows

    def catalogue_scores(self, rows: torch.Tensor, pos: torch.Tensor, group_users: np.ndarray,
                         group: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For shared negatives: (positive scores (B,), catalogue scores (G, N) of the batch's distinct
        users ``group_users``, regularisation); row b belongs to user ``group_users[group[b]]``. With
        ``separate_heads`` the scores have a leading heads axis: (K, B) and (K, G, N).

        A positive is scored with itself left out of its user's history mean, as in
        :meth:`batch_scores`; the catalogue row uses the user's whole training history.
        """
        net = self.module_
        v = net.item_reps(self.adj_, self.graph_layers)  # (N, d)
        h = net.history_reps(v)
        history = self._training_rows(group_users)
        total, count = net.history_sums(h, history)
        users = torch.as_tensor(group_users, device=v.device)
        u_all = net.mean_from_sums(total, count, users)
        u_pos = net.mean_from_sums(*net.leave_out(h, history, total, count, group.cpu().numpy(), pos), users[group])
        pos_scores = self._pair(u_pos, v[pos].unsqueeze(1), training=True)[..., 0]
        reg = pos_scores.new_zeros(())
        if self.reg:
            reg = self.reg * (u_pos.pow(2).sum(1).mean() + v.pow(2).sum() + v[pos].pow(2).sum(1).mean())
        return pos_scores, self._pair(u_all, v, training=True), reg

    @torch.no_grad()
    def item_representations(self) -> torch.Tensor:
        """(N, d) item representations before the scorer (projection, IDs, graph)."""
        return self.module_.item_reps(self.adj_, self.graph_layers)

    @torch.no_grad()
    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        v = self.item_representations()
        u = self._users_from_rows(v, history, torch.as_tensor(users, device=v.device))
        return self._pair(u, v).float().cpu()

    def _item_vectors(self) -> torch.Tensor:
        return self.item_representations().cpu()

    # ----------------------------------------------------------------- cold start
    @torch.no_grad()
    def history_factor(self, items: Any, profile: str | None = None,
                       item_reps: torch.Tensor | None = None) -> torch.Tensor:
        """(d,) user vector of a new user in the space of :meth:`factors` (scores = V @ u).

        ``items``: liked item indices, oldest first; ``profile``: a text that reads like one more
        liked item. ``item_reps``: precomputed :meth:`item_representations` (serving caches them).
        """
        self._check_fitted()
        if profile is None and (items is None or len(np.atleast_1d(items)) == 0):
            raise ConfigError("a new user needs at least one item in the history or a profile text.")
        hist = self.history_row(items)
        v = self.item_representations() if item_reps is None else item_reps
        extra = None
        if profile is not None:
            text = torch.from_numpy(self._encode([profile], str(self._device()), progress=False,
                                                 what="profile")).to(v.device)
            extra = self.module_.item_proj(text)  # the profile reads like one more liked item
        u = self._users_from_rows(v, hist, None, extra=extra)
        return self._user_side(u)[0].cpu()

    def score_history(self, items: Any, profile: str | None = None) -> torch.Tensor:
        v = self.item_representations()
        return self.item_factors(v) @ self.history_factor(items, profile, item_reps=v)

    @torch.no_grad()
    def factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        v = self.item_representations()
        users = [self._users_from_rows(v, self.train_matrix_[lo: lo + 1024],
                                       torch.arange(lo, min(lo + 1024, self.n_users_), device=v.device))
                 for lo in range(0, self.n_users_, 1024)]
        return self._user_side(torch.cat(users)).cpu(), self._item_side(v).cpu()

    @torch.no_grad()
    def item_factors(self, item_reps: torch.Tensor | None = None) -> torch.Tensor:
        """The item side of :meth:`factors` (from precomputed ``item_reps`` when given)."""
        return self._item_side(self.item_representations() if item_reps is None else item_reps).cpu()

    def _user_side(self, u: torch.Tensor) -> torch.Tensor:
        return self._unit(u) / self.temperature if self.scorer == "cosine" else u

    def _item_side(self, v: torch.Tensor) -> torch.Tensor:
        return self._unit(v) if self.scorer == "cosine" else v

    def _unit(self, x: torch.Tensor) -> torch.Tensor:
        """Each of the ``heads`` parts of the last axis scaled to norm 1/sqrt(heads): the dot product of
        two such vectors is the mean of the parts' cosines (with one head, the cosine)."""
        parts = x.unflatten(-1, (self.heads, -1))  # (..., K, d/K)
        return (F.normalize(parts, dim=-1) / self.heads ** 0.5).flatten(-2)

    @torch.no_grad()
    def field_contributions(self, user_vector: torch.Tensor, item: int) -> tuple[list[str], list[str], list[float]]:
        """Leave-one-field-out on an item's text: (fields, their values, score drop when blanked).

        Scores go through the item projection only (no IDs, no graph), the text part of the model.
        """
        from lmrec.text.templates import template_fields

        row = self.item_table_.iloc[[item]].reset_index(drop=True)
        fields = [f for f in dict.fromkeys(template_fields(self.item_template_)) if f in row.columns]
        variants = [row] + [row.assign(**{f: ""}) for f in fields]
        texts = [self._item_texts(v)[0] for v in variants]
        e = torch.from_numpy(self._encode(texts, str(self._device()), progress=False, what="explain"))
        v = self._item_side(self.module_.item_proj(e.to(self._device()))).cpu()
        s = (v @ user_vector.float()).tolist()
        values = ["" if pd.isna(row.at[0, f]) else str(row.at[0, f]) for f in fields]
        return fields, values, [s[0] - x for x in s[1:]]

    def recommend_for_history(self, items: Any, k: int = 10, exclude_seen: bool = True,
                              profile: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k for a new user given liked item indices (oldest first) and/or a profile text."""
        scores = self.score_history(items, profile)[None].float()
        if exclude_seen:
            mask_seen(scores, self.history_row(items))
        top = torch.topk(scores, min(k, self.n_items_), dim=1)
        return top.indices.numpy()[0], top.values.numpy()[0]

    def recommend_for_profile(self, text: str, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Top-k for a new user described only by a text profile."""
        return self.recommend_for_history([], k, profile=text)

    def add_items(self, table: pd.DataFrame, id_column: str = "item") -> np.ndarray:
        """Add (or update) items from a table with their raw id and template fields; returns indices.

        New items are encoded and rankable at once; with item ID embeddings (``id_mode`` "hybrid" or
        "items") their ID part is zero.
        """
        self._check_fitted()
        if id_column not in table.columns:
            raise ConfigError(f"add_items needs an '{id_column}' column; got {list(table.columns)}.")
        vecs = torch.from_numpy(self._encode(self._item_texts(table), str(self._device()), progress=False,
                                             what="new_items"))
        known = {raw: i for i, raw in enumerate(self.item_ids_.tolist())}
        net = self.module_
        index = []
        for raw, vec in zip(table[id_column].tolist(), vecs):
            if raw in known:
                net.text_emb[known[raw]] = vec.to(net.text_emb.device)
                index.append(known[raw])
                continue
            net.text_emb = torch.cat([net.text_emb, vec[None].to(net.text_emb.device)])
            for emb in (net.item_id, net.history_id):
                if emb is not None:
                    emb.weight = torch.nn.Parameter(torch.cat([emb.weight.data, emb.weight.new_zeros(1, self.dim)]))
            self.item_ids_ = np.append(self.item_ids_.astype(object), raw)
            known[raw] = self.n_items_
            index.append(self.n_items_)
            self.n_items_ += 1
        self._grow_item_table(table.reset_index(drop=True), np.asarray(index, dtype=np.int64))
        self.train_matrix_ = sp.csr_matrix((self.train_matrix_.data, self.train_matrix_.indices,
                                            self.train_matrix_.indptr), shape=(self.n_users_, self.n_items_))
        self._prepare_graph()
        return np.asarray(index, dtype=np.int64)

    # ----------------------------------------------------------------- persistence
    def _state(self) -> dict[str, np.ndarray]:
        return {f"net.{k}": v.detach().cpu().numpy() for k, v in self.module_.state_dict().items()}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        state = {k[4:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("net.")}
        self.module_ = self._net(state["text_emb"], state.get("user_text_emb"))
        self.module_.load_state_dict(state)
        self.module_.eval()
        self.n_items_ = int(state["text_emb"].shape[0])
        self._prepare_graph()

    def _extra_manifest(self) -> dict[str, Any]:
        return self._text_manifest()

    def _set_extra(self, extra: dict[str, Any]) -> None:
        self._set_text_manifest(extra)
