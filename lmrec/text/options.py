"""Encoder options: which language model turns item and user text into vectors, and how it learns.

``Encoder`` is the text-encoder part of a text model (``LMRanker(encoder=...)``,
``TextKNN``): the model by name or path, its pooling and maximum length, and the tuning mode —
``frozen`` (embeddings computed once and cached), ``lora`` (low-rank adapters trained with the
ranking loss, via the peft library) or ``full`` (every encoder weight trained).

>>> Encoder("minilm")                                     # doctest: +SKIP
>>> Encoder("mpnet", tune="lora", lora=LoRA(rank=16))     # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from lmrec.errors import ConfigError, check_choice
from lmrec.options import Options

TUNE_MODES = ("frozen", "lora", "full")
POOLINGS = ("auto", "mean", "cls", "last")
DTYPES = ("float32", "bfloat16", "int8")
BACKENDS = ("hf", "sentence-transformers")


@dataclass
class LoRA(Options):
    """Low-rank adapters (Hu et al., "LoRA", ICLR 2022): W + (alpha / rank) · B A on the target layers."""

    rank: int = 8  # r: rank of the update B A
    alpha: float = 16.0  # scale numerator: the update is multiplied by alpha / rank
    # dropout on the adapter's input, in co-interaction pre-tuning (the ranker tunes without dropout)
    dropout: float = 0.05
    targets: list[str] | None = None  # module names to adapt; None: the attention projections of the architecture

    def validate(self) -> None:
        self.check_range("rank", 1)
        self.check_range("alpha", 0, low_open=True)
        self.check_range("dropout", 0.0, 1.0)
        if self.targets is not None and (not isinstance(self.targets, list) or not self.targets
                                         or not all(isinstance(t, str) and t for t in self.targets)):
            raise ConfigError(f"The 'targets' parameter of LoRA must be a non-empty list of module names; "
                              f"got {self.targets!r}.")


@dataclass
class Encoder(Options):
    """The text encoder of a text model.

    model: "minilm" (packaged), another registered name ("mpnet", "smollm2", ...; see
        ``lmrec encoders list``), a local folder, or a Hugging Face name in the offline cache.
    backend: "hf" (transformers with the pooling below) or "sentence-transformers" (the model's
        own pooling; frozen only).
    pooling: "mean" over tokens, "cls" (first token), "last" (last real token, for GPT-style
        decoders), or "auto": last for decoders, mean otherwise.
    max_length: tokens kept per text (longer texts are truncated).
    batch_size: texts per forward pass when encoding.
    tune: "frozen", "lora" or "full".
    lora: adapter settings for ``tune="lora"``.
    lr: learning rate of the encoder's weights (None: the training learning rate).
    grad_items: at most this many distinct items of a batch are encoded with gradients each
        step (the batch's positives first, then its negatives); the others read the table.
    refresh_every: steps between re-encodings of the whole catalogue table with the current
        weights (0: only before each validation, which always refreshes).
    checkpointing: gradient checkpointing in the encoder (less memory, ~30% more compute).
    dtype: "float32", "bfloat16" (weights cast for encoding) or "int8" (dynamic int8
        quantisation of the linear layers for frozen encoding on CPU).
    device: where the encoder runs (None: the training device).
    """

    model: str = "minilm"
    backend: str = "hf"
    pooling: str = "auto"
    max_length: int = 128
    batch_size: int = 64
    tune: str = "frozen"
    lora: LoRA = field(default_factory=LoRA)
    lr: float | None = None
    grad_items: int = 256
    refresh_every: int = 100
    checkpointing: bool = False
    dtype: str = "float32"
    device: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.lora, Mapping):  # the saved form
            self.lora = LoRA.from_dict(self.lora)

    def validate(self) -> None:
        owner = "Encoder"
        if not isinstance(self.model, str) or not self.model:
            raise ConfigError(f"The 'model' parameter of Encoder must be a model name or path; got {self.model!r}.")
        check_choice(owner, "backend", self.backend, BACKENDS)
        check_choice(owner, "pooling", self.pooling, POOLINGS)
        check_choice(owner, "tune", self.tune, TUNE_MODES)
        check_choice(owner, "dtype", self.dtype, DTYPES)
        for name in ("max_length", "batch_size", "grad_items"):
            self.check_range(name, 1)
        self.check_range("refresh_every", 0)
        if self.lr is not None:
            self.check_range("lr", 0, low_open=True)
        if not isinstance(self.lora, LoRA):
            raise ConfigError(f"The 'lora' parameter of Encoder must be a LoRA(...) or a dict; got {self.lora!r}.")
        self.lora.validate()
        if self.tune != "frozen" and self.backend != "hf":
            raise ConfigError(f"Encoder: tune={self.tune!r} needs backend='hf' (sentence-transformers models "
                              f"are used frozen); got backend={self.backend!r}.")
        if self.tune != "frozen" and self.dtype == "int8":
            raise ConfigError(f"Encoder: dtype='int8' quantises a frozen encoder; got tune={self.tune!r}.")

    @property
    def trainable(self) -> bool:
        return self.tune != "frozen"

    def inference_key(self) -> dict[str, Any]:
        """The settings that change what the encoder outputs (not how it trains): part of the
        embedding cache key."""
        return {"model": self.model, "backend": self.backend, "pooling": self.pooling,
                "max_length": self.max_length, "dtype": self.dtype}
