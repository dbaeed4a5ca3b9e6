"""The ``distill-study`` command: one parser, one subcommand per module in study/commands/."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from study.errors import UsageError

__all__ = ["main", "build_parser"]

# Each module exposes register(subparsers); order is the order of `--help`.
COMMAND_MODULES = (
    "prepare",
    "teacher",
    "augment",
    "study_cmd",
    "dashboard",
    "export",
    "report",
    "bench",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors: one line, status 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="distill-study",
        description=(
            "Paired distill-vs-baseline Optuna studies: can a fine-tuned transformer be "
            "distilled into a small LSTM/GRU, and how much does the answer depend on "
            "hyperparameters? Every output lives under the run directory given by --run."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"study.commands.{name}")
        except ModuleNotFoundError as e:  # a command still being written
            if e.name == f"study.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Quiet third-party chatter; our own progress goes to stderr through tqdm.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or an argparse error (2, message already printed)
        return int(e.code or 0)
    try:
        return int(args.func(args) or 0)
    except UsageError as e:
        print(f"distill-study: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("distill-study: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
