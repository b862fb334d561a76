"""``lmrec data info|prepare``: built-in datasets and protocols by name, or your own files.

A positional that is a registered dataset (``info``) or protocol (``prepare``) keeps that
meaning; a path to an existing file is your own data, loaded with the options of
:func:`lmrec.data.load_interactions`, cleaned with a :class:`~lmrec.data.CleaningConfig` and
split with one of the split functions; anything else is an error naming both choices.
Data problems found while loading are printed as ``lmrec: warning:`` lines.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from lmrec.data import (DATASETS, PROTOCOLS, CleaningConfig, CleaningReport, DataWarning, Interactions, Split,
                        get_protocol, load_dataset, load_interactions, protocol_name, save_split)
from lmrec.data.cleaning import NORMALISATIONS
from lmrec.data.ids import ID_TYPES
from lmrec.data.reading import FORMATS, ON_BAD_LINES, read_table
from lmrec.data.splits import cold_item_split, global_temporal_split, leave_last_out, random_split, temporal_split
from lmrec.errors import ConfigError, DataError

INFO_EXAMPLE = """examples:
  lmrec data info ml-1m --data-dir ../shared/datasets
  lmrec data info data/ratings.csv                      # the file's columns, with a hint
  lmrec data info data/ratings.csv --user userId --item movieId --rating rating --timestamp timestamp \\
      --items data/movies.csv --item-fields title genres"""
PREPARE_EXAMPLE = """examples:
  lmrec data prepare P1 --out splits/p1
  lmrec data prepare data/ratings.csv --out splits/mine --user userId --item movieId --rating rating \\
      --timestamp timestamp --items data/movies.csv --item-fields title genres \\
      --implicit-threshold 3.5 --split temporal --valid 0.1 --test 0.1"""
# substrings of column names, for the hint of `data info FILE` (a suggestion, never applied)
_GUESSES = {"user": ("user",), "item": ("item", "movie", "product", "sku", "asin", "book", "track", "song"),
            "rating": ("rating", "score", "stars"), "timestamp": ("timestamp", "time", "date")}


def add_data_commands(sub: argparse._SubParsersAction) -> None:
    """The ``data`` command and its ``info`` and ``prepare`` sub-commands."""
    data = sub.add_parser("data", help="inspect datasets or your own files and prepare splits")
    dsub = data.add_subparsers(dest="data_command", required=True)
    fmt = argparse.RawDescriptionHelpFormatter
    info = dsub.add_parser("info", help="counts, density and fields of a dataset or of your own file",
                           epilog=INFO_EXAMPLE, formatter_class=fmt)
    info.add_argument("target", metavar="DATASET|FILE",
                      help=f"a built-in dataset ({', '.join(DATASETS)}) or an interaction file")
    add_builtin_args(info)
    add_file_args(info)
    info.set_defaults(func=cmd_data_info)
    prep = dsub.add_parser("prepare", help="split a protocol's dataset or your own file; save it with its card",
                           epilog=PREPARE_EXAMPLE, formatter_class=fmt)
    prep.add_argument("target", metavar="PROTOCOL|FILE",
                      help=f"a protocol ({', '.join(PROTOCOLS)} or P1-P5) or an interaction file")
    prep.add_argument("--out", required=True, help="split directory to write")
    prep.add_argument("--seed", type=int, default=2026, help="split seed (default 2026)")
    add_builtin_args(prep)
    add_file_args(prep)
    add_split_args(prep)
    prep.set_defaults(func=cmd_data_prepare)


SPLITS = ("random", "temporal", "loo", "global-temporal", "cold")
# dest -> flag of every own-data option (all default to None, so "given" is "not None")
FILE_OPTIONS = {
    "user": "--user", "item": "--item", "rating": "--rating", "timestamp": "--timestamp", "sep": "--sep",
    "format": "--format", "encoding": "--encoding", "id_type": "--id-type", "on_bad_lines": "--on-bad-lines",
    "name": "--name", "items": "--items", "item_key": "--item-key", "item_fields": "--item-fields",
    "users": "--users", "user_key": "--user-key", "user_fields": "--user-fields", "missing": "--missing",
    "dedupe": "--dedupe", "rating_scale": "--rating-scale", "outliers": "--outliers",
    "implicit_threshold": "--implicit-threshold", "k_core": "--k-core",
    "min_user_interactions": "--min-user-interactions", "min_item_interactions": "--min-item-interactions",
    "normalize": "--normalize",
}
SPLIT_OPTIONS = {"split": "--split", "valid": "--valid", "test": "--test"}


def add_builtin_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("built-in datasets and protocols")
    g.add_argument("--data-dir", help="datasets folder (default: $LMREC_DATA_DIR, then ~/.cache/lmrec)")
    g.add_argument("--download", action="store_true", help="download official MovieLens archives if missing")


def add_file_args(p: argparse.ArgumentParser) -> None:
    """Options of lmrec.data.load_interactions and CleaningConfig, one flag per parameter."""
    g = p.add_argument_group("your own file (parameters of lmrec.data.load_interactions)")
    g.add_argument("--user", metavar="COL", help="user id column (default 'user')")
    g.add_argument("--item", metavar="COL", help="item id column (default 'item')")
    g.add_argument("--rating", metavar="COL", help="rating column (none: every interaction counts 1)")
    g.add_argument("--timestamp", metavar="COL", help="time column: Unix seconds or ISO dates")
    g.add_argument("--sep", help="field separator of the interaction file (default from the extension)")
    g.add_argument("--format", choices=sorted(set(FORMATS.values())), help="file format (default from the extension)")
    g.add_argument("--encoding", help="text encoding (default utf-8; e.g. latin-1)")
    g.add_argument("--id-type", choices=ID_TYPES, help="ids as whole numbers or strings (default auto)")
    g.add_argument("--on-bad-lines", choices=ON_BAD_LINES, help="error (default) or skip and count unreadable lines")
    g.add_argument("--name", help="dataset name in cards and reports (default: the file name)")
    g.add_argument("--items", metavar="FILE", help="item metadata file (CSV, TSV, Parquet, JSON lines)")
    g.add_argument("--item-key", metavar="COL", help="item id column of --items (default: the --item column)")
    g.add_argument("--item-fields", metavar="COL", nargs="+", help="item fields to keep (default all)")
    g.add_argument("--users", metavar="FILE", help="user metadata file")
    g.add_argument("--user-key", metavar="COL", help="user id column of --users (default: the --user column)")
    g.add_argument("--user-fields", metavar="COL", nargs="+", help="user fields to keep (default all)")
    c = p.add_argument_group("cleaning (fields of lmrec.data.CleaningConfig)")
    c.add_argument("--missing", choices=["drop", "keep"], help="rows with a missing id or rating (default drop)")
    c.add_argument("--dedupe", choices=["latest", "first", "none"], help="repeated user-item pairs (default latest)")
    c.add_argument("--rating-scale", type=float, nargs=2, metavar=("LOW", "HIGH"), help="declared rating scale")
    c.add_argument("--outliers", choices=["drop", "clip"], help="ratings outside --rating-scale (default drop)")
    c.add_argument("--implicit-threshold", type=float, metavar="R",
                   help="keep ratings >= R as positive interactions (rating 1), drop the rest")
    c.add_argument("--k-core", type=int, metavar="K", help="keep users and items with >= K interactions, until stable")
    c.add_argument("--min-user-interactions", type=int, metavar="K", help="k-core for users only")
    c.add_argument("--min-item-interactions", type=int, metavar="K", help="k-core for items only")
    c.add_argument("--normalize", choices=NORMALISATIONS, help="rating normalisation")


def add_split_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "split of your own file (lmrec.data.splits)",
        "random and temporal shares are cut per user with floors: a user with n interactions gets "
        "floor(0.8n) train, floor(0.9n) - floor(0.8n) valid and the rest, ceil(0.1n), test (for 0.1 / 0.1), "
        "so test holds a little more than its share and valid a little less (ML-100K: 79,619 / 9,942 / "
        "10,439 rows); global-temporal cuts the whole timeline once")
    g.add_argument("--split", choices=SPLITS, help="random (default, per user), temporal (per user), loo "
                   "(leave last out), global-temporal (one cutoff in time) or cold (items held out of training)")
    g.add_argument("--valid", type=float, help="validation share (default 0.1); with loo, interactions per user "
                   "(default 1)")
    g.add_argument("--test", type=float, help="test share (default 0.1); with loo, interactions per user "
                   "(default 1); with cold, the share of cold items (default 0.2)")


def loader_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The load_interactions keywords given by the command's flags."""
    item = args.item or "item"
    user = args.user or "user"
    kwargs = {"user": user, "item": item, "rating": args.rating, "timestamp": args.timestamp, "sep": args.sep,
              "fmt": args.format, "encoding": args.encoding or "utf-8", "id_type": args.id_type or "auto",
              "on_bad_lines": args.on_bad_lines or "error", "name": args.name, "items": args.items,
              "item_key": args.item_key or item, "item_fields": _fields(args.item_fields), "users": args.users,
              "user_key": args.user_key or user, "user_fields": _fields(args.user_fields)}
    return kwargs


