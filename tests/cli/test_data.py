"""`lmrec data info|prepare` on your own files, and the "Your own data" walkthrough run as written."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lmrec.cli import main
from lmrec.data import load_split
from tests.markdown_blocks import blocks, lmrec_commands, run_python, section_blocks

MAP = ["--user", "userId", "--item", "movieId", "--rating", "rating", "--timestamp", "timestamp"]
ITEMS = ["--items", "data/movies.csv", "--item-fields", "title", "genres"]


def run(args, capsys) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def movielens(tmp_path, monkeypatch) -> Path:
    """A small MovieLens release in tmp_path/data (half-star ratings, a title with a comma, one movie
    without ratings, one without genres); the working directory is tmp_path."""
    rng = np.random.default_rng(7)
    data = tmp_path / "data"
    data.mkdir()
    rows = ["userId,movieId,rating,timestamp"]
    for user in range(1, 41):
        for movie in rng.choice(np.arange(1, 31), size=10, replace=False):
            rows.append(f"{user},{movie},{rng.integers(1, 11) / 2:.1f},{964982000 + 100 * user + int(movie)}")
    (data / "ratings.csv").write_text("\n".join(rows) + "\n")
    movies = ["movieId,title,genres"] + [f"{m},Movie {m} ({1980 + m}),Drama|Comedy" for m in range(1, 32)]
    movies[5] = '5,"Heat, Director\'s Cut (1995)",'
    (data / "movies.csv").write_text("\n".join(movies) + "\n")
    monkeypatch.chdir(tmp_path)
    return data


def test_info_without_mapping_shows_columns_and_a_hint(movielens, capsys):
    code, out, err = run(["data", "info", "data/ratings.csv"], capsys)
    overview = json.loads(out)
    assert code == 0 and overview["rows"] == 400 and list(overview["columns"]) == ["userId", "movieId", "rating",
                                                                                  "timestamp"]
    assert "lmrec data info data/ratings.csv --user userId --item movieId --rating rating --timestamp timestamp" in err


def test_info_with_mapping_counts_and_warnings(movielens, capsys):
    code, out, err = run(["data", "info", "data/ratings.csv", *MAP, *ITEMS], capsys)
    info = json.loads(out)
    assert code == 0 and info["interactions"] == 400 and info["users"] == 40 and info["items"] == 30
    assert info["item_fields"] == ["title", "genres"]
    assert info["cleaning"]["item metadata: keys matching no interaction"] == 1  # movie 31
    assert info["cleaning"]["item metadata: empty 'genres'"] == 1
    assert "lmrec: warning: data/movies.csv (item metadata): 'genres' is missing or empty in 1 of 30 rows" in err


@pytest.mark.parametrize("split, extra", [("random", []), ("temporal", ["--valid", "0.2", "--test", "0.1"]),
                                          ("loo", []), ("global-temporal", []), ("cold", ["--test", "0.1"])])
def test_prepare_writes_a_split_that_loads_back(movielens, capsys, split, extra):
    code, out, err = run(["data", "prepare", "data/ratings.csv", "--out", "splits/mine", *MAP, *ITEMS,
                          "--implicit-threshold", "3.5", "--split", split, *extra], capsys)
    assert code == 0 and "split written to splits/mine" in out
    loaded = load_split("splits/mine")
    card = json.loads(Path("splits/mine/manifest.json").read_text())["card"]
    assert card["split"] == split and card["source"]["items"] == "data/movies.csv"
    assert card["cleaning_config"]["implicit_threshold"] == 3.5
    assert card["cleaning"]["rows_in"] == 400 and card["cleaning"]["rows_out"] == sum(loaded.counts()[p] for p in
                                                                                      ("train", "valid", "test"))
    assert any("'genres' is missing or empty" in m for m in card["issues"])
    assert loaded.train.item_table.loc[loaded.train.item_index([5])[0], "title"] == "Heat, Director's Cut (1995)"
    assert Path("splits/mine/cleaning.csv").read_text().startswith("line,user,item,action,reason,old,new")


def test_prepare_mixed_ids_error_and_skip(movielens, capsys):
    text = (movielens / "ratings.csv").read_text().splitlines()
    text[3] = "1,abc,4.0,964982111"
    (movielens / "ratings.csv").write_text("\n".join(text) + "\n")
    code, _, err = run(["data", "prepare", "data/ratings.csv", "--out", "s", *MAP], capsys)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("lmrec: error: data/ratings.csv, line 4, column 'movieId': expected a whole-number id")
    code, out, err = run(["data", "prepare", "data/ratings.csv", "--out", "s", *MAP, *ITEMS, "--on-bad-lines", "skip"],
                         capsys)
    assert code == 0 and load_split("s").card()["cleaning"]["skipped: bad lines"] == 1
    assert "lmrec: warning: data/ratings.csv: skipped 1 unreadable line" in err


@pytest.mark.parametrize("args, message", [
    (["data", "info", "nothing.csv"], "'nothing.csv' is neither a built-in dataset (ml-100k, ml-1m, amazon-scientific) "
                                      "nor a file of yours: it is not an existing file."),
    (["data", "prepare", "P9", "--out", "s"], "'P9' is neither a built-in protocol (ml1m-random (P1), "),
    (["data", "prepare", "data", "--out", "s"], "it is a directory, not a file."),
    (["data", "prepare", "P3", "--out", "s", "--user", "u", "--split", "loo"],
     "--user, --split apply to your own files, not to the built-in 'P3'; remove them or give a file path."),
    (["data", "prepare", "data/ratings.csv", "--out", "s", *MAP, "--valid", "0.5", "--test", "0.5"],
     "--valid and --test must be shares >= 0 whose sum is below 1; got 0.5 and 0.5."),
    (["data", "prepare", "data/ratings.csv", "--out", "s", *MAP, "--split", "loo", "--test", "0.5"],
     "with --split loo, --valid and --test are interactions per user (whole numbers >= 0); got 1 and 0.5."),
    (["data", "info", "data/ratings.csv", "--user", "userId", "--item", "movie"],
     "missing column 'movie' (mapped to item); the file has columns ['userId', 'movieId', 'rating', 'timestamp']"),
])
def test_errors_name_what_was_expected(movielens, capsys, args, message):
    code, _, err = run(args, capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith("lmrec: error: ") and message in err


def test_builtin_names_keep_their_meaning(data_dir, tmp_path, capsys):
    code, out, _ = run(["data", "info", "ml-100k", "--data-dir", str(data_dir)], capsys)
    assert code == 0 and json.loads(out)["interactions"] == 100000
    code, out, _ = run(["data", "prepare", "p3", "--out", str(tmp_path / "p3"), "--data-dir", str(data_dir)], capsys)
    assert code == 0 and load_split(tmp_path / "p3").counts()["test"] == 10439


@pytest.mark.filterwarnings("ignore::lmrec.data.report.DataWarning")  # the fixture's known gaps, asserted above
def test_own_data_walkthrough_runs_as_written(movielens, capsys):
    """docs/guides/own-data.md, commands and Python, run as written (tests/markdown_blocks.py reads
    every page's blocks); the README's short version must use only commands of the guide."""
    guide = blocks("docs/guides/own-data.md")
    commands = [c for b in guide if b.lang == "bash" for c in lmrec_commands(b)]
    assert [c[:2] for c in commands] == [["data", "info"], ["data", "info"], ["data", "prepare"],
                                         ["train", "ease:lam=200"], ["train", "lm-ranker:preset=sequential"],
                                         ["evaluate", "models/mine-lm"], ["compare", "--split"],
                                         ["publish", "models/mine-lm"], ["serve", "store/"]]
    readme = [c for b in section_blocks("README.md", "## Your own data") if b.lang == "bash"
              for c in lmrec_commands(b)]
    assert readme and all(c in commands for c in readme), "README's 'Your own data' strays from the guide"
    for argv in commands[:-1]:  # not serve: the server runs until stopped
        code, out, err = run(argv, capsys)
        assert code == 0, (argv, err)
    assert load_split("splits/mine").counts()["users"] == 40 and Path("models/mine/manifest.json").exists()
    assert Path("reports/mine/report.md").exists() and Path("store/CURRENT").exists()
    scope = run_python(guide)
    assert scope["report"].summary()["rows_in"] == 400 and len(scope["split"].test) > 0
