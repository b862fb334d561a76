"""The `lmrec` command: data info|prepare, train, evaluate, compare, study, serve, publish, retrain, encoders.

Every option maps onto a library parameter: model hyperparameters are given as
``NAME:key=value,key=value`` (e.g. ``ease:lam=500``; quote a value with commas, or give
``NAME:{JSON object}``), TrainConfig fields as flags (``--epochs``, ``--lr``, ...). Run
``lmrec COMMAND --help`` for each command.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Sequence

from lmrec.cli.data import add_data_commands
from lmrec.cli.encoders import add_encoders_parser
from lmrec.cli.lm import add_lm_args, add_pretune_parser, init_model, lm_negatives, lm_parts
from lmrec.cli.ray import launch_ray
from lmrec.cli.spec import parse_model_spec, parse_value
from lmrec.cli.study import add_study_command
from lmrec.data import PROTOCOLS, get_protocol, load_split
from lmrec.data.splits import Split
from lmrec.errors import ConfigError, LmrecError
from lmrec.evaluation.evaluator import DEFAULT_METRICS, Evaluator
from lmrec.study.compare import compare, labels
from lmrec.models.base import Recommender
from lmrec.models.registry import MODELS, create_model
from lmrec.serving.retrain_config import RetrainConfig
from lmrec.storage.versions import Holdout
from lmrec.training.config import TrainConfig
from lmrec.training.distributed import finish, init_from_env


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="datasets folder (default: $LMREC_DATA_DIR, then ~/.cache/lmrec)")
    p.add_argument("--download", action="store_true", help="download official MovieLens archives if missing")


def _add_split_args(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--split", help="a split directory written by 'lmrec data prepare'")
    g.add_argument("--protocol", help=f"a protocol name or code: {', '.join(f'{n} ({q.code})' for n, q in PROTOCOLS.items())}")
    p.add_argument("--split-seed", type=int, default=2026, help="split seed for --protocol (default 2026)")
    _add_data_args(p)


def _add_train_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training (TrainConfig fields; for trained models such as bpr-mf)")
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else None
        # from the annotation ("float | None" included), so optional numbers parse as numbers
        kind = {"bool": parse_value, "int": int, "float": float}.get(str(f.type).split(" | ")[0], str)
        g.add_argument(flag, dest=f"train_{f.name}", type=kind, default=None, help=f"default {default!r}")


def _train_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {f.name: getattr(args, f"train_{f.name}") for f in fields(TrainConfig)
            if getattr(args, f"train_{f.name}", None) is not None}


def _build_model(spec: str, overrides: dict[str, Any]) -> Recommender:
    name, params = parse_model_spec(spec)
    model = create_model(name, **params)
    current = model.get_params()
    if "config" in current and overrides:  # flags override the model's own settings (a preset's included)
        model = model.clone(config={**TrainConfig.from_any(current["config"]).to_dict(), **overrides})
    return model


def _split(args: argparse.Namespace) -> Split:
    return load_split(args.split) if args.split else get_protocol(args.protocol, args.data_dir, args.split_seed,
                                                                    download=args.download)


def cmd_train(args: argparse.Namespace) -> int:
    if args.nproc > 1:  # start the same command in N processes, under torchrun or Ray Train
        if args.launcher == "ray":
            device = str(_train_overrides(args).get("device", "cpu"))
            return launch_ray(args.nproc, without_nproc(args.argv), device, main)
        return launch_torchrun(args.nproc, args.argv)
    split = _split(args)
    overrides = {**_train_overrides(args), **({"precision": "bf16"} if args.bf16 else {})}
    overrides, negatives = lm_negatives(args, overrides)  # lm-ranker: the negatives flags make its part
    model = _build_model(args.model, overrides)
    parts = {**lm_parts(args, parse_model_spec(args.model)[1]), **negatives}
    if parts and model.name != "lm-ranker":
        raise ConfigError(f"the lm-ranker part flags apply to the model lm-ranker, not {model.name!r}.")
    if parts:
        model = model.clone(**parts)
    here = init_from_env(overrides.get("device", "cpu"))  # a torchrun process joins its group
    try:
        model.fit(split.train, split.valid, init_from=init_model(args))
    finally:
        finish()
    if not here.main:
        return 0  # rank 0 evaluates, saves and reports
    result = Evaluator(split, args.metrics, stage="valid").evaluate(model)
    metrics = {f"valid_{k}": v for k, v in result.summary().items()}
    model.save(args.out, metrics=metrics)
    print(json.dumps({"model": repr(model), "fit_seconds": round(model.fit_seconds_, 2),
                      "processes": here.size, **metrics}, indent=2))
    print(f"model written to {args.out}")
    return 0


def without_nproc(argv: list[str]) -> list[str]:
    """``argv`` less ``--nproc N`` (the command each started process runs)."""
    rest, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            rest.append(arg)
    return rest


def launch_torchrun(nproc: int, argv: list[str]) -> int:
    """Run ``lmrec <argv>`` (less ``--nproc``) in ``nproc`` local processes under torchrun."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "lmrec", *without_nproc(argv)]
    return subprocess.run(command, check=False).returncode


