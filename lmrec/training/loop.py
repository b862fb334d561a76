"""The one training loop, readable top to bottom.

A model's ``fit`` describes what to train as a :class:`TrainingTask` — its torch module, a
``step`` that turns a batch of training rows into a loss (the model draws its negatives and
scores them there, see :mod:`lmrec.training.pairwise`), optional optimizer parameter groups and
hooks — and passes a ``validate`` callback that returns the validation metric. The loop owns
everything else: epoch order (rows of one group, e.g. one user, kept together when asked),
micro-batches for gradient accumulation, bf16 autocast, AdamW, early stopping on the
validation metric with the best weights restored, the learning rate lowered on a plateau, an
optional wall-clock guard, progress bars, the run directory, resumable checkpoints
(:mod:`lmrec.training.checkpoint`) and data-parallel steps over ``torchrun`` processes
(:mod:`lmrec.training.distributed`). It asks the model nothing else.
"""
from __future__ import annotations

import contextlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from lmrec.training import checkpoint
from lmrec.training.config import TrainConfig
from lmrec.training.distributed import World, all_reduce_gradients, broadcast_value, shard, world
from lmrec.training.tracking import Tracker, open_tracker


class RandomState(Protocol):
    """Something random a task draws from (its negative sampler), whose state a checkpoint keeps."""

    def state(self) -> dict[str, Any]: ...

    def set_state(self, state: dict[str, Any]) -> None: ...


@dataclass
class TrainingTask:
    """What the loop trains.

    module: the torch module whose parameters are trained and whose state is kept at the best epoch.
    step: ``step(rows) -> loss``: the mean loss over the training rows ``rows`` (int64, (B,)).
    n_rows: number of training rows (an epoch visits each once).
    groups: (n_rows,) group of each row (its user) when a batch must hold a group's rows together
        (a sequence tower shares one window per user); None for a plain shuffle.
    param_groups: optimizer parameter groups (e.g. a separate encoder learning rate, as
        ``{"params": [...], "lr": ...}``); None trains every parameter of ``module`` at ``cfg.lr``.
    after_update: called after every optimizer step (a text encoder refreshes its table there).
    before_validation: called before each validation (and at the end when none ran), to bring
        state derived from the weights up to date (a tuned encoder's catalogue table).
    begin_batch: called with each whole batch before ``step`` sees its parts (micro-batches, a
        rank's share): the task draws the batch's negatives there, once, so that accumulation and
        data-parallel processes train on the negatives one process would draw.
    random: the task's random state, saved in checkpoints (None when the task draws nothing).
    warm: the module starts from trained weights (``fit(init_from=...)``): with a validation, the
        loop validates them before the first epoch and keeps them (best epoch 0) when no epoch
        beats them, so further training never returns a model worse on validation than its start.
    name: the model's name, shown in the progress lines.
    """

    module: nn.Module
    step: Callable[[np.ndarray], torch.Tensor]
    n_rows: int
    groups: np.ndarray | None = None
    param_groups: list[dict[str, Any]] | None = None
    after_update: Callable[[], None] | None = None
    before_validation: Callable[[], None] | None = None
    begin_batch: Callable[[np.ndarray], None] | None = None
    random: RandomState | None = None
    warm: bool = False
    name: str = ""  # what is trained ("lm-ranker"), at the head of each epoch's progress line


@dataclass
class TrainingLog:
    """Per-epoch records (also in ``cfg.run_dir``) and the epoch whose weights were kept (0: the
    warm start's); ``start``: a warm start's validation metric, before any epoch."""

    records: list[dict[str, Any]]
    best_epoch: int
    start: float | None = None


