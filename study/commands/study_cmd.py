"""``distill-study study``: run (or resume) an Optuna study of paired trials.

``distill-study study replicate --run DIR --name NAME --top K --seeds S`` gives the K best
configurations S new seeds each and runs them.
"""

from __future__ import annotations

import argparse

from study.config import PRECISIONS
from study.objective import OBJECTIVES
from study.runner import PRUNERS, SAMPLERS, StudyOptions, run_study
from study.storage import DEFAULT_GRACE, DEFAULT_HEARTBEAT, DEFAULT_MAX_RETRY

__all__ = ["register", "run"]


def _add_common(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    p.add_argument("--run", required=required, metavar="DIR",
                   help="run directory (made by 'prepare' and 'teacher')")
    p.add_argument("--name", required=required, help="study name (re-using it resumes the study)")
    p.add_argument("--storage", metavar="URL",
                   help="Optuna storage: a SQLAlchemy URL (sqlite:///PATH, "
                        "postgresql+psycopg://USER:PASS@HOST/DB, mysql+pymysql://...), "
                        "journal:PATH or a *.log/*.jsonl journal file (default: "
                        "sqlite:///DIR/studies.db)")
    p.add_argument("--workers", type=int, metavar="K",
                   help="worker processes on this machine against the same storage "
                        "(default: 1, or one per CUDA device in --devices)")
    p.add_argument("--devices", default="cpu", metavar="LIST",
                   help="cpu, or comma-separated CUDA devices (cuda:0,cuda:1): one worker "
                        "process per GPU (default: cpu)")
    p.add_argument("--heartbeat", type=int, default=DEFAULT_HEARTBEAT, metavar="S",
                   help=f"seconds between a running trial's heartbeats (default: "
                        f"{DEFAULT_HEARTBEAT})")
    p.add_argument("--grace-period", type=int, default=DEFAULT_GRACE, metavar="S",
                   help="seconds without heartbeat before a trial is failed and retried "
                        f"(default: {DEFAULT_GRACE})")
    p.add_argument("--max-retry", type=int, default=DEFAULT_MAX_RETRY, metavar="N",
                   help=f"retries of a trial whose worker died (default: {DEFAULT_MAX_RETRY})")


def register(subparsers) -> None:
    """Add ``study`` (and its ``replicate`` action) to the CLI."""
    p = subparsers.add_parser(
        "study",
        help="run or resume an Optuna study of paired distill-vs-baseline trials",
        description="Run or resume a study: every trial trains one sampled configuration "
                    "twice (distill arm on teacher logits, baseline arm on labels) with one "
                    "seed and one data order. Re-running the same command resumes it.",
    )
    p.add_argument("action", nargs="?", choices=["replicate", "confirm"],
                   help="replicate: give the --top K best configurations --seeds S new seeds "
                        "each and run them; confirm: re-run the --top K best configurations "
                        "of study --from (ranked by mean over their seeds, with their first "
                        "--seeds S seeds, default 1) as study --name at its own budget: "
                        "--epochs (default: the source's) and --max-train-examples (default: "
                        "all of train), without pruning")
    _add_common(p, required=False)
    p.add_argument("--n-trials", type=int, metavar="N",
                   help="finished (complete + pruned) trials wanted for the study in total, "
                        "across workers and restarts (default: run until stopped)")
    p.add_argument("--objective", choices=OBJECTIVES,
                   help="distill: best dev accuracy of the distill arm (default); gap: distill "
                        "- baseline; both: multi-objective (distill, baseline), no pruning")
    p.add_argument("--pruner", choices=PRUNERS, default="median",
                   help="prunes both arms of a pair together after an epoch (default: median)")
    p.add_argument("--sampler", choices=SAMPLERS, default="tpe",
                   help="tpe (default, multivariate), random or gp; seeded by --seed")
    p.add_argument("--seed", type=int,
                   help="study seed: sampler, trial seeds and the train subset (default: 0, "
                        "or the one recorded in the study)")
    p.add_argument("--epochs", type=int,
                   help="epochs of every trial (default: TrialConfig's, or the recorded one)")
    p.add_argument("--max-train-examples", type=int, metavar="N",
                   help="train on a seeded, stratified subset of N training sentences")
    p.add_argument("--enqueue-original", action="store_true",
                   help="run the original study's configurations first (enqueued once)")
    p.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE",
                   help="fix a search-space parameter, e.g. --fix cell=gru (repeatable); "
                        "confirm: replace it in every configuration taken, e.g. --fix "
                        "augment_factor=4 (recorded, and said in the report)")
    p.add_argument("--range", action="append", default=[], metavar="NAME=LOW:HIGH",
                   help="narrow a parameter inside its default range, e.g. --range "
                        "lr=3e-4:1e-3, or a subset of choices, e.g. --range batch_size=32,64 "
                        "(repeatable)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="training precision (default: auto = bf16 where native, else fp32)")
    p.add_argument("--keep-weights", action="store_true",
                   help="save both arms' best-dev weights of every complete trial under "
                        "DIR/weights/NAME/ (a few MB per trial), so that 'export' needs no "
                        "retraining; always on for 'study confirm'")
    p.add_argument("--top", type=int, metavar="K", help="replicate: how many best configurations")
    p.add_argument("--seeds", type=int, metavar="S",
                   help="replicate: new seeds per configuration; confirm: seeds per "
                        "configuration (default 1)")
    p.add_argument("--from", dest="source", metavar="STUDY",
                   help="confirm: the study whose best configurations to re-run")
    p.add_argument("--from-any-teacher", action="store_true",
                   help="confirm: take the configurations of a --from study that was run on "
                        "another teacher checkpoint of the same data (e.g. the teacher "
                        "re-trained with the same recipe); recorded, and said in the report")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate the options, then run the study (see :func:`study.runner.run_study`)."""
    from study.errors import UsageError

    if not args.run or not args.name:
        raise UsageError("study: --run and --name are required")
    replicate = args.action == "replicate"
    extra = [flag for flag, value in (("--n-trials", args.n_trials),
                                      ("--enqueue-original", args.enqueue_original),
                                      ("--fix", args.fix), ("--range", args.range))
             if value]
    if replicate:
        if args.top is None or args.seeds is None:
            raise UsageError("study replicate: --top K and --seeds S are required")
        if extra:
            raise UsageError(f"study replicate: {', '.join(extra)} do not apply (the study's "
                             "recorded budget and space are used)")
    elif args.action == "confirm":
        if args.top is None or not args.source:
            raise UsageError("study confirm: --from STUDY and --top K are required")
        extra = [flag for flag in extra if flag != "--fix"]
        if extra:
            raise UsageError(f"study confirm: {', '.join(extra)} do not apply (the source "
                             "study's configurations are used; --fix NAME=VALUE replaces a "
                             "parameter of each)")
    elif args.top is not None or args.seeds is not None:
        raise UsageError("--top/--seeds belong to 'distill-study study replicate' or "
                         "'study confirm'")
    if (args.source or args.from_any_teacher) and args.action != "confirm":
        raise UsageError("--from and --from-any-teacher belong to 'distill-study study "
                         "confirm'")
    confirm = args.action == "confirm"
    options = StudyOptions(
        run=args.run,
        name=args.name,
        storage=args.storage,
        n_trials=args.n_trials,
        objective=args.objective,
        pruner=args.pruner,
        sampler=args.sampler,
        seed=args.seed,
        epochs=args.epochs,
        max_train_examples=args.max_train_examples,
        enqueue_original=args.enqueue_original,
        fixes=list(args.fix),
        ranges=list(args.range),
        workers=args.workers,
        devices=args.devices.split(","),
        precision=args.precision,
        heartbeat=args.heartbeat,
        grace_period=args.grace_period,
        max_retry=args.max_retry,
        replicate_top=args.top if replicate or confirm else None,
        replicate_seeds=(args.seeds if replicate else
                         (1 if args.seeds is None else args.seeds) if confirm else None),
        confirm_from=args.source if confirm else None,
        source_any_teacher=args.from_any_teacher,
        keep_weights=args.keep_weights or confirm,
    )
    return run_study(options)
