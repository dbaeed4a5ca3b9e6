"""``distill-study bench``: throughput benchmarks (not tests) for the student and the teacher."""

from __future__ import annotations

import argparse
import json

from study.errors import UsageError


def register(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="throughput benchmarks: student training/inference, teacher training",
        description="Throughput benchmarks on a run's data. Nothing is written.",
    )
    bench = p.add_subparsers(dest="bench", metavar="WHAT", parser_class=type(p))
    bench.required = True

    s = bench.add_parser(
        "student",
        help="paired student training vs the original padded loop; student vs teacher inference",
        description=(
            "Train the paired arms on the run's train split and report training sentences/s per "
            "arm, next to a reference loop written the way the original study ran (batches of "
            "64 padded to 64 tokens, no packing, fp32, same model size) on the same data, and "
            "the ratio; dev accuracy of both; student vs teacher inference sentences/s at batch "
            "256 and 1, and parameter counts."
        ),
    )
    s.add_argument("--run", required=True, metavar="DIR", help="run directory with a teacher")
    s.add_argument("--epochs", type=int, default=1, help="training epochs (default 1)")
    s.add_argument("--batch-size", type=int, default=64, help="training batch size (default 64)")
    s.add_argument("--cell", default="lstm", choices=("lstm", "gru"), help="recurrent cell (default lstm)")
    s.add_argument("--layers", type=int, default=2, help="stacked bidirectional layers (default 2)")
    s.add_argument("--hidden", type=int, default=256, help="units per direction (default 256)")
    s.add_argument("--max-train-examples", type=int, metavar="N",
                   help="train on a seeded, stratified subset of N rows (default: all of train)")
    s.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                   help="autocast of the fast loop; auto = bf16 on CPUs with AVX-512 BF16/AMX "
                        "and on CUDA, else fp32 (the reference is always fp32) (default auto)")
    s.add_argument("--device", default="auto", help="auto, cpu or cuda:N (default auto)")
    s.add_argument("--seed", type=int, default=0, help="seed of the pair and the reference (default 0)")
    s.add_argument("--no-reference", action="store_true",
                   help="skip the slow padded reference loop")
    s.add_argument("--json", action="store_true",
                   help="also print all figures as one JSON object on the last line")
    s.set_defaults(func=run_student)

    t = bench.add_parser(
        "teacher",
        help="teacher fine-tuning and logit caching: length-bucketed vs padded",
        description="Teacher training and logit-caching throughput, bucketed vs padded.",
    )
    t.add_argument("--run", required=True, metavar="DIR", help="run directory made by prepare")
    t.add_argument("--examples", type=int, default=1024, help="train sentences per mode (default 1024)")
    t.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    t.add_argument("--pad-to", type=int, default=64, help="padded length of the reference (default 64)")
    t.add_argument("--device", default="auto", help="auto, cpu or cuda:N (default auto)")
    t.add_argument("--precision", default="fp32", choices=("auto", "fp32", "bf16", "fp16"),
                   help="autocast precision (default fp32)")
    t.add_argument("--json", action="store_true",
                   help="also print all figures as one JSON object on the last line")
    t.set_defaults(func=run_teacher)


def _positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise UsageError(f"--{name} must be >= 1, got {value}")


def run_student(args: argparse.Namespace) -> int:
    from study.bench_student import bench_student, format_report
    from study.device import resolve_device
    from study.run import Run
    from study.teacher import load_teacher_model

    for name in ("epochs", "batch_size", "hidden", "max_train_examples"):
        _positive(name.replace("_", "-"), getattr(args, name))
    if not 1 <= args.layers <= 4:
        raise UsageError(f"--layers must be in 1..4, got {args.layers}")
    device = resolve_device(args.device)
    run = Run(args.run)
    data = run.pair_data(max_train_examples=args.max_train_examples, with_test=False,
                         with_augmented=False)
    if not run.checkpoint_dir.is_dir():
        raise UsageError(f"{run.checkpoint_dir}: no teacher checkpoint (run `distill-study teacher`)")
    teacher = load_teacher_model(run.checkpoint_dir)
    figures = bench_student(
        data, teacher, epochs=args.epochs, batch_size=args.batch_size, cell=args.cell,
        layers=args.layers, hidden=args.hidden, precision=args.precision, device=device,
        seed=args.seed, reference=not args.no_reference,
    )
    print(format_report(figures), flush=True)
    if args.json:
        print(json.dumps(figures, sort_keys=True))
    return 0


def run_teacher(args: argparse.Namespace) -> int:
    from study.teacher import bench_teacher

    _positive("examples", args.examples)
    _positive("batch-size", args.batch_size)
    figures = bench_teacher(args.run, examples=args.examples, batch_size=args.batch_size,
                            pad_to=args.pad_to, device=args.device, precision=args.precision)
    for key, value in figures.items():
        print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")
    if args.json:
        print(json.dumps(figures, sort_keys=True, default=str))
    return 0
