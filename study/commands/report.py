"""``distill-study report``: the sensitivity report of one study (HTML, markdown, CSVs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from study.errors import UsageError

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand."""
    parser = subparsers.add_parser(
        "report",
        help="write the sensitivity report of a study (HTML, report.md, CSVs)",
        description=(
            "Write one self-contained HTML report (opens offline), report.md and CSVs for a "
            "study: distill vs baseline with statistics, parameter importance, seed spread, "
            "expected best accuracy vs trials, teacher calibration, test check and cost. "
            "Works on a study that is still running (it reads the completed trials)."
        ),
    )
    parser.add_argument(
        "--run",
        required=True,
        type=Path,
        metavar="DIR",
        help="run directory (holds teacher/, data/ and by default studies.db)",
    )
    parser.add_argument("--name", required=True, metavar="NAME", help="study name")
    parser.add_argument(
        "--storage",
        default=None,
        metavar="URL",
        help="Optuna storage URL or journal file (default: sqlite:///DIR/studies.db)",
    )
    parser.add_argument(
        "--out",
        default=None,
        type=Path,
        metavar="DIR",
        help="output directory, replaced atomically (default: DIR/report/NAME)",
    )
    parser.add_argument(
        "--seed",
        default=0,
        type=int,
        help="seed of the bootstrap resampling and fANOVA (default: 0)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the report and print the HTML file's path."""
    if not args.run.is_dir():
        raise UsageError(f"run directory {args.run} does not exist")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} exists and is not a directory")
    # Imported here so `distill-study --help` does not pay for plotly and scipy.
    from reports import write_report

    page = write_report(args.run, args.storage, args.name, args.out, seed=args.seed)
    print(page)
    print(f"report.md and csv/ written beside it in {page.parent}", file=sys.stderr)
    return 0
