"""What an attack achieves: how often its target items reach users' top-k lists."""
from __future__ import annotations

import numpy as np


def target_hit_ratio(top: np.ndarray, targets: np.ndarray) -> float:
    """Mean over target items of the share of users whose top-k list ``top`` (U, k) holds it
    (Mobasher et al. 2007's hit ratio); 0 for no users."""
    if not len(top):
        return 0.0
    return float(np.mean([(top == t).any(axis=1).mean() for t in np.asarray(targets)]))
