"""Checks a model version passes before a server swaps it in.

A version is served only after it

1. lies inside its store (a version *name*, no link out of the store: ``ModelStore.version_path``);
2. was loaded once in a child process (``python -m lmrec.serving.validate``), so an artifact that
   crashes the loader (a segfault in a native library, say) kills the child, not the server;
3. was loaded with the server's own settings in place of the manifest's path-like parameters
   (``cache_dir``, the encoder's model folder): the server reads nothing outside the store, its
   own cache folder and the encoders it was given;
4. passed the checks of :func:`check_model` (sparse structure, id counts and uniqueness, finite
   weights in every safetensors file) and answered one test query with finite scores.

Any failure raises :class:`~lmrec.errors.ArtifactError`, which the server answers with 409 while
the old version keeps serving.
"""
from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from safetensors import safe_open

from lmrec.errors import ArtifactError, LmrecError
from lmrec.models.base import Recommender
from lmrec.models.capabilities import Factorised, NewUsers
from lmrec.text.sources import SOURCES

TEST_PROFILE = "a test profile"


@dataclass(frozen=True)
class LoadSettings:
    """What the server decides about a version's files, whatever its manifest says.

    cache_dir: the embedding cache of items added through the API (None: memory only); it
        replaces every manifest's ``cache_dir``.
    encoders: encoder folders the server may load, by the name a manifest gives its encoder (the
        exact ``encoder.model`` value, or that path's last component); registered names
        (``minilm``, ...) are always resolved through the server's own model cache.
    timeout: seconds the child process may take to load and check a version.
    """

    cache_dir: str | None = None
    encoders: dict[str, str] = field(default_factory=dict)
    timeout: float = 300.0


def server_params(manifest: dict[str, Any], path: Path, settings: LoadSettings) -> dict[str, Any]:
    """Constructor parameters the server sets itself instead of the manifest (``Recommender.load(params=)``)."""
    params = manifest.get("params")
    if not isinstance(params, dict):
        raise ArtifactError(f"{path}/manifest.json: 'params' must be an object; got {type(params).__name__}.")
    out: dict[str, Any] = {}
    if "cache_dir" in params:
        out["cache_dir"] = settings.cache_dir
    if "encoder" in params:
        out["encoder"] = _encoder(params["encoder"], path, settings)
    config = params.get("config")
    if isinstance(config, dict) and config.get("run_dir") is not None:
        out["config"] = {**config, "run_dir": None}  # a server never writes training logs
    return out


def _encoder(value: Any, path: Path, settings: LoadSettings) -> Any:
    """The manifest's encoder part with its model replaced by a folder the server allows."""
    model = value if isinstance(value, str) else value.get("model") if isinstance(value, dict) else None
    if not isinstance(model, str) or not model:
        raise ArtifactError(f"{path}/manifest.json: params.encoder must name a model; got {str(value)[:80]!r}.")
    if model in SOURCES and model not in settings.encoders:
        return value  # resolved through the server's own model cache
    folder = settings.encoders.get(model) or settings.encoders.get(Path(model).name)
    if folder is None:
        registered = ", ".join(SOURCES)
        raise ArtifactError(f"{path}/manifest.json: params.encoder.model is {model[:120]!r}, neither a registered "
                            f"encoder ({registered}) nor one this server was given with --encoder NAME=DIR; the "
                            "server loads no encoder from a path a manifest names.")
    return folder if isinstance(value, str) else {**value, "model": folder}


def load_version(path: Path, settings: LoadSettings) -> Recommender:
    """Load the model in ``path`` with the server's settings and check it (:func:`check_model`)."""
    try:
        model = Recommender.load(path, rules=lambda found, folder: server_params(found, folder, settings))
    except LmrecError:
        raise
    except Exception as exc:  # a truncated safetensors file, mismatched shapes, a wrong type in the manifest
        raise ArtifactError(f"{path}: cannot load this model ({type(exc).__name__}: {str(exc)[:300]}).") from None
    check_model(model, path)
    return model


