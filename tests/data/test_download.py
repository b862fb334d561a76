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


def _closed_port_url() -> str:
    """The URL of a port nothing listens on (bound, then released): connections are refused."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def failing_server():
    """A site that answers every request with HTTP 503."""
    import http.server

    from tests.http_mirror import serve

    class Fail(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_error(503, "down for maintenance")

        def log_message(self, *a):
            pass

    with serve(Fail) as url:
        yield url


@pytest.mark.parametrize("site", ["no server", "failing server"])
def test_failed_download_says_what_to_do(site, failing_server, tmp_path, monkeypatch):
    """No data and no network: the error names LMREC_DATA_DIR, the files the dataset needs, the
    cache folder and the mirror setting, and nothing is left behind."""
    home, data = tmp_path / "home", tmp_path / "data"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("LMREC_DATA_DIR", str(data))
    monkeypatch.setenv("LMREC_DATA_MIRROR", _closed_port_url() if site == "no server" else failing_server)
    with pytest.raises(DataError) as caught:
        load_dataset("ml-100k", download=True)
    message = str(caught.value)
    why = "Connection refused" if site == "no server" else "HTTP Error 503"
    assert "download failed" in message and why in message
    assert f"{data / 'ml-100k'}/ (from $LMREC_DATA_DIR)" in message
    assert "u.data, u.item, u.user, u.genre" in message
    assert f"cache folder {home / '.cache' / 'lmrec' / 'ml-100k'}/" in message
    assert "LMREC_DATA_MIRROR" in message and "files.grouplens.org/datasets/movielens/ml-100k.zip" in message
    assert not data.exists()
    assert list((home / ".cache" / "lmrec").iterdir()) == [], "a temporary download folder was left behind"


def test_missing_dataset_without_download_lists_its_files(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LMREC_DATA_DIR", raising=False)
    with pytest.raises(DataError, match=r"amazon-scientific-unisrec.*\*\.train\.inter, \*\.valid\.inter") as caught:
        load_dataset("amazon-scientific")
    assert "LMREC_DATA_DIR is not set: the user cache" in str(caught.value)
    assert "download" not in str(caught.value), "no download exists for this dataset"
    expected = r"ml-1m.*--download.*ratings\.dat.*movies\.dat, users\.dat.*\(data_dir, --data-dir\)"
    with pytest.raises(DataError, match=expected):
        load_dataset("ml-1m", tmp_path / "elsewhere")
