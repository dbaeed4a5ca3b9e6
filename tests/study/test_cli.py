"""The command line: every subcommand has --help; errors are one line with status 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from study.cli import build_parser, main


def _subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


@pytest.mark.parametrize("command", _subcommands())
def test_every_command_has_help(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: distill-study" in out and "--help" in out


def test_console_script_runs_and_reports_errors_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "study.cli", "teacher", "--run", str(tmp_path / "x")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("distill-study: error:")
    assert len(proc.stderr.strip().splitlines()) == 1
