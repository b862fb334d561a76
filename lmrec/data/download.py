"""Download of the official MovieLens archives, checksum-verified, into a cache directory.

The archive is streamed to a temporary file, its MD5 compared with the published one, then
unpacked into a temporary folder that is renamed into place: an interrupted or corrupt
download never leaves a half-written dataset behind.
"""
from __future__ import annotations

import hashlib
import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from lmrec.errors import DataError

GROUPLENS = "https://files.grouplens.org/datasets/movielens/"


@dataclass(frozen=True)
class Archive:
    """An official dataset archive: file name, MD5, and the folder it unpacks to."""

    filename: str
    md5: str
    folder: str


# MD5s as published next to the archives by GroupLens (ml-100k.zip.md5, ml-1m.zip.md5).
ARCHIVES: dict[str, Archive] = {
    "ml-100k": Archive("ml-100k.zip", "0e33842e24a9c977be4e0107933c0723", "ml-100k"),
    "ml-1m": Archive("ml-1m.zip", "c4d9eecfca2ab87c1945afe126590906", "ml-1m"),
}


def download_dataset(
    name: str,
    cache_dir: str | Path,
    *,
    base_url: str | None = None,
    md5: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Fetch and unpack an official archive into ``cache_dir/<folder>``; returns that folder.

    Parameters
    ----------
    name:
        One of :data:`ARCHIVES` (``"ml-100k"``, ``"ml-1m"``).
    base_url:
        Where the archives live (default :data:`GROUPLENS`; a mirror, or a local server in tests).
    md5:
        Override the expected checksum (for a mirror with a repacked archive).

    Raises
    ------
    DataError
        Unknown name, network failure, checksum mismatch or a corrupt archive.
    """
    if name not in ARCHIVES:
        raise DataError(f"no download is known for '{name}'; supported: {', '.join(ARCHIVES)}.")
    arc = ARCHIVES[name]
    cache = Path(cache_dir)
    target = cache / arc.folder
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    base = (base_url or GROUPLENS).rstrip("/") + "/"
    url = base + arc.filename
    with tempfile.TemporaryDirectory(dir=cache, prefix=f".{name}-") as tmp:
        zpath = Path(tmp) / arc.filename
        try:
            digest = _fetch(url, zpath, progress=progress, timeout=timeout)
        except DataError as exc:
            raise DataError(f"{exc} Without a network, unzip {arc.filename} from elsewhere so that "
                            f"{target}/ holds its files.") from None
        if md5 is None and base != GROUPLENS:  # a mirror that repacked the archive publishes its own MD5
            md5 = _mirror_md5(base + arc.filename + ".md5", timeout)
        expected = (md5 or arc.md5).lower()
        if digest != expected:
            raise DataError(f"checksum mismatch for {url}: expected MD5 {expected}, got {digest}; "
                            "the download is corrupt or not the official archive.", path=zpath.name)
        unpacked = Path(tmp) / "unpacked"
        try:
            with zipfile.ZipFile(zpath) as zf:
                _safe_extract(zf, unpacked)
        except zipfile.BadZipFile as exc:
            raise DataError(f"not a valid zip archive ({exc}).", path=url) from None
        src = unpacked / arc.folder
        if not src.is_dir():
            raise DataError(f"the archive has no '{arc.folder}/' folder.", path=url)
        src.rename(target)  # atomic on one filesystem: the dataset appears whole or not at all
    return target


def _mirror_md5(url: str, timeout: float) -> str | None:
    """The MD5 a mirror publishes beside an archive (``<file>.md5``: the hash first), or None."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            words = resp.read(4096).decode("ascii", "replace").split()
    except OSError:
        return None
    digest = words[0].lower() if words else ""
    return digest if len(digest) == 32 and all(c in "0123456789abcdef" for c in digest) else None


def _fetch(url: str, dest: Path, *, progress: bool, timeout: float) -> str:
    md5 = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, dest.open("wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
                while chunk := resp.read(1 << 16):
                    out.write(chunk)
                    md5.update(chunk)
                    bar.update(len(chunk))
    except OSError as exc:  # URLError, HTTPError and timeouts are all OSErrors
        raise DataError(f"download failed: {exc}.", path=url) from None
    return md5.hexdigest()


def _safe_extract(zf: zipfile.ZipFile, dest: Path) -> None:
    root = dest.resolve()
    for member in zf.infolist():
        out = (dest / member.filename).resolve()
        if root not in out.parents and out != root:
            raise DataError(f"archive member '{member.filename}' would be written outside the target folder.")
    zf.extractall(dest)
    shutil.rmtree(dest / "__MACOSX", ignore_errors=True)
