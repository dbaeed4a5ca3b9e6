"""The report of a tiny *real* study: prepare + teacher + study on the tiny run, then report."""

from __future__ import annotations

import pytest

from reports import write_report
from study.runner import run_study
from tests.study.test_runner import load, options


@pytest.mark.slow
def test_report_of_a_tiny_real_study_has_every_section(tiny_run):
    assert run_study(options(tiny_run, name="real", n_trials=4)) == 0
    html = write_report(tiny_run, None, "real")
    text = html.read_text()
    md = (html.parent / "report.md").read_text()
    for n, title in enumerate(["Summary", "Paired comparison", "Sensitivity",
                               "How many trials", "Teacher", "Test set", "Cost"], start=1):
        assert f"## {n}. {title}" in md, title
    assert text.count('class="plotly-graph-div"') >= 8
    # the test-set check reads the run's real test labels and the trials' stored predictions
    n_test = len(load(tiny_run, "real").trials[0].user_attrs["distill_test_pred"])
    assert f"On {n_test} test examples" in md
    assert "McNemar exact p=" in md
    assert (html.parent / "csv").is_dir()