class RunLog:
    """A run directory: ``config.json`` once, ``metrics.jsonl`` one line per epoch; and the
    tracker (TensorBoard, MLflow) that gets each record too."""

    def __init__(self, run_dir: str | None, config: dict[str, Any], records: list[dict[str, Any]] | None = None,
                 tracker: Tracker | None = None) -> None:
        self.path = Path(run_dir) if run_dir else None
        self.records: list[dict[str, Any]] = list(records or [])
        self.tracker = tracker or Tracker()
        if self.path:
            self.path.mkdir(parents=True, exist_ok=True)
            (self.path / "config.json").write_text(json.dumps(config, indent=2, default=str) + "\n")
            (self.path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in self.records))
            if self.tracker.link:
                (self.path / "tracking.txt").write_text(self.tracker.link + "\n")

    def log(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        self.tracker.log(record, int(record.get("epoch", len(self.records))))
        if self.path:
            with (self.path / "metrics.jsonl").open("a") as fh:
                fh.write(json.dumps(record) + "\n")

    def close(self) -> None:
        self.tracker.close()


def run_tracker(cfg: TrainConfig, config: dict[str, Any]) -> Tracker:
    """The tracker ``cfg.tracking`` names, for a run named ``cfg.run_name`` (or the run directory's
    name, else the time)."""
    if cfg.tracking == "none":
        return Tracker()
    name = cfg.run_name or (Path(cfg.run_dir).name if cfg.run_dir else time.strftime("run-%Y%m%d-%H%M%S"))
    return open_tracker(cfg.tracking, cfg.tracking_dir, name, config)


def autocast(cfg: TrainConfig) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on the configured device type when ``cfg.precision == "bf16"``."""
    if cfg.precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(cfg.device).type, dtype=torch.bfloat16)


def epoch_order(task: TrainingTask, rng: np.random.Generator) -> np.ndarray:
    """A random order of the training rows; with ``groups``, groups in random order, each group's
    rows together (and shuffled within)."""
    order = rng.permutation(task.n_rows)
    if task.groups is not None:
        rank = rng.permutation(int(task.groups.max()) + 1)
        order = order[np.argsort(rank[task.groups[order]], kind="stable")]
    return order


def accumulate(task: TrainingTask, rows: np.ndarray, parts: int, cfg: TrainConfig, w: World) -> float:
    """Backward through this rank's share of the batch ``rows`` in ``parts`` micro-batches, each
    loss weighted by its share of the whole batch, so the gradient summed over micro-batches and
    ranks is the whole batch's; returns this rank's part of the batch loss."""
    if task.begin_batch is not None:
        task.begin_batch(rows)
    mine, total = shard(rows, w), 0.0
    for chunk in np.array_split(mine, min(parts, len(mine))) if len(mine) else []:
        with autocast(cfg):
            loss = task.step(chunk) * (len(chunk) / len(rows))
        loss.backward()
        total += float(loss.detach())
    return total


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of what training changes: trainable parameters and buffers (frozen weights, such as a
    LoRA-adapted encoder's base, are left out: they never change)."""
    keep = {n for n, p in module.named_parameters() if p.requires_grad} | {n for n, _ in module.named_buffers()}
    return {k: v.detach().clone() for k, v in module.state_dict().items() if k in keep}


def batches(order: np.ndarray, size: int, desc: str, show: bool) -> Iterator[np.ndarray]:
    """The batches of an epoch, with a progress bar when ``show`` and stderr is a terminal
    (tqdm's ``disable=None``: a bar redrawn into a log file or a pipe is noise)."""
    for lo in tqdm(range(0, len(order), size), desc=desc, leave=False, disable=None if show else True):
        yield order[lo: lo + size]


def say(line: str) -> None:
    """One progress line on stderr (through tqdm, so that it never breaks a bar on a terminal)."""
    tqdm.write(line, file=sys.stderr)


def epoch_line(task: TrainingTask, record: dict[str, Any], cfg: TrainConfig, label: str, best: float,
               best_epoch: int) -> str:
    """``lm-ranker epoch 3/60: loss 0.4123, valid ndcg@10 0.0812 (best 0.0812 at epoch 3), 12.3 s``."""
    head = f"{task.name + ' ' if task.name else ''}epoch {record['epoch']}/{cfg.epochs}: loss {record['loss']:.4f}"
    valid = ""
    if label in record:
        valid = f", valid {cfg.metric} {record[label]:.4f} (best {best:.4f} at epoch {best_epoch})"
    lr = f", lr {record['lr']:.3g}" if record["lr"] != cfg.lr else ""
    return f"{head}{valid}{lr}, {record['train_seconds']:.1f} s"


def resume(task: TrainingTask, cfg: TrainConfig, opt: torch.optim.Optimizer, config: dict[str, Any],
           rng: np.random.Generator) -> checkpoint.LoopState:
    """The loop state to start from: ``cfg.checkpoint_dir``'s checkpoint when it holds one (weights,
    optimizer and random states restored), else a fresh start."""
    if not checkpoint.exists(cfg.checkpoint_dir):
        return checkpoint.LoopState()
    state, module_state = checkpoint.load(str(cfg.checkpoint_dir), opt, config)
    task.module.load_state_dict(module_state, strict=False)
    if state.order_rng is not None:
        rng.bit_generator.state = state.order_rng
    if task.random is not None and state.sampler is not None:
        task.random.set_state(state.sampler)
    return state


def validation(task: TrainingTask, validate: Callable[[], float], w: World) -> float:
    """The validation metric, computed on rank 0 and broadcast (every rank refreshes derived state)."""
    task.module.eval()
    if task.before_validation is not None:
        task.before_validation()
    value = float("nan")
    if w.main:
        with torch.no_grad():
            value = float(validate())
    if w.size > 1:
        device = next(task.module.parameters()).device
        value = broadcast_value(value, device)
    return value


def train(task: TrainingTask, cfg: TrainConfig, validate: Callable[[], float] | None = None,
          run_config: dict[str, Any] | None = None) -> TrainingLog:
    """Train ``task.module`` in place; returns the per-epoch records and the best epoch.

    ``validate()`` (called in eval mode, after ``before_validation``, on rank 0) returns the
    validation metric every ``cfg.eval_every`` epochs; without it the loop runs ``cfg.epochs``
    epochs. With ``cfg.checkpoint_dir`` it resumes from the checkpoint there and writes one after
    every epoch. Under ``torchrun`` every rank calls it alike (see :mod:`lmrec.training.distributed`).
    """
    cfg.validate()
    w = world()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    module = task.module
    opt = torch.optim.AdamW(task.param_groups or module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    config = {"model": run_config or {}, "train": cfg.to_dict()}
    at = resume(task, cfg, opt, config, rng)
    log = RunLog(cfg.run_dir if w.main else None, config, at.records, run_tracker(cfg, config) if w.main else None)
    show = cfg.progress and w.main
    label = f"valid_{cfg.metric}"
    began, first = time.perf_counter(), at.epoch + 1
    start_value = None
    if validate is not None and task.warm and at.epoch == 0:  # the start competes with the epochs
        start_value = validation(task, validate, w)
        at.best, at.best_state, at.best_epoch = start_value, snapshot(module), 0
        if show:
            say(f"{task.name + ' ' if task.name else ''}epoch 0 (the warm start): valid {cfg.metric} {start_value:.4f}")
    for epoch in range(first, cfg.epochs + 1):
        start, cpu_start = time.perf_counter(), time.process_time()
        if at.stale >= cfg.patience:
            break  # early stopping (also when a resumed checkpoint had already stopped)
        ran = epoch - first  # epochs this call has run
        over = cfg.max_minutes is not None and ran and (start - began) * (ran + 1) / ran > 60 * cfg.max_minutes
        if w.size > 1:  # rank 0's clock decides for all, so no rank waits alone in a collective
            over = bool(broadcast_value(float(bool(over)), next(module.parameters()).device))
        if over:
            break  # the mean epoch so far says the next one would overrun the budget
        module.train()
        total, steps = 0.0, 0
        for rows in batches(epoch_order(task, rng), cfg.batch_size, f"epoch {epoch}", show):
            opt.zero_grad(set_to_none=True)
            loss = accumulate(task, rows, cfg.grad_accum, cfg, w)
            total += all_reduce_gradients(module, loss) if w.size > 1 else loss
            opt.step()
            steps += 1
            if task.after_update is not None:
                task.after_update()
        record: dict[str, Any] = {"epoch": epoch, "loss": total / max(steps, 1), "lr": opt.param_groups[0]["lr"],
                                  "train_seconds": round(time.perf_counter() - start, 3),
                                  "train_cpu_seconds": round(time.process_time() - cpu_start, 3)}
        if validate is not None and epoch % cfg.eval_every == 0:
            value = validation(task, validate, w)
            record[label] = value
            if value > at.best:
                at.best, at.best_state, at.best_epoch, at.stale = value, snapshot(module), epoch, 0
            else:
                at.stale += 1
                if cfg.plateau_decay < 1 and at.best_state is not None and at.stale < cfg.patience:
                    module.load_state_dict(at.best_state, strict=False)  # restart from the best, more slowly
                    for group in opt.param_groups:
                        group["lr"] *= cfg.plateau_decay
        log.log(record)
        at.epoch, at.records = epoch, log.records
        if cfg.checkpoint_dir is not None and w.main:
            at.order_rng = rng.bit_generator.state
            at.sampler = task.random.state() if task.random is not None else None
            checkpoint.save(cfg.checkpoint_dir, at, snapshot(module), opt, config)
        if show:
            say(epoch_line(task, record, cfg, label, at.best, at.best_epoch))
    log.close()
    module.eval()
    if at.best_state is not None:
        module.load_state_dict(at.best_state, strict=False)  # the state validated best, its text table included
    elif task.before_validation is not None:
        task.before_validation()  # no validation ran: bring derived state (a text table) up to date
    return TrainingLog(log.records, at.best_epoch if at.best_state is not None else len(log.records), start_value)


def warm_start(module: nn.Module, source: nn.Module) -> int:
    """Copy trained parameters into a fresh module; returns how many were copied.

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
