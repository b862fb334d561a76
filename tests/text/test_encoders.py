"""Encoders and the embedding cache: the packaged MiniLM, offline, cached on disk."""
from __future__ import annotations

import numpy as np
import pytest

from lmrec.errors import ConfigError
from lmrec.text import EmbeddingCache, encode_texts, get_encoder

TEXTS = ["Toy Story: a cowboy doll is threatened by a new spaceman figure.",
         "Heat: a group of professional bank robbers and a detective.",
         "A Bug's Life: an ant recruits warrior bugs."]


@pytest.fixture(scope="module")
def minilm():
    return get_encoder("minilm")


def test_minilm_embeddings(minilm):
    vecs = minilm.encode(TEXTS, progress=False)
    assert vecs.shape == (3, 384) and minilm.dim == 384
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    sims = vecs @ vecs.T
    assert sims[0, 2] > sims[0, 1], "two animated films should be closer than an animated film and a heist film"


def test_sentence_transformers_backend_agrees(minilm):
    st = get_encoder("minilm", backend="sentence-transformers")
    a = minilm.encode(TEXTS[:2], progress=False)
    b = st.encode(TEXTS[:2], progress=False)
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert st.identity != minilm.identity


def test_cache_hit_on_second_run(minilm, tmp_path):
    first, hits = encode_texts(minilm, TEXTS, tmp_path)
    assert hits == 0

    class Refuse:  # an encoder that fails if asked to encode anything
        identity, dim = minilm.identity, minilm.dim

        def encode(self, texts, progress=True):
            raise AssertionError(f"encoded {len(texts)} texts although all were cached")

    second, hits = encode_texts(Refuse(), TEXTS[::-1], tmp_path)
    np.testing.assert_array_equal(second, first[::-1])
    assert hits == 3
    assert len(EmbeddingCache(tmp_path, minilm.identity)) == 3
    assert len(EmbeddingCache(tmp_path, "another encoder")) == 0  # keyed by encoder identity


def test_corrupt_cache_part_is_reencoded(minilm, tmp_path):
    encode_texts(minilm, TEXTS[:1], tmp_path)
    for part in tmp_path.rglob("part-*.npy"):
        part.write_bytes(b"broken")
    again, hits = encode_texts(minilm, TEXTS[:1], tmp_path)
    assert again.shape == (1, 384) and hits == 0


def test_unknown_encoder_names():
    with pytest.raises(ConfigError, match=r"Could not load encoder 'no-such/model-xyz': it is neither a registered name \(minilm, mpnet, "):
        get_encoder("no-such/model-xyz")
    with pytest.raises(ConfigError, match="'backend' parameter of get_encoder must be one of 'hf', 'sentence-transformers'"):
        get_encoder("minilm", backend="onnx")


def test_local_path_loads(tmp_path):
    from lmrec.text.sources import resolve

    enc = get_encoder(resolve("minilm"), max_length=16)
    assert enc.encode(["short"], progress=False).shape == (1, 384) and "|16|" in enc.identity


def test_pooling_mean_cls_last_on_padded_batches():
    import torch

    from lmrec.text.pooling import is_decoder, pool, resolve_pooling

    hidden = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)
    right = torch.tensor([[1, 1, 0], [1, 1, 1]])
    left = torch.tensor([[0, 1, 1], [1, 1, 1]])
    torch.testing.assert_close(pool(hidden, right, "mean"), torch.tensor([[1.0, 2.0], [8.0, 9.0]]))
    torch.testing.assert_close(pool(hidden, right, "cls"), hidden[:, 0])
    torch.testing.assert_close(pool(hidden, right, "last"), torch.stack([hidden[0, 1], hidden[1, 2]]))
    torch.testing.assert_close(pool(hidden, left, "last"), torch.stack([hidden[0, 2], hidden[1, 2]]))

    class Config:
        model_type, architectures = "llama", ["LlamaForCausalLM"]

    assert is_decoder(Config()) and resolve_pooling("auto", Config()) == "last"
    Config.model_type, Config.architectures = "bert", ["BertModel"]
    assert resolve_pooling("auto", Config()) == "mean" and resolve_pooling("cls", Config()) == "cls"


def test_int8_and_bfloat16_encoders_stay_close_to_float32(minilm):
    from lmrec.text.encoders import HFEncoder

    base = minilm.encode(TEXTS, progress=False)
    for dtype, tol in (("int8", 0.1), ("bfloat16", 0.05)):
        enc = HFEncoder("minilm", dtype=dtype)
        vecs = enc.encode(TEXTS, progress=False)
        cos = (vecs * base).sum(1)
        assert cos.min() > 1 - tol, f"{dtype} vectors drift from float32 ones: cosine {cos}"
        assert enc.identity != minilm.identity and enc.identity.endswith(dtype), "kept apart in the cache"
