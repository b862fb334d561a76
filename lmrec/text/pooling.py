"""Pooling token states into one vector per text, shared by frozen and trained encoders.

``hidden`` is ``(B, L, H)``, ``mask`` the attention mask ``(B, L)`` (1 for real tokens, padding on
either side). GPT-style decoders read left to right, so their last real token has seen the whole
text: "last" pooling; BERT-style encoders use the mean of the tokens ("mean") or the first ("cls").
"""
from __future__ import annotations

import torch

DECODER_TYPES = frozenset({"llama", "mistral", "mixtral", "qwen2", "qwen3", "gpt2", "gpt_neox", "gptj", "phi", "phi3",
                           "gemma", "gemma2", "gemma3", "falcon", "opt", "bloom", "olmo", "olmo2", "stablelm"})


def is_decoder(config: object) -> bool:
    """Whether a transformers config describes a GPT-style (causal) language model."""
    arch = " ".join(getattr(config, "architectures", None) or [])
    return getattr(config, "model_type", "") in DECODER_TYPES or "CausalLM" in arch or "LMHeadModel" in arch


def resolve_pooling(pooling: str, config: object) -> str:
    """"auto" becomes "last" for decoders and "mean" otherwise; other values are kept."""
    if pooling != "auto":
        return pooling
    return "last" if is_decoder(config) else "mean"


def pool(hidden: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """(B, H) vectors from token states by "mean", "cls" or "last"."""
    if how == "mean":
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1)
    if how == "cls":
        return hidden[:, 0]
    # last real token: the highest position whose mask is 1 (right or left padding alike)
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    last = torch.where(mask.bool(), positions, torch.zeros_like(positions)).argmax(1)
    return hidden[torch.arange(len(hidden), device=hidden.device), last]
