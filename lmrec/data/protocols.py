"""The named evaluation protocols of PROTOCOLS.md, P1-P5, by name.

>>> split = get_protocol("ml1m-random", data_dir="../shared/datasets", seed=2026)  # doctest: +SKIP
>>> split.counts()["train"]
666764
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lmrec.data.cleaning import CleaningConfig, clean_interactions
from lmrec.data.datasets import load_dataset
from lmrec.data.splits import (Split, cold_item_split, global_temporal_split, leave_last_out, random_split,
                               temporal_split)
from lmrec.errors import DataError

DataDir = str | Path | None


def _ml1m_random(data_dir: DataDir, seed: int, download: bool) -> Split:
    data = load_dataset("ml-1m", data_dir, download=download, ratings_file=_ml1m_file(data_dir, download, timed=False))
    data, _ = clean_interactions(data, CleaningConfig(implicit_threshold=3, dedupe="none"))
    return random_split(data, (0.8, 0.1, 0.1), seed=seed, protocol="ml1m-random")


def _ml1m_file(data_dir: DataDir, download: bool, *, timed: bool) -> str | None:
    from lmrec.data.datasets import dataset_path

    d = dataset_path("ml-1m", data_dir, download=download)
    if (d / "ratings.dat").exists():
        return None  # the official file has everything
    name = "ratings_users0001-2999.dat.gz" if timed else "ratings_no_timestamp.dat.gz"
    return name if (d / name).exists() else None


def _scientific_loo(data_dir: DataDir, seed: int, download: bool) -> Split:
    data = load_dataset("amazon-scientific", data_dir)
    return leave_last_out(data, 1, 1, dedupe_train=True, protocol="scientific-loo")


def _ml100k_temporal(data_dir: DataDir, seed: int, download: bool) -> Split:
    data = load_dataset("ml-100k", data_dir, download=download)
    return temporal_split(data, (0.8, 0.1, 0.1), protocol="ml100k-temporal")


def _scientific_cold(data_dir: DataDir, seed: int, download: bool) -> Split:
    data = load_dataset("amazon-scientific", data_dir)
    return cold_item_split(data, 0.2, seed=seed, protocol="scientific-cold")


def _ml1m_time(data_dir: DataDir, seed: int, download: bool) -> Split:
    data = load_dataset("ml-1m", data_dir, download=download, ratings_file=_ml1m_file(data_dir, download, timed=True))
    if data.user_ids.max() > 2999 and data.timestamps is not None:  # official full file: keep users 1-2999
        data = data.subset(data.user_ids[data.users] <= 2999).compact()
    return global_temporal_split(data, (0.8, 0.1, 0.1), protocol="ml1m-time")


@dataclass(frozen=True)
class Protocol:
    code: str
    build: Callable[[DataDir, int, bool], Split]
    description: str


PROTOCOLS: dict[str, Protocol] = {
    "ml1m-random": Protocol("P1", _ml1m_random, "ML-1M ratings >= 3, per-user random 80/10/10"),
    "scientific-loo": Protocol("P2", _scientific_loo, "Amazon Scientific, leave-one-out sequences (UniSRec)"),
    "ml100k-temporal": Protocol("P3", _ml100k_temporal, "ML-100K, per-user temporal 80/10/10"),
    "scientific-cold": Protocol("P4", _scientific_cold, "Amazon Scientific, 20% of items cold (test only)"),
    "ml1m-time": Protocol("P5", _ml1m_time, "ML-1M users 1-2999, global temporal 80/10/10"),
}
"""The evaluation protocols P1-P5 by name (``"ml1m-random"``, ...); ``get_protocol`` accepts the name or the P-number."""
_BY_CODE = {p.code: name for name, p in PROTOCOLS.items()}


def protocol_name(name: str) -> str:
    """Canonical protocol name for a name or code ("P1" -> "ml1m-random")."""
    name = _BY_CODE.get(name.upper(), name) if name else name
    if name not in PROTOCOLS:
        supported = ", ".join(f"{n} ({p.code})" for n, p in PROTOCOLS.items())
        raise DataError(f"unknown protocol '{name}'; supported: {supported}.")
    return name


def get_protocol(name: str, data_dir: DataDir = None, seed: int = 2026, *, download: bool = False) -> Split:
    """Build the split of a named protocol (name or code P1-P5), checked for leakage."""
    canon = protocol_name(name)
    split = PROTOCOLS[canon].build(data_dir, seed, download)
    split.extra["code"] = PROTOCOLS[canon].code
    split.check_leakage()
    return split
