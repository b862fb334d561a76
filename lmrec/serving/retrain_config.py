"""The settings of a retraining round and what it did (:mod:`lmrec.serving.retrain` runs the round,
:mod:`lmrec.serving.gate` holds its checks; both read these)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from lmrec.errors import ConfigError, check_positive
from lmrec.evaluation.metrics import parse_metric


@dataclass
class RetrainConfig:
    """holdout: share of the newest events kept for the comparison; margin: how much worse (in
    ``metric``, beyond ``noise_z`` standard errors) the candidate may be on either holdout and still
    be promoted; positive_types / min_value: which events count as a positive interaction;
    epochs / lr: the fine-tuning run. The gate's other settings are commented below; each has an
    ``lmrec retrain`` flag."""

    holdout: float = 0.2
    margin: float = 0.0
    metric: str = "ndcg@10"
    positive_types: tuple[str, ...] = ("click", "like", "purchase", "rating", "view", "watch")
    min_value: float = 0.0
    min_events: int = 20
    epochs: int = 5
    lr: float | None = None
    seed: int = 2026
    max_user_events: int = 500
    max_item_events: int = 5000
    jump_factor: float = 10.0
    jump_min: int = 20
    accept_jumps: tuple[str, ...] = ()  # items an operator reviewed: neither popularity nor reach jumps flag them
    trusted_gate: bool = True  # compare on the store's fixed holdout too (a stored one is never trained on)
    trusted_users: int = 2000  # users sampled for the holdout when the store has none
    trusted_per_user: int = 1  # ... and interactions of each
    trusted_recent: float = 0.2  # ... drawn from each user's most recent share of training interactions
    exposure_check: bool = True  # flag items whose reach in top-k lists jumps
    exposure_users: int = 2000  # known users whose top-k lists are compared (seeded sample)
    exposure_factor: float = 2.0  # flag an item whose reach >= factor x (current reach + 1) ...
    exposure_gain: float = 0.02  # ... and gains at least this share of the sampled users
    noise_z: float = 1.64  # "worse" is worse than current - margin by more than this many standard errors
    detect_fakes: bool = True  # DegSim/RDMA on the round's new users; flagged users' events left out
    detect_threshold: float = 3.5  # robust z-score above which a new user is flagged
    detect_k: int = 10  # neighbours in DegSim
    detect_reference: int = 5000  # known users that set the normal range (seeded sample)

    def validate(self) -> None:
        for name in ("max_user_events", "max_item_events", "jump_factor", "jump_min", "min_events", "epochs",
                     "trusted_users", "trusted_per_user", "exposure_users", "exposure_factor", "detect_threshold",
                     "detect_k", "detect_reference"):
            check_positive("RetrainConfig", name, getattr(self, name))
        check_positive("RetrainConfig", "noise_z", self.noise_z, allow_zero=True)
        for name, whole in (("holdout", False), ("exposure_gain", False), ("trusted_recent", True)):
            value = getattr(self, name)  # a share; trusted_recent may be all of it
            if not (isinstance(value, (int, float)) and 0 < value and (value <= 1 if whole else value < 1)):
                bound = "(0, 1]" if whole else "(0, 1)"
                raise ConfigError(f"The '{name}' parameter of RetrainConfig must be a share in {bound}; got {value!r}.")
        parse_metric(self.metric)


@dataclass
class RetrainResult:
    """What a round did. ``current_score`` / ``candidate_score``: on the newest events;
    ``trusted_current_score`` / ``trusted_candidate_score``: on the trusted holdout (``trusted``
    says where it came from and which model stood for the current one); ``standard_errors``: of
    the candidate's paired per-user gain on each ("newest", "trusted")."""

    promoted: bool
    reason: str
    current_version: str
    candidate_version: str | None = None
    metric: str = "ndcg@10"
    current_score: float | None = None
    candidate_score: float | None = None
    trusted_current_score: float | None = None
    trusted_candidate_score: float | None = None
    events: dict[str, int] = field(default_factory=dict)
    flagged: list[dict[str, Any]] = field(default_factory=list)  # item, events, expected
    exposure: list[dict[str, Any]] = field(default_factory=list)  # item, before, after, users
    suspects: dict[str, Any] = field(default_factory=dict)  # checked, flagged, events, users
    trusted: dict[str, Any] = field(default_factory=dict)  # source, pairs, baseline
    standard_errors: dict[str, float] = field(default_factory=dict)  # newest, trusted
    refused_by: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
