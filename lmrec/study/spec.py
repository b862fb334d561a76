"""A study spec: the declared grid of ``lmrec study SPEC.toml``.

::

    [study]                      # name, out folder, seeds, metrics, tracking ("none" | "tensorboard" | "mlflow")
    name = "lmrec study"
    out = "reports/study"
    seeds = [2026, 2027, 2028]

    [models.bpr-mf]              # a named model: "model" is its registry name, the rest its parameters
    model = "bpr-mf"
    dim = 64
    config = { epochs = 20, n_negatives = 8 }

    [losses]                     # one model, every loss, same negatives and budget; all seeds
    protocols = ["P3"]
    model = "bpr-mf"
    losses = ["bce", "pointwise-hinge", "bpr", "hinge", "softmax", "softmax:all"]   # NAME[:SAMPLER]

    [fairness]                   # user-group gaps, item exposure, the re-ranking trade-off
    protocols = ["P3"]
    models = ["most-popular", "bpr-mf"]

    [robustness]                 # noise and attack curves, the detection defence
    protocol = "P3"
    models = ["bpr-mf"]

    [explanations]               # the deletion test of history attributions
    protocol = "P3"
    models = ["itemknn"]

    [grid.baselines]             # models x protocols x seeds: fit, evaluate, compare with the reference
    protocols = ["P1", "P3"]
    models = ["most-popular", "ease"]
    reference = "ease"           # default: the first model
    isolate = false              # true: each cell in its own forked process (its peak memory its own)

A model of ``[models]`` may set parameters per protocol (``per_protocol = { P1 = { lam = 1000.0 } }``).
Every section is optional. A bad file raises :class:`~lmrec.errors.ConfigError` naming the file
and the field.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from lmrec.errors import ConfigError
from lmrec.losses import LOSSES
from lmrec.models.registry import MODELS
from lmrec.training.config import SAMPLERS
from lmrec.training.tracking import TRACKERS


@dataclass
class LossesSection:
    protocols: list[str]
    model: str
    losses: list[str] = field(default_factory=lambda: ["bce", "pointwise-hinge", "bpr", "hinge", "softmax",
                                                       "softmax:all"])
    reference: str = "bpr"
    seeds: list[int] | None = None  # default: all the study's seeds
    config: dict[str, dict[str, Any]] = field(default_factory=dict)  # protocol -> TrainConfig fields for it


@dataclass
class FairnessSection:
    protocols: list[str]
    models: list[str]
    groups: list[str] = field(default_factory=lambda: ["gender", "age", "occupation", "activity"])
    k: int = 10
    pool: int = 100  # candidates re-ranked by the mitigation
    lams: list[float] = field(default_factory=lambda: [0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0])
    seeds: list[int] | None = None  # default: the study's first seed (intervals over users)


@dataclass
class RobustnessSection:
    protocol: str
    models: list[str]
    false_positives: list[float] = field(default_factory=lambda: [0.1, 0.2, 0.3])
    dropped: list[float] = field(default_factory=lambda: [0.1, 0.3, 0.5])
    outlier_ratings: list[float] = field(default_factory=lambda: [0.02, 0.05, 0.1])
    rating_scale: list[float] = field(default_factory=lambda: [1.0, 5.0])
    attacks: list[str] = field(default_factory=lambda: ["random", "average", "bandwagon"])
    attack_sizes: list[float] = field(default_factory=lambda: [0.005, 0.01, 0.03])
    targets: int = 5
    filler: int = 30
    threshold: float = 3.5
    k: int = 10
    seeds: list[int] | None = None


@dataclass
class ExplanationsSection:
    protocol: str
    models: list[str]
    users: int = 200
    sizes: list[int] = field(default_factory=lambda: [1, 3, 5])
    explainers: list[str] = field(default_factory=lambda: ["exact", "leave-one-out", "similarity"])
    seeds: list[int] | None = None


RECIPES = ("fit",)  # how lmrec study computes a grid cell; a script may supply others to run_study


@dataclass
class GridSection:
    """Models x protocols x seeds. Recipe "fit": each model fitted on the protocol's train (validation
    for early stopping) and measured on test; a script may run a spec whose grids name a recipe it
    supplies (``lmrec.study.plan.run_study(..., recipes=...)``)."""

    protocols: list[str]
    models: list[str]
    seeds: list[int] | None = None  # default: all the study's seeds
    metrics: list[str] | None = None  # default: the study's metrics; the first is the one compared
    candidates: str = "all"  # "cold": rank only the cold items of a cold-start protocol
    reference: str | None = None  # the row others are tested against; default: the first model
    recipe: str = "fit"
    section: str | None = None  # the store's section of its cells; default: grid.<name>
    isolate: bool = False  # each cell computed in its own forked process
    question: str = ""  # what the grid answers: its results page's heading


@dataclass
class StudySpec:
    path: Path
    name: str = "lmrec study"
    out: str = "reports/study"
    seeds: list[int] = field(default_factory=lambda: [2026])
    metrics: list[str] = field(default_factory=lambda: ["ndcg@10", "recall@10"])
    tracking: str = "none"
    data_dir: str | None = None
    download: bool = False
    keep_stale: bool = False  # reuse cells of other code versions (cells that cost hours); --recompute-stale
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    losses: LossesSection | None = None
    fairness: FairnessSection | None = None
    robustness: RobustnessSection | None = None
    explanations: ExplanationsSection | None = None
    grid: dict[str, GridSection] = field(default_factory=dict)

    def model(self, name: str, protocol: str | None = None) -> tuple[str, dict[str, Any]]:
        """(registry name, parameters) of a model named in ``[models]`` (with its ``per_protocol``
        parameters for ``protocol``), or a registry name alone."""
        if name in self.models:
            params = dict(self.models[name])
            per_protocol = params.pop("per_protocol", {})
            if protocol is not None:
                params.update(per_protocol.get(protocol, {}))
            return params.pop("model"), params
        return name, {}

    def section_seeds(self, section: Any, default_all: bool = False) -> list[int]:
        return list(section.seeds) if section.seeds else (list(self.seeds) if default_all else self.seeds[:1])


def _section(path: Path, name: str, cls: type, raw: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{path}: [{name}] has unknown field(s) {unknown}; supported: {sorted(known)}.")
    try:
        return cls(**raw)
    except TypeError as exc:
        raise ConfigError(f"{path}: [{name}] {exc}".replace("__init__()", "needs")) from None


def load_spec(path: str | Path) -> StudySpec:
    """Read and check a study spec (TOML)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"study spec {path} does not exist.") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}).") from None
    top = {"study", "models", "losses", "fairness", "robustness", "explanations", "grid"}
    unknown = sorted(set(raw) - top)
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {unknown}; supported: {sorted(top)}.")
    study = raw.get("study", {})
    allowed = {"name", "out", "seeds", "metrics", "tracking", "data_dir", "download", "keep_stale"}
    if set(study) - allowed:
        raise ConfigError(f"{path}: [study] has unknown field(s) {sorted(set(study) - allowed)}; supported: {sorted(allowed)}.")
    spec = StudySpec(path=path, **study, models=raw.get("models", {}))
    for name, params in spec.models.items():
        if not isinstance(params, dict) or params.get("model") not in MODELS:
            raise ConfigError(f"{path}: [models.{name}] needs model = one of {', '.join(MODELS)}; "
                              f"got {params.get('model') if isinstance(params, dict) else params!r}.")
    for name, cls in (("losses", LossesSection), ("fairness", FairnessSection), ("robustness", RobustnessSection),
                      ("explanations", ExplanationsSection)):
        if name in raw:
            setattr(spec, name, _section(path, name, cls, raw[name]))
    grids = raw.get("grid", {})
    if not isinstance(grids, dict) or not all(isinstance(g, dict) for g in grids.values()):
        raise ConfigError(f"{path}: [grid] holds named grids ([grid.NAME] tables); got {grids!r}.")
    spec.grid = {name: _section(path, f"grid.{name}", GridSection, g) for name, g in grids.items()}
    _check(spec)
    return spec


