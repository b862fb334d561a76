"""Named datasets: where they live, how they load, and the data directory resolution.

Resolution order for the data directory: the explicit argument, then ``LMREC_DATA_DIR``,
then the user cache (``~/.cache/lmrec``). A MovieLens dataset found in neither the data
directory nor the cache is downloaded into the cache when ``download=True``, from GroupLens or
from the mirror ``LMREC_DATA_MIRROR`` names (whose own ``<archive>.md5`` is then trusted).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lmrec.data.amazon import load_unisrec
from lmrec.data.download import ARCHIVES, download_dataset
from lmrec.data.interactions import Interactions
from lmrec.data.movielens import load_ml1m, load_ml100k
from lmrec.errors import DataError



def user_cache() -> Path:
    """``~/.cache/lmrec`` of the current user (read at call time, so a changed HOME counts)."""
    return Path.home() / ".cache" / "lmrec"


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset: its folder under the data directory and its loader."""

    folder: str
    loader: Callable[..., Interactions]
    description: str


DATASETS: dict[str, DatasetSpec] = {
    "ml-100k": DatasetSpec("ml-100k", load_ml100k, "MovieLens 100K: 100,000 ratings, 943 users, 1,682 movies"),
    "ml-1m": DatasetSpec("ml-1m", load_ml1m, "MovieLens 1M: 1,000,209 ratings, 6,040 users, 3,706 movies"),
    "amazon-scientific": DatasetSpec("amazon-scientific-unisrec", load_unisrec,
                                     "Amazon 2018 Industrial & Scientific 5-core (UniSRec files)"),
}


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """The explicit ``data_dir``, else ``$LMREC_DATA_DIR``, else ``~/.cache/lmrec``."""
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get("LMREC_DATA_DIR")
    return Path(env) if env else user_cache()


def dataset_path(name: str, data_dir: str | Path | None = None, *, download: bool = False) -> Path:
    """Folder of dataset ``name``: in the data directory, else in the user cache, else (when
    ``download``) the official MovieLens archive fetched and checked into the cache."""
    spec = _spec(name)
    root = resolve_data_dir(data_dir)
    path = root / spec.folder
    cached = user_cache() / spec.folder
    for candidate in (path, cached):
        if candidate.is_dir():
            return candidate
    if download and name in ARCHIVES:
        return download_dataset(name, user_cache(), base_url=os.environ.get("LMREC_DATA_MIRROR") or None)
    hint = " (pass download=True / --download to fetch it)" if name in ARCHIVES else ""
    raise DataError(f"dataset '{name}' not found; expected folder {path} or {cached}{hint}. "
                    "Set LMREC_DATA_DIR or pass data_dir.", path=path)


def load_dataset(name: str, data_dir: str | Path | None = None, *, download: bool = False, **kwargs: object) -> Interactions:
    """Load a named dataset.

    Example
    -------
    >>> data = load_dataset("ml-100k", "../shared/datasets")  # doctest: +SKIP
    """
    return _spec(name).loader(dataset_path(name, data_dir, download=download), **kwargs)


def _spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise DataError(f"unknown dataset '{name}'; supported: {', '.join(DATASETS)}.")
    return DATASETS[name]
