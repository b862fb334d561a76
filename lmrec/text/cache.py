"""On-disk embedding cache keyed by encoder identity and text hash.

Layout: ``<cache_dir>/<identity digest>/part-<n>.safetensors``, each part holding ``keys``
(sha256 of the text, uint8 ``(N, 32)``) and ``vectors`` (float32 ``(N, d)``). A part is written
to a temporary name and renamed, so a crash never leaves a half-written part.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbeddingCache:
    """Vectors of texts already encoded by one encoder (``identity`` names it exactly)."""

    def __init__(self, cache_dir: str | Path, identity: str) -> None:
        digest = hashlib.sha256(identity.encode()).hexdigest()[:24]
        self.dir = Path(cache_dir) / digest
        self.dir.mkdir(parents=True, exist_ok=True)
        info = self.dir / "identity.json"
        if not info.exists():
            info.write_text(json.dumps({"identity": identity}) + "\n")
        self._index: dict[bytes, np.ndarray] = {}
        for part in sorted(self.dir.glob("part-*.safetensors")):
            try:
                arrays = load_file(str(part))
            except Exception:  # a corrupt part is ignored: its texts are simply encoded again
                continue
            for key, vec in zip(arrays["keys"], arrays["vectors"]):
                self._index[key.tobytes()] = vec
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._index)

    def lookup(self, texts: list[str]) -> tuple[list[np.ndarray | None], list[int]]:
        """Cached vectors (None where missing) and the positions of the missing texts."""
        found = [self._index.get(text_key(t)) for t in texts]
        missing = [i for i, v in enumerate(found) if v is None]
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        return found, missing

    def add(self, texts: list[str], vectors: np.ndarray) -> None:
        """Store vectors for texts (one new part file, written atomically)."""
        if not texts:
            return
        keys = np.frombuffer(b"".join(text_key(t) for t in texts), dtype=np.uint8).reshape(len(texts), 32)
        n = len(list(self.dir.glob("part-*.safetensors")))
        final = self.dir / f"part-{n:05d}-{os.getpid()}.safetensors"
        tmp = final.with_suffix(".tmp")
        save_file({"keys": keys, "vectors": np.ascontiguousarray(vectors, dtype=np.float32)}, str(tmp))
        tmp.replace(final)
        for key, vec in zip(keys, vectors):
            self._index[key.tobytes()] = np.asarray(vec, dtype=np.float32)