def cmd_evaluate(args: argparse.Namespace) -> int:
    split = _split(args)
    model = Recommender.load(args.model_dir)
    result = Evaluator(split, args.metrics, stage=args.stage, candidates=args.candidates).evaluate(model)
    out = {"model": args.model_dir, "protocol": split.protocol, "stage": args.stage, "users": int(len(result.users)),
           **{k: round(v, 6) for k, v in result.summary().items()}, "seconds": round(result.seconds, 2)}
    print(json.dumps(out, indent=2))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    overrides = _train_overrides(args)
    specs = [s for s in (s.strip() for s in args.models.split(";")) if s]
    shown = labels([Path(s).name if Path(s).is_dir() else s for s in specs])
    models: dict[str, Any] = {label: Path(spec) if Path(spec).is_dir() else _build_model(spec, overrides)
                              for label, spec in zip(shown, specs)}
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    target: Split | str = load_split(args.split) if args.split else args.protocol
    # a line per model (started, done: seconds, validation) and, from TrainConfig.progress, per epoch;
    # --progress false silences both
    report = compare(models, target, args.metrics, seeds=seeds, data_dir=args.data_dir, download=args.download,
                     candidates=args.candidates, progress=bool(overrides.get("progress", True)))
    print(report)
    if args.out:
        report.save(args.out)
        written = ", ".join(sorted(p.name for p in Path(args.out).iterdir()))  # no report.png without [plots]
        print(f"report written to {args.out}: {written}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import os

    from lmrec.extras import require

    uvicorn = require("uvicorn", "serve", "lmrec serve")
    from lmrec.serving.app import CONFIG_ENV, ServeConfig, config_to_env, create_app
    from lmrec.serving.guard import guarded_protocol, is_loopback
    from lmrec.serving.hosts import LOOPBACK_NAMES

    loopback = is_loopback(args.host)
    if args.insecure_dev and not loopback:
        raise ConfigError(f"--insecure-dev opens the write routes to anyone who reaches the server, so it binds "
                          f"loopback hosts only (127.0.0.1, ::1, localhost); got --host {args.host}. "
                          "Set LMREC_API_KEY to serve other hosts.")
    # reads are protected on any address others can reach, unless the operator opts out
    protect_reads = args.protect_reads if args.protect_reads is not None else not loopback
    if args.allowed_hosts is not None:
        hosts = [h.strip() for h in args.allowed_hosts.split(",") if h.strip()]
    else:
        hosts = list(LOOPBACK_NAMES) if loopback else []
    if not hosts and not loopback:
        print("lmrec: warning: requests naming any host in their Host header are answered; name this server's "
              "hosts with --allowed-hosts (against DNS rebinding)", file=sys.stderr)
    encoders = dict(_pair(text, "--encoder") for text in args.encoder or [])
    config = ServeConfig(model=args.model_dir, events=args.events, api_key=os.environ.get("LMREC_API_KEY") or None,
                         insecure_dev=args.insecure_dev, protect_reads=protect_reads, allowed_hosts=hosts,
                         index=args.index,
                         max_batch=args.max_batch, watch=args.watch, cache_dir=args.cache_dir, encoders=encoders,
                         load_timeout=args.load_timeout, max_body=args.max_body, max_text=args.max_text,
                         text_cache=args.text_cache, body_timeout=args.body_timeout,
                         header_timeout=args.header_timeout, keep_alive=args.keep_alive,
                         limit_concurrency=args.limit_concurrency, clock_skew=args.clock_skew)
    config.validate()
    server = {"host": args.host, "port": args.port, "log_level": args.log_level, "access_log": False,
              "timeout_keep_alive": config.keep_alive, "limit_concurrency": config.limit_concurrency,
              "http": guarded_protocol(config.header_timeout)}
    if args.workers == 1:
        app = create_app(config)  # checks and loads the model now: a bad version fails before binding the port
        uvicorn.run(app, **server)
        return 0
    from lmrec.storage.artifacts import read_manifest
    from lmrec.storage.versions import ModelStore

    read_manifest(ModelStore(args.model_dir).current_path(), kind="model")
    os.environ[CONFIG_ENV] = config_to_env(config)
    uvicorn.run("lmrec.serving.app:app_from_env", factory=True, workers=args.workers, **server)
    return 0


def _pair(text: str, flag: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise ConfigError(f"{flag} takes NAME=VALUE; got {text!r}.")
    return name, value


def cmd_publish(args: argparse.Namespace) -> int:
    from lmrec.storage.versions import ModelStore

    model = Recommender.load(args.model_dir)
    store = ModelStore(args.store)
    holdout = _split_holdout(args.holdout, model) if args.holdout else None  # read before anything is written
    name = store.publish(model, metrics=model.manifest_.get("metrics", {}))
    out: dict[str, Any] = {"published": name, **store.describe()}
    if holdout is not None:
        store.save_holdout(holdout)
        out["holdout"] = {"source": holdout.source, **holdout.info}
    print(json.dumps(out, indent=2))
    return 0


def _split_holdout(split_dir: str, model: Recommender) -> Holdout:
    """The validation interactions of the split in ``split_dir`` as the retraining gate's fixed holdout
    (raw ids); counts how many of them ``model`` was trained on."""
    valid = load_split(split_dir).valid
    if not len(valid):
        raise ConfigError(f"--holdout {split_dir}: the split has no validation interactions; the gate's holdout is "
                          "a split's validation part (write one with lmrec data prepare).")
    users, items = valid.user_ids[valid.users], valid.item_ids[valid.items]
    coo = model.train_matrix_.tocoo()
    from lmrec.serving.gate import pair_keys

    trained = set(pair_keys(model.user_ids_[coo.row], model.item_ids_[coo.col]))
    overlap = sum(key in trained for key in pair_keys(users, items))
    return Holdout(users, items, f"validation interactions of the split {split_dir}",
                   {"pairs": int(len(valid)), "users": int(len(set(valid.users.tolist()))), "in_model_training": overlap})


def cmd_retrain(args: argparse.Namespace) -> int:
    from lmrec.serving.events import open_event_store
    from lmrec.serving.retrain import retrain
    from lmrec.storage.versions import ModelStore

    cfg = RetrainConfig(holdout=args.holdout, margin=args.margin, metric=args.metric, epochs=args.epochs, lr=args.lr,
                        min_events=args.min_events, positive_types=tuple(args.positive_types), min_value=args.min_value,
                        max_user_events=args.max_user_events, max_item_events=args.max_item_events,
                        jump_factor=args.jump_factor, jump_min=args.jump_min, accept_jumps=tuple(args.accept_jump),
                        trusted_gate=args.trusted_gate, trusted_users=args.trusted_users,
                        trusted_recent=args.trusted_recent,
                        exposure_check=args.exposure_check, exposure_users=args.exposure_users,
                        exposure_factor=args.exposure_factor, exposure_gain=args.exposure_gain,
                        detect_fakes=args.detect_fakes, detect_threshold=args.detect_threshold, noise_z=args.noise_z)
    result = retrain(ModelStore(args.model), open_event_store(args.events), cfg)
    print(json.dumps(result.to_dict(), indent=2))
    return 0 if result.promoted else 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmrec", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    add_data_commands(sub)  # lmrec/cli/data.py: data info|prepare, built-in names or your own files
    add_study_command(sub)  # lmrec/cli/study.py: lmrec study SPEC

    metrics_help = "metric names, e.g. ndcg@10 recall@10 auc coverage@10"
    train = sub.add_parser("train", help="fit a model on a split and save it",
                           description=f"Models: {', '.join(MODELS)}. Example: lmrec train ease:lam=500 --protocol P1 --out models/ease")
    train.add_argument("model", help="NAME or NAME:key=value,... (e.g. bpr-mf:dim=64,loss=hinge)")
    train.add_argument("--out", required=True, help="model directory to write")
    train.add_argument("--metrics", nargs="+", default=["ndcg@10", "recall@10"], help=metrics_help)
    _add_split_args(train)
    train.add_argument("--nproc", type=int, default=1,
                       help="data-parallel processes on this machine (runs torchrun; gloo on CPU, NCCL with "
                            "--device cuda); several machines: torchrun --nnodes ... -m lmrec train, see README")
    train.add_argument("--launcher", choices=["torchrun", "ray"], default="torchrun",
                       help="what starts the --nproc processes: torchrun (default) or Ray Train's TorchTrainer "
                            "(pip install 'lmrec[ray]'; RAY_ADDRESS selects a cluster)")
    _add_train_args(train)
    add_lm_args(train)
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser("evaluate", help="evaluate a saved model on a split")
    ev.add_argument("model_dir")
    ev.add_argument("--metrics", nargs="+", default=list(DEFAULT_METRICS), help=metrics_help)
    ev.add_argument("--stage", choices=["test", "valid"], default="test")
    ev.add_argument("--candidates", choices=["all", "cold"], default="all")
    _add_split_args(ev)
    ev.set_defaults(func=cmd_evaluate)

    cmp_ = sub.add_parser("compare", help="train and evaluate several models, print and save a report",
                          description="Example: lmrec compare --protocol P3 --models 'most-popular;ease:lam=200;bpr-mf' --out reports/p3")
    cmp_.add_argument("--models", required=True,
                      help="';'-separated model specs (NAME or NAME:key=value,...) or saved model directories")
    cmp_.add_argument("--metrics", nargs="+", default=list(DEFAULT_METRICS), help=metrics_help)
    cmp_.add_argument("--seeds", help="comma-separated seeds, e.g. 2026,2027,2028 (mean and 95%% interval)")
    cmp_.add_argument("--candidates", choices=["all", "cold"], default="all")
    cmp_.add_argument("--out", help="report directory (report.md, report.json, report.png)")
    _add_split_args(cmp_)
    _add_train_args(cmp_)
    cmp_.set_defaults(func=cmd_compare)

    serve = sub.add_parser("serve", help="serve a model over HTTP (FastAPI + uvicorn)",
                           description="Serve a model directory or a version store. Write routes (/items, /events, "
                                       "/admin) need LMREC_API_KEY in the environment and the X-API-Key header; "
                                       "without a key they are disabled unless --insecure-dev. "
                                       "Example: LMREC_API_KEY=s3cret lmrec serve models/ --port 8000")
    serve.add_argument("model_dir", help="a version store (v0001/, ..., CURRENT) or one model directory")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (each holds the model)")
    serve.add_argument("--events", help="event store: a SQLite path or sqlite:///path (default: events.db in the store)")
    serve.add_argument("--insecure-dev", action="store_true",
                       help="allow write routes without an API key (loopback hosts only)")
    reads = serve.add_mutually_exclusive_group()
    reads.add_argument("--protect-reads", action="store_true", default=None,
                       help="read routes need the API key too (all but /health, /metrics and the pages); the "
                            "default when --host is not a loopback address")
    reads.add_argument("--open-reads", action="store_false", dest="protect_reads",
                       help="read routes answer without the key even on a non-loopback --host")
    serve.add_argument("--allowed-hosts", metavar="NAMES",
                       help="comma-separated host names requests may name in Host (api.example.com,*.example.com; "
                            "'*' any); default: localhost,127.0.0.1,::1 on a loopback --host, else any")
    serve.add_argument("--index", choices=["auto", "exact", "hnsw"], default="auto",
                       help="vector index for factorised models (auto: HNSW once items x dims reach 4.5M, e.g. 70,000 items of 64 dims)")
    serve.add_argument("--max-batch", type=int, default=1000, help="most events/items per request (413 beyond)")
    serve.add_argument("--watch", type=float, default=0.0, help="seconds between checks for a promoted version (0: off)")
    g = serve.add_argument_group("what the server reads (it never follows a manifest's paths)")
    g.add_argument("--cache-dir", help="embedding cache for items added through the API (default: memory only)")
    g.add_argument("--encoder", action="append", metavar="NAME=DIR",
                   help="an encoder folder a manifest may name (its encoder.model, or that path's last part); "
                        "registered encoders (minilm, ...) need none")
    g.add_argument("--load-timeout", type=float, default=300.0,
                   help="seconds a version may take to load and pass its checks (in a child process)")
    g = serve.add_argument_group("limits and timeouts")
    g.add_argument("--max-body", type=int, default=1_000_000, help="bytes of one request body (413 beyond)")
    g.add_argument("--max-text", type=int, default=2000, help="characters of a text kept before tokenising")
    g.add_argument("--text-cache", type=int, default=4096, help="request-text vectors kept in memory (LRU)")
    g.add_argument("--body-timeout", type=float, default=30.0,
                   help="seconds a request body may take after its headers (408)")
    g.add_argument("--header-timeout", type=float, default=10.0,
                   help="seconds request headers may take (the connection is closed)")
    g.add_argument("--keep-alive", type=int, default=5, help="seconds an idle keep-alive connection stays open")
    g.add_argument("--limit-concurrency", type=int, default=256, help="connections served at once (503 beyond)")
    g.add_argument("--clock-skew", type=float, default=300.0,
                   help="seconds an event timestamp may be ahead of the server's clock (422 beyond)")
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(func=cmd_serve)

    pub = sub.add_parser("publish", help="copy a model directory into a version store as its next version")
    pub.add_argument("model_dir")
    pub.add_argument("store")
    pub.add_argument("--holdout", metavar="SPLIT_DIR",
                     help="a split folder (lmrec data prepare) whose validation interactions become the store's "
                          "fixed holdout for lmrec retrain's gate (replacing any it has)")
    pub.set_defaults(func=cmd_publish)

    rt = sub.add_parser("retrain", help="fine-tune on new events; promote only if not worse on the newest events "
                                        "and on the store's fixed holdout, with no item's popularity or reach jumping",
                        description="Exit status 0 when a new version was promoted, 3 when the current one was kept. "
                                    "Example: lmrec retrain --model models/ --events models/events.db")
    rt.add_argument("--model", required=True, help="the version store being served")
    rt.add_argument("--events", required=True, help="event store (SQLite path or sqlite:///path)")
    rt.add_argument("--holdout", type=float, default=0.2, help="share of the newest events held out for the comparison")
    rt.add_argument("--margin", type=float, default=0.0,
                    help="promote if candidate >= current - margin on both holdouts (see --noise-z)")
    rt.add_argument("--noise-z", type=float, default=RetrainConfig.noise_z,
                    help="... or short of it by at most this many standard errors of the paired per-user gain "
                         "(0: the margin alone)")
    rt.add_argument("--metric", default="ndcg@10")
    rt.add_argument("--epochs", type=int, default=5, help="fine-tuning epochs")
    rt.add_argument("--lr", type=float, default=None, help="fine-tuning learning rate (default: the model's)")
    rt.add_argument("--min-events", type=int, default=20)
    rt.add_argument("--positive-types", nargs="+", default=list(RetrainConfig.positive_types), help="event types that count as positive")
    rt.add_argument("--min-value", type=float, default=0.0, help="events with a smaller value are ignored")
    rt.add_argument("--max-user-events", type=int, default=RetrainConfig.max_user_events,
                    help="events read per user in a round (the first received)")
    rt.add_argument("--max-item-events", type=int, default=RetrainConfig.max_item_events,
                    help="events read per item in a round (the first received)")
    rt.add_argument("--jump-factor", type=float, default=RetrainConfig.jump_factor,
                    help="flag an item with this many times the events its training popularity predicts")
    rt.add_argument("--jump-min", type=int, default=RetrainConfig.jump_min, help="... and at least this many events")
    rt.add_argument("--accept-jump", action="append", default=[], metavar="ITEM",
                    help="an item whose popularity or reach jump an operator reviewed and accepts (repeatable)")
    d = RetrainConfig()
    g = rt.add_argument_group("the gate's evidence the event stream cannot write")
    g.add_argument("--trusted-gate", action=argparse.BooleanOptionalAction, default=d.trusted_gate,
                   help="compare on the store's fixed holdout too (lmrec publish --holdout; sampled from the "
                        "current model's training data when the store has none)")
    g.add_argument("--trusted-users", type=int, default=d.trusted_users,
                   help="users in a sampled holdout (one training interaction each)")
    g.add_argument("--trusted-recent", type=float, default=d.trusted_recent,
                   help="... drawn from each user's most recent share of training interactions")
    g.add_argument("--exposure-check", action=argparse.BooleanOptionalAction, default=d.exposure_check,
                   help="flag items whose reach in known users' top-k lists jumps")
    g.add_argument("--exposure-users", type=int, default=d.exposure_users,
                   help="known users whose top-k lists are compared (a seeded sample)")
    g.add_argument("--exposure-factor", type=float, default=d.exposure_factor,
                   help="flag an item in this many times (its current reach + 1) users' top-k lists ...")
    g.add_argument("--exposure-gain", type=float, default=d.exposure_gain,
                   help="... that gained at least this share of the sampled users")
    g.add_argument("--detect-fakes", action=argparse.BooleanOptionalAction, default=d.detect_fakes,
                   help="DegSim/RDMA on the round's new users; flagged users' events are left out and reported")
    g.add_argument("--detect-threshold", type=float, default=d.detect_threshold,
                   help="robust z-score (against known users) above which a new user is flagged")
    rt.set_defaults(func=cmd_retrain)

    add_encoders_parser(sub)
    add_pretune_parser(sub)  # encoders list|install (lmrec/cli/encoders.py)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except LmrecError as exc:
        print(f"lmrec: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
