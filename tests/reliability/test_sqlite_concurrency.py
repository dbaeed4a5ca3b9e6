"""Issue 6.1: four worker processes, one SQLite file, 40 trials: nothing lost or doubled."""

from __future__ import annotations

import pytest
import torch

from study.runner import run_study
from tests.reliability.helpers import check_concurrent_study, load, options, sqlite_url


@pytest.mark.slow
def test_four_workers_share_one_sqlite_file(tiny_run, capfd, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    # A one-second heartbeat per running trial adds writers on purpose: SQLite has one write
    # lock, and the busy timeout (study.storage) is what keeps them from failing.
    status = run_study(options(tiny_run, name="c40", n_trials=40, workers=4, epochs=2,
                               max_train_examples=40, heartbeat=1, grace_period=20))
    out, err = capfd.readouterr()
    assert status == 0, err
    figures = check_concurrent_study(load(sqlite_url(tiny_run), "c40"), 40, 4, out + err)
    print(f"sqlite: {figures}")
    assert "study 'c40': 40/40 trials finished" in out
