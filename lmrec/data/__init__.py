"""Data: the Interactions container, loaders, cleaning, splits and protocols."""
from lmrec.data.amazon import load_unisrec
from lmrec.data.cleaning import CleaningConfig, CleaningReport, clean, clean_interactions
from lmrec.data.datasets import DATASETS, dataset_path, load_dataset, resolve_data_dir
from lmrec.data.download import download_dataset
from lmrec.data.generic import load_interactions, read_attribute_table, read_interactions
from lmrec.data.interactions import Interactions
from lmrec.data.movielens import load_ml1m, load_ml100k
from lmrec.data.protocols import PROTOCOLS, get_protocol, protocol_name
from lmrec.data.report import DataWarning
from lmrec.data.split_io import load_split, save_split
from lmrec.data.splits import (Split, cold_item_split, cold_validation, global_temporal_split, leave_last_out,
                               random_split, temporal_split)

__all__ = [
    "CleaningConfig", "CleaningReport", "DATASETS", "DataWarning", "Interactions", "PROTOCOLS", "Split", "clean",
    "clean_interactions", "cold_item_split", "cold_validation", "dataset_path", "download_dataset", "get_protocol",
    "global_temporal_split", "leave_last_out", "load_dataset", "load_interactions", "load_ml100k", "load_ml1m",
    "load_split", "load_unisrec", "protocol_name", "random_split", "read_attribute_table", "read_interactions",
    "resolve_data_dir", "save_split", "temporal_split",
]
