"""``distill-study prepare``: dataset splits tokenized with the teacher's tokenizer."""

from __future__ import annotations

import argparse

from data_prep.prepare import DATASETS, DEFAULT_TEACHER


def register(sub) -> None:
    p = sub.add_parser(
        "prepare",
        help="read a dataset, split it and tokenize it into a run directory",
        description=(
            "Read a dataset, split it (SST-2: GLUE train / GLUE dev split 50/50 into dev and "
            "test; rt-polarity: stratified 80/10/10) and tokenize every split with the "
            "teacher's tokenizer. Cached by a hash of the inputs: a second run with the same "
            "inputs does no work."
        ),
    )
    p.add_argument("--run", required=True, metavar="DIR", help="run directory (created if missing)")
    p.add_argument("--dataset", required=True, choices=DATASETS, metavar="NAME",
                   help=f"dataset: {', '.join(DATASETS)} (rt-polarity is embedded, needs no data)")
    p.add_argument("--data-dir", metavar="PATH",
                   help="SST-2: directory with train.tsv and dev.tsv (default: load nyu-mll/glue from the hub)")
    p.add_argument("--test-file", metavar="PATH",
                   help="SST-2: a labeled TSV used as the test split; all of GLUE dev stays dev")
    p.add_argument("--teacher", default=DEFAULT_TEACHER, metavar="ID_OR_PATH",
                   help=f"teacher: hub id or local directory (default: {DEFAULT_TEACHER}, embedded)")
    p.add_argument("--split-seed", type=int, default=42, help="seed of the random splits (default 42)")
    p.add_argument("--max-length", type=int, default=128, help="truncate sentences to this many tokens (default 128)")
    p.add_argument("--cache-dir", metavar="PATH",
                   help="where downloaded source files are cached (default ~/.cache/distill-study)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from data_prep.prepare import prepare

    prepare(args.run, args.dataset, data_dir=args.data_dir, teacher=args.teacher,
            split_seed=args.split_seed, max_length=args.max_length, test_file=args.test_file,
            cache_dir=args.cache_dir)
    return 0
