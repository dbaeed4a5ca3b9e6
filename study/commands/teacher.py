"""``distill-study teacher``: fine-tune the teacher and cache its logits."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "teacher",
        help="fine-tune the teacher, cache its logits, embeddings and diagnostics",
        description=(
            "Fine-tune the run's teacher (given to prepare with --teacher) for sequence "
            "classification with length-bucketed batches, keep the checkpoint with the best "
            "dev accuracy, then cache its raw logits for train/dev/test, its word-embedding "
            "matrix for the students, and calibration diagnostics for the report."
        ),
    )
    p.add_argument("--run", required=True, metavar="DIR", help="run directory made by prepare")
    p.add_argument("--epochs", type=int, default=2, help="fine-tuning epochs (default 2)")
    p.add_argument("--lr", type=float, default=5e-5, help="AdamW learning rate (default 5e-5)")
    p.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    p.add_argument("--max-train-examples", type=int, metavar="N",
                   help="fine-tune on a seeded, stratified subset of N train rows (logits are still cached for every row)")
    p.add_argument("--evals-per-epoch", type=int, default=4,
                   help="dev evaluations per epoch for checkpoint selection (default 4)")
    p.add_argument("--train-embeddings", action="store_true",
                   help="also train the word-embedding matrix (frozen by default: it dominates a CPU optimizer step)")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation and batch order (default 0)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda:N (default auto)")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                   help="autocast precision; auto = fp32 on CPU, bf16/fp16 on CUDA (default auto)")
    p.add_argument("--force", action="store_true", help="retrain even when an up-to-date teacher exists")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from study.teacher import TeacherSettings, fine_tune

    settings = TeacherSettings(
        epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
        max_train_examples=args.max_train_examples, freeze_embeddings=not args.train_embeddings,
        evals_per_epoch=args.evals_per_epoch, seed=args.seed, precision=args.precision,
    )
    fine_tune(args.run, settings, device=args.device, force=args.force)
    return 0
