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
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    losses: LossesSection | None = None
    fairness: FairnessSection | None = None
    robustness: RobustnessSection | None = None
    explanations: ExplanationsSection | None = None

    def model(self, name: str) -> tuple[str, dict[str, Any]]:
        """(registry name, parameters) of a model named in ``[models]``, or a registry name alone."""
        if name in self.models:
            params = dict(self.models[name])
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
    top = {"study", "models", "losses", "fairness", "robustness", "explanations"}
    unknown = sorted(set(raw) - top)
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {unknown}; supported: {sorted(top)}.")
    study = raw.get("study", {})
    allowed = {"name", "out", "seeds", "metrics", "tracking", "data_dir", "download"}
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
