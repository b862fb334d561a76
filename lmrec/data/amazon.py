"""Amazon datasets in the UniSRec layout (``*.train/valid/test.inter``, ``*.text``, ``*2index``).

The ``.inter`` files store, per user, one training row for every prefix of the training
sequence (histories cut to their last 50 items), plus one validation and one test row.
The loader rebuilds each user's full chronological sequence: the shortest history's item,
then every training target in order, then the validation and the test target. The position
in that sequence is kept as the timestamp, so leave-last-out reproduces UniSRec's split.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lmrec.data.interactions import Interactions
from lmrec.data.reading import read_delimited
from lmrec.errors import DataError

# what load_unisrec reads; "*" is the dataset's file name prefix (e.g. "Scientific")
UNISREC_FILES = ("*.train.inter", "*.valid.inter", "*.test.inter", "*.text", "*.user2index", "*.item2index")


def _find_prefix(d: Path) -> str:
    hits = sorted(p.name[: -len(".train.inter")] for p in d.glob("*.train.inter"))
    if len(hits) != 1:
        raise DataError(f"expected exactly one '*.train.inter' file, found {len(hits)}.", path=d)
    return hits[0]


def _inter(path: Path) -> pd.DataFrame:
    frame = read_delimited(path, "\t", ["user", "history", "target"], header=True, numeric=["user", "target"])
    if frame[["user", "target"]].isna().any().any():
        row = int(np.flatnonzero(frame[["user", "target"]].isna().any(axis=1).to_numpy())[0])
        raise DataError("missing user or target.", path=path, line=int(frame["line"].iloc[row]))
    return frame.astype({"user": np.int64, "target": np.int64})


def read_unisrec_sequences(directory: str | Path) -> tuple[str, dict[int, list[int]]]:
    """(dataset prefix, {user index: full chronological item-index sequence})."""
    d = Path(directory)
    prefix = _find_prefix(d)
    train = _inter(d / f"{prefix}.train.inter")
    valid = _inter(d / f"{prefix}.valid.inter")
    test = _inter(d / f"{prefix}.test.inter")
    seqs: dict[int, list[int]] = {}
    # rows are longest-first per user: walk the file backwards, shortest history first
    for user, hist, target in zip(train["user"].to_numpy()[::-1], train["history"].to_numpy()[::-1],
                                  train["target"].to_numpy()[::-1]):
        if user not in seqs:
            seqs[user] = [int(x) for x in hist.split()]
        seqs[user].append(int(target))
    for frame, stage in ((valid, "valid"), (test, "test")):
        for user, target, line in zip(frame["user"], frame["target"], frame["line"]):
            if user not in seqs:
                raise DataError(f"user {user} has a {stage} row but no training rows.",
                                path=d / f"{prefix}.{stage}.inter", line=int(line))
            seqs[int(user)].append(int(target))
    return prefix, seqs


def load_unisrec(directory: str | Path, name: str | None = None) -> Interactions:
    """An Amazon dataset in the UniSRec layout, indices as in ``user2index`` / ``item2index``.

    The item table has ``asin`` and ``text`` ("title. categories. brand."), plus ``title`` (the
    text up to the first ". "), so templates can use either.
    """
    d = Path(directory)
    prefix, seqs = read_unisrec_sequences(d)
    umap = read_delimited(d / f"{prefix}.user2index", "\t", ["raw", "index"], numeric=["index"])
    imap = read_delimited(d / f"{prefix}.item2index", "\t", ["raw", "index"], numeric=["index"])
    user_ids = umap.sort_values("index")["raw"].to_numpy(dtype=object)
    item_ids = imap.sort_values("index")["raw"].to_numpy(dtype=object)
    if not np.array_equal(np.sort(imap["index"].to_numpy()), np.arange(len(imap))):
        raise DataError("item indices must be 0..n-1 without gaps.", path=d / f"{prefix}.item2index")
    texts = read_delimited(d / f"{prefix}.text", "\t", ["asin", "text"], header=True)
    text_by_asin = dict(zip(texts["asin"], texts["text"].str.strip()))
    item_text = [text_by_asin.get(a, "") for a in item_ids]
    item_table = pd.DataFrame({
        "asin": item_ids,
        "text": item_text,
        "title": [t.split(". ")[0] for t in item_text],
    })
    users = np.concatenate([np.full(len(s), u, dtype=np.int64) for u, s in sorted(seqs.items())])
    items = np.concatenate([np.asarray(s, dtype=np.int64) for _, s in sorted(seqs.items())])
    pos = np.concatenate([np.arange(len(s), dtype=np.int64) for _, s in sorted(seqs.items())])
    return Interactions(
        users=users, items=items, ratings=np.ones(len(users), dtype=np.float32), timestamps=pos,
        user_ids=user_ids, item_ids=item_ids, item_table=item_table,
        user_table=pd.DataFrame(index=pd.RangeIndex(len(user_ids))), name=(name or prefix).lower(),
    )
