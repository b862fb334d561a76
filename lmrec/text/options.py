"""Encoder options: which language model turns item and user text into vectors, and how it learns.

``Encoder`` is the text-encoder part of a text model (``LMRanker(encoder=...)``, ``TextKNN``):
the model by name or path, its pooling, maximum length, batch size, dtype and device — what
every mode needs. How its weights learn is its ``tuning`` part, one of :data:`TUNINGS`, each
owning its own fields:

* :class:`Frozen` -- weights fixed, embeddings computed once and cached (the default);
* :class:`LoRA` -- low-rank adapters trained with the ranking loss (the peft library, extra ``tune``);
* :class:`FullTune` -- every encoder weight trained.

>>> Encoder("minilm").tuning
Frozen()
>>> Encoder("minilm", tuning=LoRA(rank=16, lr=5e-4)).tuning.kind
'lora'
>>> Encoder.from_dict({"model": "minilm", "tuning": {"type": "full", "grad_items": 64}}).tuning
FullTune(lr=None, grad_items=64, refresh_every=100, checkpointing=False)
"""
from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from typing import Any, ClassVar, Mapping

from lmrec.errors import ConfigError, check_choice
from lmrec.options import Options, resolve
from lmrec.text.sources import text_prefix

POOLINGS = ("auto", "mean", "cls", "last")
DTYPES = ("float32", "bfloat16", "int8")
BACKENDS = ("hf", "sentence-transformers")


@dataclass
class Tuning(Options):
    """How an encoder's weights learn; ``trainable`` says whether they change in training."""

    trainable: ClassVar[bool] = False


@dataclass
class Frozen(Tuning):
    """The pretrained weights, unchanged: item texts are encoded once (and cached)."""

    kind = "frozen"


@dataclass
class Tuned(Tuning):
    """What every trained encoder has (the base of :class:`LoRA` and :class:`FullTune`).

    lr: learning rate of the encoder's weights (None: the training learning rate).
    grad_items: at most this many distinct items of a batch are encoded with gradients each
        step (the batch's positives first, then its negatives); the others read the table.
    refresh_every: steps between re-encodings of the whole catalogue table with the current
        weights (0: only before each validation, which always refreshes).
    checkpointing: gradient checkpointing in the encoder (less memory, ~30% more compute).
    """

    trainable: ClassVar[bool] = True
    _: KW_ONLY
    lr: float | None = None
    grad_items: int = 256
    refresh_every: int = 100
    checkpointing: bool = False

    def validate(self) -> None:
        if self.lr is not None:
            self.check_range("lr", 0, low_open=True)
        self.check_range("grad_items", 1)
        self.check_range("refresh_every", 0)
        if not isinstance(self.checkpointing, bool):
            raise ConfigError(f"The 'checkpointing' parameter of {type(self).__name__} must be true or false; "
                              f"got {self.checkpointing!r}.")


@dataclass
class LoRA(Tuned):
    """Low-rank adapters (Hu et al., "LoRA", ICLR 2022): W + (alpha / rank) · B A on the target layers,
    trained with the ranking loss; the pretrained weights stay fixed. Needs ``pip install 'lmrec[tune]'``."""

    kind = "lora"
    rank: int = 8  # r: rank of the update B A
    alpha: float = 16.0  # scale numerator: the update is multiplied by alpha / rank
    # dropout on the adapter's input, in co-interaction pre-tuning (the ranker tunes without dropout)
    dropout: float = 0.05
    targets: list[str] | None = None  # module names to adapt; None: the attention projections of the architecture

    def validate(self) -> None:
        super().validate()
        self.check_range("rank", 1)
        self.check_range("alpha", 0, low_open=True)
        self.check_range("dropout", 0.0, 1.0)
        if self.targets is not None and (not isinstance(self.targets, list) or not self.targets
                                         or not all(isinstance(t, str) and t for t in self.targets)):
            raise ConfigError(f"The 'targets' parameter of LoRA must be a non-empty list of module names; "
                              f"got {self.targets!r}.")


@dataclass
class FullTune(Tuned):
    """Every encoder weight trained with the ranking loss (no weight decay on them)."""

    kind = "full"


TUNINGS: dict[str, type[Tuning]] = {"frozen": Frozen, "lora": LoRA, "full": FullTune}
"""The encoder tuning parts by name: how an encoder's weights learn with the ranker (frozen, LoRA, full)."""
# Encoder fields of layout 1 (lmrec before the tuning part), now the tuning part's
_OLD_FIELDS = ("tune", "lora", "lr", "grad_items", "refresh_every", "checkpointing")


