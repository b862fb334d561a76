"""Text encoders: any Hugging Face / sentence-transformers model, offline default MiniLM.

``encode(texts)`` is the one verb: it returns an ``(N, dim)`` float32 array. ``identity`` names
the encoder exactly (model files, pooling, max length, normalisation) and keys the cache.

Named models ("minilm", "mpnet", "smollm2", ...) resolve through ``lmrec.text.sources``.

>>> enc = get_encoder("minilm")                 # the packaged all-MiniLM-L6-v2, 384-d
>>> vecs = enc.encode(["Toy Story", "Heat"])    # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from lmrec.errors import ConfigError, check_choice
from lmrec.text import sources

POOLING_BY_KIND = {"encoder": "mean", "decoder": "last"}  # a BERT-style or a GPT-style model (sources.KINDS)


def builtin_path(name: str) -> str:
    """Local folder of a registered encoder name ("minilm", "mpnet", ...): ``sources.resolve`` for names only."""
    sources.get_source(name)
    return sources.resolve(name)


def default_pooling(model: str) -> str:
    """The pooling that suits ``model``: "last" for a registered decoder (GPT-style), else "mean".

    A decoder given by path or hub name gets "mean" unless ``pooling="last"`` is passed.
    """
    return POOLING_BY_KIND[sources.kind_of(model) or "encoder"]


def _files_digest(path: str) -> str:
    """A digest of a local model folder (config and weight sizes), or the hub name itself."""
    p = Path(path)
    if not p.is_dir():
        return path
    h = hashlib.sha256()
    for f in sorted(p.rglob("*")):
        if f.name == sources.MANIFEST:  # lmrec's provenance note, not a model file
            continue
        if f.is_file() and (f.suffix in (".json", ".txt") or f.suffix in (".safetensors", ".bin")):
            h.update(f.name.encode())
            h.update(f.read_bytes() if f.suffix in (".json", ".txt") else str(f.stat().st_size).encode())
    return h.hexdigest()[:16]


class TextEncoder(Protocol):
    identity: str
    dim: int

    def encode(self, texts: list[str], *, progress: bool = True) -> np.ndarray: ...


class HFEncoder:
    """A Hugging Face model's hidden states pooled into one vector per text.

    Parameters
    ----------
    model: a registered name (``lmrec.text.sources.SOURCES``: "minilm", "mpnet", "smollm2", ...),
        a local model folder, or a hub name available offline in the HF cache.
    max_length: tokens kept per text. batch_size: texts per forward pass.
    normalize: L2-normalise the output.
    pooling: "mean" (masked mean of tokens), "cls" (first token) or "last" (last non-padding token,
        for GPT-style decoders); default: the registered kind's ("last" for decoders), else "mean".
    device: "cpu", "cuda", ...
    """

    def __init__(self, model: str = "minilm", *, max_length: int = 128, batch_size: int = 64,
                 normalize: bool = True, pooling: str | None = None, device: str = "cpu") -> None:
        pooling = pooling or default_pooling(model)
        check_choice("HFEncoder", "pooling", pooling, ["mean", "cls", "last"])
        from transformers import AutoModel, AutoTokenizer

        self.model_name = model
        path = sources.resolve(model)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModel.from_pretrained(path).to(device).eval()
        except (OSError, ValueError) as exc:
            raise ConfigError(f"Could not load encoder {model!r}: it is neither a registered name "
                              f"({', '.join(sources.SOURCES)}), a local model folder, nor in the offline "
                              f"Hugging Face cache ({str(exc).splitlines()[0]}).") from None
        if self.tokenizer.pad_token is None:  # GPT-style tokenizers may have none; padded positions are masked
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.max_length, self.batch_size, self.normalize = max_length, batch_size, normalize
        self.pooling, self.device = pooling, device
        self.dim = int(self.model.config.hidden_size)
        self.identity = f"hf|{model}|{_files_digest(path)}|{pooling}|{max_length}|{normalize}"

    @torch.no_grad()
    def encode(self, texts: list[str], *, progress: bool = True) -> np.ndarray:
        order = np.argsort([-len(t) for t in texts], kind="stable")  # similar lengths batch together
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for lo in tqdm(range(0, len(texts), self.batch_size), desc="encoding", unit="batch",
                       disable=not progress or len(texts) <= self.batch_size):
            idx = order[lo: lo + self.batch_size]
            batch = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="pt").to(self.device)
            hidden = self.model(**batch).last_hidden_state  # (B, T, H)
            vec = self._pool(hidden, batch["attention_mask"])
            if self.normalize:
                vec = torch.nn.functional.normalize(vec, dim=-1)
            out[idx] = vec.float().cpu().numpy()
        return out

    def _pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T, H) hidden states and (B, T) attention mask -> (B, H)."""
        if self.pooling == "mean":
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
        if self.pooling == "cls":
            return hidden[:, 0]
        # "last": the last position the mask keeps, whichever side the tokenizer pads
        last = mask.shape[1] - 1 - mask.flip(1).argmax(1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


class SentenceTransformerEncoder:
    """A sentence-transformers model (its own pooling and normalisation modules)."""

    def __init__(self, model: str = "minilm", *, max_length: int = 128, batch_size: int = 64,
                 normalize: bool = True, device: str = "cpu") -> None:
        from sentence_transformers import SentenceTransformer

        path = sources.resolve(model)
        try:
            self.model = SentenceTransformer(path, device=device)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"Could not load sentence-transformers model {model!r} ({str(exc).splitlines()[0]}).") from None
        self.model.max_seq_length = max_length
        self.batch_size, self.normalize = batch_size, normalize
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.identity = f"st|{model}|{_files_digest(path)}|{max_length}|{normalize}"

    def encode(self, texts: list[str], *, progress: bool = True) -> np.ndarray:
        return np.asarray(self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=self.normalize,
                                            show_progress_bar=progress, convert_to_numpy=True), dtype=np.float32)


ENCODERS: dict[str, type] = {"hf": HFEncoder, "sentence-transformers": SentenceTransformerEncoder}


def get_encoder(model: str = "minilm", backend: str = "hf", **kwargs: object) -> TextEncoder:
    """An encoder by backend name ("hf" or "sentence-transformers") and model name or path."""
    check_choice("get_encoder", "backend", backend, ENCODERS)
    return ENCODERS[backend](model, **kwargs)


def encode_texts(encoder: TextEncoder, texts: list[str], cache_dir: str | Path | None = None,
                 *, progress: bool = True) -> np.ndarray:
    """Encode with the on-disk cache: only texts never seen by this exact encoder are encoded."""
    if cache_dir is None:
        return encoder.encode(texts, progress=progress)
    from lmrec.text.cache import EmbeddingCache

    cache = EmbeddingCache(cache_dir, encoder.identity)
    found, missing = cache.lookup(texts)
    if missing:
        uniq = list(dict.fromkeys(texts[i] for i in missing))
        vecs = encoder.encode(uniq, progress=progress)
        cache.add(uniq, vecs)
        by_text = dict(zip(uniq, vecs))
        for i in missing:
            found[i] = by_text[texts[i]]
    encode_texts.last_cache = cache  # type: ignore[attr-defined]  (hits/misses, for reports and tests)
    return np.stack(found) if found else np.zeros((0, encoder.dim), dtype=np.float32)
