"""Enqueued (WAITING) trials are claimed by exactly one worker on SQLite.

Optuna claims a WAITING trial with a read ("is it still WAITING?") and then an update. Under
pysqlite's default, the read runs outside any transaction, so two processes could both read
WAITING and both set RUNNING: seen here as two workers training the same enqueued confirm
trial. ``study.storage`` makes every SQLite transaction ``BEGIN IMMEDIATE``, which serialises
the read with the update. Here processes race to claim the same WAITING trials at once.
"""

from __future__ import annotations

import multiprocessing as mp

import optuna
from optuna.trial import TrialState

from study.storage import open_storage, parse_storage

N_TRIALS, N_PROCS = 30, 4


def _claim_all(url: str, trial_ids: list[int], barrier, results) -> None:
    storage = open_storage(parse_storage(url, None), heartbeat_interval=None)
    won = []
    for trial_id in trial_ids:
        barrier.wait()  # every process asks for the same trial at the same moment
        if storage.set_trial_state_values(trial_id, TrialState.RUNNING):
            won.append(trial_id)
    results.put(won)


def test_each_waiting_trial_is_claimed_once(tmp_path):
    url = f"sqlite:///{tmp_path}/race.db"
    storage = open_storage(parse_storage(url, None), heartbeat_interval=None)
    study = optuna.create_study(study_name="race", storage=storage)
    for i in range(N_TRIALS):
        study.enqueue_trial({"x": i})
    ids = [t._trial_id for t in study.get_trials(states=(TrialState.WAITING,))]
    assert len(ids) == N_TRIALS
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(N_PROCS), ctx.Queue()
    procs = [ctx.Process(target=_claim_all, args=(url, ids, barrier, results))
             for _ in range(N_PROCS)]
    for p in procs:
        p.start()
    won = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    claims = sorted(i for w in won for i in w)
    assert claims == sorted(ids), f"{len(claims) - len(set(claims))} trial(s) claimed twice"
