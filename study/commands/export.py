"""``export``, ``evaluate`` and ``predict``: a study's student as a file, and its use."""

from __future__ import annotations

import argparse
import json

__all__ = ["register", "run_export", "run_evaluate", "run_predict"]


def register(subparsers) -> None:
    """Add the ``export``, ``evaluate`` and ``predict`` subcommands."""
    p = subparsers.add_parser(
        "export",
        help="save a trial's student as a self-contained file",
        description="Save one arm of a trial as a student file with its embeddings, tokenizer "
                    "and hashes, atomically: from the trial's kept best-dev weights when it "
                    "has them (study --keep-weights; every 'study confirm' trial), else by "
                    "retraining that arm with the trial's config, seed and budget (on CPU this "
                    "reproduces the recorded dev accuracy; both are printed).",
    )
    p.add_argument("--run", required=True, metavar="DIR", help="run directory")
    p.add_argument("--name", required=True, help="study name")
    p.add_argument("--trial", default="best", help="'best' (default) or a trial number")
    p.add_argument("--arm", choices=("distill", "baseline"), default="distill",
                   help="which arm's student to save (default: distill)")
    p.add_argument("--out", required=True, metavar="FILE", help="student file to write")
    p.add_argument("--storage", metavar="URL",
                   help="Optuna storage (default: sqlite:///DIR/studies.db)")
    p.add_argument("--retrain", action="store_true",
                   help="retrain even when the trial's weights were kept (checks that the "
                        "result reproduces)")
    p.set_defaults(func=run_export)

    p = subparsers.add_parser(
        "evaluate",
        help="accuracy of an exported student on a labeled TSV (prints JSON)",
        description="Print {\"accuracy\": x, \"n\": n} for a TSV in the GLUE SST-2 layout "
                    "(header 'sentence<TAB>label'), or for a split of a run directory "
                    "(--run DIR --split test: the test half the study never chose by).",
    )
    p.add_argument("--student", required=True, metavar="FILE", help="exported student file")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", metavar="TSV", help="labeled TSV (sentence, label)")
    src.add_argument("--run", metavar="DIR", help="a run directory: evaluate on its --split")
    p.add_argument("--split", choices=("train", "dev", "test"), default="test",
                   help="with --run: which split (default: test)")
    p.set_defaults(func=run_evaluate)

    p = subparsers.add_parser(
        "predict",
        help="label and probabilities of texts with an exported student (JSON lines)",
        description="Print one JSON object per text: label (1 = positive) and probabilities.",
    )
    p.add_argument("--student", required=True, metavar="FILE", help="exported student file")
    p.add_argument("texts", nargs="+", metavar="TEXT", help="sentences to classify")
    p.set_defaults(func=run_predict)


def run_export(args: argparse.Namespace) -> int:
    from study.export import export_trial

    export_trial(args.run, args.name, args.trial, args.arm, args.out, args.storage,
                 retrain=args.retrain)
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from study.export import evaluate_tsv

    if args.run is not None:
        from study.export import evaluate_split

        print(json.dumps(evaluate_split(args.student, args.run, args.split)))
    else:
        print(json.dumps(evaluate_tsv(args.student, args.data)))
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from study.export import predict_texts

    for row in predict_texts(args.student, args.texts):
        print(json.dumps(row))
    return 0
