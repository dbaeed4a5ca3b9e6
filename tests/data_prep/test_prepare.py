"""prepare: cache keys, protocol splits, refusal of foreign run directories, bad input via the CLI."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from data_prep.prepare import prepare
from study.cli import main
from study.errors import UsageError
from study.run import Run
from tests.conftest import VOCAB, build_tiny_teacher, synthetic_rows, write_tsv


def _keyfiles(run_dir):
    return sorted(p for p in (run_dir / "data").rglob("*.npz"))


def test_prepare_splits_and_tokenizes(tmp_path, tiny_data, tiny_teacher):
    info = prepare(tmp_path / "run", "sst2", data_dir=str(tiny_data), teacher=str(tiny_teacher))
    assert info["sizes"] == {"train": 400, "dev": 60, "test": 60}
    run = Run(tmp_path / "run")
    dev, test = run.split("dev"), run.split("test")
    assert not set(dev.texts) & set(test.texts) or len(set(dev.texts)) < 60
    train = run.split("train")
    assert train.ids.dtype == np.int32 and len(train) == 400
    row = train.row(0)
    assert row[0] == 2 and row[-1] == 3, "rows keep [CLS] ... [SEP]"
    assert run.pad_id == 0


def test_same_inputs_reuse_the_cache(tmp_path, tiny_data, tiny_teacher, capsys):
    prepare(tmp_path / "run", "sst2", data_dir=str(tiny_data), teacher=str(tiny_teacher))
    files = _keyfiles(tmp_path / "run")
    mtimes = [f.stat().st_mtime_ns for f in files]
    capsys.readouterr()
    prepare(tmp_path / "run", "sst2", data_dir=str(tiny_data), teacher=str(tiny_teacher))
    assert "nothing to do" in capsys.readouterr().err
    assert [f.stat().st_mtime_ns for f in _keyfiles(tmp_path / "run")] == mtimes


@pytest.mark.parametrize("change", ["train_content", "max_length", "split_seed"])
def test_any_changed_input_misses_the_cache(tmp_path, tiny_teacher, change):
    data = tmp_path / "data"
    write_tsv(data / "train.tsv", synthetic_rows(50, 1))
    write_tsv(data / "dev.tsv", synthetic_rows(20, 2))
    kw = dict(data_dir=str(data), teacher=str(tiny_teacher))
    key1 = prepare(tmp_path / "run", "sst2", **kw)["data_key"]
    if change == "train_content":
        write_tsv(data / "train.tsv", synthetic_rows(50, 9))
    elif change == "max_length":
        kw["max_length"] = 16
    else:
        kw["split_seed"] = 7
    info = prepare(tmp_path / "run", "sst2", **kw)
    assert info["data_key"] != key1
    assert len(_keyfiles(tmp_path / "run")) == 3, "only the current key's cache is kept"
    assert Run(tmp_path / "run").split("train").name == "train"


def test_tokenizer_change_misses_the_cache(tmp_path, tiny_data, tiny_teacher):
    vocab = list(VOCAB)
    vocab[10], vocab[11] = vocab[11], vocab[10]
    other = build_tiny_teacher(tmp_path / "other-teacher", vocab=vocab)
    key1 = prepare(tmp_path / "a", "sst2", data_dir=str(tiny_data), teacher=str(tiny_teacher))["data_key"]
    key2 = prepare(tmp_path / "b", "sst2", data_dir=str(tiny_data), teacher=str(other))["data_key"]
    assert key1 != key2


def test_test_file_keeps_all_of_dev(tmp_path, tiny_data, tiny_teacher):
    test_file = write_tsv(tmp_path / "mytest.tsv", synthetic_rows(30, 5))
    info = prepare(tmp_path / "run", "sst2", data_dir=str(tiny_data), teacher=str(tiny_teacher),
                   test_file=str(test_file))
    assert info["sizes"] == {"train": 400, "dev": 120, "test": 30}


def test_run_made_for_another_dataset_or_teacher_is_refused(tmp_path, tiny_data, tiny_teacher):
    prepare(tmp_path / "run", "sst2", data_dir=str(tiny_data), teacher=str(tiny_teacher))
    before = (tmp_path / "run" / "run.json").read_text()
    with pytest.raises(UsageError, match="made for dataset 'sst2'"):
        prepare(tmp_path / "run", "rt-polarity", teacher=str(tiny_teacher))
    with pytest.raises(UsageError, match="made for teacher"):
        prepare(tmp_path / "run", "sst2", data_dir=str(tiny_data))
    assert (tmp_path / "run" / "run.json").read_text() == before


def test_failed_prepare_keeps_the_valid_cache(tmp_path, tiny_teacher):
    data = tmp_path / "data"
    write_tsv(data / "train.tsv", synthetic_rows(50, 1))
    write_tsv(data / "dev.tsv", synthetic_rows(20, 2))
    prepare(tmp_path / "run", "sst2", data_dir=str(data), teacher=str(tiny_teacher))
    snapshot = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    (data / "train.tsv").write_text("sentence\tlabel\ngood movie\t7\n")
    with pytest.raises(UsageError, match="label must be 0 or 1"):
        prepare(tmp_path / "run", "sst2", data_dir=str(data), teacher=str(tiny_teacher))
    after = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    assert after == snapshot


def _cli(capsys, *argv):
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.mark.parametrize(
    ("setup", "argv", "message"),
    [
        (None, ["--dataset", "imdb"], "invalid choice"),
        (None, ["--dataset", "sst2", "--data-dir", "{tmp}/missing"], "directory not found"),
        ("bad_columns", ["--dataset", "sst2", "--data-dir", "{tmp}/data"], "columns 'sentence' and 'label'"),
        ("tab_in_field", ["--dataset", "sst2", "--data-dir", "{tmp}/data"], "expected 2 tab-separated fields"),
        ("bad_label", ["--dataset", "sst2", "--data-dir", "{tmp}/data"], "label must be 0 or 1"),
        ("empty_dev", ["--dataset", "sst2", "--data-dir", "{tmp}/data"], "no rows"),
        ("ok", ["--dataset", "sst2", "--data-dir", "{tmp}/data", "--teacher", "{tmp}/no-teacher-here"], "does not load"),
        ("ok", ["--dataset", "sst2", "--data-dir", "{tmp}/data", "--teacher", "{tmp}/data/train.tsv"], "not a directory"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys, tiny_teacher, setup, argv, message):
    data = tmp_path / "data"
    rows = synthetic_rows(20, 1)
    if setup:
        write_tsv(data / "train.tsv", rows)
        write_tsv(data / "dev.tsv", rows)
    if setup == "bad_columns":
        (data / "dev.tsv").write_text("text\tpolarity\nfine\t1\n")
    elif setup == "tab_in_field":
        (data / "train.tsv").write_text("sentence\tlabel\ngood\tfun\t1\n")
    elif setup == "bad_label":
        (data / "train.tsv").write_text("sentence\tlabel\ngood\t-1\n")
    elif setup == "empty_dev":
        (data / "dev.tsv").write_text("sentence\tlabel\n")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if "--teacher" not in argv:
        argv += ["--teacher", str(tiny_teacher)]
    code, err = _cli(capsys, "prepare", "--run", str(tmp_path / "run"), *argv)
    assert code == 2
    assert message in err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_sst2_real_split_sizes(tmp_path, sst2_dir):
    """The study's protocol on real GLUE SST-2: 67,349 / 436 / 436 with the MiniLM tokenizer."""
    info = prepare(tmp_path / "run", "sst2", data_dir=str(sst2_dir))
    assert info["sizes"] == {"train": 67_349, "dev": 436, "test": 436}
    run = Run(tmp_path / "run")
    dev, test = run.split("dev"), run.split("test")
    assert len(set(dev.texts.tolist()) & set(test.texts.tolist())) <= 1  # GLUE dev has no real overlap
    assert 12 <= run.split("train").lengths.mean() <= 14  # ~13 WordPiece tokens with [CLS]/[SEP]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["split_seed"] == 42
    assert os.path.isdir(tmp_path / "run" / "data")
