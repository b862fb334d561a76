"""A text encoder whose weights learn: LoRA adapters (the peft library) or every weight (full).

:class:`TunableEncoder` wraps a Hugging Face model (BERT- or GPT-style) as a torch module:
``forward(ids, mask)`` gives pooled, L2-normalised vectors with gradients, ``encode(ids, mask)``
the same without them in eval mode (for the catalogue table). What differs between the tuning
parts of :mod:`lmrec.text.options` — how the model is made trainable, what is saved and how a
saved folder is loaded back — is one :class:`Method` per part (:data:`METHODS`), chosen once
from the part's class: :class:`LoRAMethod` saves the adapters (``adapter_model.safetensors`` +
``adapter_config.json``) and merges them into the weights on load, so serving pays nothing for
them; :class:`FullMethod` saves the whole model (``model.safetensors`` + config + tokenizer).
peft is imported only by :class:`LoRAMethod` (the extra ``tune``).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from lmrec.errors import ArtifactError, ConfigError, LmrecError
from lmrec.extras import require
from lmrec.text.encoders import HFEncoder, choose_pooling, load_hf
from lmrec.text.options import Encoder, FullTune, LoRA, Tuned, Tuning
from lmrec.text.pooling import pool

# attention projections adapted by default, per architecture (peft's own defaults lack some of these)
LORA_TARGETS = {"bert": ["query", "value"], "mpnet": ["q", "v"], "roberta": ["query", "value"],
                "xlm-roberta": ["query", "value"], "llama": ["q_proj", "v_proj"], "qwen2": ["q_proj", "v_proj"],
                "mistral": ["q_proj", "v_proj"]}


def dropout_off(model: nn.Module) -> None:
    """Zero every dropout of an encoder (its layers' and LoRA's), so that training mode, which
    gradient checkpointing needs (Hugging Face layers checkpoint only while ``training``), computes
    what eval mode computes. The ranker tunes its encoder this way (lmrec.models.lm.tuned_table);
    co-interaction pre-tuning keeps its dropout."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
        if isinstance(vars(module).get("attention_dropout"), float):  # decoders keep it as a float (llama, qwen2)
            module.attention_dropout = 0.0


class Method:
    """How one tuning part trains, saves and loads a Hugging Face model."""

    what = "tuned encoder"  # what the saved folder holds, for messages

    def __init__(self, tuning: Tuned) -> None:
        self.tuning = tuning

    def trainable(self, model: nn.Module) -> nn.Module:
        """The model whose trainable parameters are what this part trains."""
        return model

    def checkpointing(self, model: nn.Module) -> None:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    def saved_weights(self, model: nn.Module) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    def load_weights(self, model: nn.Module, weights: dict[str, torch.Tensor]) -> list[str]:
        """Load ``weights``; returns the names of trained weights they lack."""
        return list(model.load_state_dict(weights, strict=False).missing_keys)

    def save(self, model: nn.Module, tokenizer: Any, directory: Path) -> None:
        model.save_pretrained(str(directory), safe_serialization=True)
        tokenizer.save_pretrained(str(directory))

    def load(self, options: Encoder, directory: Path, device: str) -> tuple[Any, nn.Module]:
        """(tokenizer, inference model) from a folder :meth:`save` wrote."""
        tokenizer, model, _ = load_hf(str(directory), device)
        return tokenizer, model

    def merged(self, model: nn.Module) -> nn.Module:
        """The plain Hugging Face model with what training changed in its weights."""
        return model


class FullMethod(Method):
    """Every weight trained; the whole model (weights, config, tokenizer) saved."""


class LoRAMethod(Method):
    """Adapters on the target layers (peft); only they are trained and saved."""

    what = "LoRA adapters"
    tuning: LoRA

    def _peft(self, feature: str) -> Any:
        return require("peft", "tune", f"{feature} (tuning=LoRA(...))")

    def trainable(self, model: nn.Module) -> nn.Module:
        peft, lora = self._peft("LoRA tuning of the encoder"), self.tuning
        targets = lora.targets or LORA_TARGETS.get(model.config.model_type)
        return peft.get_peft_model(model, peft.LoraConfig(r=lora.rank, lora_alpha=lora.alpha,
                                                          lora_dropout=lora.dropout, target_modules=targets))

    def checkpointing(self, model: nn.Module) -> None:
        super().checkpointing(model)
        model.enable_input_require_grads()  # the frozen embeddings' output must carry gradients to the adapters

    def saved_weights(self, model: nn.Module) -> dict[str, torch.Tensor]:
        state = self._peft("LoRA adapters").get_peft_model_state_dict(model)
        return {k: v.detach().clone() for k, v in state.items()}

    def load_weights(self, model: nn.Module, weights: dict[str, torch.Tensor]) -> list[str]:
        result = self._peft("LoRA adapters").set_peft_model_state_dict(model, weights)
        return [k for k in result.missing_keys if "lora_" in k]

    def save(self, model: nn.Module, tokenizer: Any, directory: Path) -> None:
        model.save_pretrained(str(directory), safe_serialization=True)  # adapters + adapter_config.json

    def load(self, options: Encoder, directory: Path, device: str) -> tuple[Any, nn.Module]:
        peft = self._peft("loading LoRA adapters")
        tokenizer, base, _ = load_hf(options.model, device)
        return tokenizer, peft.PeftModel.from_pretrained(base, str(directory)).merge_and_unload()

    def merged(self, model: nn.Module) -> nn.Module:
        return model.merge_and_unload()


METHODS: dict[type[Tuning], type[Method]] = {LoRA: LoRAMethod, FullTune: FullMethod}


