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


def test_prefix_goes_before_each_text_and_into_the_cache_key(tmp_path):
    seen: list[list[str]] = []

    class Record:  # an encoder that records what it is given
        identity, dim = "record", 2

        def encode(self, texts, progress=True):
            seen.append(list(texts))
            return np.ones((len(texts), 2), dtype=np.float32)

    encode_texts(Record(), ["Heat"], tmp_path, prefix="passage: ")
    assert seen == [["passage: Heat"]]
    _, hits = encode_texts(Record(), ["Heat"], tmp_path, prefix="query: ")
    assert hits == 0 and seen[-1] == ["query: Heat"], "a query and a passage of the same text are not one entry"
    _, hits = encode_texts(Record(), ["Heat"], tmp_path, prefix="passage: ")
    assert hits == 1


def _tiny_bert(folder, drop: tuple[str, ...]):
    """A 1-layer BERT with MiniLM's tokenizer, saved without the weights whose names start with ``drop``."""
    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer, BertConfig, BertModel

    from lmrec.text.sources import resolve

    tokenizer = AutoTokenizer.from_pretrained(resolve("minilm"))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    weights = load_file(str(folder / "model.safetensors"))
    kept = {k: v.contiguous() for k, v in weights.items() if not k.startswith(drop)}
    save_file(kept, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def test_a_missing_pooler_is_quiet_and_missing_weights_warn(tmp_path, capfd):
    import warnings

    from lmrec.text.encoders import EncoderLoadWarning, load_hf

    quiet = _tiny_bert(tmp_path / "no-pooler", ("pooler.",))  # as multilingual-e5-small's file: no pooler head
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_hf(str(quiet))
    assert "LOAD REPORT" not in capfd.readouterr().err
    broken = _tiny_bert(tmp_path / "no-layer", ("pooler.", "encoder.layer.0.output.dense."))
    with pytest.warns(EncoderLoadWarning, match=r"2 weights missing from the checkpoint were initialised at random "
                                                r"\(encoder\.layer\.0\.output\.dense\.(bias|weight), "):
        load_hf(str(broken))
