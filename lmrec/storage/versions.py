"""Versioned model directories: what the service serves and the retraining loop promotes.

Layout of a store root::

    models/
      v0001/            a complete model directory (manifest.json + model.safetensors)
      v0002/
      CURRENT           "v0002": the version to serve, replaced atomically

A version is written under a temporary name and renamed into place (see
:func:`lmrec.storage.artifacts.atomic_directory`), then ``CURRENT`` is rewritten through a temp
file and ``os.replace``; a reader therefore sees the old version or the new one, never a mix.
A plain model directory (one with ``manifest.json``) is also accepted wherever a store is read:
it is served as a single version.

A store may also hold ``holdout/`` (manifest.json + holdout.safetensors, written atomically): the
retraining gate's fixed holdout, (user, item) pairs by raw id that the event stream cannot write
(:meth:`ModelStore.save_holdout`; ``lmrec publish MODEL STORE --holdout SPLIT_DIR`` stores a split's
validation interactions, and the first retraining round samples one when none is there).

A version is a *name* inside the store (``v0001``), never a path: :meth:`ModelStore.version_path`
refuses ``../``, absolute paths, and versions whose folder or files are symbolic links leading
out of the store, so whoever may name a version cannot make a reader open files elsewhere.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from lmrec.errors import ArtifactError, ConfigError
from lmrec.storage.artifacts import (FORMAT_VERSION, atomic_directory, atomic_write_text, ids_from_json, ids_to_json,
                                     load_arrays, read_manifest, save_arrays, write_json)



class Saves(Protocol):
    """What a store publishes: anything that saves itself into a folder (every Recommender does)."""

    def save(self, directory: str | Path, *, metrics: dict[str, float] | None = None) -> Any: ...

VERSION = re.compile(r"^v(\d{4,})$")
HOLDOUT = "holdout"  # the folder of the store's fixed holdout


@dataclass(frozen=True)
class Holdout:
    """(user, item) pairs by raw id, aligned: ``users[j]`` interacted with ``items[j]``; ``source``
    says where they came from (a split folder, a sample of a version's training data)."""

    users: np.ndarray
    items: np.ndarray
    source: str
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.users) != len(self.items):
            raise ConfigError(f"Holdout: 'users' has {len(self.users)} entries but 'items' has {len(self.items)}; "
                              "expected one user per item.")

    def __len__(self) -> int:
        return len(self.users)


