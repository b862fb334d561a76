"""The one pairwise training loop, readable top to bottom.

A trainable model exposes ``module_`` (a torch Module) and
``batch_scores(rows, pos, neg) -> (pos_scores (B,), neg_scores (B, m), regularisation)``, where
``rows`` indexes the training interactions of the batch (so a model can find the user and the
history before that interaction), ``pos`` the positive items ``(B,)`` and ``neg`` the negatives
``(B, m)``. The loop draws negatives (uniform, popularity, in-batch, hard, or the whole
catalogue with or without the user's other training items), applies the loss, evaluates on
validation for early stopping (optionally going back to the best weights with a lower learning
rate at each evaluation without improvement), restores the best weights and logs every epoch.
A model whose ``user_grouped_batches`` is true gets each user's rows in one run of the epoch
order (users shuffled), so it can share work across a user's rows; one whose
``shared_negatives`` is true (softmax loss, "unseen" sampler) scores the catalogue once per user
of a batch through ``catalogue_scores`` (:func:`shared_negatives_loss`).
"""
from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from lmrec.data.interactions import Interactions
from lmrec.data.sampling import NegativeSampler
from lmrec.evaluation.evaluator import EvalTask, evaluate_task
from lmrec.evaluation.metrics import parse_metric
from lmrec.training.config import TrainConfig

FULL_CATALOGUE = ("all", "unseen")  # samplers that score every item as a negative


