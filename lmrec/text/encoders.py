"""Text encoders: any Hugging Face / sentence-transformers model, offline default MiniLM.

``encode(texts)`` is the one verb: it returns an ``(N, dim)`` float32 array. ``identity`` names
the encoder exactly (model files, pooling, max length, normalisation) and keys the cache.

>>> enc = get_encoder("minilm")                 # the packaged all-MiniLM-L6-v2, 384-d
>>> vecs = enc.encode(["Toy Story", "Heat"])    # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import warnings
from pathlib import Path
from typing import Any, Iterator, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from lmrec.errors import ConfigError, check_choice
from lmrec.extras import require
from lmrec.text import sources
from lmrec.text.options import Encoder
from lmrec.text.pooling import pool, resolve_pooling

POOLING_BY_KIND = {"encoder": "mean", "decoder": "last"}  # a BERT-style or a GPT-style model (sources.KINDS)
# weights a checkpoint may lack without harm: lmrec pools the hidden states itself (lmrec.text.pooling),
# so a BERT-style pooler head (multilingual-e5-small's file has none) is never read
HARMLESS_MISSING = ("pooler.",)


class EncoderLoadWarning(UserWarning):
    """An encoder's checkpoint and its architecture disagree: weights initialised at random, or unused."""


def builtin_path(name: str) -> str:
    """Local folder of a registered encoder name ("minilm", "mpnet", ...): ``sources.resolve`` for names only."""
    sources.get_source(name)
    return sources.resolve(name)


def choose_pooling(pooling: str, model: str, config: object) -> str:
    """"auto" pooling: "last" for a GPT-style decoder (by the registered kind of ``model``, else by its
    config), "mean" otherwise; other values are kept."""
    if pooling != "auto":
        return pooling
    kind = sources.kind_of(model)
    return POOLING_BY_KIND[kind] if kind else resolve_pooling("auto", config)


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


def load_hf(model: str, device: str = "cpu") -> tuple[Any, Any, str]:
    """(tokenizer, transformers model in eval mode, local path) for a name or path, offline.

    Decoders without a padding token pad with their end-of-text token (pooling reads the mask).
    """
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a bar per model load would bury the training progress
    path = sources.resolve(model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        with _without_load_report():
            net, info = AutoModel.from_pretrained(path, output_loading_info=True)
        net = net.to(device).eval()
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Could not load encoder {model!r}: it is neither a registered name "
                          f"({', '.join(sources.SOURCES)}), a local model folder, nor in the offline "
                          f"Hugging Face cache ({str(exc).splitlines()[0]}).") from None
    check_loading(model, info)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, net, path


@contextlib.contextmanager
def _without_load_report() -> Iterator[None]:
    """Leave out transformers' "LOAD REPORT" warning while a model loads: :func:`check_loading`
    reports what matters in it (size mismatches and load errors still raise in transformers)."""
    hf_logger = logging.getLogger("transformers.modeling_utils")

    def keep(record: logging.LogRecord) -> bool:
        return "LOAD REPORT" not in str(record.msg)

    hf_logger.addFilter(keep)
    try:
        yield
    finally:
        hf_logger.removeFilter(keep)


def check_loading(model: str, info: dict[str, Any]) -> list[str]:
    """Warn (:class:`EncoderLoadWarning`) about weights the checkpoint of ``model`` lacked, less the
    :data:`HARMLESS_MISSING` ones, and weights it had that the model does not use; returns them."""
    missing = [k for k in info.get("missing_keys") or [] if not str(k).startswith(HARMLESS_MISSING)]
    unexpected = [str(k) for k in info.get("unexpected_keys") or []]
    if missing or unexpected:
        parts = [f"{len(missing)} weights missing from the checkpoint were initialised at random "
                 f"({', '.join(map(str, missing[:5]))}{', ...' if len(missing) > 5 else ''})"] if missing else []
        if unexpected:
            parts.append(f"{len(unexpected)} weights of the checkpoint are not used "
                         f"({', '.join(unexpected[:5])}{', ...' if len(unexpected) > 5 else ''})")
        warnings.warn(f"Encoder {model!r}: {'; '.join(parts)}; is it the model the folder claims to be?",
                      EncoderLoadWarning, stacklevel=3)
    return missing + unexpected


