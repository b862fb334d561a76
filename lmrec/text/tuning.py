"""A text encoder whose weights learn: LoRA adapters (the peft library) or every weight ("full").

:class:`TunableEncoder` wraps a Hugging Face model (BERT- or GPT-style) as a torch module:
``forward(ids, mask)`` gives pooled, L2-normalised vectors with gradients, ``encode(ids, mask)``
the same without them in eval mode (for the catalogue table). It saves what training changed —
the adapters (``adapter_model.safetensors`` + ``adapter_config.json``) or the whole model
(``model.safetensors`` + config + tokenizer) — and :func:`load_tuned` rebuilds an inference
encoder from that folder, adapters merged into the weights so serving pays nothing for them.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from lmrec.errors import ArtifactError
from lmrec.text.encoders import HFEncoder, choose_pooling, load_hf
from lmrec.text.options import Encoder
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


class TunableEncoder(nn.Module):
    """An encoder trained with the ranking loss (``options.tune`` "lora" or "full")."""

    def __init__(self, options: Encoder, device: str = "cpu") -> None:
        super().__init__()
        self.options = options
        self.tokenizer, model, self.path = load_hf(options.model, device)
        self.pooling = choose_pooling(options.pooling, options.model, model.config)
        self.dim = int(model.config.hidden_size)
        if options.tune == "lora":
            from peft import LoraConfig, get_peft_model

            lora = options.lora
            targets = lora.targets or LORA_TARGETS.get(model.config.model_type)
            model = get_peft_model(model, LoraConfig(r=lora.rank, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                                     target_modules=targets))
        if options.checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            if options.tune == "lora":
                model.enable_input_require_grads()
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
        return HFEncoder.from_loaded(self.tokenizer, self.model, name=f"{self.options.model}+{self.options.tune}",
                                     identity_extra=self.digest(), path=self.path, max_length=self.options.max_length,
                                     batch_size=self.options.batch_size, pooling=self.pooling,
                                     device=str(next(self.model.parameters()).device))

    def saved_weights(self) -> dict[str, torch.Tensor]:
        """What :meth:`save` writes, as tensors: the adapters (peft's saved form) or every weight."""
        if self.options.tune == "lora":
            from peft import get_peft_model_state_dict

            return {k: v.detach().clone() for k, v in get_peft_model_state_dict(self.model).items()}
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def load_weights(self, weights: dict[str, torch.Tensor]) -> None:
        """Start from trained weights of the same tuning mode (:meth:`saved_weights` or the saved files)."""
        if self.options.tune == "lora":
            from peft import set_peft_model_state_dict

            result = set_peft_model_state_dict(self.model, weights)
            missing = [k for k in result.missing_keys if "lora_" in k]
        else:
            missing = self.model.load_state_dict(weights, strict=False).missing_keys
        if missing:
            raise ArtifactError(f"the tuned encoder to start from lacks {len(missing)} weights (e.g. {missing[0]!r}); "
                                "was it trained with the same model and tuning mode?")

    def save(self, directory: Path) -> None:
        """Write what training changed (adapters, or the whole model) as safetensors + JSON."""
        self.model.save_pretrained(str(directory), safe_serialization=True)
        if self.options.tune == "full":
            self.tokenizer.save_pretrained(str(directory))


def weights_digest(directory: Path) -> str:
    """A digest of the saved weight files (names the tuned encoder in the embedding cache)."""
    h = hashlib.sha256()
    for f in sorted(directory.glob("*.safetensors")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def load_tuned(options: Encoder, directory: Path, device: str = "cpu") -> HFEncoder:
    """The inference encoder a tuned model saved in ``directory`` (LoRA adapters merged in)."""
    if not directory.is_dir() or not any(directory.glob("*.safetensors")):
        raise ArtifactError(f"{directory}: the tuned encoder's weights are missing (expected safetensors files "
                            f"written by a model trained with tune={options.tune!r}).")
    what = "LoRA adapters" if options.tune == "lora" else "tuned encoder"
    try:
        if options.tune == "lora":
            from peft import PeftModel

            tokenizer, base, _ = load_hf(options.model, device)
            model = PeftModel.from_pretrained(base, str(directory)).merge_and_unload()
        else:
            tokenizer, model, _ = load_hf(str(directory), device)
    except Exception as exc:  # a truncated or foreign file: safetensors, peft and transformers raise their own kinds
        raise ArtifactError(f"{directory}: cannot load the {what} ({type(exc).__name__}: "
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
