"""The training loop: early stopping, best weights restored, run directory written."""
from __future__ import annotations

import json

import numpy as np

import pytest

import torch

from lmrec.errors import ConfigError
from lmrec.losses import Softmax, softmax
from lmrec.models import BPRMF
from lmrec.training import Negatives, TrainConfig, TrainingLog, TrainingTask, pairwise_step
from lmrec.training import train as train_loop


def test_run_dir_and_early_stopping(tiny_split, tmp_path):
    cfg = TrainConfig(epochs=40, batch_size=16, lr=0.05, patience=3, progress=False, run_dir=str(tmp_path / "run"))
    model = BPRMF(dim=4, loss="hinge", config=cfg).fit(tiny_split.train, tiny_split.valid)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert records == model.training_log_
    assert len(records) < 40, "validation stalls quickly on the tiny data: early stopping must end the run"
    best = max(r["valid_ndcg@10"] for r in records)
    assert [r["epoch"] for r in records if r["valid_ndcg@10"] == best][0] == model.best_epoch_
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model"]["loss"] == "hinge" and config["train"]["patience"] == 3


def test_seed_makes_training_reproducible(tiny_split):
    cfg = TrainConfig(epochs=3, batch_size=16, progress=False, seed=5)
    a = BPRMF(dim=4, config=cfg).fit(tiny_split.train).score([0, 1], ids="index")
    b = BPRMF(dim=4, config=cfg).fit(tiny_split.train).score([0, 1], ids="index")
    assert (a == b).all()


def test_config_errors(tiny_split):
    with pytest.raises(ConfigError, match="'sampler' parameter of TrainConfig must be one of 'uniform', 'popularity', "
                                          "'in-batch', 'hard', 'all', 'unseen'; got 'hardest'"):
        BPRMF(config=TrainConfig(sampler="hardest")).fit(tiny_split.train)
    with pytest.raises(ConfigError, match=r"Unknown TrainConfig field\(s\) \['epoch'\]"):
        BPRMF(config={"epoch": 3}).fit(tiny_split.train)
    with pytest.raises(ConfigError, match="Unknown metric 'ndcg'|needs a cutoff"):
        BPRMF(config=TrainConfig(metric="ndcg")).fit(tiny_split.train)


@pytest.mark.parametrize("sampler", ["popularity", "in-batch", "hard", "all", "unseen"])
def test_every_negative_sampler_trains(tiny_split, sampler):
    cfg = TrainConfig(epochs=150, batch_size=16, lr=0.05, n_negatives=2, sampler=sampler, progress=False, seed=3)
    model = BPRMF(dim=8, reg=0.0, config=cfg).fit(tiny_split.train)
    assert model.training_log_[-1]["loss"] < model.training_log_[0]["loss"]
    scores = model.score([0, 10], ids="index")
    # each held-out item beats the other taste group's items (popularity sampling rarely pushes the
    # rare items 8, 9 down, so they are left out of the comparison)
    assert scores[0, 3] > scores[0, 4:8].max() and scores[1, 7] > scores[1, 0:4].max()


def test_warm_start_copies_weights_and_grown_tables():
    from lmrec.training.loop import warm_start

    old, new = torch.nn.Embedding(3, 4), torch.nn.Embedding(5, 4)
    before = new.weight.detach().clone()
    assert warm_start(new, old) == 1
    torch.testing.assert_close(new.weight[:3], old.weight)
    torch.testing.assert_close(new.weight[3:], before[3:])
    assert warm_start(torch.nn.Embedding(2, 4), old) == 0, "a shrunk table is not copied"


def test_time_budget_stops_before_an_overrunning_epoch(tiny_split):
    tight = BPRMF(dim=4, config=TrainConfig(epochs=50, batch_size=16, max_minutes=1e-9, progress=False))
    assert len(tight.fit(tiny_split.train).training_log_) == 1, "one epoch always runs, none after the budget is spent"
    loose = BPRMF(dim=4, config=TrainConfig(epochs=5, batch_size=16, max_minutes=60.0, progress=False))
    assert len(loose.fit(tiny_split.train).training_log_) == 5
    with pytest.raises(ConfigError, match="'max_minutes' parameter of TrainConfig must be a number > 0; got 0"):
        BPRMF(config=TrainConfig(max_minutes=0)).fit(tiny_split.train)



