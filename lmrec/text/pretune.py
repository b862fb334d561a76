"""Collaborative pre-fine-tuning: teach the encoder which items go together before ranking.

Items a user consumed close in time are pulled together and other items of the batch pushed
apart (symmetric InfoNCE over in-batch negatives), as BLaIR (Hou et al. 2024) and LLM2Rec (He et
al. 2025) pre-train text encoders on co-interactions. The result is a plain model folder, used
by name like any encoder (``Encoder(model=folder)``), frozen or tuned further with the ranking
loss. Only training interactions are read, so nothing leaks from validation or test.

>>> folder = pretune(Encoder("minilm", tuning=LoRA()), split.train, texts, CoInteraction(), "models/minilm-co")  # doctest: +SKIP
>>> LMRanker(encoder=Encoder(model=str(folder))).fit(split.train, split.valid)                           # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from lmrec.data.interactions import Interactions
from lmrec.errors import ConfigError
from lmrec.options import Options
from lmrec.text.options import Encoder
from lmrec.text.tuning import TunableEncoder

INFO = "lmrec-pretune.json"  # written beside the weights; its digest of them names the folder in caches


@dataclass
class CoInteraction(Options):
    """Settings of the co-interaction stage.

    window: pair each item with the next ``window`` items of the same user in time order.
    epochs: passes over the pairs. batch_size: pairs per step (the other pairs' items are the negatives).
    lr: learning rate of the encoder's trained weights. temperature: InfoNCE temperature.
    max_pairs: at most this many pairs (a random subset), None for all. seed: order and subset.
    """

    window: int = 1
    epochs: int = 1
    batch_size: int = 64
    lr: float = 1e-3
    temperature: float = 0.05
    max_pairs: int | None = None
    seed: int = 2026

    def validate(self) -> None:
        for name in ("window", "epochs", "batch_size"):
            self.check_range(name, 1)
        self.check_range("lr", 0, low_open=True)
        self.check_range("temperature", 0, low_open=True)
        if self.max_pairs is not None:
            self.check_range("max_pairs", 1)


def co_interaction_pairs(train: Interactions, window: int = 1) -> np.ndarray:
    """(P, 2) item pairs (a, b): b follows a within ``window`` steps in a user's time-ordered history
    (interaction order where there are no timestamps); pairs of an item with itself are left out."""
    ts = train.timestamps if train.timestamps is not None else np.zeros(len(train), dtype=np.int64)
    order = np.lexsort((np.arange(len(train)), ts, train.users))
    users, items = train.users[order], train.items[order]
    pairs = [np.stack([items[:-k], items[k:]], 1)[(users[:-k] == users[k:]) & (items[:-k] != items[k:])]
             for k in range(1, window + 1) if len(items) > k]
    return np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.int64)


def info_nce(a: torch.Tensor, b: torch.Tensor, ids_a: torch.Tensor, ids_b: torch.Tensor,
             temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE of normalised (B, H) vectors: row i of ``a`` against every row of ``b`` and
    back; another pair's item that is the same item as the positive is not counted as a negative."""
    logits = a @ b.T / temperature  # (B, B)
    same = (ids_b[None, :] == ids_b[:, None]) & ~torch.eye(len(a), dtype=torch.bool, device=a.device)
    same_t = (ids_a[None, :] == ids_a[:, None]) & ~torch.eye(len(a), dtype=torch.bool, device=a.device)
    target = torch.arange(len(a), device=a.device)
    floor = torch.finfo(logits.dtype).min
    return (F.cross_entropy(logits.masked_fill(same, floor), target) +
            F.cross_entropy(logits.T.masked_fill(same_t, floor), target)) / 2


def pretune(encoder: Encoder, train: Interactions, texts: list[str], options: CoInteraction,
            out: str | Path, *, device: str = "cpu", progress: bool = True) -> Path:
    """Train ``encoder`` (tuning LoRA or FullTune) on co-interaction pairs of ``train``; ``texts`` holds
    one text per item index. Writes a model folder (LoRA merged into the weights) to ``out``."""
    encoder.validate()
    options.validate()
    if not encoder.trainable:
        raise ConfigError(f"pretune needs an encoder with tuning=LoRA(...) or FullTune(...); got {encoder.tuning!r}.")
    if len(texts) != train.n_items:
        raise ConfigError(f"pretune needs one text per item ({train.n_items}); got {len(texts)}.")
    pairs = co_interaction_pairs(train, options.window)
    if not len(pairs):
        raise ConfigError(f"'{train.name}' has no co-interaction pairs (every user has a single item).")
    rng = np.random.default_rng(options.seed)
    if options.max_pairs is not None and len(pairs) > options.max_pairs:
        pairs = pairs[rng.choice(len(pairs), options.max_pairs, replace=False)]
    torch.manual_seed(options.seed)
    model = TunableEncoder(encoder, device)
    ids, mask = model.tokenize(texts)
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=options.lr, weight_decay=0.0)
    model.train()
    start, losses = time.perf_counter(), []
    for epoch in range(options.epochs):
        order = rng.permutation(len(pairs))
        for lo in tqdm(range(0, len(order), options.batch_size), desc=f"co-interaction epoch {epoch + 1}",
                       disable=not progress):
            batch = torch.as_tensor(pairs[order[lo: lo + options.batch_size]])
            if len(batch) < 2:
                continue
            a, b = model(ids[batch[:, 0]], mask[batch[:, 0]]), model(ids[batch[:, 1]], mask[batch[:, 1]])
            loss = info_nce(a, b, batch[:, 0], batch[:, 1], options.temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    report = {"encoder": encoder.to_dict(), "stage": options.to_dict(), "pairs": int(len(pairs)),
              "steps": len(losses), "first_loss": losses[0] if losses else None,
              "last_loss": float(np.mean(losses[-20:])) if losses else None,
              "seconds": round(time.perf_counter() - start, 1), "train": train.name}
    return save_merged(model, Path(out), report)


def save_merged(model: TunableEncoder, out: Path, report: dict[str, object]) -> Path:
    """Write the encoder (LoRA merged) as a plain model folder, atomically, with ``INFO`` naming it."""
    net = model.merged()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        net.save_pretrained(str(tmp), safe_serialization=True)
        model.tokenizer.save_pretrained(str(tmp))
        digest = hashlib.sha256()
        for f in sorted(tmp.glob("*.safetensors")):
            digest.update(f.read_bytes())
        (tmp / INFO).write_text(json.dumps({**report, "weights_sha256": digest.hexdigest()}, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
