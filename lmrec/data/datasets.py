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

from lmrec.data.amazon import UNISREC_FILES, load_unisrec
from lmrec.data.download import ARCHIVES, GROUPLENS, download_dataset
from lmrec.data.interactions import Interactions
from lmrec.data.movielens import ML1M_FILES, ML100K_FILES, load_ml1m, load_ml100k
from lmrec.errors import DataError



DATA_DIR_ENV = "LMREC_DATA_DIR"
MIRROR_ENV = "LMREC_DATA_MIRROR"


def user_cache() -> Path:
    """``~/.cache/lmrec`` of the current user (read at call time, so a changed HOME counts)."""
    return Path.home() / ".cache" / "lmrec"


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset: its folder under the data directory and its loader."""

    folder: str
    loader: Callable[..., Interactions]
    description: str
    files: tuple[str, ...] = ()  # what the loader reads in the folder ("*" stands for a file name prefix)


DATASETS: dict[str, DatasetSpec] = {
    "ml-100k": DatasetSpec("ml-100k", load_ml100k, "MovieLens 100K: 100,000 ratings, 943 users, 1,682 movies",
                           ML100K_FILES),
    "ml-1m": DatasetSpec("ml-1m", load_ml1m, "MovieLens 1M: 1,000,209 ratings, 6,040 users, 3,706 movies",
                         ML1M_FILES),
    "amazon-scientific": DatasetSpec("amazon-scientific-unisrec", load_unisrec,
                                     "Amazon 2018 Industrial & Scientific 5-core (UniSRec files)", UNISREC_FILES),
}
"""The built-in datasets by name (``"ml-100k"``, ``"ml-1m"``, ``"amazon-scientific"``, ...): folder, loader, description."""


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """The explicit ``data_dir``, else ``$LMREC_DATA_DIR``, else ``~/.cache/lmrec``."""
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get(DATA_DIR_ENV)
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
        try:
            return download_dataset(name, user_cache(), base_url=os.environ.get(MIRROR_ENV) or None)
        except DataError as exc:
            raise DataError(f"{exc} {what_to_do(name, data_dir)}.") from None
    hint = " (pass download=True / --download to fetch it)" if name in ARCHIVES else ""
    raise DataError(f"dataset '{name}' not found; expected folder {path} or {cached}{hint}. "
                    f"{what_to_do(name, data_dir)}.")


def what_to_do(name: str, data_dir: str | Path | None = None) -> str:
    """How to give lmrec dataset ``name`` by hand: the folder, the files it must hold, the settings."""
    spec = _spec(name)
    root = resolve_data_dir(data_dir)
    source = ("data_dir, --data-dir" if data_dir is not None else f"from ${DATA_DIR_ENV}"
              if os.environ.get(DATA_DIR_ENV) else f"{DATA_DIR_ENV} is not set: the user cache")
    files = ", ".join(spec.files)
    text = (f"What to do: put the dataset's files ({files}) in {root / spec.folder}/ ({source}), or point "
            f"{DATA_DIR_ENV} (or --data-dir) at a folder holding {spec.folder}/ with them, or put them in the "
            f"cache folder {user_cache() / spec.folder}/")
    if name in ARCHIVES:
        archive = ARCHIVES[name].filename
        text += (f"; the official archive is {GROUPLENS}{archive} (unzipped, its {spec.folder}/ folder is what is "
                 f"needed); {MIRROR_ENV}=URL downloads it from a mirror serving {archive} and {archive}.md5")
    return text


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