class HFEncoder:
    """A Hugging Face model (BERT- or GPT-style) with mean, CLS or last-token pooling.

    Parameters
    ----------
    model: a registered name (``lmrec.text.sources.SOURCES``: "minilm", "mpnet", "smollm2", ...),
        a local model folder, or a hub name available offline in the HF cache.
    max_length: tokens kept per text. batch_size: texts per forward pass.
    normalize: L2-normalise the output. pooling: "mean", "cls", "last" (the last real token, for
        GPT-style decoders) or "auto" (last for decoders, mean otherwise).
    dtype: "float32", "bfloat16", or "int8" (dynamic quantisation of the linear layers, CPU).
    device: "cpu", "cuda", ...
    """

    def __init__(self, model: str = "minilm", *, max_length: int = 128, batch_size: int = 64,
                 normalize: bool = True, pooling: str = "auto", dtype: str = "float32", device: str = "cpu") -> None:
        check_choice("HFEncoder", "pooling", pooling, ["auto", "mean", "cls", "last"])
        check_choice("HFEncoder", "dtype", dtype, ["float32", "bfloat16", "int8"])
        tokenizer, net, path = load_hf(model, device)
        if dtype == "bfloat16":
            net = net.to(torch.bfloat16)
        elif dtype == "int8":
            net = torch.ao.quantization.quantize_dynamic(net, {torch.nn.Linear}, dtype=torch.qint8)
        self._setup(tokenizer, net, model, path, "" if dtype == "float32" else dtype, max_length, batch_size,
                    normalize, pooling, device)

    @classmethod
    def from_loaded(cls, tokenizer: Any, model: Any, *, name: str, identity_extra: str, path: str,
                    max_length: int = 128, batch_size: int = 64, normalize: bool = True, pooling: str = "auto",
                    device: str = "cpu") -> HFEncoder:
        """An encoder over an already loaded tokenizer and model (a tuned encoder's, ``pooling``
        already chosen); ``identity_extra`` (a digest of its weights) keeps its vectors apart in the cache."""
        encoder = cls.__new__(cls)
        encoder._setup(tokenizer, model, name, path, identity_extra, max_length, batch_size, normalize, pooling,
                       device)
        return encoder

    def _setup(self, tokenizer: Any, model: Any, name: str, path: str, extra: str, max_length: int,
               batch_size: int, normalize: bool, pooling: str, device: str) -> None:
        self.model_name, self.tokenizer, self.model = name, tokenizer, model
        self.max_length, self.batch_size, self.normalize = max_length, batch_size, normalize
        self.pooling, self.device = choose_pooling(pooling, name, model.config), device
        self.dim = int(model.config.hidden_size)
        self.identity = f"hf|{name}|{_files_digest(path)}|{self.pooling}|{max_length}|{normalize}" + \
            (f"|{extra}" if extra else "")

    @torch.no_grad()
    def encode(self, texts: list[str], *, progress: bool = True) -> np.ndarray:
        order = np.argsort([-len(t) for t in texts], kind="stable")  # similar lengths batch together
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # a bar only on a terminal (tqdm's disable=None): redrawn into a log file it is noise
        for lo in tqdm(range(0, len(texts), self.batch_size), desc="encoding", unit="batch",
                       disable=None if progress and len(texts) > self.batch_size else True):
            idx = order[lo: lo + self.batch_size]
            batch = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="pt").to(self.device)
            hidden = self.model(**batch).last_hidden_state  # (B, L, H)
            vec = pool(hidden, batch["attention_mask"], self.pooling).float()
            if self.normalize:
                vec = torch.nn.functional.normalize(vec, dim=-1)
            out[idx] = vec.cpu().numpy()
        return out


class SentenceTransformerEncoder:
    """A sentence-transformers model (its own pooling and normalisation modules)."""

    def __init__(self, model: str = "minilm", *, max_length: int = 128, batch_size: int = 64,
                 normalize: bool = True, device: str = "cpu") -> None:
        SentenceTransformer = require("sentence_transformers", "encoders",
                                      "backend='sentence-transformers'").SentenceTransformer
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
"""Encoder backends by name: ``"hf"`` (transformers, mean/CLS/last pooling) and ``"sentence-transformers"``."""


def get_encoder(model: str = "minilm", backend: str = "hf", **kwargs: object) -> TextEncoder:
    """An encoder by backend name ("hf" or "sentence-transformers") and model name or path."""
    check_choice("get_encoder", "backend", backend, ENCODERS)
    return ENCODERS[backend](model, **kwargs)


def build_encoder(options: Encoder, device: str = "cpu") -> TextEncoder:
    """The inference encoder an :class:`~lmrec.text.options.Encoder` part describes (its weights as
    loaded: a tuned encoder's own weights are loaded by :mod:`lmrec.text.tuning`)."""
    options.validate()
    device = options.device or device
    if options.backend == "sentence-transformers":
        return SentenceTransformerEncoder(options.model, max_length=options.max_length,
                                          batch_size=options.batch_size, device=device)
    return HFEncoder(options.model, max_length=options.max_length, batch_size=options.batch_size,
                     pooling=options.pooling, dtype=options.dtype, device=device)


def encode_texts(encoder: TextEncoder, texts: list[str], cache_dir: str | Path | None = None,
                 *, progress: bool = True, prefix: str = "") -> tuple[np.ndarray, int]:
    """(vectors (N, dim), cache hits): only texts never seen by this exact encoder are encoded.

    ``prefix`` is put before every text (an E5 model's "query: " or "passage: ",
    :func:`lmrec.text.sources.text_prefix`); the cache keys the prefixed text.
    """
    if prefix:
        texts = [prefix + t for t in texts]
    if cache_dir is None:
        return encoder.encode(texts, progress=progress), 0
    from lmrec.text.cache import EmbeddingCache

    cache = EmbeddingCache(cache_dir, encoder.identity)
    hit, cached = cache.lookup(texts)
    vectors = np.empty((len(texts), encoder.dim), dtype=np.float32)
    if cached.shape[1] == encoder.dim:
        vectors[hit] = cached
    else:  # a store of another size (not this encoder's): encode everything again
        hit[:] = False
    missing = np.flatnonzero(~hit)
    if len(missing):
        uniq = list(dict.fromkeys(texts[i] for i in missing))
        vecs = encoder.encode(uniq, progress=progress)
        if cache.dim in (None, encoder.dim):
            cache.add(uniq, vecs)
        row = {text: r for r, text in enumerate(uniq)}
        vectors[missing] = vecs[[row[texts[i]] for i in missing]]
    return vectors, len(texts) - len(missing)
