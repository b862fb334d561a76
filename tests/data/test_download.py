"""Download of official archives, against a real HTTP server on 127.0.0.1 serving a zip."""
from __future__ import annotations

import hashlib

import pytest

from lmrec.data import download_dataset, load_dataset
from lmrec.errors import DataError
from tests.http_mirror import serve_folder, zip_ml100k


@pytest.fixture(scope="module")
def server(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("www")
    (root / "ml-100k.zip").write_bytes(zip_ml100k(data_dir / "ml-100k"))
    (root / "ml-1m.zip").write_bytes(b"this is not a zip")
    with serve_folder(root) as url:
        yield url, root


def test_download_verifies_and_unpacks(server, tmp_path):
    url, root = server
    md5 = hashlib.md5((root / "ml-100k.zip").read_bytes()).hexdigest()
    folder = download_dataset("ml-100k", tmp_path, base_url=url, md5=md5, progress=False)
    assert folder == tmp_path / "ml-100k" and (folder / "u.data").exists()
    data = load_dataset("ml-100k", tmp_path)
    assert len(data) == 100000
    assert [p.name for p in tmp_path.iterdir()] == ["ml-100k"], "temporary files left behind"


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    url, _ = server
    # the official MD5 is expected by default; the locally built zip does not match it
    with pytest.raises(DataError, match=r"checksum mismatch for http://127.0.0.1:\d+/ml-100k.zip: expected MD5 "
                                        r"0e33842e24a9c977be4e0107933c0723"):
        download_dataset("ml-100k", tmp_path, base_url=url, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_corrupt_archive_and_missing_file(server, tmp_path):
    url, root = server
    md5 = hashlib.md5(b"this is not a zip").hexdigest()
    with pytest.raises(DataError, match="not a valid zip archive"):
        download_dataset("ml-1m", tmp_path, base_url=url, md5=md5, progress=False)
    with pytest.raises(DataError, match=r"download failed: HTTP Error 404"):
        download_dataset("ml-100k", tmp_path, base_url=url + "nothing/", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_load_with_download_uses_cache(server, tmp_path, monkeypatch):
    url, root = server
    import lmrec.data.download as dl

    monkeypatch.setattr(dl, "GROUPLENS", url)
    monkeypatch.setitem(dl.ARCHIVES, "ml-100k", dl.Archive("ml-100k.zip",
                        hashlib.md5((root / "ml-100k.zip").read_bytes()).hexdigest(), "ml-100k"))
    data = load_dataset("ml-100k", tmp_path, download=True)
    assert data.n_users == 943
