"""Issue 6.6: bad input across the CLI: one line on stderr naming the problem, exit status 2,
no traceback, nothing written (the run directories and the output directory are hashed before
and after). Most cases run ``study.cli.main`` in this process; a few run the installed console
script, as a user would."""

from __future__ import annotations

import socket
import subprocess

import pytest
import torch

from study.cli import main
from study.runner import run_study
from tests.conftest import make_run, synthetic_rows, write_tsv
from tests.reliability.helpers import REPO, child_env, cli_command, copy_run, options, snapshot


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_run_master, tiny_teacher):
    """Run A with a finished study 's'; run B made for other data; an empty output dir."""
    root = tmp_path_factory.mktemp("bad-input")
    a = copy_run(tiny_run_master, root / "a")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert run_study(options(a, name="s", n_trials=1, pruner="none")) == 0
        data = root / "other-data"
        write_tsv(data / "train.tsv", synthetic_rows(80, 21))
        write_tsv(data / "dev.tsv", synthetic_rows(40, 22))
        b = make_run(root / "b", data, tiny_teacher, epochs=1)
    finally:
        torch.set_num_threads(previous)
    out = root / "out"
    out.mkdir()
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return {"A": str(a), "B": str(b), "out": str(out), "port": str(port),
            "roots": (a, b, out)}


UNREACHABLE = "postgresql+psycopg://u:secret@127.0.0.1:{port}/db"
STUDY = ["study", "--run", "{A}", "--name", "new", "--n-trials", "2"]
CASES = [
    ("scheme", [*STUDY, "--storage", "redis://localhost/0"], "unknown scheme 'redis'"),
    ("no-driver", [*STUDY, "--storage", "postgresql+nosuchdriver://u@localhost/db"],
     "--storage postgresql+nosuchdriver"),
    ("unreachable", [*STUDY, "--storage", UNREACHABLE], "cannot open the database"),
    ("sqlite-no-dir", [*STUDY, "--storage", "sqlite:///{out}/missing/x.db"], "does not exist"),
    ("n-trials-0", [*STUDY, "--n-trials", "0"], "--n-trials must be >= 1, got 0"),
    ("n-trials-neg", [*STUDY, "--n-trials", "-3"], "--n-trials must be >= 1, got -3"),
    ("workers-0", [*STUDY, "--workers", "0"], "--workers must be >= 1, got 0"),
    ("fix-unknown", [*STUDY, "--fix", "depth=2"], "--fix depth: unknown parameter"),
    ("fix-outside", [*STUDY, "--fix", "layers=9"], "--fix layers=9: outside the space"),
    ("fix-choice", [*STUDY, "--fix", "cell=rnn"], "--fix cell=rnn: must be one of"),
    ("range-outside", [*STUDY, "--range", "lr=1:2"], "must lie inside"),
    ("cuda", [*STUDY, "--devices", "cuda:0"], "CUDA is not available"),
    ("heartbeat", [*STUDY, "--heartbeat", "5", "--grace-period", "3"], "--grace-period (3)"),
    ("study-no-run", ["study", "--run", "{out}/nope", "--name", "x", "--n-trials", "1"],
     "directory not found"),
    ("study-other-data", ["study", "--run", "{B}", "--name", "s", "--n-trials", "2",
                          "--storage", "sqlite:///{A}/studies.db"], "was run on another data"),
    ("report-unknown", ["report", "--run", "{A}", "--name", "nope", "--out", "{out}/r"],
     "no study named 'nope'"),
    ("report-scheme", ["report", "--run", "{A}", "--name", "s", "--storage", "redis://x",
                       "--out", "{out}/r"], "unknown scheme"),
    ("report-unreachable", ["report", "--run", "{A}", "--name", "s", "--storage", UNREACHABLE,
                            "--out", "{out}/r"], "cannot open the database"),
    ("report-no-run", ["report", "--run", "{out}/nope", "--name", "s"], "does not exist"),
    ("report-against-self", ["report", "--run", "{A}", "--name", "s", "--against", "s",
                             "--out", "{out}/r"], "--against 's' is the study itself"),
    ("report-against-unknown", ["report", "--run", "{A}", "--name", "s", "--against", "nope",
                                "--out", "{out}/r"], "no study named 'nope'"),
    ("confirm-range", ["study", "confirm", "--run", "{A}", "--name", "c", "--from", "s",
                       "--top", "1", "--range", "lr=1e-4:1e-3"], "--range do not apply"),
    ("report-other-data", ["report", "--run", "{B}", "--name", "s", "--storage",
                           "sqlite:///{A}/studies.db", "--out", "{out}/r"], "another data"),
    ("export-unknown", ["export", "--run", "{A}", "--name", "nope", "--out", "{out}/s.pt"],
     "no study named 'nope'"),
    ("export-no-db", ["export", "--run", "{A}", "--name", "s", "--out", "{out}/s.pt",
                      "--storage", "sqlite:///{out}/none.db"], "no such file"),
    ("export-unreachable", ["export", "--run", "{A}", "--name", "s", "--out", "{out}/s.pt",
                            "--storage", UNREACHABLE], "cannot open the database"),
    ("export-no-run", ["export", "--run", "{out}/nope", "--name", "s", "--out", "{out}/s.pt"],
     "directory not found"),
    ("export-other-data", ["export", "--run", "{B}", "--name", "s", "--out", "{out}/s.pt",
                           "--storage", "sqlite:///{A}/studies.db"], "another data"),
    ("prepare-other-dataset", ["prepare", "--run", "{A}", "--dataset", "rt-polarity"],
     "made for dataset 'sst2'"),
]
# Through the installed console script (a fresh interpreter, as a user runs it).
SUBPROCESS = {"scheme", "unreachable", "n-trials-0", "cuda", "export-unknown"}


def _argv(world, template):
    return [a.format(**world) for a in template]


def _check(world, before, code, err, message):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("distill-study") and "error:" in lines[0], err
    assert message in lines[0], err
    assert "Traceback" not in err and "secret" not in err
    assert snapshot(*world["roots"]) == before, "something was written"


@pytest.mark.parametrize(("case", "template", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_in_process(world, capsys, case, template, message):
    if case == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    before = snapshot(*world["roots"])
    capsys.readouterr()
    code = main(_argv(world, template))
    captured = capsys.readouterr()
    _check(world, before, code, captured.err, message)
    assert not captured.out


@pytest.mark.slow
@pytest.mark.parametrize(("case", "template", "message"),
                         [c for c in CASES if c[0] in SUBPROCESS],
                         ids=[c[0] for c in CASES if c[0] in SUBPROCESS])
def test_bad_input_console_script(world, case, template, message):
    if case == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    before = snapshot(*world["roots"])
    proc = subprocess.run([*cli_command(), *_argv(world, template)], cwd=REPO, text=True,
                          capture_output=True, env=child_env(), timeout=120)
    _check(world, before, proc.returncode, proc.stderr, message)
    assert not proc.stdout
