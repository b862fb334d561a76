"""``lmrec train lm-ranker`` flags for every part of LMRanker, and ``lmrec pretune``.

Each flag maps onto one field of one part (``--tune`` -> the kind of ``Encoder.tuning``,
``--lora-rank`` -> ``LoRA.rank``, ``--user-ids`` -> the user tower's ``ids``, ...); flags not given
keep the part's default. With lm-ranker, TrainConfig's negatives flags (``--sampler``,
``--n-negatives``, ``--negative-pool``, ``--hard-pool``, ``--pop-alpha``) make its ``negatives``
part (replacing the model spec's own). Example::

    lmrec train lm-ranker --protocol P2 --encoder minilm --tune lora --lora-rank 8 --user sequence \\
        --dim 128 --graph-layers 2 --scorer cosine --temperature 0.05 --loss softmax --sampler unseen \\
        --init-from models/p2-frozen --out models/p2-lora
"""
from __future__ import annotations

import argparse
import json
from typing import Any

from lmrec.cli.spec import parse_model_spec, parse_value
from lmrec.data import get_protocol, load_split
from lmrec.errors import ConfigError
from lmrec.models.base import Recommender
from lmrec.models.lm.scorers import SCORERS
from lmrec.models.lm.users import USER_TOWERS
from lmrec.text.options import BACKENDS, DTYPES, POOLINGS, TUNINGS
from lmrec.training.config import TrainConfig
from lmrec.training.negatives import CONFIG_FIELDS, negatives_from_config


def dim_value(text: str) -> int | str:
    """``--dim``: a number, or ``text`` for the encoder's text size (``ItemTower(dim=None)``)."""
    if text == "text":
        return text
    if text.isdigit():
        return int(text)
    raise argparse.ArgumentTypeError(f"expected a whole number or 'text'; got {text!r}")


# flag -> (part, field, type, help); a None part field means "choose the part's kind"
FLAGS: dict[str, tuple[str, str, Any, str]] = {
    "encoder": ("encoder", "model", str, "encoder name or path (minilm, mpnet, smollm2, multilingual-e5-small, ...)"),
    "encoder-backend": ("encoder", "backend", str, f"one of {', '.join(BACKENDS)}"),
    "tune": ("tuning", "type", str, f"how the encoder's weights learn: one of {', '.join(TUNINGS)}"),
    "pooling": ("encoder", "pooling", str, f"one of {', '.join(POOLINGS)}"),
    "max-length": ("encoder", "max_length", int, "tokens kept per text"),
    "encode-batch-size": ("encoder", "batch_size", int, "texts per encoder forward pass"),
    "encoder-dtype": ("encoder", "dtype", str, f"one of {', '.join(DTYPES)}"),
    "encoder-lr": ("tuning", "lr", float, "learning rate of the encoder weights (default: --lr)"),
    "grad-items": ("tuning", "grad_items", int, "items encoded with gradients per step"),
    "refresh-every": ("tuning", "refresh_every", int, "steps between re-encodings of the catalogue table"),
    "checkpointing": ("tuning", "checkpointing", parse_value, "gradient checkpointing in the encoder (true/false)"),
    "lora-rank": ("tuning", "rank", int, "LoRA rank r (with --tune lora)"),
    "lora-alpha": ("tuning", "alpha", float, "LoRA alpha (the update is scaled by alpha / r)"),
    "lora-dropout": ("tuning", "dropout", float, "LoRA input dropout (pretune; the ranker tunes without dropout)"),
    "lora-targets": ("tuning", "targets", lambda s: [t for t in s.split(",") if t], "comma-separated module names"),
    "dim": ("items", "dim", dim_value, "representation size d, or 'text' for the encoder's text size"),
    "identity-init": ("items", "identity_init", parse_value,
                      "the projection starts as the identity (true/false; needs --dim text and --projection linear)"),
    "projection": ("items", "projection", str, "linear or mlp"),
    "item-ids": ("items", "ids", parse_value, "learned item ID embeddings (true/false)"),
    "history-ids": ("items", "history_ids", parse_value, "a second item ID table for histories (true/false)"),
    "graph-layers": ("items", "graph_layers", int, "LightGCN propagation layers over the items"),
    "item-dropout": ("items", "dropout", float, "dropout inside the MLP projection"),
    "user": ("user", "type", str, f"user tower: one of {', '.join(USER_TOWERS)}"),
    "user-ids": ("user", "ids", parse_value, "learned user ID embeddings (true/false)"),
    "max-history": ("user", "max_history", int, "items the attention/sequence tower reads"),
    "history-dropout": ("user", "history_dropout", float, "mean tower: share of a history left out in training"),
    "seq-layers": ("user", "layers", int, "sequence tower: Transformer layers"),
    "seq-heads": ("user", "heads", int, "sequence tower: attention heads"),
    "seq-dropout": ("user", "dropout", float, "sequence tower: dropout"),
    "scorer": ("scorer", "type", str, f"one of {', '.join(SCORERS)}"),
    "temperature": ("scorer", "temperature", float, "cosine scorer temperature"),
    "loss": ("loss", "type", str, "bpr, hinge or softmax"),
    "margin": ("loss", "margin", float, "hinge margin"),
}


