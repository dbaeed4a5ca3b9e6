"""Issue 6.4: SIGINT / SIGTERM to ``distill-study study`` in the middle of a trial.

tests/study/test_runner.py sends them to ``run_study`` in one process. Here the real console
script gets them: SIGINT to the whole process group (Ctrl-C in a terminal) with one worker, and
SIGTERM to the parent alone (a batch scheduler) with two worker processes, which the parent
must stop too. Either way: out within a few seconds, one clear message, no traceback, nothing
left RUNNING, nothing finished lost, and the same command again completes the study.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from optuna.trial import TrialState

from tests.reliability.helpers import (
    FINISHED,
    REPO,
    child_env,
    cli_command,
    load,
    running_with_curves,
    sigint_as_in_a_terminal,
    sqlite_url,
    wait_for,
)

# Enough epochs that a trial seen in its first half by a 0.2 s poll is still running when the
# signal lands, however fast the machine.
EPOCHS = 24


def _command(run, workers: int) -> list[str]:
    # The smallest student the default space allows; the data are the tiny run's.
    return [*cli_command(), "study", "--run", str(run), "--name", "sig", "--n-trials",
            str(workers + 1), "--workers", str(workers), "--epochs", str(EPOCHS),
            "--max-train-examples", "100", "--fix", "layers=1", "--fix", "hidden=128",
            "--fix", "attention_size=0", "--fix", "batch_size=32", "--precision", "fp32",
            "--pruner", "none", "--heartbeat", "1", "--grace-period", "10", "--seed", "3"]


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "workers", "to_group"),
                         [(signal.SIGINT, 1, True), (signal.SIGTERM, 2, False)],
                         ids=["SIGINT-ctrl-c-1-worker", "SIGTERM-parent-2-workers"])
def test_a_stopped_study_is_consistent_and_resumes(tiny_run, sig, workers, to_group):
    url, n = sqlite_url(tiny_run), workers + 1
    cmd = _command(tiny_run, workers)
    proc = subprocess.Popen(cmd, cwd=REPO, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=child_env(), start_new_session=True,
                            preexec_fn=sigint_as_in_a_terminal)
    try:
        # Mid-trial, with finished work to keep: a trial done, another in its first half.
        def mid_trial():
            running = running_with_curves(url, "sig") or []
            return any(t.user_attrs["epochs_run"] <= EPOCHS // 2 for t in running) and \
                bool(load(url, "sig").get_trials(states=FINISHED))

        wait_for(mid_trial, timeout=180, what="a trial mid-way after a finished one")
        before = {t.number: t.params for t in load(url, "sig").get_trials(states=FINISHED)}
        t0 = time.monotonic()
        if to_group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    name = signal.Signals(sig).name
    assert elapsed < 5, f"took {elapsed:.1f} s to stop"
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith(f"distill-study: stopped by {name}")]
    assert lines and "run the same command again to resume" in lines[-1], err

    study = load(url, "sig")
    assert not study.get_trials(states=(TrialState.RUNNING,)), "a trial was left RUNNING"
    after = {t.number: t.params for t in study.get_trials(states=FINISHED)}
    # nothing finished is lost or changed (with two workers, the other trial may finish in the
    # moment between the snapshot and the signal)
    assert before.items() <= after.items(), "finished trials changed"
    stopped = [t for t in study.get_trials(states=(TrialState.FAIL,))
               if t.user_attrs.get("interrupted")]
    assert 1 <= len(stopped) <= workers and all(t.user_attrs["interrupted"] == name for t in stopped)
    waiting = study.get_trials(states=(TrialState.WAITING,))
    # re-queued: a WAITING trial with the stopped one's parameters (fixed) and seed
    assert sorted((t.user_attrs["seed"], sorted(t.system_attrs["fixed_params"].items()))
                  for t in waiting) == \
        sorted((t.user_attrs["seed"], sorted(t.params.items())) for t in stopped)
    assert f"{len(after)}/{n} trials finished" in lines[-1]

    # The same command again: resumes with the stopped trials and completes the study.
    again = subprocess.run(cmd, cwd=REPO, text=True, capture_output=True, env=child_env(),
                           timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"study 'sig': {n}/{n} trials finished" in again.stdout
    study = load(url, "sig")
    done = study.get_trials(states=FINISHED)
    assert len(done) == n and not study.get_trials(states=(TrialState.RUNNING,))
    assert not study.get_trials(states=(TrialState.WAITING,))
    assert set(before) <= {t.number for t in done}
    redone = {t.user_attrs["seed"]: t.params for t in done}
    for t in stopped:
        assert redone.get(t.user_attrs["seed"]) == t.params, "a stopped trial was not resumed"
    print(f"{name}: stopped in {elapsed:.2f} s with {len(after)} finished, "
          f"{len(stopped)} re-queued; resumed to {n}/{n}")