def _fields(values: list[str] | None) -> list[str] | None:
    """``--item-fields title genres`` or ``title,genres``."""
    return None if values is None else [f.strip() for v in values for f in v.split(",") if f.strip()]


def cleaning_config(args: argparse.Namespace) -> CleaningConfig:
    """The CleaningConfig of the command's flags (``--k-core K`` sets both minimum counts)."""
    k = args.k_core or 0
    return CleaningConfig(
        missing=args.missing or "drop", dedupe=args.dedupe or "latest",
        rating_scale=tuple(args.rating_scale) if args.rating_scale else None, outliers=args.outliers or "drop",
        implicit_threshold=args.implicit_threshold, min_user_interactions=args.min_user_interactions or k,
        min_item_interactions=args.min_item_interactions or k, normalize=args.normalize)


def _shares(args: argparse.Namespace) -> tuple[float, float, float]:
    valid = 0.1 if args.valid is None else args.valid
    test = 0.1 if args.test is None else args.test
    if not (valid >= 0 and test >= 0 and valid + test < 1):
        raise ConfigError(f"--valid and --test must be shares >= 0 whose sum is below 1; got {valid} and {test}.")
    return 1 - valid - test, valid, test


def _counts(args: argparse.Namespace) -> tuple[int, int]:
    counts = [1 if v is None else v for v in (args.valid, args.test)]
    if any(v < 0 or v != int(v) for v in counts):
        raise ConfigError(f"with --split loo, --valid and --test are interactions per user (whole numbers >= 0); "
                          f"got {counts[0]:g} and {counts[1]:g}.")
    return int(counts[0]), int(counts[1])


