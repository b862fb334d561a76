"""The embedding store: memory-mapped parts, atomic writes, hostile files ignored."""
import numpy as np
from safetensors.numpy import save_file

from lmrec.text.cache import EmbeddingCache, text_keys


def vectors(n: int, d: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def test_round_trip_reads_through_memory_maps(tmp_path):
    texts = [f"item {i}" for i in range(50)]
    store = EmbeddingCache(tmp_path, "enc")
    store.add(texts[:30], vectors(30))
    store.add(texts[30:], vectors(20, seed=1))
    again = EmbeddingCache(tmp_path, "enc")
    assert len(again) == 50 and again.dim == 8
    assert again.memory_mapped, "vectors stay on disk"
    query = ["nope", *texts[::-7], "item 3"]
    hit, got = again.lookup(query)
    assert hit.tolist() == [False] + [True] * (len(query) - 1)
    want = np.concatenate([vectors(30), vectors(20, seed=1)])
    np.testing.assert_array_equal(got, want[[int(t.split()[1]) for t in query[1:]]])
    assert (again.hits, again.misses) == (len(query) - 1, 1)
    assert len(EmbeddingCache(tmp_path, "another encoder")) == 0


def test_broken_or_inconsistent_parts_are_ignored(tmp_path):
    store = EmbeddingCache(tmp_path, "enc")
    store.add(["a", "b"], vectors(2))
    folder = store.dir
    np.save(folder / "part-00007-1.vectors.npy", vectors(3))  # keys for 2 rows, vectors for 3
    np.save(folder / "part-00007-1.keys.npy", text_keys(["c", "d"]).view(np.uint8).reshape(2, 32))
    np.save(folder / "part-00008-1.vectors.npy", vectors(1, d=5))  # another size
    np.save(folder / "part-00008-1.keys.npy", text_keys(["e"]).view(np.uint8).reshape(1, 32))
    (folder / "part-00009-1.keys.npy").write_bytes(b"\x93NUMPY garbage")
    np.save(folder / "part-00010-1.vectors.npy", np.array([{"x": 1}], dtype=object))  # a pickle
    np.save(folder / "part-00010-1.keys.npy", text_keys(["f"]).view(np.uint8).reshape(1, 32))
    reopened = EmbeddingCache(tmp_path, "enc")
    hit, _ = reopened.lookup(["a", "b", "c", "e", "f"])
    assert hit.tolist() == [True, True, False, False, False]


def test_single_file_parts_are_converted(tmp_path):
    store = EmbeddingCache(tmp_path, "enc")
    keys = text_keys(["x", "y"]).view(np.uint8).reshape(2, 32)
    save_file({"keys": keys, "vectors": vectors(2)}, str(store.dir / "part-00000-9.safetensors"))
    (store.dir / "part-00001-9.safetensors").write_bytes(b"broken")
    reopened = EmbeddingCache(tmp_path, "enc")
    hit, got = reopened.lookup(["y", "x"])
    assert hit.all()
    np.testing.assert_array_equal(got, vectors(2)[::-1])
    assert not list(store.dir.glob("*.safetensors")) and not list(store.dir.glob("*.tmp"))


def test_a_header_claiming_more_rows_than_the_file_holds_is_ignored(tmp_path):
    store = EmbeddingCache(tmp_path, "enc")
    store.add(["a"], vectors(1))
    keys = next(store.dir.glob("part-*.keys.npy"))
    with open(keys, "wb") as fh:  # a header for 10M keys, then the bytes of one
        np.lib.format.write_array_header_1_0(fh, {"descr": "|u1", "fortran_order": False, "shape": (10_000_000, 32)})
        fh.write(bytes(32))
    assert len(EmbeddingCache(tmp_path, "enc")) == 0, "the part is skipped, nothing is allocated for it"