def add_lm_args(parser: argparse.ArgumentParser) -> None:
    """The LMRanker part flags (used only with the lm-ranker model)."""
    g = parser.add_argument_group("lm-ranker parts (with the model lm-ranker)")
    for flag, (_, _, kind, text) in FLAGS.items():
        g.add_argument(f"--{flag}", dest=f"lm_{flag.replace('-', '_')}", type=kind, default=None, help=text)
    g.add_argument("--bf16", action="store_true", help="bf16 autocast (same as --precision bf16)")
    g.add_argument("--init-from", help="a saved model of the same class whose weights start training "
                                       "(two-stage tuning: train frozen, then tune the encoder from it); with a "
                                       "validation set the start is kept when no epoch beats it")


def lm_parts(args: argparse.Namespace, given: dict[str, Any]) -> dict[str, Any]:
    """LMRanker keyword parts from the flags given, over the model spec's own ``given`` parameters."""
    parts: dict[str, dict[str, Any]] = {}
    for flag, (part, field, _, _) in FLAGS.items():
        value = getattr(args, f"lm_{flag.replace('-', '_')}")
        if value is not None:
            parts.setdefault(part, {})[field] = None if value == "text" and flag == "dim" else value
    if not parts:
        return {}
    clash = sorted(set(parts) & set(given) - {"tuning"})
    if clash:
        raise ConfigError(f"lm-ranker: {', '.join(clash)} given both in the model spec and as flags; use one.")
    out: dict[str, Any] = {}
    if "tuning" in parts:
        tuning = parts["tuning"]
        if "type" not in tuning:
            lora_only = {"rank", "alpha", "dropout", "targets"} & set(tuning)
            if not lora_only:
                raise ConfigError("lm-ranker: --encoder-lr, --grad-items, --refresh-every and --checkpointing "
                                  "set a tuned encoder: give --tune lora or --tune full with them.")
            tuning = {"type": "lora", **tuning}
        parts.setdefault("encoder", {})["tuning"] = tuning
    if "encoder" in parts:
        out["encoder"] = parts["encoder"]
    if "items" in parts:
        out["items"] = parts["items"]
    for part, default in (("user", "mean"), ("scorer", "dot"), ("loss", "bpr")):
        if part in parts:
            out[part] = {"type": default, **parts[part]}
    return out


def lm_negatives(args: argparse.Namespace, overrides: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(TrainConfig overrides, LMRanker parts): with the model lm-ranker, TrainConfig's negatives
    flags leave the overrides and make its ``negatives`` part; other models keep them as they are."""
    name, given = parse_model_spec(args.model)
    taken = {k: v for k, v in overrides.items() if k in CONFIG_FIELDS}
    if name != "lm-ranker" or not taken:
        return overrides, {}
    if "negatives" in given:
        raise ConfigError(f"lm-ranker: negatives given both in the model spec and as flags "
                          f"({', '.join('--' + k.replace('_', '-') for k in taken)}); use one.")
    part = negatives_from_config(TrainConfig(**taken))
    return {k: v for k, v in overrides.items() if k not in CONFIG_FIELDS}, {"negatives": part.to_dict()}


def init_model(args: argparse.Namespace) -> Recommender | None:
    return Recommender.load(args.init_from) if getattr(args, "init_from", None) else None


def cmd_pretune(args: argparse.Namespace) -> int:
    """Co-interaction pre-fine-tuning of an encoder on a split's training interactions."""
    from lmrec.models.text_side import TextSide
    from lmrec.text.options import TUNINGS, Encoder
    from lmrec.text.pretune import CoInteraction, pretune

    split = load_split(args.split) if args.split else get_protocol(args.protocol, args.data_dir, args.split_seed)
    tuning = TUNINGS[args.tune](rank=args.lora_rank) if args.tune == "lora" else TUNINGS[args.tune]()
    encoder = Encoder(args.encoder, max_length=args.max_length, tuning=tuning)
    text = TextSide(encoder, None, args.item_template, "")
    text.resolve(split.train, "pretune")
    stage = CoInteraction(window=args.window, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                          temperature=args.temperature, max_pairs=args.max_pairs, seed=args.seed)
    folder = pretune(encoder, split.train, text.item_texts(), stage, args.out, device=args.device)
    print(json.dumps({"encoder_folder": str(folder), **json.loads((folder / "lmrec-pretune.json").read_text())},
                     indent=2))
    print(f"use it with: --encoder {folder}")
    return 0


def add_pretune_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("pretune", help="co-interaction pre-fine-tuning of a text encoder (before ranking)",
                       description="Pulls items that users consumed close in time together in the encoder's "
                                   "space (in-batch InfoNCE), on the training interactions only. Writes a model "
                                   "folder usable as --encoder. Example: lmrec pretune --protocol P2 "
                                   "--encoder minilm --tune lora --out models/minilm-co-p2")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--split", help="a split directory written by 'lmrec data prepare'")
    g.add_argument("--protocol", help="a protocol name or code (P1-P5)")
    p.add_argument("--split-seed", type=int, default=2026)
    p.add_argument("--data-dir")
    p.add_argument("--encoder", default="minilm")
    p.add_argument("--tune", choices=["lora", "full"], default="lora")
    p.add_argument("--lora-rank", type=int, default=8)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--item-template", help="format string over the item fields (default: built in)")
    p.add_argument("--window", type=int, default=1, help="pair items at most this many steps apart")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--temperature", type=float, default=0.05)
    p.add_argument("--max-pairs", type=int, default=None)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", required=True, help="model folder to write")
    p.set_defaults(func=cmd_pretune)
