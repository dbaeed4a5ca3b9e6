"""Shared by the reliability tests: tiny study options, the trial schema, tree snapshots."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from study.config import TrialConfig
from study.runner import StudyOptions
from study.space import Param, default_space

REPO = Path(__file__).resolve().parents[2]
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)

# docs/ARCHITECTURE.md, "Optuna trials": what every finished trial holds, and what a complete
# one holds on top (a pruned trial never reached the test evaluation or the final counts).
EVERY_TRIAL = {"seed", "config", "config_id", "budget", "distill", "baseline", "gap",
               "epochs_run", "worker"}
COMPLETE_TRIAL = EVERY_TRIAL | {"params_trainable", "params_total", "wall_seconds",
                                "distill_test_pred", "baseline_test_pred"}
ARM_KEYS = {"dev_acc", "dev_loss", "train_loss", "best_dev_acc", "best_epoch", "train_seconds",
            "sentences_seen", "sent_per_s", "test_acc"}


def tiny_space(lr=(1e-4, 3e-3)):
    """The default space with a tiny student (hidden 8, one layer)."""
    tiny = {"hidden": Param("hidden", "int", 8, 8), "layers": Param("layers", "int", 1, 1),
            "lr": Param("lr", "float", lr[0], lr[1], log=True)}
    return tuple(tiny.get(p.name, p) for p in default_space())


def options(run, name="s", **kw) -> StudyOptions:
    defaults = dict(run=str(run), name=name, n_trials=3, epochs=2, max_train_examples=60,
                    space=tiny_space(), base=TrialConfig(head_hidden=8), precision="fp32",
                    heartbeat=1, grace_period=3, poll=0.2)
    defaults.update(kw)
    return StudyOptions(**defaults)


def load(storage: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage)


def sqlite_url(run) -> str:
    return f"sqlite:///{Path(run).resolve()}/studies.db"


def cli_command() -> list[str]:
    """The installed console script, or the same entry point through the interpreter."""
    script = Path(sys.executable).with_name("distill-study")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "study.cli"]


def sigint_as_in_a_terminal() -> None:
    """``preexec_fn`` for a child that is sent SIGINT: the default disposition, as in a
    terminal, even when this test process runs as a background job (SIGINT ignored, which a
    child would inherit and, like Python, keep)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def child_env(**extra) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PYTHONPATH": str(REPO), **extra}


def wait_for(predicate, timeout=120.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def running_with_curves(storage: str, name: str, min_epochs: int = 1):
    """A RUNNING trial that has recorded at least ``min_epochs`` epochs, or None."""
    try:
        study = load(storage, name)
    except KeyError:
        return None
    running = [t for t in study.get_trials(states=(TrialState.RUNNING,))
               if t.user_attrs.get("epochs_run", 0) >= min_epochs
               and not t.user_attrs.get("surplus")]
    return running


def snapshot(*roots: Path) -> dict:
    """Every file under ``roots`` with its sha256 (and every directory), to prove nothing
    was written."""
    out = {}
    for root in roots:
        if not root.exists():
            continue
        for p in sorted(root.rglob("*")):
            if p.name.endswith(("-wal", "-shm")):
                continue  # SQLite's transient files while a connection is open (WAL mode)
            if p.suffix == ".db":
                out[str(p)] = _sqlite_content(p)  # what is stored, not how the pages lie
            else:
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out


def _sqlite_content(path: Path) -> str:
    import sqlite3

    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return hashlib.sha256("\n".join(con.iterdump()).encode()).hexdigest()
    finally:
        con.close()


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def max_overlap(trials) -> int:
    """The largest number of trials that were running at the same moment."""
    events = []
    for t in trials:
        if t.datetime_start and t.datetime_complete:
            events += [(t.datetime_start, 1), (t.datetime_complete, -1)]
    best = now = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        now += step
        best = max(best, now)
    return best


def check_concurrent_study(study: optuna.Study, n: int, workers: int, log: str) -> dict:
    """Everything issue 6 asks of a study run by several workers; returns a few figures."""
    trials = study.get_trials()
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(len(trials))), "trial numbers not unique/contiguous"
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == n, f"{len(finished)} finished trials, wanted exactly {n}"
    assert not study.get_trials(states=(TrialState.RUNNING,)), "trials left RUNNING"
    failed = [t for t in trials if t.state == TrialState.FAIL]
    # The only acceptable failures are surplus trials: a worker that found the target already
    # reached ends its trial before training (study.objective.PairObjective._claim).
    unexpected = [(t.number, t.user_attrs.get("fail_reason")) for t in failed
                  if not t.user_attrs.get("surplus")]
    assert not unexpected, f"trials failed: {unexpected}"
    assert all("fail_reason" not in t.user_attrs for t in failed)
    low = log.lower()
    for bad in ("database is locked", "deadlock", "traceback", "could not serialize"):
        assert bad not in low, f"{bad!r} in the workers' output"

    for t in finished:
        a = t.user_attrs
        want = COMPLETE_TRIAL if t.state == TrialState.COMPLETE else EVERY_TRIAL
        assert want <= set(a), f"trial {t.number} lacks {sorted(want - set(a))}"
        epochs = a["epochs_run"]
        assert 1 <= epochs <= a["budget"]["epochs"]
        for arm in ("distill", "baseline"):
            assert set(a[arm]) >= ARM_KEYS, f"trial {t.number} {arm} lacks keys"
            assert len(a[arm]["dev_acc"]) == epochs == len(a[arm]["train_loss"])
            assert 0.0 <= a[arm]["best_dev_acc"] <= 1.0
            assert a[arm]["best_dev_acc"] == max(a[arm]["dev_acc"])
        assert abs(a["gap"] - (a["distill"]["best_dev_acc"] - a["baseline"]["best_dev_acc"])) \
            < 1e-12
        if t.state == TrialState.COMPLETE:
            assert t.value == a["distill"]["best_dev_acc"]
            assert epochs == a["budget"]["epochs"]
            assert a["params_trainable"] <= a["params_total"]
    assert len({t.user_attrs["seed"] for t in finished}) == n, "two trials share a seed"
    used = {t.user_attrs["worker"] for t in finished}
    assert len(used) == workers, f"only {len(used)} of {workers} workers ran trials"
    overlap = max_overlap(trials)
    assert overlap >= 2, "the workers never ran trials at the same time"
    return {"finished": len(finished), "pruned": sum(t.state == TrialState.PRUNED
                                                     for t in finished),
            "surplus": len(failed), "max_concurrent": overlap}