class PairwiseModel(Protocol):
    module_: torch.nn.Module

    def batch_scores(self, rows: torch.Tensor, pos: torch.Tensor,
                     neg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...


def draw_negatives(model: PairwiseModel, cfg: TrainConfig, sampler: NegativeSampler, users: np.ndarray,
                   rows: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """(B, n_negatives) negative items for the batch, by ``cfg.sampler`` ((B, N) for "all" and "unseen")."""
    if cfg.sampler in FULL_CATALOGUE:  # the positive is among them; the loop masks its score out
        return torch.arange(sampler.n_items, device=pos.device).expand(len(pos), -1)
    if cfg.sampler == "in-batch":
        shifts = torch.arange(1, cfg.n_negatives + 1)
        idx = (torch.arange(len(pos))[:, None] + shifts[None, :]) % max(len(pos), 1)
        return pos[idx]  # other rows' positives: popularity-distributed, may include own positives rarely
    neg = torch.from_numpy(sampler.sample(users)).to(pos.device)
    if cfg.sampler != "hard":
        return neg
    with torch.no_grad():  # score the candidate pool with the current model, keep the hardest
        _, pool_scores, _ = model.batch_scores(rows, pos, neg)
    if pool_scores.dim() == 3:  # one score per head (K, B, m): the hardest for their mean, the served score
        pool_scores = pool_scores.mean(0)
    hardest = torch.topk(pool_scores, cfg.n_negatives, dim=1).indices
    return torch.gather(neg, 1, hardest)


def full_catalogue_mask(cfg: TrainConfig, sampler: NegativeSampler, users: np.ndarray, pos: torch.Tensor,
                        neg: torch.Tensor) -> torch.Tensor:
    """(B, N) bool: the scores a full-catalogue sampler leaves out — the positive ("all"), or every
    item the user has in training ("unseen"; the positive is one of them)."""
    if cfg.sampler == "unseen":
        return torch.from_numpy(sampler.known_rows(users)).to(neg.device)
    return neg == pos[:, None]


def shared_negatives_loss(model: Any, sampler: NegativeSampler, users: np.ndarray, rows: torch.Tensor,
                          pos: torch.Tensor,
                          loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """The softmax loss of a batch whose negatives are, for each positive, its user's unseen items,
    with the catalogue scored once per distinct user of the batch.

    log Σ_unseen e^s over a user's catalogue row is shared by all the user's positives, and the
    softmax of a positive against that single log-sum equals its softmax against the whole set.
    """
    group_users, group = np.unique(users, return_inverse=True)
    group_t = torch.from_numpy(group.reshape(-1)).to(pos.device)
    pos_scores, catalogue, reg = model.catalogue_scores(rows, pos, group_users, group_t)
    seen = torch.from_numpy(sampler.known_rows(group_users)).to(catalogue.device)
    # a finite floor, not -inf: a user with every item seen gets a negligible log-sum, not NaN gradients
    log_sum = torch.logsumexp(catalogue.masked_fill(seen, torch.finfo(catalogue.dtype).min), dim=-1)
    return loss_fn(pos_scores, log_sum[..., group_t].unsqueeze(-1)) + reg  # any leading heads axis kept


class RunLog:
    """A run directory: ``config.json`` once, ``metrics.jsonl`` one line per epoch."""

    def __init__(self, run_dir: str | None, config: dict[str, Any]) -> None:
        self.path = Path(run_dir) if run_dir else None
        self.records: list[dict[str, Any]] = []
        if self.path:
            self.path.mkdir(parents=True, exist_ok=True)
            (self.path / "config.json").write_text(json.dumps(config, indent=2, default=str) + "\n")
            (self.path / "metrics.jsonl").write_text("")

    def log(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        if self.path:
            with (self.path / "metrics.jsonl").open("a") as fh:
                fh.write(json.dumps(record) + "\n")


def warm_start(module: torch.nn.Module, source: torch.nn.Module) -> int:
    """Copy trained parameters into a fresh module of the same class; returns how many were copied.

    Equal shapes are copied; a table that grew along its first axis (users or items appended after
    the old ones) gets the old rows. Buffers (frozen text embeddings) are not copied: the new
    module holds the current texts.
    """
    old = dict(source.named_parameters())
    copied = 0
    with torch.no_grad():
        for name, param in module.named_parameters():
            src = old.get(name)
            if src is None or src.dim() != param.dim():
                continue
            if src.shape == param.shape:
                param.copy_(src)
            elif src.shape[1:] == param.shape[1:] and src.shape[0] <= param.shape[0]:
                param[: src.shape[0]].copy_(src)
            else:
                continue
            copied += 1
    return copied


def train_pairwise(model: Any, train: Interactions, valid: Interactions | None, cfg: TrainConfig,
                   loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                   model_config: dict[str, Any]) -> list[dict[str, Any]]:
    """Train ``model`` in place; returns the per-epoch records (also in ``cfg.run_dir``)."""
    cfg.validate()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    kind = cfg.sampler if cfg.sampler in ("uniform", "popularity") else "uniform"
    n_draw = cfg.n_negatives * (cfg.hard_pool if cfg.sampler == "hard" else 1)
    sampler = NegativeSampler(train, kind, n_draw, alpha=cfg.pop_alpha, seed=cfg.seed)
    source = getattr(model, "_init_from", None)
    if source is not None:
        warm_start(model.module_, source.module_)
    opt = torch.optim.AdamW(model.module_.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)  # 0: Adam
    spec = parse_metric(cfg.metric)
    val_task = EvalTask.build(train, valid) if valid is not None and len(valid) else None
    log = RunLog(cfg.run_dir, {"model": model_config, "train": cfg.to_dict()})
    items_all = torch.as_tensor(train.items)
    shared = getattr(model, "shared_negatives", False)
    best, best_state, stale = -np.inf, None, 0
    began = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        start = time.perf_counter()
        if cfg.max_minutes is not None and epoch > 1 and \
                (start - began) * epoch / (epoch - 1) > 60 * cfg.max_minutes:
            break  # the mean epoch so far says the next one would overrun the budget
        model.module_.train()
        order = rng.permutation(len(train))
        if getattr(model, "user_grouped_batches", False):  # users in random order, each one's rows together
            rank = rng.permutation(train.n_users)
            order = order[np.argsort(rank[train.users[order]], kind="stable")]
        total, steps = 0.0, 0
        batches = range(0, len(order), cfg.batch_size)
        for lo in tqdm(batches, desc=f"epoch {epoch}", leave=False, disable=not cfg.progress):
            idx = order[lo: lo + cfg.batch_size]
            rows = torch.from_numpy(idx).to(cfg.device)
            pos = items_all[rows.cpu()].to(cfg.device)
            users = train.users[idx]
            if shared:
                loss = shared_negatives_loss(model, sampler, users, rows, pos, loss_fn)
            else:
                neg = draw_negatives(model, cfg, sampler, users, rows, pos)
                pos_scores, neg_scores, reg = model.batch_scores(rows, pos, neg)
                if cfg.sampler in FULL_CATALOGUE:  # the positive (and for "unseen" the user's other items) left out
                    neg_scores = neg_scores.masked_fill(full_catalogue_mask(cfg, sampler, users, pos, neg), -torch.inf)
                loss = loss_fn(pos_scores, neg_scores) + reg
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
            steps += 1
        record: dict[str, Any] = {"epoch": epoch, "loss": total / max(steps, 1), "lr": opt.param_groups[0]["lr"],
                                  "train_seconds": round(time.perf_counter() - start, 3)}
        if val_task is not None and epoch % cfg.eval_every == 0:
            model.module_.eval()
            with torch.no_grad():
                value = evaluate_task(model, val_task, [spec]).summary()[spec.label]
            record[f"valid_{spec.label}"] = value
            if value > best:
                best, best_state, stale = value, copy.deepcopy(model.module_.state_dict()), 0
            else:
                stale += 1
                if cfg.plateau_decay < 1 and best_state is not None and stale < cfg.patience:
                    model.module_.load_state_dict(best_state)  # restart from the best, more slowly
                    for group in opt.param_groups:
                        group["lr"] *= cfg.plateau_decay
        log.log(record)
        if cfg.progress:
            tqdm.write(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))
        if stale >= cfg.patience:
            break
    if best_state is not None:
        model.module_.load_state_dict(best_state)
    model.module_.eval()
    model.best_epoch_ = max(log.records, key=lambda r: r.get(f"valid_{spec.label}", -np.inf))["epoch"] \
        if best_state is not None else len(log.records)
    return log.records
