"""Resumable checkpoints of the training loop: a folder of safetensors plus JSON, never a pickle.

``TrainConfig.checkpoint_dir`` makes the loop write, after every epoch, everything it needs to go
on as if it had never stopped: the trained weights and buffers, the best weights so far, the
AdamW moments and learning rates, the early-stopping counters, the per-epoch records, and the
random states (torch's, the epoch order's and the negative sampler's). The folder is replaced in
one rename, so a crash leaves the previous epoch's checkpoint. A checkpoint written by N processes
resumes in any number of processes: every rank holds the same weights and random states.

Layout: ``checkpoint.json`` (format, epoch, counters, records, random states, the settings that
must match) and ``tensors.safetensors`` (``model.*``, ``best.*``, ``optim.<i>.<key>``, ``rng.torch``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from lmrec.errors import ArtifactError, ConfigError
from lmrec.options import Options
from lmrec.storage.artifacts import atomic_directory, read_json

FORMAT = 1
# settings that may change between the run that wrote a checkpoint and the run that resumes it
FREE = ("epochs", "device", "progress", "run_dir", "checkpoint_dir", "max_minutes", "tracking", "tracking_dir", "run_name")


@dataclass
class LoopState:
    """Where the loop stands after ``epoch`` epochs."""

    epoch: int = 0
    best: float = float("-inf")
    best_epoch: int = 0
    stale: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] | None = None
    order_rng: dict[str, Any] | None = None  # numpy bit-generator state of the epoch order
    sampler: dict[str, Any] | None = None  # the task's random state (its negative sampler)


def plain(value: Any) -> Any:
    """JSON form of a setting: options objects as their dicts, anything else as text."""
    return value.to_dict() if isinstance(value, Options) else str(value)


def settings(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a run's configuration that a resumed run must share."""
    def fixed(options: Any) -> Any:
        return {k: v for k, v in options.items() if k not in FREE} if isinstance(options, dict) else options

    both = json.loads(json.dumps(config, default=plain))
    model = {k: fixed(v) if k == "config" else v for k, v in both.get("model", {}).items()}  # its own TrainConfig
    return {"model": model, "train": fixed(both.get("train", {}))}


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``: settings by dotted name, to say which one differs."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else key))
    return out


def save(directory: str | Path, state: LoopState, module_state: dict[str, torch.Tensor],
         optimizer: torch.optim.Optimizer, config: dict[str, Any]) -> None:
    opt = optimizer.state_dict()
    tensors = {f"model.{k}": v for k, v in module_state.items()}
    tensors |= {f"best.{k}": v for k, v in (state.best_state or {}).items()}
    tensors["rng.torch"] = torch.get_rng_state()
    for index, entry in opt["state"].items():
        tensors |= {f"optim.{index}.{key}": torch.as_tensor(value) for key, value in entry.items()}
    meta = {"format": FORMAT, "epoch": state.epoch, "best": state.best if state.best_state is not None else None,
            "best_epoch": state.best_epoch, "stale": state.stale, "records": state.records,
            "order_rng": state.order_rng, "sampler": state.sampler,
            "param_groups": opt["param_groups"], "settings": settings(config)}
    with atomic_directory(directory) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp / "tensors.safetensors"))
        (tmp / "checkpoint.json").write_text(json.dumps(meta, indent=1) + "\n")


def exists(directory: str | Path | None) -> bool:
    return directory is not None and (Path(directory) / "checkpoint.json").is_file()


def load(directory: str | Path, optimizer: torch.optim.Optimizer,
         config: dict[str, Any]) -> tuple[LoopState, dict[str, torch.Tensor]]:
    """The loop state and the module state in ``directory``; the optimizer is restored in place.
    Raises when the checkpoint is not one or was written for other settings."""
    directory = Path(directory)
    meta = read_json(directory / "checkpoint.json")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ArtifactError(f"{directory}/checkpoint.json is not an lmrec training checkpoint of format {FORMAT}.")
    theirs, ours = meta.get("settings", {}), settings(config)
    if theirs != ours:
        a, b = flatten(theirs), flatten(ours)
        diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        raise ConfigError(f"the checkpoint in {directory} was written with other settings ({', '.join(diff)}); "
                          f"resume with the same settings or use another checkpoint_dir.")
    try:
        tensors = load_file(str(directory / "tensors.safetensors"))
    except Exception as exc:  # a truncated or foreign file
        raise ArtifactError(f"{directory}/tensors.safetensors is not readable ({exc}).") from None
    part = {prefix: {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
            for prefix in ("model", "best", "optim")}
    opt_state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in part["optim"].items():
        index, name = key.split(".", 1)
        opt_state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": opt_state, "param_groups": meta["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    state = LoopState(epoch=int(meta["epoch"]), best=float("-inf") if meta["best"] is None else float(meta["best"]),
                      best_epoch=int(meta["best_epoch"]), stale=int(meta["stale"]), records=list(meta["records"]),
                      best_state=part["best"] if meta["best"] is not None else None, order_rng=meta["order_rng"],
                      sampler=meta["sampler"])
    return state, part["model"]