class Spy:
    """A softmax loss that records how many negative scores each row masks out."""

    def __init__(self) -> None:
        self.masked: list[torch.Tensor] = []

    def __call__(self, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        self.masked.append(torch.isinf(neg).sum(1))
        return softmax(pos, neg)


def spy_run(model: BPRMF, train, cfg: TrainConfig) -> tuple[Spy, TrainingLog]:
    """One epoch of ``model``'s scores under a spying loss."""
    spy = Spy()
    step = pairwise_step(model._batch_scores, spy, Negatives(train, cfg), train)
    return spy, train_loop(TrainingTask(model.module_, step, len(train)), cfg)


def test_full_catalogue_negatives_leave_the_positive_out(tiny_split):
    n = tiny_split.train.n_items
    cfg = TrainConfig(epochs=1, batch_size=4, sampler="all", progress=False)
    pos = torch.tensor([3, 0])
    neg = Negatives(tiny_split.train, cfg).draw(np.array([0, 1]), pos)
    assert neg.shape == (2, n) and (neg == torch.arange(n)).all()
    spy, _ = spy_run(BPRMF(dim=4, config=cfg).fit(tiny_split.train), tiny_split.train, cfg)
    assert torch.cat(spy.masked).eq(1).all(), "exactly one masked score per row: the positive's own"
    # equal scores: softmax over the positive and the N - 1 others gives log N (log(N + 1) if the
    # positive were left among its own negatives)
    assert abs(float(softmax(torch.zeros(1), torch.zeros(1, n - 1))) - np.log(n)) < 1e-5


def test_unseen_negatives_leave_every_training_item_of_the_user_out(tiny_split):
    train = tiny_split.train
    cfg = TrainConfig(epochs=1, batch_size=4, sampler="unseen", progress=False, seed=5)
    spy, log = spy_run(BPRMF(dim=4, config=cfg).fit(train), train, cfg)
    order = np.random.default_rng(cfg.seed).permutation(len(train))  # the loop's first epoch order
    per_user = np.bincount(train.users, minlength=train.n_users)
    assert len(log.records) == 1
    np.testing.assert_array_equal(torch.cat(spy.masked).numpy(), per_user[train.users[order]],
                                  err_msg="each row masks exactly its user's training items (the positive among them)")


def test_gradient_accumulation_of_two_half_batches_equals_one_full_batch(tiny_split):
    """Deterministic negatives (the whole catalogue), one step of a full batch: accumulating two
    halves must give the same update as the whole batch."""
    train = tiny_split.train

    def one_step(grad_accum: int) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = TrainConfig(epochs=1, batch_size=len(train), lr=0.1, sampler="unseen", grad_accum=grad_accum,
                          progress=False, seed=7)
        model = BPRMF(dim=4, loss="softmax", config=TrainConfig(epochs=1, progress=False, seed=7)).fit(train)
        torch.manual_seed(0)
        for p in model.module_.parameters():
            torch.nn.init.normal_(p, std=0.1)
        before = torch.cat([p.detach().reshape(-1) for p in model.module_.parameters()])
        step = pairwise_step(model._batch_scores, Softmax(), Negatives(train, cfg), train)
        train_loop(TrainingTask(model.module_, step, len(train)), cfg)
        return before, torch.cat([p.detach().reshape(-1) for p in model.module_.parameters()])

    before, whole = one_step(1)
    _, halves = one_step(2)
    torch.testing.assert_close(halves, whole, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(whole, before), "the step moved the weights"
    with pytest.raises(ConfigError, match="'grad_accum' parameter of TrainConfig must be at most batch_size"):
        TrainConfig(batch_size=4, grad_accum=5).validate()


def test_bf16_autocast_trains_on_cpu(tiny_split):
    cfg = TrainConfig(epochs=60, batch_size=16, lr=0.05, precision="bf16", progress=False, seed=3)
    model = BPRMF(dim=8, reg=0.0, config=cfg).fit(tiny_split.train)
    scores = model.score([0, 10], ids="index")
    assert scores[0, 3] > scores[0, 4:8].max() and scores[1, 7] > scores[1, 0:4].max()
    assert model.module_.users.weight.dtype == torch.float32, "autocast keeps the weights in float32"
    with pytest.raises(ConfigError, match="'precision' parameter of TrainConfig must be one of 'fp32', 'bf16'"):
        TrainConfig(precision="fp16").validate()


def test_the_loop_calls_the_task_hooks_and_groups_rows():
    """after_update after every step, before_validation before every validation; rows of one group
    come together in the epoch order."""
    module = torch.nn.Linear(1, 1)
    seen_batches: list[np.ndarray] = []
    calls = {"update": 0, "validate": 0}
    groups = np.repeat(np.arange(5), 4)

    def step(rows: np.ndarray) -> torch.Tensor:
        seen_batches.append(rows)
        return module(torch.ones(len(rows), 1)).pow(2).mean()

    task = TrainingTask(module, step, len(groups), groups=groups,
                        after_update=lambda: calls.__setitem__("update", calls["update"] + 1),
                        before_validation=lambda: calls.__setitem__("validate", calls["validate"] + 1))
    log = train_loop(task, TrainConfig(epochs=3, batch_size=4, patience=10, progress=False), validate=lambda: 0.5)
    assert calls == {"update": 15, "validate": 3} and len(log.records) == 3
    assert all(len(set(groups[b])) == 1 for b in seen_batches), "batches of 4 hold one group's 4 rows each"


def test_weight_decay_shrinks_the_trained_parameters(tiny_split):
    def norm(wd: float) -> float:
        model = BPRMF(dim=8, config=TrainConfig(epochs=5, batch_size=16, weight_decay=wd, progress=False))
        model.fit(tiny_split.train)
        return float(sum(p.detach().pow(2).sum() for p in model.module_.parameters()))

    assert norm(50.0) < 0.5 * norm(0.0), "decoupled decay pulls every weight towards zero"
    with pytest.raises(ConfigError, match="'weight_decay' parameter of TrainConfig must be a number >= 0; got -1"):
        BPRMF(config=TrainConfig(weight_decay=-1)).fit(tiny_split.train)


def test_plateau_decay_restarts_from_the_best_weights_with_a_lower_lr(tiny_split):
    cfg = TrainConfig(epochs=12, batch_size=16, lr=0.05, patience=12, plateau_decay=1e-6, progress=False, seed=3)
    model = BPRMF(dim=4, loss="hinge", config=cfg).fit(tiny_split.train, tiny_split.valid)
    values = [r["valid_ndcg@10"] for r in model.training_log_]
    lrs = [r["lr"] for r in model.training_log_]
    first_drop = next(i for i in range(1, len(values)) if values[i] <= max(values[:i]))
    assert lrs[: first_drop + 1] == [0.05] * (first_drop + 1), "the rate holds until an evaluation fails to improve"
    assert lrs[first_drop + 1] == pytest.approx(0.05 * 1e-6), "then it is multiplied by plateau_decay"
    best = max(values[: first_drop + 1])
    # back at the best weights with an (almost) zero rate, every later evaluation repeats the best
    assert values[first_drop + 1:] == pytest.approx([best] * (len(values) - first_drop - 1), abs=1e-9)
    flat = BPRMF(dim=4, loss="hinge", config=TrainConfig(epochs=6, batch_size=16, lr=0.05, patience=6,
                                                         progress=False)).fit(tiny_split.train, tiny_split.valid)
    assert {r["lr"] for r in flat.training_log_} == {0.05}, "plateau_decay 1 (the default) never changes the rate"
    with pytest.raises(ConfigError, match=r"'plateau_decay' parameter of TrainConfig must be in \(0, 1\]; got 1.5"):
        BPRMF(config=TrainConfig(plateau_decay=1.5)).fit(tiny_split.train)


def test_full_catalogue_negatives_leave_items_outside_the_pool_out(tiny_split):
    from lmrec.data import Interactions

    train = tiny_split.train
    keep = train.items != 9
    cold = Interactions(users=train.users[keep], items=train.items[keep], ratings=train.ratings[keep],
                        timestamps=train.timestamps[keep], user_ids=train.user_ids, item_ids=train.item_ids,
                        item_table=train.item_table, name="cold")
    for sampler in ("all", "unseen"):
        negatives = Negatives(cold, TrainConfig(sampler=sampler, negative_pool="train-items"))
        users, pos = np.array([0, 10]), torch.tensor([1, 5])
        masks = negatives.masks(users, pos, negatives.draw(users, pos))
        assert masks[:, 9].all(), f"{sampler}: the cold item is never a negative"
        assert not masks[0, 5] and not masks[1, 1], "items of the pool the user has not seen stay negatives"


def test_a_warm_start_is_kept_when_no_epoch_beats_it_on_validation():
    """A warm-started task validates its start first (best epoch 0); training that only makes the
    validation worse returns the start's weights, and a cold task keeps its best epoch instead."""
    module = torch.nn.Linear(1, 1, bias=False)

    def run(warm: bool, target: float) -> TrainingLog:
        with torch.no_grad():
            module.weight.fill_(1.0)
        task = TrainingTask(module, lambda rows: (module.weight - 5.0).pow(2).sum(), 8, warm=warm)
        cfg = TrainConfig(epochs=3, batch_size=4, lr=0.5, patience=5, progress=False)
        return train_loop(task, cfg, validate=lambda: -abs(module.weight.item() - target))

    log = run(warm=True, target=1.0)  # training pulls the weight to 5, validation wants it at 1
    assert (log.best_epoch, log.start, len(log.records)) == (0, 0.0, 3) and module.weight.item() == 1.0
    log = run(warm=False, target=1.0)
    assert log.best_epoch == 1 and log.start is None and module.weight.item() != 1.0
    log = run(warm=True, target=5.0)  # an epoch that beats the start wins
    assert log.best_epoch >= 1 and log.start == -4.0 and module.weight.item() != 1.0


def test_fit_from_a_fitted_model_never_returns_a_worse_one_on_validation(tiny_split):
    cfg = TrainConfig(epochs=30, batch_size=16, lr=0.05, patience=3, progress=False, seed=3)
    start = BPRMF(dim=8, config=cfg).fit(tiny_split.train, tiny_split.valid)
    wrecking = TrainConfig(epochs=2, batch_size=16, lr=50.0, patience=3, progress=False, seed=4)
    model = BPRMF(dim=8, config=wrecking).fit(tiny_split.train, tiny_split.valid, init_from=start)
    assert model.start_valid_ == pytest.approx(max(r["valid_ndcg@10"] for r in start.training_log_))
    assert all(r["valid_ndcg@10"] < model.start_valid_ for r in model.training_log_), "a rate of 50 wrecks it"
    assert model.best_epoch_ == 0
    np.testing.assert_array_equal(model.score([0, 5], ids="index"), start.score([0, 5], ids="index"))


def test_progress_is_a_line_per_epoch_on_stderr_with_the_validation_figure(tiny_split, capsys):
    """Not a terminal (as under pytest, a pipe or a log file): no bars, one line per epoch naming the
    model, the validation metric and the best so far; stdout (a command's JSON) stays clean."""
    cfg = TrainConfig(epochs=3, batch_size=16, lr=0.05, patience=10, seed=3)
    BPRMF(dim=4, config=cfg).fit(tiny_split.train, tiny_split.valid)
    out = capsys.readouterr()
    lines = out.err.splitlines()
    assert out.out == "" and "\r" not in out.err and len(lines) == 3, out.err
    assert all(line.startswith(f"bpr-mf epoch {i}/3: loss ") for i, line in enumerate(lines, 1))
    assert all(", valid ndcg@10 " in line and " (best " in line and line.endswith(" s") for line in lines)
    BPRMF(dim=4, config=TrainConfig(epochs=2, progress=False)).fit(tiny_split.train, tiny_split.valid)
    assert capsys.readouterr().err == "", "progress=False is silent"