def make_split(data: Interactions, args: argparse.Namespace) -> Split:
    """The split the flags ask for (random by default)."""
    kind = args.split or "random"
    if kind == "random":
        return random_split(data, _shares(args), seed=args.seed)
    if kind == "temporal":
        return temporal_split(data, _shares(args))
    if kind == "global-temporal":
        return global_temporal_split(data, _shares(args))
    if kind == "loo":
        n_valid, n_test = _counts(args)
        return leave_last_out(data, n_valid, n_test)
    if args.valid is not None:
        raise ConfigError("--valid does not apply to --split cold (each user's last warm interaction is valid).")
    share = 0.2 if args.test is None else args.test
    if not 0 < share < 1:
        raise ConfigError(f"with --split cold, --test is the share of cold items, between 0 and 1; got {share}.")
    return cold_item_split(data, share, seed=args.seed)


def split_card(args: argparse.Namespace) -> dict[str, Any]:
    """What the card records about your file: the loader options and the split asked for."""
    source = {k: v for k, v in loader_kwargs(args).items() if v is not None}
    return {"source": {"file": str(args.target), **source}, "split": args.split or "random"}


def _require_file(target: str, what: str, names: str) -> None:
    """For a positional that is not a registered name: it must be an existing file."""
    path = Path(target)
    if path.is_file():
        return
    found = "is a directory, not a file" if path.is_dir() else "is not an existing file"
    raise DataError(f"'{target}' is neither a built-in {what} ({names}) nor a file of yours: it {found}.")


