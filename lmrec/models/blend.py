"""Blend: a hybrid of history models by score fusion, its weights chosen on validation.

Each member's scores of a user are standardised over the catalogue (z-scores, so a cosine over a
temperature and an EASE regression score are on one scale) and summed with non-negative weights
that add up to one. With ``weights=None`` the weights are the best point of a grid over the
simplex (step ``step``) by ``metric`` on the validation data, each member alone included (the
grid's corners), so a blend is never chosen over its best member without validation evidence.

>>> blend = Blend(members=[LMRanker(...), EASE(lam=50.0)]).fit(split.train, split.valid)  # doctest: +SKIP
>>> blend.weights_, blend.selection_[0]  # the chosen weights; each grid point's validation NDCG@10  # doctest: +SKIP

Members already fitted on the same training data (same fingerprint) are used as they are, so
a trained language-model ranker joins a blend without training again; any other member is
fitted on a copy. Saved as one artifact: the blend's manifest, each member in ``member-<i>/``.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from lmrec.data.interactions import Interactions
from lmrec.errors import ArtifactError, ConfigError, check_positive
from lmrec.evaluation.evaluator import EvalTask, rankable, user_values
from lmrec.evaluation.metrics import PER_USER, parse_metric
from lmrec.models.base import MODELS, LoadRules, Recommender

MAX_GRID = 5000  # weight vectors tried on validation at most (members x step)
SCORE_BUDGET = 1 << 26  # member scores held at once in the weight search (floats: 256 MB)
Member = Recommender | str | dict[str, Any]


def member_spec(member: Member) -> dict[str, Any]:
    """A member as its saved form {"model": registry name, "params": {...}}."""
    if isinstance(member, Recommender):
        return {"model": member.name, "params": member.get_params()}
    if isinstance(member, str):
        return {"model": member, "params": {}}
    if isinstance(member, dict) and set(member) <= {"model", "params"} and isinstance(member.get("model"), str) \
            and isinstance(member.get("params", {}), dict):
        return {"model": member["model"], "params": dict(member.get("params", {}))}
    raise ConfigError(f"a Blend member must be a Recommender, a model name or {{'model': NAME, 'params': {{...}}}}; "
                      f"got {member!r}.")


def build_member(member: Member) -> Recommender:
    """An unfitted member (a Recommender passed in is returned as it is)."""
    if isinstance(member, Recommender):
        return member
    spec = member_spec(member)
    name = spec["model"]
    if name not in MODELS or name == Blend.name:
        raise ConfigError(f"Unknown Blend member model {name!r}; supported: "
                          f"{', '.join(m for m in MODELS if m != Blend.name)}.")
    try:
        return MODELS[name](**spec["params"])
    except TypeError as exc:
        raise ConfigError(f"Bad parameters for Blend member {name!r} ({exc}).") from None


def simplex_grid(n: int, step: float) -> np.ndarray:
    """(G, n) weight vectors >= 0 summing to 1 on a grid of ``step`` (1 / step must be an integer)."""
    parts = round(1.0 / step)
    if not math.isclose(parts * step, 1.0, abs_tol=1e-9):
        raise ConfigError(f"The 'step' parameter of Blend must divide 1 (0.05, 0.1, 0.25, ...); got {step!r}.")
    if math.comb(parts + n - 1, n - 1) > MAX_GRID:
        raise ConfigError(f"Blend's grid of {n} members at step {step} has {math.comb(parts + n - 1, n - 1)} points "
                          f"(at most {MAX_GRID}); use a larger step or give weights=.")
    rows = [c for c in itertools.product(range(parts + 1), repeat=n - 1) if sum(c) <= parts]
    return np.array([[*c, parts - sum(c)] for c in rows], dtype=np.float64) / parts


def standardise(scores: torch.Tensor) -> torch.Tensor:
    """(B, N) per-row z-scores over the finite entries; a non-finite score becomes the row's lowest."""
    s = scores.float()
    finite = torch.isfinite(s)
    n = finite.sum(1, keepdim=True).clamp(min=1)
    zero = torch.zeros_like(s)
    mean = torch.where(finite, s, zero).sum(1, keepdim=True) / n
    std = (torch.where(finite, s - mean, zero).pow(2).sum(1, keepdim=True) / n).sqrt()
    z = (s - mean) / torch.where(std > 0, std, torch.ones_like(std))
    low = torch.where(finite, z, torch.full_like(z, torch.inf)).min(1, keepdim=True).values
    return torch.where(finite, z, torch.where(torch.isfinite(low), low, zero))


