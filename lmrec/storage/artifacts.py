"""Artifact directories: ``manifest.json`` plus ``*.safetensors``, written atomically.

A directory is first written under a temporary name beside its target and renamed into place
only when complete, so a crash never leaves a half-written model or split. Nothing here
unpickles: arrays are safetensors, everything else JSON.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from safetensors.numpy import load_file, save_file

from lmrec.errors import ArtifactError

FORMAT_VERSION = 1


@contextmanager
def atomic_directory(target: str | Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``target`` in one rename.

    >>> with atomic_directory("model") as tmp:  # doctest: +SKIP
    ...     (tmp / "manifest.json").write_text("{}")
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and not overwrite:
        raise ArtifactError(f"{target} already exists; refusing to overwrite it.")
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        yield tmp
        if target.exists():
            old = target.parent / f".{target.name}.old-{os.getpid()}"
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write one file through a temporary file beside it, renamed into place when complete, so a
    reader sees the old content or the new, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, default=_json_default, sort_keys=False) + "\n")


def read_json(path: Path) -> Any:
    if not path.exists():
        raise ArtifactError(f"{path} is missing; is {path.parent} a complete lmrec artifact directory?")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); the file is corrupt.") from None


def read_manifest(directory: str | Path, *, kind: str | None = None) -> dict[str, Any]:
    """Read and check ``manifest.json`` (format version, and ``kind`` when given)."""
    d = Path(directory)
    if not d.is_dir():
        raise ArtifactError(f"{d} is not a directory.")
    manifest = read_json(d / "manifest.json")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{d}/manifest.json has format_version {manifest.get('format_version')!r}; "
                            f"this lmrec reads version {FORMAT_VERSION}.")
    if kind is not None and manifest.get("kind") != kind:
        raise ArtifactError(f"{d} holds a {manifest.get('kind')!r} artifact, expected {kind!r}.")
    return manifest


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(path))


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        raise ArtifactError(f"{path} is missing; the artifact directory is incomplete.")
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises SafetensorError for truncated files
        raise ArtifactError(f"{path} is not a readable safetensors file ({exc}); the file is corrupt.") from None


def check_csr(arrays: dict[str, np.ndarray], prefix: str, shape: tuple[int, int], path: Path):  # type: ignore[no-untyped-def]
    """The CSR matrix stored as ``<prefix>.indptr / .indices / .data`` in ``arrays``, after checking
    its structure (a corrupt index array would otherwise crash scipy or torch later, not here)."""
    import scipy.sparse as sp

    try:
        indptr, indices, data = (arrays[f"{prefix}.{k}"] for k in ("indptr", "indices", "data"))
    except KeyError as exc:
        raise ArtifactError(f"{path}: the {prefix!r} matrix is missing its {exc.args[0]!r} array.") from None
    rows, cols = (int(x) for x in shape)
    problem = None
    if indptr.ndim != 1 or indices.ndim != 1 or data.ndim != 1:
        problem = "its arrays must be one-dimensional"
    elif len(indptr) != rows + 1:
        problem = f"indptr has {len(indptr)} entries for {rows} rows (expected {rows + 1})"
    elif indptr[0] != 0 or np.any(np.diff(indptr) < 0) or indptr[-1] != len(indices) or len(indices) != len(data):
        problem = "indptr is not a non-decreasing offset array ending at the number of entries"
    elif len(indices) and (indices.min() < 0 or indices.max() >= cols):
        problem = f"column indices fall outside [0, {cols})"
    elif not np.all(np.isfinite(data)):
        problem = "it holds non-finite values"
    if problem:
        raise ArtifactError(f"{path}: the {prefix!r} matrix is corrupt: {problem}.")
    return sp.csr_matrix((data, indices, indptr), shape=(rows, cols))


def ids_to_json(ids: np.ndarray) -> list[Any]:
    """Raw ids as a JSON list (numpy scalars become Python ints/strings)."""
    return [x.item() if isinstance(x, np.generic) else x for x in ids.tolist()]


def ids_from_json(values: list[Any]) -> np.ndarray:
    if all(isinstance(v, int) for v in values):
        return np.asarray(values, dtype=np.int64)
    return np.asarray(values, dtype=object)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")
