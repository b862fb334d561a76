"""Metadata files matched to the interactions: every mismatch and empty field is counted and warned."""
from __future__ import annotations

import warnings

import pytest

from lmrec.data import CleaningConfig, load_interactions
from lmrec.data.report import DataWarning
from lmrec.errors import DataError

RATINGS = "user,item,rating\n" + "".join(f"u{u},{i},{r}\n" for u, i, r in [
    (1, 1, 5), (1, 2, 4), (1, 3, 2), (2, 1, 4), (2, 4, 1), (3, 2, 5), (3, 5, 3)])


def _load(tmp_path, movies: str, **kw):
    (tmp_path / "r.csv").write_text(RATINGS)
    (tmp_path / "m.csv").write_text(movies)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data, report = load_interactions(tmp_path / "r.csv", rating="rating", items=tmp_path / "m.csv",
                                         return_report=True, **kw)
    return data, report, [str(w.message) for w in caught if w.category is DataWarning]


def test_empty_text_fields_counted_with_lines(tmp_path):
    movies = "item,title,genres\n1,Heat,Crime\n2,,Drama\n3,Alien\n4,  ,\n5,Up,Animation\n"  # line 4 is truncated
    data, report, warned = _load(tmp_path, movies)
    assert report.summary()["item metadata: empty 'title'"] == 2
    assert report.summary()["item metadata: empty 'genres'"] == 2
    assert any(m.endswith("m.csv (item metadata): 'genres' is missing or empty in 2 of 5 rows; texts built from it "
                          "leave it out. Examples: line 4; line 5.") for m in warned)
    assert data.item_table["title"].iloc[0] == "Heat" and data.item_table["title"].isna().iloc[1]


def test_rows_without_key_repeated_and_unmatched_keys(tmp_path):
    movies = "item,title\n1,Heat\n,Ghost row\n2,Alien\n2,Alien again\n3,Up\n4,Big\n5,Jaws\n99,Unrated\nx7,Typo\n"
    data, report, warned = _load(tmp_path, movies)
    summary = report.summary()
    assert summary["item metadata: rows without a key"] == 1
    assert summary["item metadata: repeated keys (kept the first)"] == 1
    assert summary["item metadata: keys not whole numbers"] == 1
    assert summary["item metadata: keys matching no interaction"] == 1
    assert any("1 rows have no 'item' value and were ignored. Examples: line 3." in m for m in warned)
    assert any("1 of 6 'item' values match no item of the interactions; their rows are unused. Examples: line 9: 99."
               in m for m in warned)
    assert any("'item' values are not whole numbers like the interactions' item ids, so they match nothing. "
               "Examples: line 10: 'x7'." in m for m in warned)
    assert data.item_table["title"].tolist() == ["Heat", "Alien", "Up", "Big", "Jaws"]


def test_items_without_a_row(tmp_path):
    _, report, warned = _load(tmp_path, "item,title\n1,Heat\n2,Alien\n3,Up\n")
    assert report.summary()["item metadata: items without a row"] == 2
    assert any("2 of 5 items have no metadata row; all their fields are empty. Examples: item 4; item 5." in m
               for m in warned)


def test_items_dropped_from_the_catalogue(tmp_path):
    movies = "item,title\n1,Heat\n2,Alien\n3,Up\n4,Big\n5,Jaws\n"
    data, report, warned = _load(tmp_path, movies, cleaning=CleaningConfig(implicit_threshold=4))
    assert data.item_ids.tolist() == [1, 2]
    assert report.summary()["catalogue: items left without interactions"] == 3
    assert any("r.csv: 3 items lost every interaction to cleaning and left the catalogue" in m
               and m.endswith("Examples: item 3; item 4; item 5.") for m in warned)
    assert "item metadata: keys matching no interaction" not in report.summary()  # they had ratings


def test_no_key_matches_is_an_error(tmp_path):
    with pytest.raises(DataError, match=r"m.csv, column 'item': none of the 2 'item' values matches an? item id of the "
                                        r"interactions \(keys look like 'tt01', 'tt02'; item ids like 1, 2, 3\); "
                                        r"check the key column"):
        _load(tmp_path, "item,title\ntt01,Heat\ntt02,Alien\n")


def test_string_ids_keep_metadata_as_strings(tmp_path):
    data, report, _ = _load(tmp_path, "item,title\n1,Heat\n2,Alien\n3,Up\n4,Big\n5,Jaws\n", id_type="str")
    assert data.item_ids.tolist() == ["1", "2", "3", "4", "5"]
    assert data.item_table["title"].tolist() == ["Heat", "Alien", "Up", "Big", "Jaws"] and not report.issues
