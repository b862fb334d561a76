"""The served model's text encoder behind the server's bounds.

Request texts (profiles, added items, explanation variants) are cut to ``max_chars`` characters
before tokenising (a tokenizer reads the whole string even when it keeps 128 tokens, so a 5 MB
profile would otherwise cost seconds), and their vectors are kept in a bounded in-memory LRU,
never in an on-disk cache: a stream of unique texts cannot fill a disk or slow later encodes.

Calls into the wrapped encoder are serialised (Hugging Face fast tokenizers are not safe to call
from several threads at once); only worker threads wait on that lock, never the event loop.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np

from lmrec.text.encoders import TextEncoder


class BoundedEncoder:
    """A :class:`~lmrec.text.encoders.TextEncoder` with texts cut to ``max_chars`` and an LRU of
    ``entries`` vectors (keyed by a digest of the cut text).

    >>> enc = BoundedEncoder(model.text_.encoder(), max_chars=2000, entries=4096)  # doctest: +SKIP
    >>> enc.encode(["likes space opera"]).shape                                      # doctest: +SKIP
    (1, 384)
    """

    def __init__(self, inner: TextEncoder, max_chars: int, entries: int) -> None:
        self.inner, self.max_chars, self.entries = inner, max_chars, entries
        self.identity, self.dim = inner.identity, inner.dim
        self._lru: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lru_lock = threading.Lock()
        self._encode_lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def encode(self, texts: list[str], *, progress: bool = True) -> np.ndarray:
        """(len(texts), dim) float32 vectors; only texts missing from the LRU reach the encoder."""
        cut = [t[: self.max_chars] for t in texts]
        keys = [hashlib.sha256(t.encode("utf-8", "surrogatepass")).digest() for t in cut]
        out = np.empty((len(cut), self.dim), dtype=np.float32)
        missing: dict[bytes, str] = {}
        with self._lru_lock:
            for i, key in enumerate(keys):
                vec = self._lru.get(key)
                if vec is None:
                    missing.setdefault(key, cut[i])
                else:
                    self._lru.move_to_end(key)
                    out[i] = vec
            self.hits += len(keys) - sum(1 for k in keys if k in missing)
            self.misses += len(missing)
        if missing:
            with self._encode_lock:
                vecs = self.inner.encode(list(missing.values()), progress=False)
            found = dict(zip(missing, np.asarray(vecs, dtype=np.float32)))
            for i, key in enumerate(keys):
                if key in found:
                    out[i] = found[key]
            with self._lru_lock:
                for key, vec in found.items():
                    self._lru[key] = vec
                    self._lru.move_to_end(key)
                while len(self._lru) > self.entries:
                    self._lru.popitem(last=False)
        return out

    def __len__(self) -> int:
        return len(self._lru)
