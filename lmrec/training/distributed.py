"""Data-parallel training with ``torch.distributed`` (processes started by ``torchrun``).

Every process (rank) holds the whole model and the same data. Each step of the loop takes one
global batch of training rows (the same on every rank: the epoch order comes from the shared
seed); rank r trains on its part of it (:func:`shard`), the gradients are summed over ranks
(:func:`all_reduce_gradients`) and every rank applies the same update, so the weights stay equal
everywhere. With each rank's loss weighted by its share of the global batch, the summed gradient
is the gradient of the whole batch: N processes take the steps one process would take (up to the
order of floating-point sums). Validation runs on rank 0 and its value is broadcast, so early
stopping decides the same on every rank; logs and checkpoints are written by rank 0.

Backends: gloo on CPU, NCCL on CUDA. Start with ``torchrun --nproc-per-node N -m lmrec train ...``
or ``lmrec train ... --nproc N``; see the README for several machines.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        """True on the process that validates, logs and writes (rank 0)."""
        return self.rank == 0


def world() -> World:
    """The current process group's rank and size; one process (rank 0 of 1) when none is running."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    return World()


def init_from_env(device: str = "cpu") -> World:
    """Join the process group that ``torchrun`` describes in the environment (RANK, WORLD_SIZE,
    MASTER_ADDR, ...); a process started without torchrun stays alone. NCCL for a CUDA device
    (each rank on GPU LOCAL_RANK), gloo otherwise."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or world().size > 1:
        return world()
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo")
    return world()


def finish() -> None:
    """Leave the process group (after the last collective call)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard(rows: np.ndarray, w: World) -> np.ndarray:
    """Rank ``w.rank``'s part of a global batch: consecutive parts whose sizes differ by at most
    one, so across ranks every row of the batch is trained exactly once."""
    return np.array_split(rows, w.size)[w.rank] if w.size > 1 else rows


def all_reduce_gradients(module: nn.Module, loss: float) -> float:
    """Sum every trainable parameter's gradient over ranks (a parameter this rank's rows did not
    reach counts as zero), in one flat buffer; returns the loss summed over ranks too."""
    params = [p for p in module.parameters() if p.requires_grad]
    device = params[0].device if params else torch.device("cpu")
    grads = [p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel(), device=device, dtype=p.dtype)
             for p in params]
    flat = torch.cat([*(g.float() for g in grads), torch.tensor([loss], device=device)])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset: offset + n].view_as(p).to(p.dtype)
        offset += n
    return float(flat[-1])


def broadcast_value(value: float, device: torch.device | str = "cpu") -> float:
    """Rank 0's ``value`` on every rank (other ranks pass anything, e.g. NaN)."""
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(t, src=0)
    return float(t)
