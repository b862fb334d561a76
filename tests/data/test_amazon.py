"""UniSRec-layout Amazon loader: the rebuilt sequences match the files' own split."""
from __future__ import annotations

import numpy as np
import pytest

from lmrec.data import load_unisrec
from lmrec.data.amazon import read_unisrec_sequences
from lmrec.data.reading import read_delimited
from lmrec.errors import DataError


def test_scientific_counts(data_dir):
    data = load_unisrec(data_dir / "amazon-scientific-unisrec")
    assert (data.n_users, data.n_items, len(data)) == (8442, 4385, 59427)
    lengths = np.bincount(data.users)
    assert lengths.min() == 5 and lengths.max() == 80
    assert (data.item_table["text"].str.len() > 0).all()
    assert data.item_table["asin"].iloc[0] == "B00TNNWMXI"  # index 0 in item2index


def test_sequences_end_with_valid_and_test_targets(data_dir):
    d = data_dir / "amazon-scientific-unisrec"
    _, seqs = read_unisrec_sequences(d)
    valid = read_delimited(d / "Scientific.valid.inter", "\t", ["user", "history", "target"], header=True)
    test = read_delimited(d / "Scientific.test.inter", "\t", ["user", "history", "target"], header=True)
    for frame, offset in ((valid, -2), (test, -1)):
        for u, hist, t in zip(frame["user"].astype(int), frame["history"], frame["target"].astype(int)):
            assert seqs[u][offset] == t
            # the stored history is the last (up to) 50 items before the target
            assert [int(x) for x in hist.split()] == seqs[u][:len(seqs[u]) + offset][-50:]


def test_missing_training_file(tmp_path):
    with pytest.raises(DataError, match=r"expected exactly one '\*.train.inter' file, found 0"):
        load_unisrec(tmp_path)