def _check(spec: StudySpec) -> None:
    if spec.tracking not in TRACKERS:
        raise ConfigError(f"{spec.path}: [study] tracking must be one of {', '.join(TRACKERS)}; got {spec.tracking!r}.")
    if not spec.seeds:
        raise ConfigError(f"{spec.path}: [study] seeds must list at least one seed.")
    named = [("losses", [spec.losses.model])] if spec.losses else []
    for sec in ("fairness", "robustness", "explanations"):
        section = getattr(spec, sec)
        if section is not None:
            named.append((sec, section.models))
    for gname, grid in spec.grid.items():
        if not grid.protocols or not grid.models:
            raise ConfigError(f"{spec.path}: [grid.{gname}] needs protocols and models (non-empty lists).")
        if grid.reference is not None and grid.reference not in grid.models:
            raise ConfigError(f"{spec.path}: [grid.{gname}] reference {grid.reference!r} is not among its models "
                              f"{grid.models}.")
        if grid.candidates not in ("all", "cold"):
            raise ConfigError(f"{spec.path}: [grid.{gname}] candidates must be 'all' or 'cold'; got {grid.candidates!r}.")
        if grid.recipe == "fit":  # another recipe's model names are its script's
            named.append((f"grid.{gname}", grid.models))
    for name, params in spec.models.items():
        per = params.get("per_protocol", {})
        if not isinstance(per, dict) or not all(isinstance(v, dict) for v in per.values()):
            raise ConfigError(f"{spec.path}: [models.{name}] per_protocol must map a protocol to a table of "
                              f"parameters, e.g. per_protocol = {{ P1 = {{ lam = 1000.0 }} }}; got {per!r}.")
    for sec, names in named:
        for name in names:
            if name not in spec.models and name not in MODELS:
                raise ConfigError(f"{spec.path}: [{sec}] names model {name!r}, which is neither in [models] "
                                  f"({', '.join(spec.models) or 'none'}) nor a registered model ({', '.join(MODELS)}).")
    if spec.losses:
        bad = [loss for loss in spec.losses.losses if loss.partition(":")[0] not in LOSSES
               or loss.partition(":")[2] not in ("", *SAMPLERS)]
        if bad or spec.losses.reference not in spec.losses.losses:
            raise ConfigError(f"{spec.path}: [losses] losses must be among {', '.join(LOSSES)} (NAME or "
                              f"NAME:SAMPLER, samplers {', '.join(SAMPLERS)}) and include the reference "
                              f"{spec.losses.reference!r}; got {spec.losses.losses}.")
