"""Any interaction file: CSV, TSV, Parquet, JSON lines, with metadata and a column mapping."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from lmrec.data import CleaningConfig, load_interactions, read_interactions
from lmrec.data.report import DataWarning
from lmrec.errors import ConfigError, DataError

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
    with pytest.warns(DataWarning, match=r"\(item metadata\): 1 of 4 'sku' values match no item of the interactions; "
                                         r"their rows are unused\. Examples: line \d: 'Z'\."):
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
    with pytest.warns(DataWarning, match=r"e.csv: 2 (users|items) lost every interaction to cleaning"):
        data, report = load_interactions(path, rating="rating", return_report=True)
    assert len(data) == 1
    assert [i.examples for i in report.issues] == [("item 'B'", "item 'C'"), ("user 'u2'", "user 'u3'")]
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


# --------------------------------------------------------------- ids, bad lines, metadata matching
RATINGS = "userId,movieId,rating,timestamp\n" + "".join(
    f"{u},{m},{(u + m) % 10 / 2 + 0.5},{1000 + 10 * u + m}\n" for u in range(1, 6) for m in (1, 2, 50, 260))
MOVIES = ('movieId,title,genres\n1,Toy Story (1995),Animation\n2,Jumanji (1995),Adventure\n'
          '50,"Usual Suspects, The (1995)",Crime\n260,Star Wars (1977),Sci-Fi\n')
MOVIELENS = dict(user="userId", item="movieId", rating="rating", timestamp="timestamp")


def _files(tmp_path, ratings=RATINGS, movies=MOVIES):
    (tmp_path / "ratings.csv").write_text(ratings)
    (tmp_path / "movies.csv").write_text(movies)
    return tmp_path / "ratings.csv", tmp_path / "movies.csv"


def test_numeric_metadata_keys_match_numeric_ids(tmp_path):
    ratings, movies = _files(tmp_path)
    data = load_interactions(ratings, **MOVIELENS, items=movies, item_key="movieId")
    assert data.item_ids.tolist() == [1, 2, 50, 260] and data.item_ids.dtype == "int64"
    assert data.item_table["title"].tolist() == ["Toy Story (1995)", "Jumanji (1995)", "Usual Suspects, The (1995)",
                                                 "Star Wars (1977)"]


def test_garbage_id_is_an_error_naming_file_line_and_column(tmp_path):
    ratings, movies = _files(tmp_path, RATINGS.replace("3,50,", "3,abc,"))
    with pytest.raises(DataError, match=r"ratings.csv, line 12, column 'movieId': expected a whole-number id like the "
                                        r"other 19 ids of this column, got 'abc'\. If the ids are strings, pass "
                                        r"id_type='str'.*on_bad_lines='skip'"):
        load_interactions(ratings, **MOVIELENS, items=movies, item_key="movieId")


def test_garbage_id_skipped_counted_and_titles_still_match(tmp_path):
    ratings, movies = _files(tmp_path, RATINGS.replace("3,50,", "3,abc,"))
    with pytest.warns(DataWarning, match=r"ratings.csv: skipped 1 unreadable line \(on_bad_lines='skip'\)\. "
                                         r"Examples: line 12, column 'movieId': expected a whole-number id"):
        data, report = load_interactions(ratings, **MOVIELENS, items=movies, item_key="movieId",
                                         on_bad_lines="skip", return_report=True)
    assert report.summary()["skipped: bad lines"] == 1 and report.rows_in == 19 and len(data) == 19
    assert data.item_table["title"].notna().all() and data.item_ids.dtype == "int64"


def test_string_ids_on_request(tmp_path):
    ratings, movies = _files(tmp_path, RATINGS.replace("3,50,", "3,abc,"))
    with pytest.warns(DataWarning, match=r"1 of 5 items have no metadata row; all their fields are empty\. "
                                         r"Examples: item 'abc'\."):
        data = load_interactions(ratings, **MOVIELENS, items=movies, item_key="movieId", id_type="str")
    assert sorted(data.item_ids.tolist()) == ["1", "2", "260", "50", "abc"]
    assert data.item_table.set_index(data.item_ids)["title"]["260"] == "Star Wars (1977)"


def test_skip_counts_every_kind_of_bad_line_with_five_examples(tmp_path):
    lines = RATINGS.splitlines()
    lines[2] += ",extra"           # line 3: too many fields
    lines[4] = "2,1,five,1021"     # line 5: not a number
    lines[6] = "2,50,3.0,yesterday"  # line 7: not a time
    lines[8] = "3,x1,4.0,1031"     # line 9: an item id that is not a whole number
    lines[9] = "u3,2,4.0,1032"     # line 10: a user id likewise
    lines[11] += ",extra"          # line 12: too many fields
    ratings, _ = _files(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"ratings.csv, line 3: malformed line"):
        load_interactions(ratings, **MOVIELENS)
    with pytest.warns(DataWarning, match="skipped 6 unreadable lines"):
        data, report = load_interactions(ratings, **MOVIELENS, on_bad_lines="skip", return_report=True)
    issue = next(i for i in report.issues if i.key == "skipped: bad lines")
    assert issue.count == 6 and len(issue.examples) == 5 and len(data) == 14 and report.rows_in == 14
    assert issue.examples[:3] == ("line 3: expected 4 fields, saw 5",
                                  "line 5, column 'rating': expected a number, got 'five'",
                                  "line 7, column 'timestamp': expected a Unix time or an ISO date, got 'yesterday'")
    assert issue.examples[3].startswith("line 9, column 'movieId': expected a whole-number id like the other 17 ids")
    assert issue.examples[4].startswith("line 10, column 'userId'")  # line 12 is the sixth: counted, not shown


def test_bad_jsonl_line_skipped(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_text('{"user": "c1", "item": "A"}\n{"user": "c2", item: B}\n[1, 2]\n')
    with pytest.warns(DataWarning, match=r"skipped 2 unreadable lines.*line 2: not valid JSON.*line 3: expected a "
                                         r"JSON object per line, got list"):
        data = load_interactions(path, on_bad_lines="skip")
    assert len(data) == 1


def test_bad_on_bad_lines_and_rating_steps_without_ratings(tmp_path):
    ratings, _ = _files(tmp_path)
    with pytest.raises(ConfigError, match=r"The 'on_bad_lines' parameter of load_interactions must be one of "
                                          r"'error', 'skip'; got 'ignore'"):
        load_interactions(ratings, **MOVIELENS, on_bad_lines="ignore")
    with pytest.raises(ConfigError, match=r"The 'implicit_threshold' parameter of CleaningConfig needs ratings, but "
                                          r"load_interactions got no rating column; pass rating='COLUMN'"):
        load_interactions(ratings, user="userId", item="movieId", cleaning=CleaningConfig(implicit_threshold=4))