def method(options: Encoder) -> Method:
    """The :class:`Method` of an encoder's tuning part (a frozen encoder has none)."""
    kind = METHODS.get(type(options.tuning))
    if kind is None:
        raise ConfigError(f"a tunable encoder needs tuning LoRA(...) or FullTune(...); got {options.tuning!r}.")
    return kind(options.tuning)  # type: ignore[arg-type]


class TunableEncoder(nn.Module):
    """An encoder trained with the ranking loss (``options.tuning`` :class:`LoRA` or :class:`FullTune`)."""

    def __init__(self, options: Encoder, device: str = "cpu") -> None:
        super().__init__()
        self.options, self.method = options, method(options)
        self.tuning: Tuned = self.method.tuning
        self.tokenizer, model, self.path = load_hf(options.model, device)
        self.pooling = choose_pooling(options.pooling, options.model, model.config)
        self.dim = int(model.config.hidden_size)
        model = self.method.trainable(model)
        if self.tuning.checkpointing:
            self.method.checkpointing(model)
        self.model = model

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(input ids (N, L), attention mask (N, L)) padded to ``max_length``, on the CPU."""
        batch = self.tokenizer(texts, padding="max_length", truncation=True, max_length=self.options.max_length,
                               return_tensors="pt")
        return batch["input_ids"], batch["attention_mask"]

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, H) normalised text vectors, with gradients; padding columns beyond the batch's
        longest text are dropped first."""
        width = max(int(mask.sum(1).max()), 1)
        device = next(self.model.parameters()).device
        ids, mask = ids[:, :width].to(device), mask[:, :width].to(device)
        hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, L, H)
        return nn.functional.normalize(pool(hidden, mask, self.pooling).float(), dim=-1)

    @torch.no_grad()
    def encode(self, ids: torch.Tensor, mask: torch.Tensor, progress: bool = False) -> torch.Tensor:
        """(N, H) vectors in eval mode (dropout off), batch by batch, longest texts together."""
        was_training = self.training
        self.eval()
        out = torch.zeros(len(ids), self.dim)
        order = torch.argsort(mask.sum(1), descending=True)
        size = self.options.batch_size
        for lo in tqdm(range(0, len(ids), size), desc="refreshing", leave=False, disable=not progress):
            idx = order[lo: lo + size]
            out[idx] = self(ids[idx], mask[idx]).cpu()
        self.train(was_training)
        return out

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def digest(self) -> str:
        """A digest of the trained weights (names this encoder's vectors in the embedding cache)."""
        h = hashlib.sha256()
        for p in self.trainable_parameters():
            h.update(p.detach().cpu().float().numpy().tobytes())
        return h.hexdigest()[:16]

    def inference(self) -> HFEncoder:
        """This encoder, as it is now, for encoding new texts (eval mode, no gradients)."""
        self.model.eval()
        return HFEncoder.from_loaded(self.tokenizer, self.model, name=f"{self.options.model}+{self.tuning.kind}",
                                     identity_extra=self.digest(), path=self.path, max_length=self.options.max_length,
                                     batch_size=self.options.batch_size, pooling=self.pooling,
                                     device=str(next(self.model.parameters()).device))

    def saved_weights(self) -> dict[str, torch.Tensor]:
        """What :meth:`save` writes, as tensors: the adapters (peft's saved form) or every weight."""
        return self.method.saved_weights(self.model)

    def load_weights(self, weights: dict[str, torch.Tensor]) -> None:
        """Start from trained weights of the same tuning part (:meth:`saved_weights` or the saved files)."""
        missing = self.method.load_weights(self.model, weights)
        if missing:
            raise ArtifactError(f"the tuned encoder to start from lacks {len(missing)} weights (e.g. {missing[0]!r}); "
                                "was it trained with the same model and tuning part?")

    def merged(self) -> nn.Module:
        """The plain Hugging Face model with what training changed in its weights (LoRA merged)."""
        return self.method.merged(self.model)

    def save(self, directory: Path) -> None:
        """Write what training changed (adapters, or the whole model) as safetensors + JSON."""
        self.method.save(self.model, self.tokenizer, directory)


def weights_digest(directory: Path) -> str:
    """A digest of the saved weight files (names the tuned encoder in the embedding cache)."""
    h = hashlib.sha256()
    for f in sorted(directory.glob("*.safetensors")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def load_tuned(options: Encoder, directory: Path, device: str = "cpu") -> HFEncoder:
    """The inference encoder a tuned model saved in ``directory`` (LoRA adapters merged in)."""
    how = method(options)
    if not directory.is_dir() or not any(directory.glob("*.safetensors")):
        raise ArtifactError(f"{directory}: the tuned encoder's weights are missing (expected safetensors files "
                            f"written by a model trained with tuning={options.tune!r}).")
    try:
        tokenizer, model = how.load(options, directory, device)
    except LmrecError:  # the extra is missing
        raise
    except Exception as exc:  # a truncated or foreign file: safetensors, peft and transformers raise their own kinds
        raise ArtifactError(f"{directory}: cannot load the {how.what} ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''}).") from None
    return HFEncoder.from_loaded(tokenizer, model.eval(), name=f"{options.model}+{options.tune}",
                                 identity_extra=weights_digest(directory), path=str(directory),
                                 max_length=options.max_length, batch_size=options.batch_size,
                                 pooling=choose_pooling(options.pooling, options.model, model.config), device=device)


def count_parameters(module: nn.Module) -> dict[str, Any]:
    """Trainable and total parameter counts of a module."""
    total = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return {"trainable": int(trainable), "total": int(total), "share": float(np.round(trainable / max(total, 1), 6))}