def check_model(model: Recommender, path: Path) -> None:
    """Id counts and uniqueness, the training matrix's shape (its CSR structure was checked by
    ``Recommender.load``), finite weights."""
    n_users, n_items = int(model.n_users_), int(model.n_items_)
    if n_users < 1 or n_items < 2:
        raise ArtifactError(f"{path}: the model knows {n_users} users and {n_items} items; serving needs at least "
                            "1 user and 2 items.")
    for what, ids, n in (("user", model.user_ids_, n_users), ("item", model.item_ids_, n_items)):
        if len(ids) != n:
            raise ArtifactError(f"{path}/manifest.json: {len(ids)} {what}_ids for {n} {what}s; expected one id "
                                f"per {what}.")
        as_text = [str(x) for x in ids.tolist()]  # the server looks ids up as text
        if len(set(as_text)) != n:
            dup = next(x for x, c in Counter(as_text).items() if c > 1)
            raise ArtifactError(f"{path}/manifest.json: {what}_ids are not unique ({dup[:40]!r} appears more "
                                "than once).")
    matrix = model.train_matrix_
    if matrix.shape != (n_users, n_items):
        raise ArtifactError(f"{path}: the training matrix is {matrix.shape}, expected ({n_users}, {n_items}).")
    if not matrix.has_canonical_format:  # lmrec writes sorted rows without repeats; native code may rely on it
        raise ArtifactError(f"{path}/model.safetensors: the 'train' matrix is corrupt: its column indices are "
                            "not sorted, or repeat, within a row.")
    check_finite(path)


def check_finite(path: Path) -> None:
    """Every floating-point tensor of every ``*.safetensors`` file in the version folder is finite
    (the model's weights and a tuned encoder's alike); read one tensor at a time."""
    for file in sorted(path.rglob("*.safetensors")):
        try:
            with safe_open(str(file), framework="pt") as f:
                for name in f.keys():
                    t = f.get_tensor(name)
                    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                        raise ArtifactError(f"{file}: {name!r} holds non-finite values (NaN or infinity).")
        except LmrecError:
            raise
        except Exception as exc:
            raise ArtifactError(f"{file} is not a readable safetensors file ({str(exc)[:200]}).") from None


def test_query(model: Recommender, path: Path, *, profile: bool = True) -> None:
    """Scores for the first user, the factors of every user and item (factorised models: what the
    server computes when it builds its index) and, for new-user models, a vector for a history
    plus (with ``profile``) a profile text, which builds the text encoder: all finite, or
    ArtifactError."""
    try:
        scores = [np.asarray(model.score([0], ids="index"))]
        if isinstance(model, Factorised):
            scores += [f.numpy() for f in model.factors()]
        if isinstance(model, NewUsers):
            scores.append(model.new_user_vector([0], TEST_PROFILE if profile else None, ids="index").numpy())
    except LmrecError as exc:
        raise ArtifactError(f"{path}: the test query failed ({exc}).") from None
    except Exception as exc:
        raise ArtifactError(f"{path}: the test query failed ({type(exc).__name__}: {str(exc)[:300]}).") from None
    if not all(np.all(np.isfinite(s)) for s in scores):
        raise ArtifactError(f"{path}: the test query gave non-finite scores; the weights are corrupt.")


def check_in_child(path: Path, settings: LoadSettings) -> None:
    """Load and check ``path`` in a child process; raise ArtifactError if it fails, crashes or hangs."""
    cmd = [sys.executable, "-m", "lmrec.serving.validate", str(path), "--settings", json.dumps(asdict(settings))]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=settings.timeout)
    except subprocess.TimeoutExpired:
        raise ArtifactError(f"{path}: loading and checking it took longer than {settings.timeout:g} s.") from None
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name if -done.returncode in signal.valid_signals() else "a signal"
        raise ArtifactError(f"{path}: loading it killed the checking process ({name}); the artifact is corrupt.")
    lines = done.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        answer = {}
    if done.returncode != 0 or not answer.get("ok"):
        tail = answer.get("error") or (done.stderr.strip().splitlines() or ["no output"])[-1][:300]
        raise ArtifactError(tail)


def main(argv: Sequence[str] | None = None) -> int:
    """The child: load and check one version, print ``{"ok": ...}`` as the last line."""
    parser = argparse.ArgumentParser(prog="python -m lmrec.serving.validate")
    parser.add_argument("path")
    parser.add_argument("--settings", default="{}")
    args = parser.parse_args(argv)
    path = Path(args.path)
    try:
        settings = LoadSettings(**json.loads(args.settings))
        # no profile here: the encoder comes from the server's own settings, and building it takes
        # seconds; the server's in-process test query builds it once the version passed
        test_query(load_version(path, settings), path, profile=False)
    except LmrecError as exc:
        print(json.dumps({"ok": False, "error": str(exc)}))
        return 1
    except Exception as exc:  # anything else is a defect of the artifact too, reported not raised
        print(json.dumps({"ok": False, "error": f"{path}: cannot load this model ({type(exc).__name__}: "
                                                 f"{str(exc)[:300]})."}))
        return 1
    print(json.dumps({"ok": True}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
