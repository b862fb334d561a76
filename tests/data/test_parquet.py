"""The out-of-core Parquet reader gives the in-memory loader's Interactions, and names bad input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmrec.data.movielens import load_ml100k
from lmrec.data.parquet import scan_parquet
from lmrec.errors import DataError


def test_ml100k_from_parquet_in_batches_equals_the_loader(data_dir, tmp_path):
    reference = load_ml100k(data_dir / "ml-100k")
    frame = pd.read_csv(data_dir / "ml-100k" / "u.data", sep="\t", names=["user", "item", "rating", "timestamp"])
    folder = tmp_path / "ml"
    folder.mkdir()
    for n, part in enumerate(np.array_split(np.arange(len(frame)), 3)):  # a folder of three files
        frame.iloc[part].to_parquet(folder / f"part-{n}.parquet", row_group_size=7000)
    items = reference.item_table.assign(item=reference.item_ids)
    data = scan_parquet(folder, rating="rating", timestamp="timestamp", items=items, batch_rows=9999,
                        progress=False)
    for key in ("users", "items", "ratings", "timestamps", "user_ids", "item_ids"):
        np.testing.assert_array_equal(getattr(data, key), getattr(reference, key), err_msg=key)
    pd.testing.assert_frame_equal(data.item_table, reference.item_table)


def test_bad_input_names_the_file_and_column(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        scan_parquet(tmp_path / "missing.parquet")
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(DataError, match="junk.parquet.*not a readable Parquet"):
        scan_parquet(tmp_path / "junk.parquet")
    pd.DataFrame({"user": [1, 2], "sku": [3, 4]}).to_parquet(tmp_path / "a.parquet")
    with pytest.raises(DataError, match=r"missing column\(s\) \['item'\]"):
        scan_parquet(tmp_path / "a.parquet")
    pd.DataFrame({"user": [1, None], "item": [3, 4]}).to_parquet(tmp_path / "b.parquet")
    with pytest.raises(DataError, match="1 rows have no user"):
        scan_parquet(tmp_path / "b.parquet", progress=False)
    pd.DataFrame({"user": [1, 2], "item": [3, 4], "ts": ["x", "y"]}).to_parquet(tmp_path / "c.parquet")
    with pytest.raises(DataError, match="column 'ts'.*expected numbers|expected numbers.*ts"):
        scan_parquet(tmp_path / "c.parquet", timestamp="ts", progress=False)
