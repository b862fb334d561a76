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
the old version keeps serving. :class:`Verdicts` remembers what was decided about a version's
*content* (a sha256 over its files), so content that was refused is refused again at once, and
content that passed is not checked in a child process again; a cheap stamp of the files (names,
sizes, times) spares reading them when nothing changed.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
from collections import Counter, OrderedDict
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
CHECK_NICENESS = 10  # added to a check process's niceness: it yields the CPU to the serving process


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
    """Load and check ``path`` in a child process; raise ArtifactError if it fails, crashes or hangs.

    The child runs at a lower CPU priority (:data:`CHECK_NICENESS`), so on a machine with few cores
    the requests the server answers meanwhile come first.
    """
    cmd = [sys.executable, "-m", "lmrec.serving.validate", str(path), "--settings", json.dumps(asdict(settings))]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as child:
        _lower_priority(child.pid)
        try:
            stdout, stderr = child.communicate(timeout=settings.timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            raise CheckTimedOut(f"{path}: loading and checking it took longer than {settings.timeout:g} s.") from None
    code = child.returncode
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else "a signal"
        raise ArtifactError(f"{path}: loading it killed the checking process ({name}); the artifact is corrupt.")
    lines = stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        answer = {}
    if code != 0 or not answer.get("ok"):
        tail = answer.get("error") or (stderr.strip().splitlines() or ["no output"])[-1][:300]
        raise ArtifactError(tail)


Stamp = tuple[tuple[str, int, int, int, int], ...]  # (name, size, mtime ns, ctime ns, inode) per file


def version_files(folder: Path) -> list[tuple[str, Path]]:
    """Every file under ``folder`` as (name relative to it, path), sorted by name. Links are followed
    (a store lets a version hold only links that stay inside it), each real folder once."""
    found: list[tuple[str, Path]] = []
    seen: set[Path] = set()
    pending = [("", folder)]
    while pending:
        prefix, path = pending.pop()
        real = path.resolve()
        if real in seen:
            continue
        seen.add(real)
        for child in path.iterdir():
            if child.is_dir():
                pending.append((f"{prefix}{child.name}/", child))
            elif child.is_file():
                found.append((prefix + child.name, child))
    return sorted(found)


def stamp(folder: Path) -> Stamp:
    """Names, sizes, modification and change times and inodes of a folder's files: cheap (no file is
    read), and it changes whenever a file is written, replaced, added or removed."""
    try:
        out = []
        for name, path in version_files(folder):
            st = path.stat()
            out.append((name, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
        return tuple(out)
    except OSError as exc:
        raise ArtifactError(f"{folder}: cannot list its files ({exc.strerror or exc}).") from None


def content_digest(folder: Path) -> str:
    """sha256 over the names and bytes of a folder's files (read in 1 MiB pieces; hashlib and file reads
    release the GIL, so other threads keep running)."""
    h = hashlib.sha256()
    try:
        for name, path in version_files(folder):
            h.update(name.encode("utf-8", "surrogateescape") + b"\0")
            with path.open("rb") as f:
                while piece := f.read(1 << 20):
                    h.update(piece)
            h.update(b"\0")
    except OSError as exc:
        raise ArtifactError(f"{folder}: cannot read its files ({exc.strerror or exc}).") from None
    return h.hexdigest()


class CheckTimedOut(ArtifactError):
    """The check did not end within its timeout: a verdict on the machine's load as much as on the
    content, so it is not remembered (the version is checked again when asked again)."""


class KnownRefusal(ArtifactError):
    """Content refused before and unchanged since: refused again without a check (``reason``: the first answer)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"{reason} (refused before; its files have not changed since, so it was not checked again)")
        self.reason = reason


class Verdicts:
    """What one server decided about version contents, by content digest: refused ones with their
    reasons, and ones that passed the checks and were served. A stamp per folder (:func:`stamp`)
    spares reading files that did not change; only when the stamp changed are the files read and
    hashed (:func:`content_digest`), so rewriting a version with the same bytes changes nothing.

    Not thread-safe: the server consults it under its reload lock. ``keep`` bounds each memory.

    >>> verdicts = Verdicts()                          # doctest: +SKIP
    >>> digest = verdicts.identify(store.version_path("v0002"))
    >>> verdicts.check(digest)                         # raises KnownRefusal if refused before
    """

    def __init__(self, keep: int = 256) -> None:
        self.keep = keep
        self._stamps: OrderedDict[Path, tuple[Stamp, str]] = OrderedDict()
        self._refused: OrderedDict[str, str] = OrderedDict()
        self._passed: OrderedDict[str, None] = OrderedDict()

    def identify(self, folder: Path) -> str:
        """The content digest of ``folder``: remembered while its stamp is unchanged, else computed."""
        now = stamp(folder)  # before reading: a write during hashing changes the stamp again
        known = self._stamps.get(folder)
        digest = known[1] if known is not None and known[0] == now else content_digest(folder)
        self._remember(self._stamps, folder, (now, digest))
        return digest

    def check(self, digest: str) -> None:
        """Raise :class:`KnownRefusal` when this content was refused before."""
        reason = self._refused.get(digest)
        if reason is not None:
            raise KnownRefusal(reason)

    def passed(self, digest: str) -> bool:
        """Whether this content passed the checks and was served before (its child check can be skipped)."""
        return digest in self._passed

    def refuse(self, digest: str, reason: str) -> None:
        self._passed.pop(digest, None)
        self._remember(self._refused, digest, reason)

    def accept(self, digest: str) -> None:
        self._refused.pop(digest, None)
        self._remember(self._passed, digest, None)

    def _remember(self, memory: OrderedDict, key: object, value: object) -> None:
        memory[key] = value
        memory.move_to_end(key)
        while len(memory) > self.keep:
            memory.popitem(last=False)


def _lower_priority(pid: int) -> None:
    """Make a child process yield the CPU to the server (set right after it starts, before its imports
    are done: a ``preexec_fn`` would be unsafe in a server with threads)."""
    try:
        os.setpriority(os.PRIO_PROCESS, pid, min(os.getpriority(os.PRIO_PROCESS, pid) + CHECK_NICENESS, 19))
    except (AttributeError, OSError):  # no priorities on this system, or the child already ended
        pass


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
