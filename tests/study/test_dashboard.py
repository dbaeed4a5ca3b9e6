"""The dashboard command serves the run's studies; checked through its HTTP API."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

from study.dashboard import dashboard_url, serve
from study.errors import UsageError

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def test_dashboard_lists_the_study_and_its_trials(tmp_path):
    # A study as the runner leaves it: in DIR/studies.db, with user attributes per trial.
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"format": "distill-study-run/1"}))
    study = optuna.create_study(study_name="dash", direction="maximize",
                                storage=f"sqlite:///{run}/studies.db")
    for i in range(3):
        trial = study.ask({"lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)})
        trial.set_user_attr("gap", 0.01 * i)
        study.tell(trial, 0.5 + 0.1 * i)

    port = free_port()
    code = ("import sys; from study.dashboard import serve; "
            "serve(sys.argv[1], None, port=int(sys.argv[2]))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(run), str(port)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        first = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/dashboard/" in first  # the URL comes first
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                studies = get_json(f"{base}/api/studies")["study_summaries"]
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        [summary] = [s for s in studies if s["study_name"] == "dash"]
        detail = get_json(f"{base}/api/studies/{summary['study_id']}")
        trials = detail["trials"]
        assert len(trials) == 3
        assert [t["number"] for t in trials] == [0, 1, 2]
        assert {a["key"] for a in trials[2]["user_attrs"]} == {"gap"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_dashboard_refuses_a_missing_storage_without_creating_it(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        serve(None, f"sqlite:///{tmp_path}/none.db", port=free_port())
    assert not (tmp_path / "none.db").exists()
    with pytest.raises(UsageError, match="--port"):
        serve(None, f"sqlite:///{tmp_path}/none.db", port=0)
    assert dashboard_url("::1", 8080) == "http://[::1]:8080/dashboard/"
