"""Interactions read from Parquet/Arrow datasets in record batches (out of core).

A dataset is a file or a folder of files (``pyarrow.dataset``: hive partitions welcome). It is
read twice, a batch at a time: once for the distinct user and item ids (Arrow's ``unique``,
merged batch by batch), once to turn each batch's ids into dense indices (Arrow's ``index_in``
against the sorted ids) written straight into preallocated numpy arrays. No step makes a Python
object per row, and apart from the output arrays (28 bytes per interaction with a timestamp)
memory is one batch plus the distinct ids. Ids are indexed in ascending order, as
:meth:`Interactions.from_frame` does, so both give the same :class:`Interactions`.

Example
-------
>>> data = scan_parquet("events/", user="user_id", item="sku", timestamp="ts")  # doctest: +SKIP
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from lmrec.data.interactions import Interactions, align_table
from lmrec.errors import DataError

BATCH_ROWS = 1_000_000


def _dataset(source: str | Path):  # type: ignore[no-untyped-def]
    import pyarrow.dataset as ds

    path = Path(source)
    if not path.exists():
        raise DataError("no such file or folder.", path=path)
    try:
        return ds.dataset(str(path), format="parquet")
    except Exception as exc:  # pyarrow raises several types for a broken or foreign file
        raise DataError(f"not a readable Parquet dataset ({exc}).", path=path) from None


def _batches(dataset, columns: list[str], batch_rows: int, desc: str, show: bool) -> Iterator:  # type: ignore[no-untyped-def]
    total = dataset.count_rows()
    with tqdm(total=total, desc=desc, unit="rows", disable=not show, leave=False) as bar:
        for batch in dataset.to_batches(columns=columns, batch_size=batch_rows):
            bar.update(batch.num_rows)
            yield batch


def _distinct(dataset, column: str, batch_rows: int, show: bool, path: str | Path):  # type: ignore[no-untyped-def]
    """The sorted distinct non-null values of ``column`` (an Arrow array)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    seen = None
    for batch in _batches(dataset, [column], batch_rows, f"ids of {column}", show):
        values = batch.column(0)
        if values.null_count:
            raise DataError(f"{values.null_count} rows have no {column}; clean the data first.", path=path, column=column)
        part = pc.unique(values)
        seen = part if seen is None else pc.unique(pa.concat_arrays([seen, part.cast(seen.type)]))
    if seen is None:
        raise DataError("the dataset has no rows.", path=path)
    return pc.take(seen, pc.sort_indices(seen))


def scan_parquet(source: str | Path, *, user: str = "user", item: str = "item", rating: str | None = None,
                 timestamp: str | None = None, items: pd.DataFrame | None = None, name: str = "data",
                 batch_rows: int = BATCH_ROWS, progress: bool = True) -> Interactions:
    """:class:`Interactions` from a Parquet file or folder, read in batches of ``batch_rows``.

    ``user`` / ``item`` / ``rating`` / ``timestamp`` name the columns (rating and timestamp
    optional); ``items`` is an attribute table indexed by raw item id (or with an ``item``
    column), e.g. ``pd.read_parquet("items.parquet")``.
    """
    import pyarrow.compute as pc

    dataset = _dataset(source)
    wanted = [c for c in (user, item, rating, timestamp) if c is not None]
    missing = [c for c in wanted if c not in dataset.schema.names]
    if missing:
        raise DataError(f"missing column(s) {missing}; the columns are {dataset.schema.names}.", path=source)
    n = dataset.count_rows()
    user_ids, item_ids = (_distinct(dataset, c, batch_rows, progress, source) for c in (user, item))
    users, item_idx = np.empty(n, np.int64), np.empty(n, np.int64)
    ratings = np.ones(n, np.float32)
    times = np.empty(n, np.int64) if timestamp is not None else None
    at = 0
    for batch in _batches(dataset, wanted, batch_rows, "interactions", progress):
        size = batch.num_rows
        columns = dict(zip(wanted, batch.columns))
        users[at: at + size] = pc.index_in(columns[user].cast(user_ids.type), value_set=user_ids).to_numpy()
        item_idx[at: at + size] = pc.index_in(columns[item].cast(item_ids.type), value_set=item_ids).to_numpy()
        for col, out, kind in ((rating, ratings, np.float32), (timestamp, times, np.int64)):
            if col is None or out is None:
                continue
            values = columns[col]
            if values.null_count:
                raise DataError(f"{values.null_count} rows have no {col}; clean the data first.", path=source,
                                column=col)
            try:
                out[at: at + size] = values.cast("int64" if kind is np.int64 else "float32").to_numpy()
            except Exception as exc:  # a text column where numbers are expected
                raise DataError(f"expected numbers ({exc}).", path=source, column=col) from None
        at += size
    user_np, item_np = user_ids.to_numpy(zero_copy_only=False), item_ids.to_numpy(zero_copy_only=False)
    return Interactions(users=users, items=item_idx, ratings=ratings, timestamps=times, user_ids=user_np,
                        item_ids=item_np, item_table=align_table(items, item_np, "item"), name=name)
