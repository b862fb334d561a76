"""On-disk embedding store keyed by encoder identity and text hash, read through memory maps.

Layout: ``<cache_dir>/<identity digest>/part-<n>-<pid>.vectors.npy`` (float32 ``(N, d)``) and
``part-<n>-<pid>.keys.npy`` (sha256 of each text, uint8 ``(N, 32)``). Vectors are opened with
``mmap_mode="r"``: a lookup reads only the rows it returns, so a store of millions of texts (or
of many datasets) costs the process 40 bytes per text (its key and location), not its vectors.
A part is written to temporary names and renamed, vectors first: a part counts once its keys
file exists, so a crash never leaves a half-written part. Files are read with
``allow_pickle=False``; a part that does not load, or whose shapes disagree, is ignored (its
texts are encoded again). Parts of the earlier single-file layout (``part-*.safetensors``) are
rewritten in this one when the store opens.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

KEY_BYTES = 32


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def text_keys(texts: list[str]) -> np.ndarray:
    """(N,) fixed-width byte keys (``S32``) of ``texts``."""
    return np.frombuffer(b"".join(text_key(t) for t in texts), dtype=f"S{KEY_BYTES}") if texts else \
        np.zeros(0, dtype=f"S{KEY_BYTES}")


def _save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, array, allow_pickle=False)
    tmp.replace(path)


class EmbeddingCache:
    """Vectors of texts already encoded by one encoder (``identity`` names it exactly)."""

    def __init__(self, cache_dir: str | Path, identity: str) -> None:
        digest = hashlib.sha256(identity.encode()).hexdigest()[:24]
        self.dir = Path(cache_dir) / digest
        self.dir.mkdir(parents=True, exist_ok=True)
        info = self.dir / "identity.json"
        if not info.exists():
            info.write_text(json.dumps({"identity": identity}) + "\n")
        for legacy in sorted(self.dir.glob("part-*.safetensors")):
            self._convert(legacy)
        self._vectors: list[np.ndarray] = []  # memory-mapped (n_p, d) per part
        self._keys = np.zeros(0, dtype=f"S{KEY_BYTES}")  # sorted keys of every part
        self._where = np.zeros((0, 2), dtype=np.int64)  # (part, row) of each sorted key
        self.dim: int | None = None
        for keys_file in sorted(self.dir.glob("part-*.keys.npy")):
            self._open_part(keys_file)
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def memory_mapped(self) -> bool:
        """Whether every stored vector is read through a memory map (none is held in memory)."""
        return all(isinstance(v, np.memmap) for v in self._vectors)

    def _open_part(self, keys_file: Path) -> None:
        vectors_file = keys_file.with_name(keys_file.name.replace(".keys.npy", ".vectors.npy"))
        try:  # both mapped first: a header claiming more rows than the file holds fails here, allocating nothing
            keys = np.load(keys_file, mmap_mode="r", allow_pickle=False)
            vectors = np.load(vectors_file, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            return
        if (keys.dtype != np.uint8 or keys.ndim != 2 or keys.shape[1] != KEY_BYTES or vectors.ndim != 2
                or vectors.dtype != np.float32 or len(vectors) != len(keys)
                or (self.dim is not None and vectors.shape[1] != self.dim)):
            return
        self.dim = int(vectors.shape[1])
        self._index(np.array(keys).view(f"S{KEY_BYTES}").reshape(-1), vectors)

    def _index(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        part = len(self._vectors)
        self._vectors.append(vectors)
        where = np.stack([np.full(len(keys), part), np.arange(len(keys))], axis=1)
        all_keys = np.concatenate([self._keys, keys])
        order = np.argsort(all_keys, kind="stable")
        self._keys, self._where = all_keys[order], np.concatenate([self._where, where])[order]

    def lookup(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(hit (N,) bool, vectors of the hits (hits, d) float32 in order of ``texts``)."""
        keys = text_keys(texts)
        pos = np.searchsorted(self._keys, keys)
        pos_c = np.minimum(pos, max(len(self._keys) - 1, 0))
        hit = (pos < len(self._keys)) & (self._keys[pos_c] == keys) if len(self._keys) else np.zeros(len(keys), bool)
        where = self._where[pos_c[hit]]
        out = np.empty((len(where), self.dim or 0), dtype=np.float32)
        for part in np.unique(where[:, 0]):
            sel = where[:, 0] == part
            rows = where[sel, 1]
            order = np.argsort(rows)  # ascending rows read the map in file order
            got = np.empty((len(rows), out.shape[1]), dtype=np.float32)
            got[order] = self._vectors[part][rows[order]]
            out[sel] = got
        self.hits += int(hit.sum())
        self.misses += int(len(texts) - hit.sum())
        return hit, out

    def add(self, texts: list[str], vectors: np.ndarray) -> None:
        """Store vectors for texts (one new part, written atomically)."""
        if not texts:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(texts) or (self.dim is not None and vectors.shape[1] != self.dim):
            raise ValueError(f"EmbeddingCache.add: expected {len(texts)} vectors of size {self.dim or 'd'}, "
                             f"got shape {vectors.shape}")
        keys = text_keys(texts)
        self._open_part(self._write_part(keys.view(np.uint8).reshape(len(texts), KEY_BYTES), vectors))

    def _write_part(self, keys: np.ndarray, vectors: np.ndarray) -> Path:
        n = len(list(self.dir.glob("part-*.keys.npy")))
        stem = self.dir / f"part-{n:05d}-{os.getpid()}"
        vectors_file, keys_file = Path(f"{stem}.vectors.npy"), Path(f"{stem}.keys.npy")
        _save_npy(vectors_file, vectors)
        _save_npy(keys_file, keys)  # last: the part exists from here on
        return keys_file

    def _convert(self, legacy: Path) -> None:
        """Rewrite a part of the single-file layout as memory-mappable files (a broken one is dropped)."""
        try:
            arrays = load_file(str(legacy))
            keys, vectors = arrays["keys"], arrays["vectors"]
            if keys.dtype == np.uint8 and keys.ndim == 2 and vectors.ndim == 2 and len(keys) == len(vectors):
                self._write_part(keys, np.ascontiguousarray(vectors, dtype=np.float32))
        except Exception:  # noqa: BLE001 - any unreadable legacy part is just re-encoded later
            pass
        legacy.unlink(missing_ok=True)
