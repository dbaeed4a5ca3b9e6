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
    parser.add_argument(
        "--against",
        default=None,
        metavar="STUDY",
        help="also compare with another study in the same storage, trial by trial: the same "
        "configurations and seeds (apart from what 'study confirm --fix' replaced), each arm "
        "this study vs that one, e.g. a confirm study with --fix augment_factor=4 against the "
        "one without",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the report and print the HTML file's path."""
    if not args.run.is_dir():
        raise UsageError(f"run directory {args.run} does not exist")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} exists and is not a directory")
    _check_study_matches_run(args)
    # Imported here so `distill-study --help` does not pay for plotly and scipy.
    from reports import write_report

    page = write_report(args.run, args.storage, args.name, args.out, seed=args.seed,
                        against=args.against)
    print(page)
    print(f"report.md and csv/ written beside it in {page.parent}", file=sys.stderr)
    return 0


def _check_study_matches_run(args: argparse.Namespace) -> None:
    """Refuse, before anything is written, what the report would otherwise mix up silently.

    The storage is parsed and opened the way ``study`` does (an unknown scheme or an
    unreachable database is one line, password masked), and when ``--run`` is a real run
    directory (it has run.json) the study must have been run on its data and teacher, and the
    teacher's cached logits must match their manifest (issue 6). A missing storage file or an
    unknown study name is left to the report, which lists the studies there are.
    """
    import optuna

    from study.run import Run
    from study.storage import open_storage, parse_storage

    if args.storage is not None and "://" not in args.storage:
        return  # a journal file path, which the report opens itself
    spec = parse_storage(args.storage, args.run)
    if spec.local_path is not None and not spec.local_path.is_file():
        return
    storage = open_storage(spec, must_exist=True)
    try:
        attrs = storage.get_study_user_attrs(storage.get_study_id_from_name(args.name))
    except KeyError:
        return
    finally:
        if isinstance(storage, optuna.storages.RDBStorage):
            storage.engine.dispose()
    if not (args.run / "run.json").is_file():
        return
    run = Run(args.run)
    for key, value in (("data_key", run.data_key), ("teacher_key", run.teacher_key)):
        recorded = attrs.get(key)
        if recorded is not None and recorded != value:
            raise UsageError(f"study {args.name!r} was run on another {key.replace('_key', '')} "
                             f"than --run {run.path} ({str(recorded)[:12]} != {value[:12]})")
    run.logits("test")  # ArtifactError for a truncated or replaced logits file
