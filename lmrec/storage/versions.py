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

A version is a *name* inside the store (``v0001``), never a path: :meth:`ModelStore.version_path`
refuses ``../``, absolute paths, and versions whose folder or files are symbolic links leading
out of the store, so whoever may name a version cannot make a reader open files elsewhere.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmrec.errors import ArtifactError
from lmrec.storage.artifacts import atomic_write_text

if TYPE_CHECKING:
    from lmrec.models.base import Recommender

VERSION = re.compile(r"^v(\d{4,})$")


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

    def publish(self, model: Recommender, *, metrics: dict[str, float] | None = None,
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
        return {"root": str(self.root), "single": self.single, "versions": self.versions(),
                "current": self.current()}


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
