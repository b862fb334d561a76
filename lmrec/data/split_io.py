"""Saving and loading a :class:`Split` as a directory: card.json, arrays, id maps, tables.

Layout::

    split/
      manifest.json     kind "split", format version, the protocol card
      split.safetensors train/valid/test users, items, ratings, timestamps; cold items
      ids.json          raw user and item ids, in index order
      items.json        item table (pandas "split" orientation), users.json likewise
      cleaning.csv      the rows cleaning changed, when a CleaningReport is given
"""
from __future__ import annotations

from dataclasses import fields
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd

from lmrec.data.interactions import Interactions
from lmrec.data.report import CleaningReport
from lmrec.data.splits import Split
from lmrec.errors import ArtifactError
from lmrec.storage.artifacts import (FORMAT_VERSION, atomic_directory, ids_from_json, ids_to_json,
                                     load_arrays, read_json, read_manifest, save_arrays, write_json)

PARTS = ("train", "valid", "test")


def save_split(split: Split, directory: str | Path, *, report: CleaningReport | None = None) -> Path:
    """Write ``split`` to ``directory`` atomically; returns the directory.

    With ``report``, its row changes are written to ``cleaning.csv`` beside the card (put its
    ``summary()`` in ``split.extra`` to have the counts in the card).
    """
    arrays: dict[str, np.ndarray] = {}
    for name in PARTS:
        part: Interactions = getattr(split, name)
        arrays[f"{name}.users"] = part.users
        arrays[f"{name}.items"] = part.items
        arrays[f"{name}.ratings"] = part.ratings
        if part.timestamps is not None:
            arrays[f"{name}.timestamps"] = part.timestamps
    if split.cold_items is not None:
        arrays["cold_items"] = split.cold_items.astype(np.int64)
    with atomic_directory(directory) as tmp:
        save_arrays(tmp / "split.safetensors", arrays)
        write_json(tmp / "ids.json", {"users": ids_to_json(split.train.user_ids),
                                      "items": ids_to_json(split.train.item_ids)})
        (tmp / "items.json").write_text(split.train.item_table.to_json(orient="split", index=False))
        (tmp / "users.json").write_text(split.train.user_table.to_json(orient="split", index=False))
        write_json(tmp / "manifest.json", {"format_version": FORMAT_VERSION, "kind": "split", "card": split.card()})
        if report is not None:
            report.save(tmp / "cleaning.csv")
    return Path(directory)


def load_split(directory: str | Path) -> Split:
    """Read a split written by :func:`save_split`; checks the counts against the card."""
    d = Path(directory)
    card = read_manifest(d, kind="split")["card"]
    arrays = load_arrays(d / "split.safetensors")
    ids = read_json(d / "ids.json")
    user_ids, item_ids = ids_from_json(ids["users"]), ids_from_json(ids["items"])
    item_table = _table(d / "items.json", len(item_ids))
    user_table = _table(d / "users.json", len(user_ids))
    parts = {}
    for name in PARTS:
        try:
            parts[name] = Interactions(
                users=arrays[f"{name}.users"], items=arrays[f"{name}.items"], ratings=arrays[f"{name}.ratings"],
                timestamps=arrays.get(f"{name}.timestamps"), user_ids=user_ids, item_ids=item_ids,
                item_table=item_table, user_table=user_table, name=card["dataset"])
        except KeyError as exc:
            raise ArtifactError(f"{d}/split.safetensors lacks array {exc}; the file is incomplete.") from None
        if len(parts[name]) != card["counts"][name]:
            raise ArtifactError(f"{d}: {name} has {len(parts[name])} interactions but the card says "
                                f"{card['counts'][name]}; the split is corrupt.")
    known = {f.name for f in fields(Split)}
    extra = {k: v for k, v in card.items() if k not in known and k not in ("dataset", "counts", "cold_items")}
    return Split(**parts, protocol=card["protocol"], seed=card["seed"], kind=card["kind"],
                 test_history=card["test_history"], cold_items=arrays.get("cold_items"),
                 eval_requires_history=card["eval_requires_history"], fingerprint=card["fingerprint"],
                 extra=extra)


def _table(path: Path, n: int) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame(index=pd.RangeIndex(n))
    table = pd.read_json(StringIO(path.read_text()), orient="split", dtype=False)
    return table if len(table.columns) else pd.DataFrame(index=pd.RangeIndex(n))
