"""export -> evaluate reproduces the recorded accuracy; predict; tampered files are refused."""

from __future__ import annotations

import json

import pytest
import torch

from study.commands import export as export_cmd
from study.config import TrialConfig
from study.errors import ArtifactError, UsageError
from study.export import evaluate_tsv, export_trial, load_student, predict_texts
from study.run import Run
from study.runner import StudyOptions, run_study
from study.space import Param, default_space


def tiny_space():
    tiny = {"hidden": Param("hidden", "int", 8, 8), "layers": Param("layers", "int", 1, 1),
            "lr": Param("lr", "float", 2e-2, 4e-2, log=True),
            "batch_size": Param("batch_size", "categorical", choices=(16,))}
    return tuple(tiny.get(p.name, p) for p in default_space())


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_run_master):
    """A 2-trial study on a copy of the tiny run and its best distill student."""
    import shutil

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("export") / "run"
    shutil.copytree(tiny_run_master, run)
    opts = StudyOptions(run=str(run), name="ex", n_trials=2, epochs=3, max_train_examples=200,
                        space=tiny_space(), base=TrialConfig(head_hidden=8), precision="fp32",
                        pruner="none", seed=1)
    assert run_study(opts) == 0
    torch.set_num_threads(2)  # export must restore the trial's own thread count
    out = run / "students" / "best.pt"
    out.parent.mkdir()
    summary = export_trial(str(run), "ex", "best", "distill", str(out))
    torch.set_num_threads(previous)
    return run, out, summary


def _dev_tsv(run, path):
    dev = Run(run).split("dev")
    with open(path, "w") as f:
        f.write("sentence\tlabel\n")
        for text, label in zip(dev.texts, dev.labels, strict=True):
            f.write(f"{text}\t{label}\n")
    return path


def test_export_reproduces_the_recorded_accuracy(exported, tmp_path, capsys):
    run, out, summary = exported
    assert summary["identical"] and summary["dev_acc"] == summary["recorded_dev_acc"]
    # evaluate through the CLI function: one JSON object, the accuracy recorded at export
    tsv = _dev_tsv(run, tmp_path / "dev.tsv")
    args = _parse(["evaluate", "--student", str(out), "--data", str(tsv)])
    assert args.func(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result == {"accuracy": pytest.approx(summary["dev_acc"], abs=1e-12),
                      "n": len(Run(run).split("dev"))}
    # the same straight from the run directory's split, no TSV needed
    args = _parse(["evaluate", "--student", str(out), "--run", str(run), "--split", "dev"])
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out) == {**result, "split": "dev"}


def test_student_file_is_self_contained(exported, tmp_path):
    run, out, summary = exported
    moved = tmp_path / "elsewhere.pt"
    moved.write_bytes(out.read_bytes())
    hidden = run.with_name("run-away")
    run.rename(hidden)  # no run directory needed any more
    try:
        student = load_student(moved)
        rows = predict_texts(str(moved), ["great fun movie", "awful boring film"])
    finally:
        hidden.rename(run)
    meta = student.meta
    assert meta["trial"] == summary["trial"] and meta["arm"] == "distill"
    assert len(meta["teacher_key"]) == 64 and len(meta["data_key"]) == 64
    assert TrialConfig.from_dict(meta["config"]).hidden == 8
    assert [r["text"] for r in rows] == ["great fun movie", "awful boring film"]
    for r in rows:
        assert r["label"] in (0, 1) and sum(r["probabilities"]) == pytest.approx(1.0, abs=1e-5)
        assert r["label"] == int(r["probabilities"][1] > r["probabilities"][0])


def test_tampered_or_foreign_files_are_refused(exported, tmp_path):
    _run, out, _ = exported
    raw = bytearray(out.read_bytes())
    bad = tmp_path / "bad.pt"
    # flip a byte in the middle of the stored payload: the zip stays readable, the hash not
    middle = len(raw) // 2
    raw[middle] ^= 0xFF
    bad.write_bytes(bytes(raw))
    with pytest.raises(ArtifactError):
        load_student(bad)
    (tmp_path / "junk.pt").write_bytes(b"not a student")
    with pytest.raises(ArtifactError, match="not a readable student file"):
        load_student(tmp_path / "junk.pt")
    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(ArtifactError, match="not a distill-study student file"):
        load_student(tmp_path / "other.pt")
    with pytest.raises(UsageError, match="file not found"):
        evaluate_tsv(str(tmp_path / "missing.pt"), str(tmp_path / "x.tsv"))


def test_export_refuses_bad_requests(exported, tmp_path):
    run, _out, _ = exported
    with pytest.raises(UsageError, match="no study named 'nope'"):
        export_trial(str(run), "nope", "best", "distill", str(tmp_path / "s.pt"))
    with pytest.raises(UsageError, match="no trial 99"):
        export_trial(str(run), "ex", "99", "distill", str(tmp_path / "s.pt"))
    with pytest.raises(UsageError, match="'best' or a trial number"):
        export_trial(str(run), "ex", "last", "distill", str(tmp_path / "s.pt"))
    with pytest.raises(UsageError, match="does not exist"):
        export_trial(str(run), "ex", "best", "distill", str(tmp_path / "no" / "s.pt"))
    assert not list(tmp_path.iterdir())  # nothing written