class Blend(Recommender):
    """Weighted sum of the members' per-user standardised scores (history models only).

    Parameters
    ----------
    members: two or more models: fitted or unfitted Recommenders, registry names, or
        {"model": name, "params": {...}}; each must read the history at scoring time
        (``uses_history``: lm-ranker, ease, itemknn, text-knn).
    weights: one non-negative weight per member (normalised to sum 1), or None to choose them on
        the validation data passed to ``fit``.
    step: the grid step of the weight search; metric: what the search maximises.
    """

    name = "blend"
    uses_order = True  # members that read the order get it; the others binarise their copy

    def __init__(self, members: Sequence[Member] = ("lm-ranker", "ease"), weights: Sequence[float] | None = None,
                 step: float = 0.05, metric: str = "ndcg@10") -> None:
        self.members = members
        self.weights = weights
        self.step = step
        self.metric = metric

    def get_params(self) -> dict[str, Any]:
        weights = self.weights
        if isinstance(weights, np.ndarray):  # saved as JSON
            weights = weights.tolist()
        return {"members": [member_spec(m) for m in self.members], "weights": weights, "step": self.step,
                "metric": self.metric}

    # ----------------------------------------------------------------- fitting
    def check_params(self) -> None:
        for member in self._check():
            if not member.is_fitted:
                member.check_params()

    def _check(self) -> list[Recommender]:
        if isinstance(self.members, (str, dict)) or len(self.members) < 2:
            raise ConfigError(f"The 'members' parameter of Blend must list two or more models; got {self.members!r}.")
        models = [build_member(m) for m in self.members]
        for i, m in enumerate(models):
            if isinstance(m, Blend):
                raise ConfigError(f"Blend member {i} is a blend; list its members in this blend instead.")
            if not m.uses_history:
                raise ConfigError(f"Blend member {i} ({m.name!r}) does not score from the history it is given; a blend "
                                  "takes history models (lm-ranker, ease, itemknn, text-knn).")
        if self.weights is not None:
            check_weights(self.weights, len(models), "weights")
        check_positive("Blend", "step", self.step)
        spec = parse_metric(self.metric)
        if spec.kind not in PER_USER:
            raise ConfigError(f"The 'metric' parameter of Blend must be a per-user top-K metric "
                              f"({', '.join(PER_USER)} @K); got {self.metric!r}.")
        return models

    def _fit(self, train: Interactions, valid: Interactions | None) -> None:
        models, fingerprint = self._check(), train.fingerprint()
        fitted = []
        for i, m in enumerate(models):
            if m.is_fitted:
                if m.fingerprint_ != fingerprint:
                    raise ConfigError(f"Blend member {i} ({m.name!r}) was fitted on other training data (fingerprint "
                                      f"{m.fingerprint_} != {fingerprint}); pass it unfitted or fit it on this data.")
                fitted.append(m)
            else:
                fitted.append(m.clone().fit(train, valid))
        self.members_ = fitted
        if self.weights is not None:
            self.weights_ = normalised(self.weights)
            self.selection_: list[dict[str, Any]] = []
            return
        if valid is None or not len(valid):
            raise ConfigError("Blend with weights=None chooses its weights on validation data: call fit(train, valid) "
                              "or give weights=.")
        self.weights_, self.selection_ = self._search(EvalTask.build(train, valid))

    def _search(self, task: EvalTask) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Every grid point's mean validation metric in one pass over the users (members score once)."""
        spec, grid = parse_metric(self.metric), simplex_grid(len(self.members_), self.step)
        totals = np.zeros(len(grid))
        weights = torch.as_tensor(grid, dtype=torch.float32)
        batch = max(1, min(1024, SCORE_BUDGET // (len(self.members_) * self.n_items_)))
        for lo in range(0, len(task.users), batch):
            users = task.users[lo: lo + batch]
            z = self._member_scores(users, task.history[users])  # (members, B, N)
            for g in range(len(grid)):
                blended = torch.einsum("m,mbn->bn", weights[g], z)
                totals[g] += user_values(rankable(blended, task, users), task, users, spec).sum()
        means = totals / max(len(task.users), 1)
        selection = [{"weights": [round(float(w), 6) for w in row], self.metric: float(v)}
                     for row, v in zip(grid, means)]
        return grid[int(np.argmax(means))], selection  # ties: the first grid point, the one leaning to the last member

    # ----------------------------------------------------------------- scoring
    def _member_scores(self, users: np.ndarray, rows: sp.csr_matrix) -> torch.Tensor:
        """(members, B, N) standardised member scores from explicit history rows."""
        return torch.stack([standardise(m.score_rows(users, rows).cpu()) for m in self.members_])

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        z = self._member_scores(users, history)
        return torch.einsum("m,mbn->bn", torch.as_tensor(self.weights_, dtype=torch.float32), z)

    # ----------------------------------------------------------------- persistence
    def _extra_manifest(self) -> dict[str, Any]:
        return {"weights": [float(w) for w in self.weights_], "selection": self.selection_}

    def _set_extra(self, extra: dict[str, Any]) -> None:
        try:
            if not isinstance(self.members, list):
                raise ConfigError(f"Blend's members must be a list; got {self.members!r}.")
            self.members = [member_spec(m) for m in self.members]
            weights = check_weights(extra.get("weights"), len(self.members), "manifest extra.weights")
        except ConfigError as exc:
            raise ArtifactError(str(exc)) from None
        self.weights_ = normalised(weights)
        selection = extra.get("selection", [])
        self.selection_ = selection if isinstance(selection, list) else []

    def _save_files(self, directory: Path) -> None:
        for i, m in enumerate(self.members_):
            m.save(directory / f"member-{i}")

    def _load_files(self, directory: Path, rules: LoadRules | None) -> None:
        members = []
        for i, spec in enumerate(self.members):  # specs, checked by _set_extra
            if spec["model"] == Blend.name or spec["model"] not in MODELS:
                raise ArtifactError(f"{directory}/manifest.json: member {i} is a {spec['model']!r} model; a blend's "
                                    f"members are one of {', '.join(m for m in MODELS if m != Blend.name)}.")
            # loading through the listed class refuses a folder holding another class (a nested blend) unread
            m = MODELS[spec["model"]].load(directory / f"member-{i}", rules=rules)
            if (m.n_users_, m.n_items_) != (self.n_users_, self.n_items_):
                raise ArtifactError(f"{directory}/member-{i}: a model of {m.n_users_} users x {m.n_items_} items in a "
                                    f"blend of {self.n_users_} x {self.n_items_}.")
            members.append(m)
        self.members_ = members


def check_weights(weights: Any, n: int, field: str) -> Sequence[float]:
    """``weights``: n finite non-negative numbers, not all zero (else a ConfigError naming ``field``)."""
    ok = isinstance(weights, (list, tuple, np.ndarray)) and len(weights) == n and all(
        isinstance(w, (int, float, np.integer, np.floating)) and not isinstance(w, bool) and math.isfinite(w) and w >= 0
        for w in weights) and sum(weights) > 0
    if not ok:
        raise ConfigError(f"Blend's {field} must be {n} finite numbers >= 0, not all zero (one per member); "
                          f"got {weights!r}.")
    return weights


def normalised(weights: Sequence[float]) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    return w / w.sum()
