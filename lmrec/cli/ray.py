"""``lmrec train ... --nproc N --launcher ray``: the same data-parallel loop under Ray Train.

Ray Train's ``TorchTrainer`` starts N workers, joins them in one ``torch.distributed`` process
group (gloo on CPU, NCCL with GPUs) and runs the ``lmrec train`` command in each; the loop finds
the group already made (:func:`lmrec.training.distributed.world`) and behaves exactly as under
torchrun: a global batch shared across ranks, gradients summed, validation, checkpoints and the
saved model on rank 0. Needs the optional extra ``pip install 'lmrec[ray]'``. On a Ray cluster
set ``RAY_ADDRESS`` (e.g. ``auto`` on a cluster node); without it a local Ray instance starts.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lmrec.extras import needs

# flags whose values are paths: made absolute, since a Ray worker may run in another directory
PATH_FLAGS = ("--out", "--split", "--checkpoint-dir", "--run-dir", "--init-from", "--data-dir", "--cache-dir")


def absolute_paths(argv: Sequence[str], cwd: str) -> list[str]:
    """``argv`` with the values of :data:`PATH_FLAGS` made absolute against ``cwd``."""
    out, take = [], False
    for arg in argv:
        if take:
            out.append(str(Path(cwd, arg).expanduser().resolve()))
            take = False
            continue
        flag, eq, value = arg.partition("=")
        if flag in PATH_FLAGS and eq:
            out.append(f"{flag}={Path(cwd, value).expanduser().resolve()}")
        else:
            out.append(arg)
            take = arg in PATH_FLAGS
    return out


def _worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: run the command in the process group Ray made."""
    os.chdir(config["cwd"])
    code = config["run"](config["argv"])
    if code:
        raise RuntimeError(f"lmrec {' '.join(config['argv'])} exited with status {code}")


def launch_ray(nproc: int, argv: list[str], device: str, run: Callable[[list[str]], int]) -> int:
    """Run ``run(argv)`` (an ``lmrec`` command line without ``--nproc``) in ``nproc`` Ray Train workers."""
    with needs("ray", "--launcher ray (Ray Train)"):
        import ray
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchConfig, TorchTrainer
    cuda = device.startswith("cuda")
    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            ray.init(log_to_driver=True)
        else:  # a local instance with a logical CPU per worker and one for the trainer's controller
            ray.init(num_cpus=max(nproc + 1, os.cpu_count() or 1), include_dashboard=False, log_to_driver=True)
    cwd = os.getcwd()
    trainer = TorchTrainer(
        _worker,
        train_loop_config={"argv": absolute_paths(argv, cwd), "cwd": cwd, "run": run},
        torch_config=TorchConfig(backend="nccl" if cuda else "gloo"),
        scaling_config=ScalingConfig(num_workers=nproc, use_gpu=cuda, resources_per_worker={"CPU": 1}),
        run_config=RunConfig(name="lmrec-train", storage_path=str(Path.home() / "ray_results")),
    )
    result = trainer.fit()
    return 1 if result.error is not None else 0
