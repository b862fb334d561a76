"""Any interaction file: CSV, TSV, Parquet, JSON lines, with metadata and a column mapping."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from lmrec.data import CleaningConfig, load_interactions, read_interactions
from lmrec.errors import DataError

EVENTS = pd.DataFrame({
    "customer": ["c1", "c1", "c2", "c3"], "sku": ["A", "B", "A", "C"],
    "stars": [5, 3, 4, 2], "ts": [10, 20, 30, 40],
})
PRODUCTS = pd.DataFrame({"sku": ["A", "B", "C", "Z"], "title": ["Apple", "Banana", "Cherry", "Unused"],
                         "brand": ["x", "y", "z", "w"]})


def _write(frame: pd.DataFrame, path):
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        path.write_text("\n".join(json.dumps(r) for r in frame.to_dict("records")) + "\n")
    return path


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".jsonl"])
def test_every_format_with_metadata(tmp_path, suffix):
    events = _write(EVENTS, tmp_path / f"events{suffix}")
    items = _write(PRODUCTS, tmp_path / f"products{suffix}")
    data = load_interactions(events, user="customer", item="sku", rating="stars", timestamp="ts",
                             items=items, item_key="sku", item_fields=["title", "brand"])
    assert (data.n_users, data.n_items, len(data)) == (3, 3, 4)
    assert data.item_table["title"].tolist() == ["Apple", "Banana", "Cherry"]
    assert data.ratings.tolist() == [5, 3, 4, 2] and data.timestamps.tolist() == [10, 20, 30, 40]


def test_user_metadata_and_iso_dates(tmp_path):
    f = EVENTS.assign(ts=["2024-01-01", "2024-01-02", "2024-01-03T10:00:00", "2024-02-01"])
    events = _write(f, tmp_path / "e.csv")
    users = _write(pd.DataFrame({"customer": ["c1", "c2", "c3"], "age": [30, 40, 50]}), tmp_path / "u.csv")
    data = load_interactions(events, user="customer", item="sku", timestamp="ts", users=users, user_key="customer")
    assert data.user_table["age"].astype(int).tolist() == [30, 40, 50]
    assert data.timestamps[0] == 1704067200


def test_missing_column(tmp_path):
    events = _write(EVENTS, tmp_path / "e.csv")
    with pytest.raises(DataError, match=r"e.csv, column 'user_id': missing column 'user_id' \(mapped to user\); "
                                        r"the file has columns \['customer', 'sku', 'stars', 'ts'\]"):
        load_interactions(events, user="user_id", item="sku")


def test_non_numeric_rating_names_line(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("customer,sku,stars\nc1,A,5\nc2,B,five\n")
    with pytest.raises(DataError, match=r"e.csv, line 3, column 'stars': expected a number, got 'five'"):
        load_interactions(path, user="customer", item="sku", rating="stars")


def test_malformed_line(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("customer,sku,stars\nc1,A,5\nc2,B,4,extra\n")
    with pytest.raises(DataError, match=r"e.csv, line 3: malformed line"):
        load_interactions(path, user="customer", item="sku", rating="stars")


def test_bad_json_line(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_text('{"customer": "c1", "sku": "A"}\n{"customer": "c2", sku: B}\n')
    with pytest.raises(DataError, match=r"e.jsonl, line 2: not valid JSON"):
        load_interactions(path, user="customer", item="sku")


def test_empty_and_header_only(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match=r"empty.csv: the file is empty"):
        load_interactions(tmp_path / "empty.csv")
    (tmp_path / "head.csv").write_text("user,item\n")
    with pytest.raises(DataError, match=r"head.csv: the file has a header but no data lines"):
        load_interactions(tmp_path / "head.csv")


def test_encoding_error(tmp_path):
    path = tmp_path / "e.csv"
    path.write_bytes(b"user,item\nu1,caf\xe9\n")
    with pytest.raises(DataError, match=r"e.csv, line 2: cannot decode byte 0xe9 as utf-8; pass encoding='latin-1'"):
        load_interactions(path)
    assert load_interactions(path, encoding="latin-1").item_ids.tolist() == ["café"]


def test_unknown_format(tmp_path):
    with pytest.raises(DataError, match=r"cannot tell the format from the name"):
        read_interactions(tmp_path / "events.xlsx")


def test_missing_ids_are_dropped_and_reported(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("user,item,rating\nu1,A,5\n,B,4\nu2,,3\nu3,C,\nu1,A,2\n")
    data, report = load_interactions(path, rating="rating", return_report=True)
    assert len(data) == 1
    changes = report.changes.set_index("line")
    assert changes.loc[3, "reason"] == "missing user" and changes.loc[4, "reason"] == "missing item"
    assert changes.loc[5, "reason"] == "missing rating"
    assert "duplicate" in changes.loc[2, "reason"]  # u1-A: line 6 is the latest and kept
    assert data.ratings.tolist() == [2.0]


def test_missing_ids_without_cleaning_are_refused(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("user,item\nu1,A\n,B\n")
    with pytest.raises(DataError, match=r"e.csv, line 3, column 'user': missing user id"):
        load_interactions(path, cleaning=CleaningConfig(missing="keep"))
