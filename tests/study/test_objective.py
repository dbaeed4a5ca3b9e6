"""The objective on the real paired trainer: the trial schema, seeds, notes, graceful stop."""

from __future__ import annotations

import dataclasses
import os
import signal
import time

import optuna
import pytest
import torch
from optuna.trial import TrialState

from study.config import TrialConfig
from study.objective import GracefulStop, PairObjective, StopRequested, config_id, derive_seed
from study.run import Run
from study.space import Param, default_space

ARM_KEYS = {"dev_acc", "dev_loss", "train_loss", "best_dev_acc", "best_epoch", "train_seconds",
            "sentences_seen", "sent_per_s", "test_acc"}
SCHEMA = {"seed", "config", "config_id", "budget", "distill", "baseline", "distill_test_pred",
          "baseline_test_pred", "gap", "params_trainable", "params_total", "wall_seconds",
          "epochs_run", "worker"}


def tiny_space():
    """The default space with a tiny student (hidden 8, one layer), for speed."""
    tiny = {"hidden": Param("hidden", "int", 8, 8), "layers": Param("layers", "int", 1, 1)}
    return tuple(tiny.get(p.name, p) for p in default_space())


BASE = TrialConfig(head_hidden=8, epochs=2, precision="fp32")


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def data(tiny_run):
    return Run(tiny_run).pair_data(max_train_examples=120, subset_seed=0)


def test_trials_record_the_whole_schema_and_a_note(data):
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    objective = PairObjective(data=data, space=tiny_space(), base=BASE, study_seed=3,
                              max_train_examples=120, prune=False)
    study.enqueue_trial({"cell": "gru"}, user_attrs={"seed": 1234})
    study.optimize(objective, n_trials=2)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    test_size = len(data.test)
    for t in study.trials:
        a = t.user_attrs
        assert set(a) >= SCHEMA
        for arm in ("distill", "baseline"):
            assert set(a[arm]) == ARM_KEYS and len(a[arm]["dev_acc"]) == 2
            assert 0.0 <= a[arm]["best_dev_acc"] <= 1.0
            assert len(a[f"{arm}_test_pred"]) == test_size
        assert t.value == a["distill"]["best_dev_acc"]
        assert a["gap"] == pytest.approx(a["distill"]["best_dev_acc"] -
                                         a["baseline"]["best_dev_acc"])
        assert a["budget"] == {"epochs": 2, "max_train_examples": 120, "train_size": 120}
        config = TrialConfig.from_dict(a["config"])
        assert a["config_id"] == config_id(config) and len(a["config_id"]) == 12
        assert a["epochs_run"] == 2 and a["params_trainable"] < a["params_total"]
    assert study.trials[0].user_attrs["seed"] == 1234  # enqueued seed wins
    assert study.trials[0].params["cell"] == "gru"
    assert study.trials[1].user_attrs["seed"] == derive_seed(3, 1)
    # optuna-dashboard keeps notes in the study's system attributes
    system = study._storage.get_study_system_attrs(study._study_id)
    notes = [v for k, v in system.items() if "note" in k and isinstance(v, str)]
    assert any("Trial 0" in n and "distill" in n for n in notes)


def test_both_objective_returns_two_values(data):
    study = optuna.create_study(directions=["maximize", "maximize"],
                                sampler=optuna.samplers.RandomSampler(seed=0))
    objective = PairObjective(data=data, space=tiny_space(), base=BASE, objective="both",
                              prune=False)
    study.optimize(objective, n_trials=1)
    t = study.trials[0]
    assert t.values == [t.user_attrs["distill"]["best_dev_acc"],
                        t.user_attrs["baseline"]["best_dev_acc"]]


def test_same_seed_same_metrics(data):
    results = []
    for _ in range(2):
        # seeded sampler: the parameters that are not enqueued are sampled identically too
        study = optuna.create_study(direction="maximize",
                                    sampler=optuna.samplers.RandomSampler(seed=0))
        study.enqueue_trial({"cell": "lstm", "lr": 1e-3, "batch_size": 32},
                            user_attrs={"seed": 5})
        study.optimize(PairObjective(data=data, space=tiny_space(), base=BASE, prune=False),
                       n_trials=1)
        a = study.trials[0].user_attrs
        results.append((a["distill"]["dev_acc"], a["baseline"]["dev_acc"], a["gap"]))
    assert results[0] == results[1]


