"""Issue 6.5: corrupt or stale artifacts, through the commands that would use them.

Already covered at the API level, not repeated here: a truncated logits file and logits from
other data (tests/study/test_teacher.py), a changed input missing the tokenized cache
(tests/data_prep/test_prepare.py), tampered or foreign student files (tests/study/test_export.py).
Here the CLI (``study``, ``export``, ``report``, ``evaluate``, ``predict``, ``prepare``,
``teacher``) must refuse each with one line and exit status 2 and write nothing, or rebuild
where that is the right answer (``prepare`` and ``teacher`` after the data changed).
"""

from __future__ import annotations

import hashlib
import io
import subprocess

import pytest
import torch

from study.cli import main
from study.export import FORMAT, export_trial
from study.run import Run
from study.runner import run_study
from study.teacher import TeacherSettings, fine_tune
from tests.conftest import synthetic_rows, write_tsv
from tests.reliability.helpers import REPO, child_env, cli_command, copy_run, options, snapshot


@pytest.fixture(scope="module")
def master(tmp_path_factory, tiny_run_master):
    """A run with a finished study 's', its exported student, and another teacher's files."""
    root = tmp_path_factory.mktemp("artifacts")
    run = copy_run(tiny_run_master, root / "run")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert run_study(options(run, name="s", n_trials=1, pruner="none")) == 0
        student = root / "student.pt"
        export_trial(str(run), "s", "best", "distill", str(student))
        # The same data, another teacher: fine-tuned again with another seed and budget.
        other = copy_run(tiny_run_master, root / "other-teacher")
        fine_tune(other, TeacherSettings(epochs=1, batch_size=16, seed=7), device="cpu",
                  force=True)
    finally:
        torch.set_num_threads(previous)
    return {"run": run, "student": student, "other": other}


@pytest.fixture
def run(master, tmp_path):
    return copy_run(master["run"], tmp_path / "run")


def _refused(capsys, argv, message, *roots):
    before = snapshot(*roots)
    capsys.readouterr()
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("distill-study: error:"), err
    assert message in lines[0], err
    assert "Traceback" not in err
    after = snapshot(*roots)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"{argv[0]} wrote {changed}"


def _users(run, out):
    """Every command that reads the teacher's logits for study 's' of ``run``."""
    return [
        ["study", "--run", run, "--name", "new", "--n-trials", "1"],
        ["study", "--run", run, "--name", "s", "--n-trials", "2"],
        ["export", "--run", run, "--name", "s", "--out", out / "s.pt"],
        ["report", "--run", run, "--name", "s", "--out", out / "report"],
    ]


def test_truncated_logits_are_refused_by_every_command(run, tmp_path, capsys):
    f = run / "teacher" / "logits.npz"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    for argv in _users(run, tmp_path):
        _refused(capsys, argv, "does not match the teacher manifest", tmp_path)


def test_logits_of_another_teacher_are_refused(run, master, tmp_path, capsys):
    other = master["other"] / "teacher"
    assert (other / "logits.npz").read_bytes() != (run / "teacher" / "logits.npz").read_bytes()
    # Only the logits swapped: they do not match this teacher's manifest.
    (run / "teacher" / "logits.npz").write_bytes((other / "logits.npz").read_bytes())
    for argv in _users(run, tmp_path):
        _refused(capsys, argv, "does not match the teacher manifest", tmp_path)
    # Logits, embeddings and manifest swapped together (a consistent other teacher): a study made with
    # the first teacher must not be resumed, exported or reported against them.
    for name in ("manifest.json", "embeddings.npy"):
        (run / "teacher" / name).write_bytes((other / name).read_bytes())
    for argv in _users(run, tmp_path)[1:]:
        _refused(capsys, argv, "another teacher", tmp_path)


def test_changed_data_rebuilds_the_cache_and_stale_artifacts_are_refused(run, tmp_path, capsys):
    old_key = Run(run).data_key
    old_train = (Run(run).data_dir / "train.npz").read_bytes()
    data = tmp_path / "changed"
    write_tsv(data / "train.tsv", synthetic_rows(400, 31))
    write_tsv(data / "dev.tsv", synthetic_rows(120, 2))
    teacher = Run(run).info["teacher"]
    # prepare with changed inputs rebuilds the tokenized cache: the right answer.
    assert main(["prepare", "--run", str(run), "--dataset", "sst2", "--data-dir", str(data),
                 "--teacher", teacher]) == 0
    new = Run(run)
    assert new.data_key != old_key and (new.data_dir / "train.npz").read_bytes() != old_train
    # The teacher's logits belong to the old data: refused until the teacher is rebuilt.
    for argv in _users(run, tmp_path):
        _refused(capsys, argv, "teacher was made for other data", tmp_path)
    assert main(["teacher", "--run", str(run), "--epochs", "1", "--batch-size", "16",
                 "--device", "cpu"]) == 0
    # Now the study made on the old data is stale: not resumed, exported or reported.
    for argv in _users(run, tmp_path)[1:]:
        _refused(capsys, argv, "another data", tmp_path)
    # A tokenized split from the old data put back in place of the new one.
    split = Run(run).data_dir / "train.npz"
    split.write_bytes(old_train)
    _refused(capsys, _users(run, tmp_path)[0], "made for other data", tmp_path, run)
    # ... and a truncated one.
    split.write_bytes(old_train[:200])
    _refused(capsys, _users(run, tmp_path)[0], "corrupt tokenized split", tmp_path, run)


def _with_outer(student, **change) -> bytes:
    outer = torch.load(student, map_location="cpu", weights_only=True)
    outer.update(change)
    buf = io.BytesIO()
    torch.save(outer, buf)
    return buf.getvalue()


def test_student_files_that_do_not_match_their_hash_are_refused(master, tmp_path, capsys):
    student = master["student"]
    dev = tmp_path / "dev.tsv"
    write_tsv(dev, synthetic_rows(20, 5))
    outer = torch.load(student, map_location="cpu", weights_only=True)
    assert outer["format"] == FORMAT
    body = bytearray(outer["payload"])
    body[len(body) // 2] ^= 0xFF  # a payload changed after export, hash left as it was
    cases = {
        "edited.pt": (_with_outer(student, payload=bytes(body)), "does not match its sha256"),
        "wrong-hash.pt": (_with_outer(student, sha256=hashlib.sha256(b"x").hexdigest()),
                          "does not match its sha256"),
        "truncated.pt": (student.read_bytes()[:4096], "not a readable student file"),
    }
    for name, (data, message) in cases.items():
        bad = tmp_path / name
        bad.write_bytes(data)
        _refused(capsys, ["evaluate", "--student", bad, "--data", dev], message, tmp_path)
        _refused(capsys, ["predict", "--student", bad, "great fun"], message, tmp_path)
    # the untouched file still works, so the refusals above are about the damage
    assert main(["predict", "--student", str(student), "great fun"]) == 0


@pytest.mark.slow
def test_console_script_refuses_a_tampered_student(master, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(_with_outer(master["student"], sha256="0" * 64))
    proc = subprocess.run([*cli_command(), "predict", "--student", str(bad), "nice film"],
                          cwd=REPO, text=True, capture_output=True, env=child_env(), timeout=120)
    assert proc.returncode == 2 and not proc.stdout
    assert proc.stderr.strip().splitlines() == [
        f"distill-study: error: {bad}: payload does not match its sha256 (corrupt or edited); "
        "export it again"]
