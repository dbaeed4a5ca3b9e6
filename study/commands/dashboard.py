"""``distill-study dashboard``: optuna-dashboard on 127.0.0.1 for the run's studies."""

from __future__ import annotations

import argparse
import contextlib

__all__ = ["register", "run"]


def register(subparsers) -> None:
    """Add the ``dashboard`` subcommand."""
    p = subparsers.add_parser(
        "dashboard",
        help="browse the run's studies in optuna-dashboard (prints the URL)",
        description="Start optuna-dashboard for the run's storage on 127.0.0.1 and print its "
                    "URL; Ctrl-C stops it.",
    )
    p.add_argument("--run", metavar="DIR", help="run directory (its studies.db is the default "
                                                "storage)")
    p.add_argument("--storage", metavar="URL",
                   help="Optuna storage URL or journal file (default: sqlite:///DIR/studies.db)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default: 127.0.0.1, this machine only)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from study.dashboard import serve
    from study.errors import UsageError

    if args.run is None and args.storage is None:
        raise UsageError("dashboard: give --run DIR or --storage URL")
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how the dashboard stops
        serve(args.run, args.storage, host=args.host, port=args.port)
    return 0