def _parse(argv):
    import argparse

    parser = argparse.ArgumentParser()
    export_cmd.register(parser.add_subparsers())
    return parser.parse_args(argv)


def test_best_means_best_by_dev_of_the_exported_arm():
    import optuna

    from study.export import select_trial

    study = optuna.create_study(direction="maximize")
    for distill, baseline in ((0.90, 0.80), (0.85, 0.88), (0.70, 0.88)):
        trial = study.ask()
        trial.set_user_attr("distill", {"best_dev_acc": distill})
        trial.set_user_attr("baseline", {"best_dev_acc": baseline})
        study.tell(trial, distill)
    assert select_trial(study, "best", "distill").number == 0
    assert select_trial(study, "best", "baseline").number == 1  # not the distill-best trial


def test_kept_weights_export_without_retraining(tmp_path, tiny_run_master, capsys):
    """--keep-weights: export reads the trial's best-dev weights (same student as retraining,
    bit for bit); a tampered file is refused, a missing one falls back to retraining."""
    import shutil

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = tmp_path / "run"
        shutil.copytree(tiny_run_master, run)
        opts = StudyOptions(run=str(run), name="kw", n_trials=1, epochs=2,
                            max_train_examples=200, space=tiny_space(),
                            base=TrialConfig(head_hidden=8), precision="fp32", pruner="none",
                            seed=2, keep_weights=True)
        assert run_study(opts) == 0
        import optuna

        from study.storage import open_storage, parse_storage

        trial = optuna.load_study(study_name="kw", storage=open_storage(
            parse_storage(None, run))).trials[0]
        info = trial.user_attrs["weights"]
        assert info["path"] == "weights/kw/trial-0.pt" and (run / info["path"]).is_file()
        capsys.readouterr()
        for arm in ("distill", "baseline"):
            kept = export_trial(str(run), "kw", "0", arm, str(tmp_path / f"{arm}-kept.pt"))
            assert kept["source"] == "kept"
            again = export_trial(str(run), "kw", "0", arm, str(tmp_path / f"{arm}-re.pt"),
                                 retrain=True)
            assert again["source"] == "retrained" and again["identical"]
            a = load_student(tmp_path / f"{arm}-kept.pt")
            b = load_student(tmp_path / f"{arm}-re.pt")
            for k, v in a.model.state_dict().items():
                assert torch.equal(v, b.model.state_dict()[k]), (arm, k)
            assert a.meta["test_acc"] == b.meta["test_acc"]
        assert "from its kept weights" in capsys.readouterr().err

        weights = run / info["path"]
        body = bytearray(weights.read_bytes())
        body[-10] ^= 0xFF
        weights.write_bytes(bytes(body))
        with pytest.raises(ArtifactError, match="does not match the sha256 recorded"):
            export_trial(str(run), "kw", "0", "distill", str(tmp_path / "x.pt"))
        assert not (tmp_path / "x.pt").exists()
        weights.unlink()
        gone = export_trial(str(run), "kw", "0", "distill", str(tmp_path / "x.pt"))
        assert gone["source"] == "retrained" and gone["identical"]
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize(("argv", "keep"), [
    (["study", "confirm", "--from", "s", "--top", "1"], True),
    (["study"], False),
    (["study", "--keep-weights"], True),
])
def test_confirm_keeps_weights_from_the_command_line(monkeypatch, argv, keep):
    import argparse

    from study.commands import study_cmd

    captured = {}
    monkeypatch.setattr(study_cmd, "run_study", lambda options: captured.setdefault("o", options)
                        and 0)
    parser = argparse.ArgumentParser()
    study_cmd.register(parser.add_subparsers())
    args = parser.parse_args([*argv, "--run", "r", "--name", "c"])
    args.func(args)
    assert captured["o"].keep_weights is keep


def test_the_file_is_the_size_of_its_payload_and_older_files_still_load(exported, tmp_path):
    """The payload is stored as a uint8 tensor: a bytes object would be pickled (protocol 2) as
    latin-1 text in UTF-8, every byte >= 0x80 taking two. Files written that way still load."""
    _run, out, summary = exported
    outer = torch.load(out, map_location="cpu", weights_only=True)
    packed = outer["payload"]
    body = packed.numpy().tobytes() if isinstance(packed, torch.Tensor) else packed
    high = sum(1 for b in body if b >= 0x80)
    assert high > 0.1 * len(body)  # float weights: the case that used to grow
    assert out.stat().st_size - len(body) < 0.5 * high  # a zip record of ~2 KB, no more
    older = tmp_path / "older.pt"
    torch.save({**outer, "payload": body}, older)
    assert older.stat().st_size > len(body) + 0.9 * high
    assert load_student(older).meta["trial"] == summary["trial"]
