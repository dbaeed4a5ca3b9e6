"""Issue 6.7: the same study seed and trial count on one worker give the same parameters and
the same metrics.

tests/study/test_runner.py checks this for 3 trials of the random sampler in one process.
Here: the default TPE sampler past its 10 random start-up trials (so its model picks the
parameters), median pruning (so pruning decisions must repeat too), every recorded number
compared, and the second study run in a fresh interpreter and stopped at 5 trials, then
resumed to 12: a resumed study continues as the uninterrupted one did (study.runner).
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from study.runner import run_study
from tests.reliability.helpers import REPO, child_env, load, options, sqlite_url

N = 12
# Wall-clock figures and the process id differ between runs by nature.
VOLATILE = {"worker", "wall_seconds"}
VOLATILE_ARM = {"train_seconds", "sent_per_s"}


def _record(trial) -> dict:
    attrs = {k: v for k, v in trial.user_attrs.items() if k not in VOLATILE}
    for arm in ("distill", "baseline"):
        attrs[arm] = {k: v for k, v in attrs[arm].items() if k not in VOLATILE_ARM}
    return {"number": trial.number, "state": trial.state.name, "params": trial.params,
            "values": trial.values, "attrs": attrs}


@pytest.mark.slow
def test_same_seed_same_trials_even_across_processes_and_a_resume(tiny_run, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    kw = dict(n_trials=N, seed=5, epochs=2, max_train_examples=60, pruner_startup=3)
    assert run_study(options(tiny_run, name="a", **kw)) == 0

    spec5 = options(tiny_run, name="b", **{**kw, "n_trials": 5}).to_json()
    spec12 = options(tiny_run, name="b", **kw).to_json()
    code = ("import sys; from study.runner import StudyOptions, run_study\n"
            "for spec in sys.argv[1:]:\n"
            "    assert run_study(StudyOptions.from_json(spec)) == 0")
    proc = subprocess.run([sys.executable, "-c", code, spec5, spec12], cwd=REPO, text=True,
                          capture_output=True, env=child_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr

    url = sqlite_url(tiny_run)
    a = [_record(t) for t in load(url, "a").trials]
    b = [_record(t) for t in load(url, "b").trials]
    assert len(a) == N and all(t["state"] in ("COMPLETE", "PRUNED") for t in a)
    assert {t["state"] for t in a} == {"COMPLETE", "PRUNED"}, "pruning should have acted"
    assert [t["params"] for t in a] == [t["params"] for t in b]
    assert a == b

    # and the seed matters: another seed, other parameters from the first trial on
    assert run_study(options(tiny_run, name="c", **{**kw, "seed": 6, "n_trials": 1})) == 0
    assert load(url, "c").trials[0].params != a[0]["params"]
