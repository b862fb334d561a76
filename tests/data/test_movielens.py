"""MovieLens loaders: counts on the real files, the official layout, and every bad-input case."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from lmrec.data import load_dataset, load_ml1m, load_ml100k
from lmrec.errors import DataError


def test_ml100k_counts_and_tables(data_dir):
    data = load_ml100k(data_dir / "ml-100k")
    assert (data.n_users, data.n_items, len(data)) == (943, 1682, 100000)
    assert data.has_timestamps
    assert np.bincount(data.ratings.astype(int))[1:].tolist() == [6110, 11370, 27145, 34174, 21201]
    toy = data.item_table.iloc[data.item_index([1])[0]]
    assert toy["title"] == "Toy Story" and toy["year"] == 1995
    assert toy["genres"] == "Animation, Children's, Comedy"
    assert "Misérables" in " ".join(data.item_table["title"])  # latin-1 decoded
    assert set(data.user_table.columns) >= {"age", "gender", "occupation"}


def test_ml1m_without_timestamps(data_dir):
    data = load_ml1m(data_dir / "ml-1m")
    assert (data.n_users, data.n_items, len(data)) == (6040, 3706, 1000209)
    assert not data.has_timestamps
    first = data.user_table.iloc[0]
    assert (first["gender"], first["age"], first["occupation"]) == ("F", "under 18", "K-12 student")


def test_ml1m_timed_file(data_dir):
    data = load_ml1m(data_dir / "ml-1m", ratings_file="ratings_users0001-2999.dat.gz")
    assert len(data) == 487650 and data.has_timestamps and data.n_users == 2999


def _write_ml1m(d, ratings: str, gz: bool = False):
    d.mkdir(exist_ok=True)
    (d / "movies.dat").write_bytes("1::Toy Story (1995)::Animation|Comedy\n2::Mis\xe9rables (1998)::Drama\n".encode("latin-1"))
    (d / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    if gz:
        (d / "ratings.dat.gz").write_bytes(gzip.compress(ratings.encode()))
    else:
        (d / "ratings.dat").write_text(ratings)


@pytest.mark.parametrize("gz", [False, True])
def test_ml1m_official_layout(tmp_path, gz):
    _write_ml1m(tmp_path / "ml-1m", "1::1::5::978300760\n1::2::3::978302109\n2::1::4::978301968\n", gz=gz)
    data = load_dataset("ml-1m", tmp_path)
    assert len(data) == 3 and data.timestamps.tolist() == [978300760, 978302109, 978301968]
    assert data.item_table["title"].tolist() == ["Toy Story", "Misérables"]


BAD = [
    ("1::1::5::978300760\n1::2::x::978302109\n", r"ratings.dat, line 2, column 'rating': expected a number, got 'x'"),
    ("1::1::5::978300760\n1::2::3::97830::7\n", r"ratings.dat, line 2: expected 4 fields separated by '::'; found 5"),
    ("1::1\n", r"ratings.dat, line 1: expected 3 or 4 fields \(user, item, rating, timestamp\)"),
    ("\n\n", r"ratings.dat: the file is empty"),
]


@pytest.mark.parametrize("content,message", BAD, ids=["non-numeric", "malformed", "too-few", "empty"])
def test_ml1m_bad_ratings(tmp_path, content, message):
    _write_ml1m(tmp_path / "ml-1m", content)
    with pytest.raises(DataError, match=message):
        load_dataset("ml-1m", tmp_path)


def test_encoding_error_names_line(tmp_path):
    d = tmp_path / "ml-1m"
    _write_ml1m(d, "1::1::5::978300760\n")
    (d / "ratings.dat").write_bytes(b"1::1::5::978300760\n1::2::\xff::978300760\n")
    with pytest.raises(DataError, match=r"ratings.dat, line 2: cannot decode byte 0xff as utf-8"):
        load_dataset("ml-1m", tmp_path)


def test_missing_dataset_says_where(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # an empty user cache
    with pytest.raises(DataError, match=r"dataset 'ml-100k' not found; expected folder .*ml-100k.*download=True"):
        load_dataset("ml-100k", tmp_path)
    with pytest.raises(DataError, match="unknown dataset 'ml-10'; supported: ml-100k, ml-1m, amazon-scientific"):
        load_dataset("ml-10", tmp_path)


def test_data_dir_resolution(tmp_path, monkeypatch, data_dir):
    from lmrec.data.datasets import resolve_data_dir

    monkeypatch.setenv("LMREC_DATA_DIR", str(data_dir))
    assert resolve_data_dir() == data_dir
    assert resolve_data_dir(tmp_path) == tmp_path
    monkeypatch.delenv("LMREC_DATA_DIR")
    assert resolve_data_dir().name == "lmrec"
