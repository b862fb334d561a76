"""Cleaning interactions, with a report of every row that is dropped or changed.

Steps, in order: missing values -> ratings outside the declared scale -> duplicates ->
implicit conversion -> k-core filtering -> rating normalisation. Each step appends the rows it
touched (source line, user, item, action, reason, old and new rating) to the report; users and
items that lose every interaction (and so leave the catalogue) are counted as report issues.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from lmrec.data.interactions import Interactions
from lmrec.data.report import CleaningReport, show
from lmrec.errors import check_choice

NORMALISATIONS = ("minmax", "zscore", "user_mean")


@dataclass
class CleaningConfig:
    """What cleaning does. Defaults drop rows with missing values and keep the latest duplicate.

    Attributes
    ----------
    missing: "drop" removes rows with a missing user, item or rating; "keep" leaves them
        (Interactions.from_frame then refuses missing ids).
    dedupe: "latest" keeps the latest (by timestamp, else by line) of repeated user-item pairs,
        "first" the earliest, "none" keeps all.
    rating_scale: (low, high) the declared rating scale, or None to skip the outlier check.
    outliers: "drop" or "clip" ratings outside ``rating_scale``.
    implicit_threshold: keep ratings >= this and set them to 1 (implicit feedback), or None.
    min_user_interactions, min_item_interactions: k-core filter, applied until stable.
    normalize: None, "minmax" (to [0, 1] over the scale), "zscore" (global), "user_mean"
        (subtract each user's mean).
    """

    missing: str = "drop"
    dedupe: str = "latest"
    rating_scale: tuple[float, float] | None = None
    outliers: str = "drop"
    implicit_threshold: float | None = None
    min_user_interactions: int = 0
    min_item_interactions: int = 0
    normalize: str | None = None

    def validate(self) -> None:
        check_choice("CleaningConfig", "missing", self.missing, ["drop", "keep"])
        check_choice("CleaningConfig", "dedupe", self.dedupe, ["latest", "first", "none"])
        check_choice("CleaningConfig", "outliers", self.outliers, ["drop", "clip"])
        check_choice("CleaningConfig", "normalize", self.normalize, [None, *NORMALISATIONS])


@dataclass
class CleanResult:
    frame: pd.DataFrame
    report: CleaningReport


def clean(frame: pd.DataFrame, config: CleaningConfig | None = None, *, source: str | None = None,
          raw_ids: dict[str, np.ndarray] | None = None) -> CleanResult:
    """Clean a frame with columns user, item, [rating], [timestamp], [line].

    Users and items that lose every interaction are counted in ``report.issues``; when the
    frame holds dense indices, ``raw_ids`` (``{"user": user_ids, "item": item_ids}``) names
    them by raw id.

    Example
    -------
    >>> f = pd.DataFrame({"user": [1, 1, None], "item": [5, 5, 6], "rating": [4.0, 5.0, 3.0],
    ...                   "line": [2, 3, 4]})
    >>> r = clean(f, CleaningConfig(rating_scale=(1, 5)))
    >>> len(r.frame), r.report.summary()["dropped: missing user"]
    (1, 1)
    """
    cfg = config or CleaningConfig()
    cfg.validate()
    f = frame.copy()
    if "line" not in f.columns:
        f["line"] = np.arange(1, len(f) + 1)
    report = CleaningReport(rows_in=len(f))
    if cfg.missing == "drop":
        for col in ("user", "item", "rating", "timestamp"):
            if col in f.columns:
                bad = f[col].isna()
                report.add(f[bad], "dropped", f"missing {col}")
                f = f[~bad]
    if cfg.rating_scale is not None and "rating" in f.columns:
        f = _outliers(f, cfg, report)
    if cfg.dedupe != "none":
        f = _dedupe(f, cfg.dedupe, report)
    if cfg.implicit_threshold is not None and "rating" in f.columns:
        low = f["rating"] < cfg.implicit_threshold
        report.add(f[low], "dropped", f"rating below implicit threshold {cfg.implicit_threshold:g}")
        f = f[~low].copy()
        changed = f["rating"] != 1.0
        report.add(f[changed], "changed", "implicit conversion", new=1.0)
        f["rating"] = 1.0
    if cfg.min_user_interactions or cfg.min_item_interactions:
        f = _kcore(f, cfg.min_user_interactions, cfg.min_item_interactions, report)
    if cfg.normalize is not None and "rating" in f.columns:
        f = _normalise(f, cfg, report)
    report.rows_out = len(f)
    for col in ("item", "user"):
        _note_lost(frame, f, col, report, None if raw_ids is None else raw_ids[col], source)
    return CleanResult(f.reset_index(drop=True), report)


def clean_interactions(data: Interactions, config: CleaningConfig | None = None) -> tuple[Interactions, CleaningReport]:
    """Clean loaded :class:`Interactions` (raw ids and tables kept); returns (data, report)."""
    f = data.to_frame()
    f["line"] = np.arange(1, len(f) + 1)
    result = clean(f, config, raw_ids={"user": data.user_ids, "item": data.item_ids})
    out = result.frame
    cleaned = replace(
        data,
        users=out["user"].to_numpy(np.int64), items=out["item"].to_numpy(np.int64),
        ratings=out["rating"].to_numpy(np.float32),
        timestamps=out["timestamp"].to_numpy(np.int64) if "timestamp" in out else None,
    ).compact()
    # report in raw ids
    ch = result.report.changes
    if len(ch):
        ch["user"] = data.user_ids[ch["user"].to_numpy(np.int64)]
        ch["item"] = data.item_ids[ch["item"].to_numpy(np.int64)]
    return cleaned, result.report


def _note_lost(before: pd.DataFrame, after: pd.DataFrame, col: str, report: CleaningReport,
               raw: np.ndarray | None, source: str | None) -> None:
    """Count the ids of ``col`` that had interactions before cleaning and have none after."""
    lost = pd.Index(before[col].dropna().unique()).difference(pd.Index(after[col].unique()))
    names = lost[:5] if raw is None else raw[np.asarray(lost[:5], dtype=np.int64)]
    where = f"{source}: " if source else ""
    report.note(f"catalogue: {col}s left without interactions", len(lost),
                f"{where}{len(lost)} {col}s lost every interaction to cleaning and left the catalogue (the report's "
                "changes say which rows went and why).", [f"{col} {show(v)}" for v in names])


def _outliers(f: pd.DataFrame, cfg: CleaningConfig, report: CleaningReport) -> pd.DataFrame:
    lo, hi = cfg.rating_scale  # type: ignore[misc]
    out = (f["rating"] < lo) | (f["rating"] > hi)
    reason = f"rating outside scale [{lo:g}, {hi:g}]"
    if cfg.outliers == "drop":
        report.add(f[out], "dropped", reason)
        return f[~out]
    f = f.copy()
    clipped = f.loc[out, "rating"].clip(lo, hi)
    report.add(f[out], "clipped", reason, new=clipped.to_numpy())
    f.loc[out, "rating"] = clipped
    return f


def _dedupe(f: pd.DataFrame, how: str, report: CleaningReport) -> pd.DataFrame:
    order = ["timestamp", "line"] if "timestamp" in f.columns else ["line"]
    f = f.sort_values(order, kind="stable")
    dup = f.duplicated(["user", "item"], keep="last" if how == "latest" else "first")
    report.add(f[dup], "dropped", f"duplicate user-item pair (kept the {how})")
    return f[~dup].sort_values("line", kind="stable")


def _kcore(f: pd.DataFrame, min_user: int, min_item: int, report: CleaningReport) -> pd.DataFrame:
    while True:
        u_counts = f["user"].map(f["user"].value_counts())
        i_counts = f["item"].map(f["item"].value_counts())
        bad = (u_counts < min_user) | (i_counts < min_item)
        if not bad.any():
            return f
        report.add(f[bad], "dropped", f"k-core filter (users >= {min_user}, items >= {min_item})")
        f = f[~bad]


def _normalise(f: pd.DataFrame, cfg: CleaningConfig, report: CleaningReport) -> pd.DataFrame:
    f = f.copy()
    r = f["rating"].astype(float)
    if cfg.normalize == "minmax":
        lo, hi = cfg.rating_scale or (r.min(), r.max())
        new = (r - lo) / max(hi - lo, 1e-12)
    elif cfg.normalize == "zscore":
        new = (r - r.mean()) / max(r.std(ddof=0), 1e-12)
    else:  # user_mean
        new = r - f.groupby("user")["rating"].transform("mean")
    report.add(f, "changed", f"normalised ({cfg.normalize})", new=new.to_numpy())
    f["rating"] = new.astype(np.float32)
    return f