class ModelStore:
    """A folder of numbered model versions with a ``CURRENT`` pointer.

    Example
    -------
    >>> store = ModelStore("models")                   # doctest: +SKIP
    >>> version = store.publish(model)                  # doctest: +SKIP
    >>> store.current_path()                            # doctest: +SKIP
    PosixPath('models/v0001')
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def single(self) -> bool:
        """True when the root is itself one model directory."""
        return (self.root / "manifest.json").exists()

    def versions(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted((p.name for p in self.root.iterdir() if p.is_dir() and VERSION.match(p.name)),
                      key=lambda n: int(VERSION.match(n).group(1)))  # type: ignore[union-attr]

    def current(self) -> str:
        """The served version's name (the folder name for a single model directory)."""
        if self.single:
            return self.root.name
        pointer = self.root / "CURRENT"
        if pointer.exists():
            name = pointer.read_text(errors="replace")[:100].strip()
            if not VERSION.match(name) or not (self.root / name).is_dir():
                raise ArtifactError(f"{pointer} names {name[:40]!r}, which is not a version folder in {self.root} "
                                    "(expected a name such as v0001).")
            return name
        versions = self.versions()
        if not versions:
            raise ArtifactError(f"{self.root} holds no model: expected manifest.json or version folders v0001, ...")
        return versions[-1]

    def current_path(self) -> Path:
        return self.root if self.single else self.root / self.current()

    def version_path(self, name: str) -> Path:
        """The folder of version ``name``, checked to lie inside the store with every file in it.

        ``name`` must be a version name (``v0001``; for a single model directory, its folder name),
        never a path; the folder and the files under it may be symbolic links only when they lead
        to somewhere inside the store. Raises ArtifactError naming what was wrong.
        """
        shown = repr(name[:40] + ("..." if len(name) > 40 else ""))
        if self.single:
            if name != self.root.name:
                raise ArtifactError(f"version {shown}: {self.root} is a single model directory; the only version "
                                    f"it holds is {self.root.name!r}.")
            check_inside(self.root, self.root)
            return self.root
        if not VERSION.fullmatch(name):
            raise ArtifactError(f"version {shown} is not a version name (expected v0001, v0002, ...: a folder directly "
                                f"inside {self.root}; paths are not accepted).")
        path = self.root / name
        if not path.is_dir():
            raise ArtifactError(f"version {shown} does not exist in {self.root}.")
        check_inside(path, self.root)
        return path

    def next_version(self) -> str:
        versions = self.versions()
        last = int(VERSION.match(versions[-1]).group(1)) if versions else 0  # type: ignore[union-attr]
        return f"v{last + 1:04d}"

    def publish(self, model: Saves, *, metrics: dict[str, float] | None = None,
                make_current: bool = True) -> str:
        """Save ``model`` as the next version (atomically) and, by default, point CURRENT at it."""
        if self.single:
            raise ArtifactError(f"{self.root} is a single model directory, not a version store; "
                                "publish into a new folder (lmrec publish MODEL_DIR STORE).")
        name = self.next_version()
        model.save(self.root / name, metrics=metrics)
        if make_current:
            self.set_current(name)
        return name

    def set_current(self, name: str) -> None:
        if not (self.root / name).is_dir():
            raise ArtifactError(f"{self.root / name} does not exist.")
        atomic_write_text(self.root / "CURRENT", name + "\n")

    def describe(self) -> dict[str, Any]:
        out = {"root": str(self.root), "single": self.single, "versions": self.versions(), "current": self.current()}
        if not self.single and (self.root / HOLDOUT).is_dir():
            out["holdout"] = read_manifest(self.root / HOLDOUT, kind="holdout")["source"]
        return out

    # ----------------------------------------------------------------- the gate's fixed holdout
    def has_holdout(self) -> bool:
        return not self.single and (self.root / HOLDOUT / "manifest.json").exists()

    def save_holdout(self, holdout: Holdout, *, overwrite: bool = True) -> Path:
        """Write ``holdout`` as ``holdout/`` in the store, atomically: the raw ids once each in
        manifest.json, the pairs as int64 indices into them in holdout.safetensors."""
        if self.single:
            raise ArtifactError(f"{self.root} is a single model directory; a holdout is kept in a version store "
                                "(lmrec publish MODEL_DIR STORE --holdout SPLIT_DIR).")
        if not len(holdout):
            raise ConfigError("save_holdout: the holdout has no (user, item) pair; expected at least one.")
        user_ids, users = np.unique(np.asarray(holdout.users), return_inverse=True)
        item_ids, items = np.unique(np.asarray(holdout.items), return_inverse=True)
        manifest = {"format_version": FORMAT_VERSION, "kind": "holdout", "source": holdout.source,
                    "pairs": len(holdout), "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "info": holdout.info,
                    "user_ids": ids_to_json(user_ids), "item_ids": ids_to_json(item_ids)}
        with atomic_directory(self.root / HOLDOUT, overwrite=overwrite) as tmp:
            save_arrays(tmp / "holdout.safetensors", {"users": users.astype(np.int64), "items": items.astype(np.int64)})
            write_json(tmp / "manifest.json", manifest)
        return self.root / HOLDOUT

    def load_holdout(self) -> Holdout | None:
        """The store's fixed holdout, checked; None when it has none."""
        if not self.has_holdout():
            return None
        folder = self.root / HOLDOUT
        check_inside(folder, self.root)
        manifest = read_manifest(folder, kind="holdout")
        arrays = load_arrays(folder / "holdout.safetensors")
        try:
            user_ids, item_ids = ids_from_json(manifest["user_ids"]), ids_from_json(manifest["item_ids"])
            users, items = arrays["users"], arrays["items"]
        except KeyError as exc:
            raise ArtifactError(f"{folder}: the holdout lacks {exc.args[0]!r}; it is incomplete.") from None
        for name, index, ids in (("users", users, user_ids), ("items", items, item_ids)):
            if index.ndim != 1 or len(index) != manifest.get("pairs") or \
                    (len(index) and (index.min() < 0 or index.max() >= len(ids))):
                raise ArtifactError(f"{folder}/holdout.safetensors: {name!r} must hold {manifest.get('pairs')} "
                                    f"indices in [0, {len(ids)}); the holdout is corrupt.")
        return Holdout(user_ids[users], item_ids[items], str(manifest["source"]), dict(manifest.get("info", {})))


def check_inside(folder: Path, root: Path) -> None:
    """Raise ArtifactError when ``folder``, or anything reachable under it, resolves outside ``root``
    (a symbolic link out of the store). Links that stay inside the store are followed and checked
    in turn (each real folder once, so a cycle of links ends)."""
    top = root.resolve()
    seen: set[Path] = set()
    pending = [folder]
    while pending:
        path = pending.pop()
        real = path.resolve()
        if not real.is_relative_to(top):
            raise ArtifactError(f"{path} leads to {real}, outside the store {top}; refusing to read it.")
        if real in seen or not real.is_dir():
            continue
        seen.add(real)
        pending.extend(path.iterdir())