def _refuse_file_options(args: argparse.Namespace, target: str) -> None:
    given = [flag for dest, flag in {**FILE_OPTIONS, **SPLIT_OPTIONS}.items() if getattr(args, dest, None) is not None]
    if given:
        raise ConfigError(f"{', '.join(given)} apply to your own files, not to the built-in '{target}'; "
                          "remove them or give a file path.")


def _print_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Data warnings as ``lmrec: warning:`` lines; any other warning as Python shows it."""
    for w in caught:
        if issubclass(w.category, DataWarning):
            print(f"lmrec: warning: {w.message}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def _load_file(args: argparse.Namespace) -> tuple[Interactions, CleaningReport]:
    """Load the user's file with the command's options; data warnings are printed, not raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data, report = load_interactions(args.target, **loader_kwargs(args), cleaning=cleaning_config(args),
                                         return_report=True)
    _print_warnings(caught)
    return data, report  # type: ignore[return-value]


def cmd_data_info(args: argparse.Namespace) -> int:
    """``lmrec data info DATASET|FILE``: JSON counts; a file without a column mapping gets an overview."""
    if args.target in DATASETS:
        _refuse_file_options(args, args.target)
        data = load_dataset(args.target, args.data_dir, download=args.download)
        print(json.dumps(data.describe(), indent=2, default=str))
        return 0
    _require_file(args.target, "dataset", ", ".join(DATASETS))
    if args.user is None and args.item is None:
        frame = read_table(args.target, fmt=args.format, sep=args.sep, encoding=args.encoding or "utf-8")
        if not {"user", "item"} <= set(frame.columns):
            return _overview(args.target, frame)
    data, report = _load_file(args)
    print(json.dumps({**data.describe(), "cleaning": report.summary()}, indent=2, default=str))
    return 0


def _overview(target: str, frame: pd.DataFrame) -> int:
    """Rows and columns of a file, with the command that loads it (columns guessed from their names)."""
    columns = [c for c in frame.columns if c != "line"]
    overview = {"file": target, "rows": len(frame), "columns": {
        c: f"{int(frame[c].isna().sum())} missing; e.g. {', '.join(map(str, frame[c].dropna().unique()[:3]))}"
        for c in columns}}
    print(json.dumps(overview, indent=2, default=str))
    flags = []
    for role, words in _GUESSES.items():
        hit = next((c for c in columns if any(w in str(c).lower() for w in words)), None)
        if hit is not None or role in ("user", "item"):  # rating and timestamp are optional
            flags.append(f"--{role} {hit if hit is not None else 'COLUMN'}")
    print(f"To load it, map its columns, e.g.: lmrec data info {target} {' '.join(flags)}", file=sys.stderr)
    return 0


def cmd_data_prepare(args: argparse.Namespace) -> int:
    """``lmrec data prepare PROTOCOL|FILE --out DIR``: the split and its card, with the cleaning report."""
    try:
        name = protocol_name(args.target)
    except DataError:
        name = None
    if name is not None:
        _refuse_file_options(args, args.target)
        split = get_protocol(name, args.data_dir, args.seed, download=args.download)
        save_split(split, args.out)
    else:
        _require_file(args.target, "protocol", ", ".join(f"{n} ({p.code})" for n, p in PROTOCOLS.items()))
        data, report = _load_file(args)
        split = make_split(data, args)
        split.extra.update(split_card(args), cleaning_config=asdict(cleaning_config(args)),
                           cleaning=report.summary(), issues=report.messages())
        split.check_leakage()
        save_split(split, args.out, report=report)
    print(json.dumps(split.card(), indent=2, default=str))
    print(f"split written to {args.out}")
    return 0
