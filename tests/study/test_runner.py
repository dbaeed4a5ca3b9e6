"""Studies end to end on the tiny run: resume, budget checks, pruning, workers, signals, kills."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from study.commands import study_cmd
from study.errors import UsageError
from study.runner import StudyOptions, run_study
from tests.reliability.helpers import options as _options
from tests.reliability.helpers import sigint_as_in_a_terminal, tiny_space

REPO = Path(__file__).resolve().parents[2]
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def options(run, name="s", **kw) -> StudyOptions:
    """The shared tiny-study options (tests/reliability/helpers.py) on 120 training rows."""
    return _options(run, name, **{"max_train_examples": 120, **kw})


def load(run, name="s"):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{run}/studies.db")


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(previous)


def test_study_runs_resumes_and_refuses_another_budget(tiny_run, capsys):
    assert run_study(options(tiny_run, enqueue_original=True)) == 0
    study = load(tiny_run)
    finished = study.get_trials(states=FINISHED)
    assert len(finished) == 3
    assert {"objective", "epochs", "max_train_examples", "data_key", "teacher_key", "dataset",
            "teacher", "test_size", "created"} <= set(study.user_attrs)
    assert study.user_attrs["epochs"] == 2 and study.user_attrs["max_train_examples"] == 120
    # the published configurations came first (clipped to the tiny space)
    assert [t.params["cell"] for t in study.trials[:2]] == ["lstm", "gru"]
    assert all(t.params["temperature"] == 1.0 for t in study.trials[:2])
    out = capsys.readouterr().out
    assert "trial    0 COMPLETE" in out and "[finished 3/3]" in out

    # the same command again: nothing to do, nothing enqueued twice
    assert run_study(options(tiny_run, enqueue_original=True)) == 0
    assert len(load(tiny_run).trials) == len(study.trials)
    # a larger target continues the study without repeating finished trials
    assert run_study(options(tiny_run, n_trials=4, epochs=None, max_train_examples=None)) == 0
    study = load(tiny_run)
    done = study.get_trials(states=FINISHED)
    assert len(done) == 4 and len({t.number for t in done}) == 4
    assert [t.number for t in done[:3]] == [t.number for t in finished]
    with pytest.raises(UsageError, match="was run with epochs=2, not 3"):
        run_study(options(tiny_run, n_trials=5, epochs=3))
    with pytest.raises(UsageError, match="max_train_examples=120, not 200"):
        run_study(options(tiny_run, n_trials=5, max_train_examples=200))

    # replicate: the best configuration again with 2 new seeds, then idempotent
    assert run_study(options(tiny_run, n_trials=None, epochs=None, replicate_top=1,
                             replicate_seeds=2)) == 0
    study = load(tiny_run)
    reps = [t for t in study.trials if "replicate_of" in t.user_attrs]
    assert len(reps) == 2 and all(t.state in FINISHED for t in reps)
    assert "pruner none" in capsys.readouterr().out  # seed replicates always run to the end
    origin = study.trials[reps[0].user_attrs["replicate_of"]]
    assert all(t.user_attrs["config_id"] == origin.user_attrs["config_id"] for t in reps)
    seeds = {t.user_attrs["seed"] for t in reps} | {origin.user_attrs["seed"]}
    assert len(seeds) == 3
    assert run_study(options(tiny_run, n_trials=None, replicate_top=1, replicate_seeds=2)) == 0
    assert len(load(tiny_run).trials) == len(study.trials)
    # a PRUNED replicate (older studies pruned them) does not count: a third seed is run
    pruned = optuna.trial.create_trial(
        state=TrialState.PRUNED, params=reps[0].params, distributions=reps[0].distributions,
        user_attrs={"seed": 987654, "replicate_of": origin.number}, intermediate_values={0: 0.5})
    study.add_trial(pruned)
    capsys.readouterr()
    assert run_study(options(tiny_run, n_trials=None, replicate_top=1, replicate_seeds=3)) == 0
    assert "1 new trial(s) enqueued" in capsys.readouterr().out


def test_confirm_reruns_the_best_configurations_at_another_budget(tiny_run, capsys):
    assert run_study(options(tiny_run, name="explore", n_trials=4, max_train_examples=60)) == 0
    source = load(tiny_run, "explore")
    complete = [t for t in source.get_trials(states=(TrialState.COMPLETE,))]
    best_two = sorted(complete, key=lambda t: (-t.values[0], t.number))[:2]
    full = options(tiny_run, name="full", n_trials=None, epochs=None, max_train_examples=None,
                   confirm_from="explore", replicate_top=2, replicate_seeds=2)
    assert run_study(full) == 0
    study = load(tiny_run, "full")
    attrs = study.user_attrs
    assert attrs["confirm_from"] == "explore" and attrs["max_train_examples"] is None
    assert attrs["epochs"] == source.user_attrs["epochs"]
    assert attrs["seed"] == source.user_attrs["seed"]
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 2 * len(best_two)
    assert all(t.state == TrialState.COMPLETE for t in trials)  # confirm never prunes
    # seed-major: both configurations' first seeds, then both second seeds
    assert [t.user_attrs["confirm_of"] for t in trials] == [t.number for t in best_two] * 2
    assert ["replicate_of" in t.user_attrs for t in trials] == [False, False, True, True]
    n_train = json.loads((tiny_run / "run.json").read_text())["sizes"]["train"]
    assert n_train > 60 and all(t.user_attrs["budget"]["train_size"] == n_train for t in trials)
    for src in best_two:
        mine = [t for t in trials if t.user_attrs["confirm_of"] == src.number]
        assert len(mine) == 2 and all(t.params == src.params for t in mine)
        # the source's own seed first (the primary row), then one new seed (a replicate row)
        assert mine[0].user_attrs["seed"] == src.user_attrs["seed"]
        assert "replicate_of" not in mine[0].user_attrs
        assert mine[1].user_attrs["seed"] != src.user_attrs["seed"]
        assert mine[1].user_attrs["replicate_of"] == src.number
    assert "confirm: top 2 configuration(s) of study 'explore'" in capsys.readouterr().out
    from reports import analyze, load_inputs

    report = analyze(load_inputs(tiny_run, None, "full"))
    assert "confirmation study: the best configurations of study 'explore'" in report.header.note
    assert report.header.n_primary == 2 and report.header.n_replicates == 2

    # idempotent; a different budget, another source or the source itself are refused
    assert run_study(full) == 0
    assert "confirm: nothing to run" in capsys.readouterr().out
    assert len(load(tiny_run, "full").trials) == len(trials)
    # from the command line, --seeds defaults to 1: the source's own seed only
    assert _cli(["study", "confirm", "--run", str(tiny_run), "--name", "one", "--from", "explore",
                 "--top", "1", "--max-train-examples", "60"]) == 0
    one = load(tiny_run, "one").trials
    assert [t.user_attrs["seed"] for t in one] == [best_two[0].user_attrs["seed"]]
    with pytest.raises(UsageError, match="max_train_examples=None, not 60"):
        run_study(dataclasses.replace(full, max_train_examples=60))
    with pytest.raises(UsageError, match="already exists and confirms 'explore'"):
        run_study(dataclasses.replace(full, confirm_from="other"))
    with pytest.raises(UsageError, match="already exists and is not a confirm study"):
        run_study(dataclasses.replace(full, name="explore", confirm_from="full"))
    with pytest.raises(UsageError, match="--from and --name are both 'full'"):
        run_study(dataclasses.replace(full, confirm_from="full"))
    with pytest.raises(UsageError, match="no study named 'ghost'"):
        run_study(dataclasses.replace(full, name="full2", confirm_from="ghost"))
    assert "full2" not in [s.study_name for s in optuna.get_all_study_summaries(
        f"sqlite:///{tiny_run}/studies.db")]
    with pytest.raises(UsageError, match="--from STUDY and --top K are required"):
        _cli(["study", "confirm", "--run", str(tiny_run), "--name", "x", "--top", "1"])
    with pytest.raises(UsageError, match="--from and --from-any-teacher belong to"):
        _cli(["study", "--run", str(tiny_run), "--name", "x", "--from", "explore"])


def test_confirm_from_a_study_on_another_teacher_only_when_asked(tiny_run):
    """A re-trained teacher (same recipe, other checkpoint) orphans the source study: its
    configurations are taken only with --from-any-teacher, and the report says so."""
    assert run_study(options(tiny_run, name="explore", n_trials=2, max_train_examples=60)) == 0
    source = load(tiny_run, "explore")
    source.set_user_attr("teacher_key", "0" * 64)  # as made on the earlier teacher
    argv = ["study", "confirm", "--run", str(tiny_run), "--name", "again", "--from", "explore",
            "--top", "1", "--max-train-examples", "60"]
    with pytest.raises(UsageError, match=r"'explore' was run on another teacher \(000000000000 "
                                         r"!= .*--from-any-teacher takes its configurations"):
        _cli(argv)
    assert "again" not in [s.study_name for s in optuna.get_all_study_summaries(
        f"sqlite:///{tiny_run}/studies.db")]
    assert _cli([*argv, "--from-any-teacher"]) == 0
    study = load(tiny_run, "again")
    assert study.user_attrs["source_teacher_key"] == "0" * 64
    assert study.user_attrs["teacher_key"] != "0" * 64
    assert [t.state for t in study.trials] == [TrialState.COMPLETE]
    from reports import analyze, load_inputs

    note = analyze(load_inputs(tiny_run, None, "again")).header.note
    assert "re-run at this study's budget and on another teacher checkpoint (source " \
           "000000000000, this study " in note


def test_confirm_fix_replaces_a_parameter_and_a_remade_augmented_set_is_refused(tiny_run,
                                                                                capsys):
    """`study confirm --fix augment_factor=2` re-runs the source's configurations with two
    augmented copies in place of their own 0 (the baseline arm, which never sees them, is
    the source's to the bit); a study whose trials may use the augmented set refuses to resume
    on one made again."""
    from data_prep.augment import AugmentSettings, build_augmented
    from study.space import Param

    assert run_study(options(tiny_run, name="explore", n_trials=2, max_train_examples=60)) == 0
    source = load(tiny_run, "explore")
    assert all(t.params["augment_factor"] == 0 for t in source.trials)
    assert source.user_attrs["augment_key"] is None
    build_augmented(tiny_run, AugmentSettings(factor=2, seed=0), device="cpu")
    space = tuple(Param("augment_factor", "int", 0, 2) if q.name == "augment_factor" else q
                  for q in options(tiny_run).space)
    confirm = options(tiny_run, name="more-aug", n_trials=None, max_train_examples=60,
                      space=space, fixes=["augment_factor=2"], confirm_from="explore",
                      replicate_top=2, replicate_seeds=1)
    assert run_study(confirm) == 0
    assert "with augment_factor=2; 2 new trial(s) enqueued" in capsys.readouterr().out
    study = load(tiny_run, "more-aug")
    assert study.user_attrs["confirm_fixes"] == {"augment_factor": 2}
    sources = {t.number: t for t in source.trials}
    assert {t.user_attrs["confirm_of"] for t in study.trials} == set(sources)
    for trial in study.trials:
        src = sources[trial.user_attrs["confirm_of"]]
        assert trial.params == {**src.params, "augment_factor": 2}
        assert trial.user_attrs["seed"] == src.user_attrs["seed"]
        epochs, n = trial.user_attrs["epochs_run"], 60
        assert trial.user_attrs["distill"]["sentences_seen"] == 3 * n * epochs
        assert trial.user_attrs["baseline"]["sentences_seen"] == n * epochs
        # the baseline never sees augmented rows: the source's to the bit
        assert trial.user_attrs["baseline"]["dev_acc"] == src.user_attrs["baseline"]["dev_acc"]
    from reports import analyze, load_inputs
    from reports.render import render_markdown

    report = analyze(load_inputs(tiny_run, None, "more-aug"), n_resamples=199,
                     against_inputs=load_inputs(tiny_run, None, "explore"))
    assert "re-run at this study's budget with augment_factor = 2 in place of their own" in \
        report.header.note
    a = report.against
    assert a.available and a.ignored == ("augment_factor",) and len(a.pairs) == 2
    rows = a.table.set_index(["arm", "other_arm", "split"])
    assert rows.loc[("baseline", "baseline", "dev"), "equal"] == 2
    # this study's distill arm saw 3x the sentences of the source's arms (no augmented rows);
    # this study's baseline as many as the source's distill arm: that row is at equal compute
    assert rows.loc[("distill", "baseline", "dev"), "sentences_ratio"] == 3.0
    assert not rows.loc[("distill", "baseline", "dev"), "equal_compute"]
    assert rows.loc[("baseline", "distill", "dev"), "equal_compute"]
    assert "this study's baseline arm − the distill arm of study 'explore', dev:" in a.conclusion
    assert (a.pairs["distill_sentences_seen"] == 3 * a.pairs["other_distill_sentences_seen"]).all()
    assert "baseline arm, dev: equal in all 2 pairs" in a.conclusion
    assert "augment_factor = 2 here, own there" in a.method
    assert "## 8. Against study explore" in render_markdown(report)

    # the same study with other fixes, or --range, is refused; a value outside the run's set too
    with pytest.raises(UsageError, match=r"made with --fix augment_factor=2, not augment_factor=1"):
        run_study(dataclasses.replace(confirm, fixes=["augment_factor=1"]))
    with pytest.raises(UsageError, match="--range does not apply"):
        run_study(dataclasses.replace(confirm, ranges=["lr=1e-4:1e-3"]))
    with pytest.raises(UsageError, match=r"confirm: --range do not apply .*--fix NAME=VALUE"):
        _cli(["study", "confirm", "--run", str(tiny_run), "--name", "y", "--from", "explore",
              "--top", "1", "--fix", "augment_factor=2", "--range", "lr=1e-4:1e-3"])
    with pytest.raises(UsageError, match="augment_factor=3"):
        run_study(dataclasses.replace(confirm, name="x", fixes=["augment_factor=3"]))

    # augment made again (another seed): the confirm study, whose trials use it, is refused;
    # the source, which never used augmented rows, resumes with augment_factor fixed to 0
    build_augmented(tiny_run, AugmentSettings(factor=2, seed=1), device="cpu")
    with pytest.raises(UsageError, match=r"'more-aug' was run on another augmented set \("):
        run_study(dataclasses.replace(confirm, replicate_seeds=2))
    assert len(load(tiny_run, "more-aug").trials) == 2  # nothing written
    resume = options(tiny_run, name="explore", n_trials=3, max_train_examples=60, space=space)
    with pytest.raises(UsageError, match=r"another augmented set .*--fix augment_factor=0"):
        run_study(resume)
    assert run_study(dataclasses.replace(resume, fixes=["augment_factor=0"])) == 0
    assert len(load(tiny_run, "explore").trials) == 3

    # configurations that need more augmented copies than the run holds are refused up front
    import shutil

    shutil.rmtree(tiny_run / "augment")
    with pytest.raises(UsageError, match=r"trial\(s\) .* train on augmented rows, and the run's "
                                         r"augmented set holds 0 copies"):
        run_study(dataclasses.replace(confirm, name="short"))
    assert "short" not in [s.study_name for s in optuna.get_all_study_summaries(
        f"sqlite:///{tiny_run}/studies.db")]


def test_same_seed_same_parameters_and_metrics(tiny_run):
    for name in ("a", "b"):
        assert run_study(options(tiny_run, name=name, seed=11, sampler="random")) == 0
    a, b = load(tiny_run, "a").trials, load(tiny_run, "b").trials
    assert [t.params for t in a] == [t.params for t in b]
    assert [t.user_attrs["distill"]["dev_acc"] for t in a] == \
           [t.user_attrs["distill"]["dev_acc"] for t in b]
    assert [t.user_attrs["gap"] for t in a] == [t.user_attrs["gap"] for t in b]


def test_a_config_that_cannot_learn_is_pruned(tiny_run):
    good = {"cell": "gru", "lr": 3e-2, "batch_size": 32, "alpha": 0.5, "attention_size": 0,
            **{k: 0.0 for k in ("embedding_dropout", "input_dropout", "layer_dropout",
                                "weight_dropout", "output_dropout")}}
    opts = options(tiny_run, name="prune", n_trials=4, epochs=4, max_train_examples=None,
                   space=tiny_space(lr=(1e-6, 1e-1)), pruner_startup=3)
    from study.runner import open_study, prepare

    study = open_study(prepare(opts), create=True)
    for seed in (1, 2, 3):
        study.enqueue_trial(good, user_attrs={"seed": seed})
    study.enqueue_trial({**good, "lr": 1e-6}, user_attrs={"seed": 4})
    assert run_study(opts) == 0
    trials = load(tiny_run, "prune").trials
    assert [t.state for t in trials[:3]] == [TrialState.COMPLETE] * 3
    assert all(t.value > 0.6 for t in trials[:3])
    bad = trials[3]
    assert bad.state == TrialState.PRUNED
    assert bad.user_attrs["epochs_run"] < 4
    assert len(bad.user_attrs["distill"]["dev_acc"]) == bad.user_attrs["epochs_run"]


def test_two_workers_on_one_sqlite_file_finish_exactly_n(tiny_run, capfd):
    assert run_study(options(tiny_run, name="par", n_trials=5, workers=2)) == 0
    study = load(tiny_run, "par")
    done = study.get_trials(states=FINISHED)
    assert len(done) == 5
    assert len({t.number for t in study.trials}) == len(study.trials)
    assert not study.get_trials(states=(TrialState.RUNNING,))
    assert len({t.user_attrs["worker"] for t in done}) == 2
    assert all({"distill", "baseline", "gap", "seed", "config"} <= set(t.user_attrs)
               for t in done)
    failed = [t for t in study.get_trials(states=(TrialState.FAIL,))
              if not t.user_attrs.get("surplus")]
    assert not failed
    out = capfd.readouterr().out
    assert "[w0] trial" in out and "[w1] trial" in out  # workers write to the same stdout


def _start(run, name, **kw) -> subprocess.Popen:
    spec = options(run, name=name, **kw).to_json()
    code = ("import sys; from study.runner import StudyOptions, run_study; "
            "sys.exit(run_study(StudyOptions.from_json(sys.argv[1])))")
    return subprocess.Popen([sys.executable, "-c", code, spec], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "1"},
                            preexec_fn=sigint_as_in_a_terminal)


def _wait_for(predicate, timeout=120.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


def _running_with_curves(run, name, max_epochs=None):
    try:
        study = load(run, name)
    except KeyError:
        return None
    running = [t for t in study.get_trials(states=(TrialState.RUNNING,))
               if 1 <= t.user_attrs.get("epochs_run", 0) <= (max_epochs or 10**9)]
    return running[0] if running else None


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_trial_exits_quickly_and_the_study_resumes(tiny_run, sig):
    opts = dict(name="sig", n_trials=2, epochs=12, max_train_examples=None)
    proc = _start(tiny_run, **opts)
    _wait_for(lambda: _running_with_curves(tiny_run, "sig"))
    t0 = time.monotonic()
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 5
    assert proc.returncode == 128 + sig
    assert f"stopped by {signal.Signals(sig).name}" in err and "run the same command" in err
    assert "Traceback" not in err
    study = load(tiny_run, "sig")
    assert not study.get_trials(states=(TrialState.RUNNING,))
    before = study.get_trials(states=FINISHED)
    stopped = study.get_trials(states=(TrialState.FAIL,))[0]
    assert stopped.user_attrs["interrupted"] == signal.Signals(sig).name
    waiting = study.get_trials(states=(TrialState.WAITING,))[0]
    assert waiting.user_attrs["seed"] == stopped.user_attrs["seed"]
    # another budget is refused; the same command resumes and completes the study
    with pytest.raises(UsageError, match="epochs=12"):
        run_study(options(tiny_run, **{**opts, "epochs": 2}))
    assert run_study(options(tiny_run, **opts)) == 0
    study = load(tiny_run, "sig")
    done = study.get_trials(states=FINISHED)
    assert len(done) == 2 and {t.number for t in before} <= {t.number for t in done}
    redo = [t for t in done if t.user_attrs["seed"] == stopped.user_attrs["seed"]]
    assert redo and redo[0].params == stopped.params


@pytest.mark.slow
def test_kill_9_worker_trial_is_retried_and_the_count_is_reached(tiny_run):
    proc = _start(tiny_run, "kill", n_trials=4, workers=2, epochs=12, max_train_examples=None)
    # in its first quarter: it cannot finish between this snapshot and the kill
    victim = _wait_for(lambda: _running_with_curves(tiny_run, "kill", max_epochs=3))
    pid = int(victim.user_attrs["worker"].rsplit(":", 1)[1])
    os.kill(pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    assert "ended with signal 9" in err
    study = load(tiny_run, "kill")
    assert len(study.get_trials(states=FINISHED)) == 4
    killed = [t for t in study.trials if t.number == victim.number][0]
    assert killed.state == TrialState.FAIL
    retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == victim.number]
    assert retries and retries[0].state in FINISHED
    assert retries[0].params == killed.params
    assert retries[0].user_attrs["seed"] == killed.user_attrs["seed"]


def _cli(argv):
    parser = argparse.ArgumentParser()
    study_cmd.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--n-trials", "0"], "--n-trials must be >= 1"),
        (["--n-trials", "-3"], "--n-trials must be >= 1"),
        (["--workers", "0"], "--workers must be >= 1"),
        (["--fix", "depth=2"], "unknown parameter; valid names"),
        (["--fix", "layers=9"], "outside the space"),
        (["--range", "lr=1:2"], "must lie inside"),
        (["--devices", "cuda:0"], "CUDA"),
        (["--storage", "redis://x"], "unknown scheme"),
        (["--epochs", "0"], "--epochs must be >= 1"),
        (["--top", "2"], "belong to"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(tiny_run, extra, message):
    if "cuda" in " ".join(extra) and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(UsageError, match=message):
        _cli(["study", "--run", str(tiny_run), "--name", "x", "--n-trials", "2", *extra])
    assert not (tiny_run / "studies.db").exists()


def test_missing_run_directory_and_unknown_study(tmp_path, tiny_run):
    with pytest.raises(UsageError, match="directory not found"):
        _cli(["study", "--run", str(tmp_path / "nope"), "--name", "x", "--n-trials", "1"])
    ghost = dataclasses.replace(options(tiny_run), name="ghost", n_trials=None,
                                replicate_top=1, replicate_seeds=1)
    with pytest.raises(UsageError, match="no such file"):
        run_study(ghost)  # replicate never creates a database
    optuna.create_study(study_name="other", storage=f"sqlite:///{tiny_run}/studies.db")
    with pytest.raises(UsageError, match="no study named 'ghost'.*other"):
        run_study(ghost)


def test_worker_spec_round_trip(tiny_run):
    o = options(tiny_run, fixes=["cell=gru"])
    again = StudyOptions.from_json(o.to_json())
    assert again == o and json.loads(o.to_json())["name"] == "s"


def test_a_joining_process_counts_running_trials_in_its_target(capsys):
    """A second `study confirm` started while the first runs a trial takes the waiting ones:
    its target counts the running trial, which finishes (or is retried) elsewhere."""
    from study.runner import _queued_target

    study = optuna.create_study()
    study.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=0.5))
    for _ in range(3):
        study.enqueue_trial({})
    running = study.ask()  # takes the first waiting trial
    assert running.number == 1
    assert _queued_target(study, 0, "confirm", None) == 4  # 1 finished + 1 running + 2 waiting
    for _ in range(2):
        study.ask()
    assert _queued_target(study, 0, "confirm", sys.stdout) is None
    assert "confirm: nothing to run" in capsys.readouterr().out


class _FakeProc:
    """A worker process that ends after ``rounds`` polls (None: when sent a signal)."""

    def __init__(self, rounds: int | None, code: int = 0) -> None:
        self.rounds, self.code, self.polls = rounds, code, 0
        self.returncode: int | None = None
        self.signals: list[int] = []

    def poll(self):
        self.polls += 1
        if self.returncode is None and self.rounds is not None and self.polls > self.rounds:
            self.returncode = self.code
        return self.returncode

    def send_signal(self, sig) -> None:
        self.signals.append(sig)
        self.rounds = self.polls  # ends at its next poll, as a worker's graceful stop does


def test_wait_all_reaps_a_worker_that_ends_while_an_earlier_one_still_runs():
    from study.objective import GracefulStop
    from study.runner import _wait_all

    slow, quick = _FakeProc(rounds=50), _FakeProc(rounds=1, code=3)
    codes = _wait_all([slow, quick], GracefulStop(), interval=0)
    assert codes == [0, 3]
    # The quick worker's exit was collected as soon as it ended (by its second poll), not
    # left a zombie until the slow one ended: every worker is polled every round.
    assert quick.polls >= 50


def test_wait_all_forwards_a_stop_once_to_the_workers_still_running():
    from study.objective import GracefulStop
    from study.runner import _wait_all

    stop = GracefulStop()
    stop.signum = signal.SIGTERM
    done, running = _FakeProc(rounds=0), _FakeProc(rounds=None, code=143)
    codes = _wait_all([done, running], stop, interval=0)
    assert codes == [0, 143]
    assert running.signals == [signal.SIGTERM] and done.signals == []
