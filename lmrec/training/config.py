"""TrainConfig: every knob of the pairwise training loop, in one dataclass."""
from __future__ import annotations

from dataclasses import dataclass

from lmrec.data.sampling import POOLS
from lmrec.errors import ConfigError, check_choice, check_positive
from lmrec.evaluation.metrics import parse_metric
from lmrec.options import Options
from lmrec.training.tracking import TRACKERS

SAMPLERS = ("uniform", "popularity", "in-batch", "hard", "all", "unseen")
PRECISIONS = ("fp32", "bf16")


@dataclass
class TrainConfig(Options):
    """Training-loop settings shared by every trained model (CLI flags map one to one).

    Attributes
    ----------
    epochs: upper bound on epochs; early stopping usually ends sooner.
    batch_size: positive (user, item) pairs per step.
    lr: Adam learning rate.
    weight_decay: decoupled weight decay (AdamW, Loshchilov & Hutter 2019) on every trained
        parameter; 0 is plain Adam. It shrinks ID embeddings that the loss stops supporting.
    n_negatives, sampler, pop_alpha, hard_pool, negative_pool: the negatives of models that take
        no negatives part (BPR-MF, LightGCN; :func:`lmrec.training.negatives.negatives_from_config`
        turns them into one). LMRanker takes its negatives as a part (``negatives=Unseen()``, see
        :mod:`lmrec.training.negatives`) and refuses these fields.
    n_negatives: negatives sampled per positive.
    sampler: where negatives come from: "uniform", "popularity" (p ∝ count ** pop_alpha),
        "in-batch" (other positives of the same batch, so popularity-distributed, no extra
        items scored), or "hard" (the highest-scoring of ``hard_pool`` × n_negatives uniform
        candidates under the current model), or "all" (every item in the catalogue except the
        positive: with the softmax loss this is full cross-entropy over the catalogue;
        n_negatives is then ignored), or "unseen" (as "all", less every item the user has in
        training: the user's other positives are not pushed down either, as the uniform
        sampler's redraws avoid them).
    negative_pool: "all-items", or "train-items": negatives only among items with at least one
        training interaction, so items new at training time (cold items) are never pushed down
        (every sampler, the full-catalogue ones included).
    metric: validation metric for early stopping and model selection.
    patience: evaluations without improvement before stopping.
    plateau_decay: on an evaluation without improvement, go back to the best weights so far and
        multiply the learning rate by this factor before going on (a "reduce on plateau" with
        restart); 1 turns it off. With patience p, training stops after p such evaluations in a row.
    eval_every: epochs between validation evaluations.
    seed: seeds torch and the sampler.
    device: "cpu", "cuda", "cuda:1", ...
    run_dir: where config.json and metrics.jsonl (one line per epoch) go; None for none.
    progress: one line per epoch on stderr (loss, validation metric, best so far, seconds), and
        progress bars when stderr is a terminal; False for silence.
    max_minutes: wall-clock budget for the whole loop (training and validation); no epoch is
        started that the mean epoch so far says would overrun it (at least one always runs).
        None for no budget. A guard only: a reported configuration is bounded by epochs.
    grad_accum: split each batch into this many micro-batches, one backward pass each, and step
        once: the gradient of the whole batch with the activation memory of one micro-batch.
    precision: "fp32", or "bf16" (autocast to bfloat16 on CPU and CUDA: matrix products in
        bfloat16, weights and the optimizer in float32).
    checkpoint_dir: a folder for a resumable checkpoint, replaced after every epoch; a run whose
        folder already holds one goes on from it (same settings required; ``epochs`` may grow).
        Written by rank 0 of a distributed run; resumable with any number of processes.
    tracking: "none", "tensorboard" or "mlflow": send each epoch's record there
        (:mod:`lmrec.training.tracking`; the extra ``lmrec[tracking]``).
    tracking_dir: the trackers' folder (TensorBoard event files, the MLflow SQLite store).
    run_name: the run's name for the trackers (default: the run directory's name, else the time).
    """

    epochs: int = 100
    batch_size: int = 4096
    lr: float = 1e-3
    weight_decay: float = 0.0
    n_negatives: int = 1
    sampler: str = "uniform"
    pop_alpha: float = 0.75
    hard_pool: int = 10
    negative_pool: str = "all-items"
    metric: str = "ndcg@10"
    patience: int = 5
    plateau_decay: float = 1.0
    eval_every: int = 1
    seed: int = 2026
    device: str = "cpu"
    run_dir: str | None = None
    progress: bool = True
    max_minutes: float | None = None
    grad_accum: int = 1
    precision: str = "fp32"
    checkpoint_dir: str | None = None
    tracking: str = "none"
    tracking_dir: str = "runs"
    run_name: str | None = None

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "lr", "n_negatives", "patience", "eval_every", "grad_accum"):
            check_positive("TrainConfig", name, getattr(self, name))
        check_choice("TrainConfig", "sampler", self.sampler, SAMPLERS)
        check_choice("TrainConfig", "precision", self.precision, PRECISIONS)
        check_choice("TrainConfig", "negative_pool", self.negative_pool, POOLS)
        check_choice("TrainConfig", "tracking", self.tracking, TRACKERS)
        if self.grad_accum > self.batch_size:
            raise ConfigError(f"The 'grad_accum' parameter of TrainConfig must be at most batch_size "
                              f"({self.batch_size}): each micro-batch needs a row; got {self.grad_accum!r}.")
        check_positive("TrainConfig", "weight_decay", self.weight_decay, allow_zero=True)
        check_positive("TrainConfig", "hard_pool", self.hard_pool)
        if not 0 < self.plateau_decay <= 1:
            raise ConfigError(f"The 'plateau_decay' parameter of TrainConfig must be in (0, 1]; "
                              f"got {self.plateau_decay!r}.")
        if self.max_minutes is not None:
            check_positive("TrainConfig", "max_minutes", self.max_minutes)
        parse_metric(self.metric)
