"""MovieLens 100K and 1M loaders, in the official GroupLens layouts.

ML-1M's ratings may be the official ``ratings.dat`` (``UserID::MovieID::Rating::Timestamp``),
its ``.gz``, or a file without the timestamp field (``UserID::MovieID::Rating``); in the last
case ``Interactions.timestamps`` is ``None`` and temporal splits refuse with a clear error.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from lmrec.data.interactions import Interactions
from lmrec.data.reading import read_delimited
from lmrec.errors import DataError

ML1M_AGES = {1: "under 18", 18: "18-24", 25: "25-34", 35: "35-44", 45: "45-49", 50: "50-55", 56: "56+"}
ML1M_OCCUPATIONS = [
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
]
ML1M_RATINGS_FILES = ("ratings.dat", "ratings.dat.gz", "ratings_no_timestamp.dat.gz", "ratings_no_timestamp.dat")
ML100K_FILES = ("u.data", "u.item", "u.user", "u.genre")  # what load_ml100k reads
ML1M_FILES = ("ratings.dat (or ratings.dat.gz)", "movies.dat", "users.dat")  # what load_ml1m reads
_YEAR = re.compile(r"\((\d{4})\)\s*$")


def _ratings_frame(path: Path, sep: str) -> pd.DataFrame:
    frame = read_delimited(
        path, sep, ["user", "item", "rating", "timestamp"],
        numeric=["user", "item", "rating", "timestamp"], optional=["timestamp"],
    )
    for col in ("user", "item"):
        if frame[col].isna().any():
            row = int(np.flatnonzero(frame[col].isna().to_numpy())[0])
            raise DataError(f"missing {col} id.", path=path, line=int(frame["line"].iloc[row]), column=col)
    frame["user"] = frame["user"].astype(np.int64)
    frame["item"] = frame["item"].astype(np.int64)
    return frame


def _split_title(title: str) -> tuple[str, float]:
    m = _YEAR.search(title)
    return (title[: m.start()].strip(), float(m.group(1))) if m else (title.strip(), np.nan)


def load_ml100k(directory: str | Path) -> Interactions:
    """MovieLens 100K from ``u.data``, ``u.item`` (latin-1), ``u.user`` and ``u.genre``.

    Example
    -------
    >>> data = load_ml100k("../shared/datasets/ml-100k")  # doctest: +SKIP
    >>> data.n_users, data.n_items, len(data)
    (943, 1682, 100000)
    """
    d = Path(directory)
    ratings = _ratings_frame(d / "u.data", "\t")
    if "timestamp" not in ratings.columns:
        raise DataError("expected 4 tab-separated fields (user, item, rating, timestamp).", path=d / "u.data")
    genres = [g for g in (d / "u.genre").read_text(encoding="latin-1").splitlines() if g.strip()]
    genre_names = [g.split("|")[0] for g in genres]
    item_cols = ["item", "raw_title", "release_date", "video_release_date", "url", *genre_names]
    items = read_delimited(d / "u.item", "|", item_cols, encoding="latin-1", numeric=["item"])
    flags = items[genre_names].to_numpy() == "1"
    titles = items["raw_title"].map(_split_title)
    item_table = pd.DataFrame({
        "item": items["item"].astype(np.int64),
        "title": [t for t, _ in titles],
        "year": [y for _, y in titles],
        "genres": [", ".join(g for g, f in zip(genre_names, row) if f) for row in flags],
        "release_date": items["release_date"],
    })
    users = read_delimited(d / "u.user", "|", ["user", "age", "gender", "occupation", "zip"], numeric=["user", "age"])
    user_table = users.drop(columns=["line"]).assign(user=lambda f: f["user"].astype(np.int64))
    return Interactions.from_frame(
        ratings, item_table=item_table, user_table=user_table, name="ml-100k", source=str(d / "u.data")
    )


def find_ml1m_ratings(directory: Path) -> Path:
    """The ratings file of an ML-1M folder, official name first."""
    for name in ML1M_RATINGS_FILES:
        if (directory / name).exists():
            return directory / name
    raise DataError(f"no ratings file found; expected one of {', '.join(ML1M_RATINGS_FILES)}.", path=directory)


def load_ml1m(directory: str | Path, ratings_file: str | Path | None = None) -> Interactions:
    """MovieLens 1M from ``ratings.dat`` (or a named ratings file), ``movies.dat``, ``users.dat``.

    Parameters
    ----------
    ratings_file:
        A file name inside ``directory`` or a path; by default the first of
        ``ratings.dat``, ``ratings.dat.gz``, ``ratings_no_timestamp.dat.gz`` found.
    """
    d = Path(directory)
    path = find_ml1m_ratings(d) if ratings_file is None else (d / ratings_file if not Path(ratings_file).is_absolute() else Path(ratings_file))
    ratings = _ratings_frame(path, "::")
    movies = read_delimited(d / "movies.dat", "::", ["item", "raw_title", "genres"], encoding="latin-1", numeric=["item"])
    titles = movies["raw_title"].map(_split_title)
    item_table = pd.DataFrame({
        "item": movies["item"].astype(np.int64),
        "title": [t for t, _ in titles],
        "year": [y for _, y in titles],
        "genres": movies["genres"].str.replace("|", ", ", regex=False),
    })
    users = read_delimited(d / "users.dat", "::", ["user", "gender", "age", "occupation", "zip"],
                           numeric=["user", "age", "occupation"])
    user_table = pd.DataFrame({
        "user": users["user"].astype(np.int64),
        "gender": users["gender"],
        "age": users["age"].map(ML1M_AGES),
        "occupation": users["occupation"].map(lambda o: ML1M_OCCUPATIONS[int(o)] if 0 <= o < 21 else "other"),
        "zip": users["zip"],
    })
    return Interactions.from_frame(ratings, item_table=item_table, user_table=user_table, name="ml-1m", source=str(path))
