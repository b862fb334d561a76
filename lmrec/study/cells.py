"""What one study cell computes: fit a model on a (perturbed) split and measure it.

Each function returns a JSON-able dict (per-user values as lists, so the report can compute
intervals and paired tests). Shapes: U evaluated users, k list length.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from lmrec.analysis.faithfulness import deletion_test
from lmrec.data.cleaning import CleaningConfig, clean_interactions
from lmrec.data.detect import detect_fake_users
from lmrec.data.interactions import Interactions
from lmrec.data.perturb import Perturbed, add_false_positives, corrupt_ratings, drop_interactions, inject_fake_users
from lmrec.data.protocols import get_protocol
from lmrec.data.splits import Split
from lmrec.evaluation.evaluator import Evaluator, top_lists
from lmrec.evaluation.fairness import exposure_report, popularity_segments, tradeoff_curve
from lmrec.evaluation.robustness import target_hit_ratio
from lmrec.study.compare import with_seed
from lmrec.models.base import Recommender
from lmrec.models.registry import create_model
from lmrec.models.trained import TrainedRecommender
from lmrec.study.spec import RobustnessSection, StudySpec


class Context:
    """What cells of one run share: the spec, built splits, and where runs are logged."""

    def __init__(self, spec: StudySpec, out: Path) -> None:
        self.spec, self.out = spec, out
        self._splits: dict[tuple[str, int], Split] = {}

    def split(self, protocol: str, seed: int) -> Split:
        if (protocol, seed) not in self._splits:
            self._splits[(protocol, seed)] = get_protocol(protocol, self.spec.data_dir, seed, download=self.spec.download)
        return self._splits[(protocol, seed)]

    def model(self, name: str, seed: int, run: str, train: dict[str, Any] | None = None,
              protocol: str | None = None, **overrides: Any) -> Recommender:
        """The spec's model ``name`` (its parameters for ``protocol``), seeded, with ``overrides`` and
        TrainConfig fields ``train``; a trained one logs to runs/<run>."""
        registry, params = self.spec.model(name, protocol)
        model = with_seed(create_model(registry, **{**params, **overrides}), seed)
        current = model.get_params()
        if "config" in current:
            cfg = dict(current["config"] or {})
            cfg.update(train or {})
            cfg.update(run_dir=str(self.out / "runs" / run), run_name=run,  # progress: its epoch lines stay
                       tracking=self.spec.tracking, tracking_dir=str(self.out / "runs"))
            model = model.clone(config=cfg)
        return model


def fit(model: Recommender, train: Interactions, valid: Interactions) -> tuple[Recommender, dict[str, Any]]:
    start = time.perf_counter()
    model.fit(train, valid)
    info: dict[str, Any] = {"fit_seconds": round(time.perf_counter() - start, 3)}
    if isinstance(model, TrainedRecommender):
        info.update(epochs=len(model.training_log_), best_epoch=model.best_epoch_)
    return model, info


def _evaluation(model: Recommender, split: Split, metrics: list[str]) -> tuple[Evaluator, dict[str, Any]]:
    evaluator = Evaluator(split, metrics)
    result = evaluator.evaluate(model)
    return evaluator, {"summary": result.summary(), "users": result.users.tolist(),
                       "per_user": {m: v.tolist() for m, v in result.per_user.items()}}


def loss_cell(ctx: Context, protocol: str, loss: str, seed: int, run: str) -> dict[str, Any]:
    """The losses section's model trained with ``loss`` ("NAME", or "NAME:SAMPLER" to draw its
    negatives otherwise, e.g. "softmax:all" for the full softmax over the catalogue)."""
    assert ctx.spec.losses is not None
    split = ctx.split(protocol, seed)
    loss, _, sampler = loss.partition(":")
    train = {**ctx.spec.losses.config.get(protocol, {}), **({"sampler": sampler} if sampler else {})}
    model, info = fit(ctx.model(ctx.spec.losses.model, seed, run, train, loss=loss), split.train, split.valid)
    _, out = _evaluation(model, split, ctx.spec.metrics)
    return {**out, **info, "run": run}


def group_labels(split: Split, users: np.ndarray, groups: list[str]) -> dict[str, list[str]]:
    """Each requested user attribute of ``users`` as labels; "activity" is the tercile of training
    interactions (low / mid / high among the evaluated users). Missing attributes are left out."""
    out: dict[str, list[str]] = {}
    table = split.train.user_table
    for name in groups:
        if name == "age" and name in table.columns:  # MovieLens-1M's bands (its age codes fall in them too)
            age = np.asarray(table[name].to_numpy()[users], dtype=np.float64)
            edges, labels = [18, 25, 35, 45, 50, 56], ["<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+"]
            bands = np.searchsorted(edges, age, side="right")
            out[name] = [labels[i] if not np.isnan(a) else "unknown" for i, a in zip(bands, age)]
        elif name == "activity":
            counts = np.bincount(split.train.users, minlength=split.n_users)[users]
            lo, hi = np.quantile(counts, [1 / 3, 2 / 3])
            out[name] = np.where(counts <= lo, "low", np.where(counts <= hi, "mid", "high")).tolist()
        elif name in table.columns:
            out[name] = [str(v) for v in table[name].to_numpy()[users]]
    return out


def fairness_cell(ctx: Context, protocol: str, name: str, seed: int, run: str) -> dict[str, Any]:
    """Per-user accuracy with group labels, item exposure of the top-k lists, the re-ranking curve."""
    sec = ctx.spec.fairness
    assert sec is not None
    split = ctx.split(protocol, seed)
    model, info = fit(ctx.model(name, seed, run), split.train, split.valid)
    evaluator, out = _evaluation(model, split, [f"ndcg@{sec.k}", f"recall@{sec.k}"])
    task = evaluator.task
    items, scores = top_lists(model, task, sec.pool)
    popularity = split.train.item_popularity()
    truth = task.truth[task.users]
    return {**out, **info, "run": run, "groups": group_labels(split, task.users, sec.groups),
            "exposure": exposure_report(items[:, :sec.k], popularity, truth, popularity_segments(popularity)),
            "tradeoff": tradeoff_curve(items, scores, popularity, truth, sec.k, tuple(sec.lams))}


def attack_targets(train: Interactions, n: int, seed: int) -> np.ndarray:
    """``n`` target items drawn among the tail (the least popular half) items that have interactions."""
    popularity = train.item_popularity()
    tail = np.flatnonzero((popularity_segments(popularity) == 2) & (popularity > 0))
    return np.sort(np.random.default_rng(seed).choice(tail, min(n, len(tail)), replace=False))


def _with_train(split: Split, perturbed: Perturbed) -> Split:
    """``split`` whose train is the perturbed one (valid and test share its grown id maps)."""
    data = perturbed.data
    grow = {"user_ids": data.user_ids, "user_table": data.user_table}
    return replace(split, train=data, valid=replace(split.valid, **grow), test=replace(split.test, **grow))


def perturb(split: Split, kind: str, level: float, targets: np.ndarray, sec: RobustnessSection,
            seed: int) -> Perturbed:
    train = split.train
    if kind == "false-positives":
        return add_false_positives(train, level, seed)
    if kind == "dropped":
        return drop_interactions(train, level, seed)
    return inject_fake_users(train, kind, targets, level, filler=sec.filler, seed=seed)


def robustness_cell(ctx: Context, name: str, kind: str, level: float, defence: bool, seed: int,
                    run: str) -> dict[str, Any]:
    """Train on a perturbed split (``kind``: "clean", "false-positives", "dropped" or an attack),
    optionally after removing the users the detector flags; evaluate on the clean test users."""
    sec = ctx.spec.robustness
    assert sec is not None
    split = ctx.split(sec.protocol, seed)
    targets = attack_targets(split.train, sec.targets, seed)
    out: dict[str, Any] = {"targets": targets.tolist()}
    if kind != "clean":
        perturbed = perturb(split, kind, level, targets, sec, seed)
        split = _with_train(split, perturbed)
        out["fake_users"] = len(perturbed.fake_users)
    if defence:
        found = detect_fake_users(split.train, sec.threshold)
        flagged = np.flatnonzero(found.flagged)
        fake = set(range(ctx.split(sec.protocol, seed).n_users, split.n_users))
        caught = len(fake & set(flagged.tolist()))
        out.update(flagged=len(flagged), caught=caught, detect_recall=caught / len(fake) if fake else float("nan"),
                   detect_precision=caught / len(flagged) if len(flagged) else float("nan"))
        split = replace(split, train=split.train.subset(~found.flagged[split.train.users]))
    model, info = fit(ctx.model(name, seed, run), split.train, split.valid)
    evaluator, ev = _evaluation(model, split, [f"ndcg@{sec.k}", f"recall@{sec.k}"])
    top, _ = top_lists(model, evaluator.task, sec.k)
    return {**out, **ev, **info, "run": run, "target_hr": target_hit_ratio(top, targets)}


def cleaning_cell(ctx: Context, share: float, seed: int) -> dict[str, Any]:
    """Ratings set outside the scale, and what the cleaning step (outliers="drop") removes."""
    sec = ctx.spec.robustness
    assert sec is not None
    train = ctx.split(sec.protocol, seed).train
    corrupted = corrupt_ratings(train, share, (sec.rating_scale[0], sec.rating_scale[1]), seed)
    cleaned, _ = clean_interactions(corrupted.data, CleaningConfig(
        rating_scale=(sec.rating_scale[0], sec.rating_scale[1]), outliers="drop", dedupe="none"))
    removed = len(corrupted.data) - len(cleaned)
    in_scale = (cleaned.ratings >= sec.rating_scale[0]) & (cleaned.ratings <= sec.rating_scale[1])
    return {"corrupted": int(corrupted.changed.sum()), "removed": removed, "left_out_of_scale": int((~in_scale).sum()),
            "recall": (int(corrupted.changed.sum()) - int((~in_scale).sum())) / max(int(corrupted.changed.sum()), 1),
            "precision": int(corrupted.changed.sum()) / removed if removed else float("nan")}


def explanation_cell(ctx: Context, name: str, seed: int, run: str) -> dict[str, Any]:
    """The deletion test of each explainer on ``users`` test users of the section's protocol."""
    sec = ctx.spec.explanations
    assert sec is not None
    split = ctx.split(sec.protocol, seed)
    model, info = fit(ctx.model(name, seed, run), split.train, split.valid)
    if not model.uses_history:
        return {**info, "applicable": False, "reason": f"{model.name} does not read the history when scoring"}
    task = Evaluator(split, ["ndcg@10"]).task
    rng = np.random.default_rng(seed)
    users = np.sort(rng.choice(task.users, min(sec.users, len(task.users)), replace=False))
    result = deletion_test(model, task, users, tuple(sec.sizes), tuple(sec.explainers), seed)
    return {**info, "applicable": True, "run": run, "users": users.tolist(),
            "drops": {e: {str(n): v.tolist() for n, v in d.items()} for e, d in result.drops.items()},
            "random": {str(n): v.tolist() for n, v in result.random.items()}}


def training_cost(model: TrainedRecommender) -> dict[str, Any]:
    """Epochs run, the best (kept) epoch and mean wall / CPU seconds per epoch of a trained model's log."""
    log = model.training_log_
    return {"epochs": len(log), "best_epoch": model.best_epoch_,
            "seconds_per_epoch": round(float(np.mean([r["train_seconds"] for r in log])), 2),
            "cpu_seconds_per_epoch": round(float(np.mean([r["train_cpu_seconds"] for r in log])), 2)}