def upgrade_encoder(saved: Mapping[str, Any]) -> dict[str, Any]:
    """An Encoder's saved dict of the old flat form (``tune="lora"``, ``lora={...}``, ``lr``,
    ``grad_items``, ``refresh_every``, ``checkpointing``) in the current form (``tuning={...}``);
    a current dict comes back unchanged.

    >>> upgrade_encoder({"model": "minilm", "tune": "lora", "lora": {"rank": 4}, "lr": 1e-4})
    {'model': 'minilm', 'tuning': {'type': 'lora', 'lr': 0.0001, 'rank': 4}}
    """
    if not any(k in saved for k in _OLD_FIELDS):
        return dict(saved)
    out = {k: v for k, v in saved.items() if k not in _OLD_FIELDS}
    tune = saved.get("tune", "frozen")
    if tune == "frozen":
        out["tuning"] = {"type": "frozen"}
        return out
    tuning: dict[str, Any] = {"type": tune}
    tuning.update({k: saved[k] for k in ("lr", "grad_items", "refresh_every", "checkpointing") if k in saved})
    if tune == "lora":
        tuning.update({k: v for k, v in dict(saved.get("lora") or {}).items() if k != "type"})
    out["tuning"] = tuning
    return out


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
    dtype: "float32", "bfloat16" (weights cast for encoding) or "int8" (dynamic int8
        quantisation of the linear layers for frozen encoding on CPU).
    device: where the encoder runs (None: the training device).
    tuning: how the weights learn: :class:`Frozen` (default), :class:`LoRA` or :class:`FullTune`,
        or their name ("lora") or saved dict (``{"type": "lora", "rank": 8}``).
    prefixes: put the text prefixes the model family was trained with before each text: for E5
        ("multilingual-e5-small") "query: " before a user's text and "passage: " before an item's
        (:func:`lmrec.text.sources.text_prefix`); other models have none. False: texts as rendered.
    """

    model: str = "minilm"
    backend: str = "hf"
    pooling: str = "auto"
    max_length: int = 128
    batch_size: int = 64
    dtype: str = "float32"
    device: str | None = None
    tuning: Tuning = field(default_factory=Frozen)
    prefixes: bool = True

    def __post_init__(self) -> None:
        value = self.tuning
        name = value if isinstance(value, str) else value.get("type") if isinstance(value, Mapping) else None
        if name in TUNINGS:  # a name or the saved form; anything else is left for validate() to name
            self.tuning = TUNINGS[name]() if isinstance(value, str) else TUNINGS[name].from_dict(value)

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> Encoder:
        old = sorted(k for k in value if k in _OLD_FIELDS)
        if old:
            raise ConfigError(f"Encoder fields {old} moved into its tuning part; write "
                              f"{upgrade_encoder(value)['tuning']!r} as 'tuning' (Frozen(), LoRA(...), FullTune(...)).")
        return super().from_dict(value)

    def validate(self) -> None:
        owner = "Encoder"
        if not isinstance(self.model, str) or not self.model:
            raise ConfigError(f"The 'model' parameter of Encoder must be a model name or path; got {self.model!r}.")
        check_choice(owner, "backend", self.backend, BACKENDS)
        check_choice(owner, "pooling", self.pooling, POOLINGS)
        check_choice(owner, "dtype", self.dtype, DTYPES)
        for name in ("max_length", "batch_size"):
            self.check_range(name, 1)
        if not isinstance(self.prefixes, bool):
            raise ConfigError(f"The 'prefixes' parameter of Encoder must be true or false; got {self.prefixes!r}.")
        self.tuning = resolve(TUNINGS, self.tuning, owner=owner, param="tuning")
        if self.trainable and self.backend != "hf":
            raise ConfigError(f"Encoder: tuning={self.tuning.kind!r} needs backend='hf' (sentence-transformers "
                              f"models are used frozen); got backend={self.backend!r}.")
        if self.trainable and self.dtype == "int8":
            raise ConfigError(f"Encoder: dtype='int8' quantises a frozen encoder; got tuning={self.tuning.kind!r}.")

    @property
    def trainable(self) -> bool:
        """Whether training changes the encoder's weights (its tuning is LoRA or full)."""
        return isinstance(self.tuning, Tuning) and self.tuning.trainable

    @property
    def tune(self) -> str:
        """The tuning part's name: "frozen", "lora" or "full"."""
        return self.tuning.kind if isinstance(self.tuning, Tuning) else str(self.tuning)

    def inference_key(self) -> dict[str, Any]:
        """The settings that change what the encoder outputs (not how it trains): part of the
        embedding cache key."""
        return {"model": self.model, "backend": self.backend, "pooling": self.pooling,
                "max_length": self.max_length, "dtype": self.dtype, "prefixes": self.prefixes}

    def prefix(self, role: str) -> str:
        """What goes before a text of ``role`` ("query": a user's, "passage": an item's)."""
        return text_prefix(self.model, role) if self.prefixes else ""
