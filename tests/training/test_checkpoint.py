"""Resumable checkpoints: a run cut in two equals the uninterrupted run; foreign checkpoints are refused."""
from __future__ import annotations

import json

import numpy as np
import pytest

from lmrec.errors import ArtifactError, ConfigError
from lmrec.models import BPRMF
from lmrec.training import TrainConfig


def fit(split, epochs: int, folder=None, **changes) -> BPRMF:
    cfg = TrainConfig(epochs=epochs, batch_size=8, lr=0.05, n_negatives=2, patience=50, progress=False, seed=3,
                      checkpoint_dir=None if folder is None else str(folder), **changes)
    return BPRMF(dim=4, config=cfg).fit(split.train, split.valid)


@pytest.mark.parametrize("sampler", ["uniform", "hard", "in-batch"])
def test_a_run_resumed_from_its_checkpoint_equals_the_uninterrupted_run(tiny_split, tmp_path, sampler):
    straight = fit(tiny_split, 6, sampler=sampler)
    fit(tiny_split, 3, tmp_path / "ckpt", sampler=sampler)
    assert json.loads((tmp_path / "ckpt" / "checkpoint.json").read_text())["epoch"] == 3
    resumed = fit(tiny_split, 6, tmp_path / "ckpt", sampler=sampler)
    assert [r["epoch"] for r in resumed.training_log_] == list(range(1, 7)), "records of both parts are kept"
    np.testing.assert_allclose(resumed.factors()[1].numpy(), straight.factors()[1].numpy(), atol=1e-6)
    assert resumed.best_epoch_ == straight.best_epoch_


def test_a_checkpoint_of_other_settings_or_a_corrupt_one_is_refused(tiny_split, tmp_path):
    fit(tiny_split, 1, tmp_path / "ckpt")
    with pytest.raises(ConfigError, match=r"written with other settings \(model.config.lr, train.lr\)"):
        BPRMF(dim=4, config=TrainConfig(epochs=2, batch_size=8, lr=0.01, n_negatives=2, patience=50,
                                        progress=False, seed=3, checkpoint_dir=str(tmp_path / "ckpt"))
              ).fit(tiny_split.train, tiny_split.valid)
    (tmp_path / "ckpt" / "tensors.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(ArtifactError, match="tensors.safetensors is not readable"):
        fit(tiny_split, 2, tmp_path / "ckpt")
    (tmp_path / "ckpt" / "checkpoint.json").write_text('{"format": 99}')
    with pytest.raises(ArtifactError, match="not an lmrec training checkpoint"):
        fit(tiny_split, 2, tmp_path / "ckpt")
