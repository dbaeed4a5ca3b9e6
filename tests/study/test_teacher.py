"""teacher: fine-tuning, cached logits and their manifest, diagnostics, refusal of stale artifacts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from data_prep.prepare import prepare
from study.cli import main
from study.errors import ArtifactError
from study.run import Run
from study.teacher import (
    TeacherSettings,
    bucket_batches,
    diagnostics,
    fine_tune,
    reliability,
)
from tests.conftest import synthetic_rows, write_tsv


def test_tiny_teacher_learns_and_caches_every_split(tiny_run):
    run = Run(tiny_run)
    manifest = run.teacher_manifest
    assert manifest["accuracy"]["dev"] >= 0.8, manifest["accuracy"]
    for split in ("train", "dev", "test"):
        logits = run.logits(split)
        assert logits.shape == (len(run.split(split)), 2) and logits.dtype == np.float32
        acc = float((logits.argmax(1) == run.split(split).labels).mean())
        assert acc == pytest.approx(manifest["accuracy"][split])
    emb = run.embeddings()
    assert tuple(emb.shape) == tuple(manifest["embedding_shape"])
    assert manifest["data_key"] == run.data_key
    assert manifest["checkpoint_sha256"] and (run.checkpoint_dir / "config.json").is_file()
    assert manifest["settings"]["freeze_embeddings"] is False


def test_selected_checkpoint_reproduces_the_cached_dev_logits(tiny_run):
    import torch

    from study.teacher import load_teacher_model, teacher_logits

    run = Run(tiny_run)
    model = load_teacher_model(run.checkpoint_dir)
    dev = run.split("dev")
    again = teacher_logits(model, dev, run.pad_id, torch.device("cpu"), None, desc="")
    np.testing.assert_allclose(again, run.logits("dev"), atol=1e-5)
    best = max(h["dev_acc"] for h in run.teacher_manifest["dev_history"])
    assert run.teacher_manifest["accuracy"]["dev"] == pytest.approx(best)


def test_second_run_with_same_settings_does_no_work(tiny_run, capsys):
    before = (tiny_run / "teacher" / "manifest.json").read_text()
    settings = TeacherSettings(**json.loads(before)["settings"])
    capsys.readouterr()
    fine_tune(tiny_run, settings, device="cpu")
    assert "up to date" in capsys.readouterr().err
    assert (tiny_run / "teacher" / "manifest.json").read_text() == before


def test_max_train_examples_still_caches_every_row(tmp_path, tiny_data, tiny_teacher):
    prepare(tmp_path / "run", "sst2", data_dir=str(tiny_data), teacher=str(tiny_teacher))
    manifest = fine_tune(tmp_path / "run", TeacherSettings(epochs=1, batch_size=16,
                                                           max_train_examples=50), device="cpu")
    assert manifest["train_size"] == 50
    assert Run(tmp_path / "run").logits("train").shape == (400, 2)


def test_truncated_logits_are_refused(tiny_run):
    f = tiny_run / "teacher" / "logits.npz"
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(ArtifactError, match="does not match the teacher manifest"):
        Run(tiny_run).logits("train")


def test_logits_from_other_data_are_refused(tiny_run, tmp_path):
    data = tmp_path / "changed"
    write_tsv(data / "train.tsv", synthetic_rows(400, 11))
    write_tsv(data / "dev.tsv", synthetic_rows(120, 2))
    info = json.loads((tiny_run / "run.json").read_text())
    prepare(tiny_run, "sst2", data_dir=str(data), teacher=info["teacher"])
    with pytest.raises(ArtifactError, match="made for other data"):
        Run(tiny_run).logits("train")


def test_failed_teacher_run_keeps_the_previous_teacher(tiny_run, monkeypatch):
    import study.teacher as teacher_mod

    before = {p: p.read_bytes() for p in (tiny_run / "teacher").rglob("*") if p.is_file()}

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(teacher_mod, "diagnostics", boom)
    with pytest.raises(RuntimeError):
        fine_tune(tiny_run, TeacherSettings(epochs=1, batch_size=16), device="cpu", force=True)
    after = {p: p.read_bytes() for p in (tiny_run / "teacher").rglob("*") if p.is_file()}
    assert after == before
    assert not [p for p in tiny_run.iterdir() if p.name.startswith(".teacher")]


def test_bucket_batches_cover_rows_once_with_little_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 60, size=1000)
    batches = bucket_batches(lengths, 32, np.random.default_rng(1))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    waste = sum(lengths[b].max() * len(b) - lengths[b].sum() for b in batches)
    random_waste = sum(lengths[b].max() * len(b) - lengths[b].sum()
                       for b in np.array_split(rng.permutation(1000), 32))
    assert waste < 0.1 * random_waste
    again = bucket_batches(lengths, 32, np.random.default_rng(1))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))


def test_reliability_and_ece_on_a_worked_example():
    # Two bins: confident-and-right, and 0.6-confident but always wrong.
    logits = np.log(np.array([[0.05, 0.95]] * 10 + [[0.6, 0.4]] * 10))
    labels = np.array([1] * 10 + [1] * 10)
    rel = reliability(logits, labels, bins=5)
    assert sum(rel["bin_count"]) == 20
    # ECE = 0.5 * |1 - 0.95| + 0.5 * |0 - 0.6| = 0.325
    assert rel["ece"] == pytest.approx(0.325)


def test_diagnostics_entropy_rises_with_temperature():
    rng = np.random.default_rng(0)
    logits = {s: rng.normal(0, 4, size=(200, 2)).astype(np.float32) for s in ("train", "dev", "test")}
    labels = {s: (logits[s][:, 1] > logits[s][:, 0]).astype(int) for s in logits}
    d = diagnostics(logits, labels)
    h = d["entropy_vs_T"]["mean_entropy_bits"]
    assert all(a < b for a, b in zip(h, h[1:], strict=False)) and h[-1] <= 1.0
    assert d["accuracy"]["train"] == 1.0
    assert sum(d["confidence_hist"]["counts"]) == 200


def test_teacher_cli_bad_input(tmp_path, capsys, tiny_run):
    assert main(["teacher", "--run", str(tmp_path / "missing")]) == 2
    assert "directory not found" in capsys.readouterr().err
    assert main(["teacher", "--run", str(tiny_run), "--device", "cuda:0"]) in (0, 2)
    err = capsys.readouterr().err
    import torch

    if not torch.cuda.is_available():
        assert "CUDA is not available" in err
    assert main(["teacher", "--run", str(tiny_run), "--epochs", "0"]) == 2
    assert "--epochs must be >= 1" in capsys.readouterr().err
