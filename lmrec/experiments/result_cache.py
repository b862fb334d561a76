"""A folder of finished evaluations, so a long comparison can resume and re-run only what changed.

One entry per (model name, class, parameters, seed, split card, metrics, candidates): a safetensors
file with the per-user values and a JSON file with the rest. The key holds the parameters and
the split's fingerprint, not the model's code: clear the folder (or pass a new one) after
changing how a model trains.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from lmrec.evaluation.evaluator import EvalResult
from lmrec.storage.artifacts import atomic_write_text, load_arrays, read_json, save_arrays


def result_key(name: str, model_class: str, params: dict[str, Any], seed: int, card: dict[str, Any],
               metrics: list[str], candidates: str) -> str:
    """A file-name-safe key: the name, then a hash of everything the result depends on."""
    blob = json.dumps({"class": model_class, "params": params, "seed": seed, "card": card, "metrics": metrics,
                       "candidates": candidates}, sort_keys=True, default=str)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return f"{safe}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


class ResultCache:
    """``get(key) -> (EvalResult, fit seconds) | None`` and ``put(key, result, fit_seconds)``."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> tuple[EvalResult, float] | None:
        meta_path = self.dir / f"{key}.json"
        if not meta_path.exists():  # the JSON is written last: without it the entry is incomplete
            return None
        meta = read_json(meta_path)
        arrays = load_arrays(self.dir / f"{key}.safetensors")
        result = EvalResult(users=arrays.pop("users"), per_user=arrays, aggregate=meta["aggregate"],
                            seconds=meta["seconds"], n_candidates=meta["n_candidates"])
        return result, float(meta["fit_seconds"])

    def put(self, key: str, result: EvalResult, fit_seconds: float) -> None:
        arrays = {"users": np.asarray(result.users), **{k: np.asarray(v) for k, v in result.per_user.items()}}
        tmp = self.dir / f".{key}.safetensors.tmp"
        save_arrays(tmp, arrays)
        tmp.replace(self.dir / f"{key}.safetensors")
        atomic_write_text(self.dir / f"{key}.json", json.dumps(
            {"aggregate": result.aggregate, "seconds": result.seconds, "n_candidates": result.n_candidates,
             "fit_seconds": fit_seconds}, indent=2, default=float) + "\n")