def test_a_signal_mid_trial_fails_it_and_requeues_it(data):
    """SIGINT during training: the trial ends FAILED (interrupted), its params and seed are
    enqueued again, partial curves stay, and nothing is left RUNNING."""
    from study.train import train_pair

    def train_then_signal(config, data_, seed, *, on_epoch, device):
        def hook(progress):
            on_epoch(progress)  # curves written, then the user presses Ctrl-C
            os.kill(os.getpid(), signal.SIGINT)

        return train_pair(config, data_, seed, on_epoch=hook, device=device)

    # as in a terminal, whatever this test process inherited (a background job ignores it)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    stop = GracefulStop()
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"cell": "gru", "lr": 2e-3}, user_attrs={"seed": 77})
    objective = PairObjective(data=data, space=tiny_space(), base=BASE, prune=False, stop=stop,
                              train_pair=train_then_signal)
    with stop.installed(), pytest.raises(StopRequested):
        study.optimize(objective, n_trials=1)
    assert stop.requested
    failed, waiting = study.trials
    assert failed.state == TrialState.FAIL and failed.user_attrs["interrupted"] == "SIGINT"
    assert failed.user_attrs["epochs_run"] == 1 and len(failed.user_attrs["distill"]["dev_acc"]) == 1
    assert waiting.state == TrialState.WAITING
    assert waiting.user_attrs["seed"] == 77
    assert waiting.system_attrs["fixed_params"]["cell"] == "gru"
    assert waiting.system_attrs["fixed_params"]["lr"] == 2e-3
    # the handler is gone again: SIGINT is Python's default
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_signal_stays_ignored():
    """A study started in the background of a script (SIGINT ignored) is not stopped by the
    script's Ctrl-C; SIGTERM is still handled."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        stop = GracefulStop()
        with stop.installed():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) == stop._handler
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            assert not stop.requested
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is not stop._handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_surplus_trial_ends_before_training(data):
    study = optuna.create_study(direction="maximize")
    objective = PairObjective(data=data, space=tiny_space(), base=BASE, prune=False,
                              n_trials=1)
    study.optimize(objective, n_trials=1)
    study.enqueue_trial({"cell": "gru"}, user_attrs={"seed": 9})
    study.optimize(objective, n_trials=1, catch=(Exception,))
    first, surplus, requeued = study.trials
    assert first.state == TrialState.COMPLETE
    assert surplus.state == TrialState.FAIL and surplus.user_attrs["surplus"] is True
    assert "distill" not in surplus.user_attrs  # nothing trained
    assert requeued.state == TrialState.WAITING and requeued.user_attrs["seed"] == 9


def test_pruning_reports_every_epoch_and_keeps_partial_curves(data):
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.ThresholdPruner(lower=1.01))
    base = dataclasses.replace(BASE, epochs=3)
    study.optimize(PairObjective(data=data, space=tiny_space(), base=base), n_trials=1)
    t = study.trials[0]
    assert t.state == TrialState.PRUNED
    assert list(t.intermediate_values) == [1]
    assert len(t.user_attrs["distill"]["dev_acc"]) == len(t.user_attrs["baseline"]["dev_acc"]) == 1


def test_long_trials_print_epoch_lines_at_most_every_epoch_line_every(data):
    lines: list[str] = []
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    base = dataclasses.replace(BASE, epochs=3)
    every = PairObjective(data=data, space=tiny_space(), base=base, prune=False,
                          epoch_line=lines.append, epoch_line_every=0.0)
    study.optimize(every, n_trials=1)
    assert [line.split(":")[0] for line in lines] == [
        f"trial    0 epoch {e}/3" for e in (1, 2, 3)]
    acc = study.trials[0].user_attrs["distill"]["dev_acc"]
    assert f"dev distill {acc[1]:.4f}" in lines[1]
    lines.clear()
    quiet = PairObjective(data=data, space=tiny_space(), base=base, prune=False,
                          epoch_line=lines.append, epoch_line_every=3600.0)
    study.optimize(quiet, n_trials=1)  # a short trial: the per-trial line is enough
    assert lines == []


def test_long_epochs_print_lines_within_the_epoch(monkeypatch, data):
    import study.train as train_mod

    monkeypatch.setattr(train_mod, "_TICK_BATCHES", 1)
    lines: list[str] = []
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(PairObjective(data=data, space=tiny_space(), base=BASE, prune=False,
                                 epoch_line=lines.append, epoch_line_every=0.0), n_trials=1)
    within = [line for line in lines if "% of " in line]
    assert any(line.startswith("trial    0 epoch 1/2: distill ") for line in within)
    assert any(line.startswith("trial    0 epoch 2/2: baseline ") for line in within)
    assert all("sentences (" in line for line in within)
