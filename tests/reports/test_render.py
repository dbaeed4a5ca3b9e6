"""Rendering: every section and figure in the HTML, markdown and CSVs; the CLI; atomic output."""

from __future__ import annotations

import argparse
import html
import json
import re

import numpy as np
import optuna
import pandas as pd
import pytest

from reports import analysis as A
from reports import render as R
from reports.inputs import inputs_from_study
from reports.synthetic import SyntheticSpec, make_study, make_teacher
from study.commands import report as report_cmd
from study.errors import UsageError

SPEC = SyntheticSpec(n_trials=24, gap_slope=0.03, seed=6)
ALL_FIGURES = {
    "summary": ["fig-summary"],
    "paired": ["fig-gap-histogram", "fig-paired-scatter", "fig-subgroups"],
    "sensitivity": [
        "fig-importance",
        "fig-slice-gap",
        "fig-slice-distill",
        "fig-slice-baseline",
        "fig-variance",
    ],
    "expected_max": ["fig-expected-max"],
    "teacher": ["fig-confidence", "fig-reliability", "fig-entropy", "fig-gap-temperature"],
    "test_check": ["fig-test"],
    "cost": ["fig-timeline"],
}


@pytest.fixture(scope="module")
def report():
    teacher = make_teacher(SPEC)
    inputs = inputs_from_study(
        make_study(SPEC),
        teacher_diagnostics=teacher.diagnostics,
        teacher_test_logits=teacher.test_logits,
        test_labels=teacher.test_labels,
    )
    return A.analyze(inputs, n_resamples=999)


@pytest.fixture(scope="module")
def rendered(report, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    page = R.render_report(report, out)
    return out, page.read_text(encoding="utf-8")


def test_html_has_every_section_figure_and_conclusion(report, rendered):
    _, page = rendered
    figs = R.figures(report)
    assert {k: [d for d, _ in v] for k, v in figs.items()} == ALL_FIGURES
    positions = []
    for key, _ in R.SECTIONS:
        assert f'<section id="{key}">' in page
        positions.append(page.index(f'<section id="{key}">'))
        section = getattr(report, key)
        assert html.escape(section.conclusion) in page
        for div in ALL_FIGURES[key]:
            assert f'<div id="{div}" class="plotly-graph-div"' in page
            # each figure sits inside its own section
            assert positions[-1] < page.index(f'id="{div}"')
    assert positions == sorted(positions)
    n_figs = sum(len(v) for v in ALL_FIGURES.values())
    assert page.count("Plotly.newPlot(") == n_figs


def test_html_is_self_contained_with_plotly_inlined_once(rendered):
    _, page = rendered
    assert not re.search(r"<script[^>]+src=", page)  # nothing fetched from a CDN
    assert page.count("Licensed under the MIT license") >= 1  # plotly.js bundle banner
    assert page.count('<script type="text/javascript">') == 1
    assert "epochs = 3" in page and "max_train_examples = 2000" in page


def test_markdown_and_csvs_carry_the_same_numbers(report, rendered):
    out, _ = rendered
    md = (out / "report.md").read_text(encoding="utf-8")
    for _, title in R.SECTIONS:
        assert f"## {title}" in md
    assert report.paired.conclusion in md
    assert "**budget: epochs**: 3" in md
    trials = pd.read_csv(out / "csv" / "trials.csv")
    assert len(trials) == 2 * len(report.inputs.trials)
    assert {"arm", "dev", "temperature", "lr", "cell", "soft_loss", "state"} <= set(trials)
    subgroups = pd.read_csv(out / "csv" / "paired_subgroups.csv")
    overall = subgroups[subgroups["group"] == "all"].iloc[0]
    assert overall["mean_gap"] == pytest.approx(report.paired.overall.mean.estimate)
    # The markdown rounds the same number to two decimals of a point.
    assert f"{100 * report.paired.overall.mean.estimate:+.2f}" in md
    curve = pd.read_csv(out / "csv" / "expected_max.csv")
    assert len(curve) == 2 * report.expected_max.n_trials
    for stem in (
        "summary",
        "importances",
        "variance",
        "teacher_reliability",
        "test_mcnemar",
        "cost",
        "cost_workers",
    ):
        assert (out / "csv" / f"{stem}.csv").is_file()


def test_unavailable_sections_render_a_reason_instead_of_failing(tmp_path):
    spec = SyntheticSpec(n_trials=2, n_replicated=0, n_pruned=0, n_failed=0, n_running=0)
    report = A.analyze(inputs_from_study(make_study(spec)), n_resamples=199)
    page = R.render_report(report, tmp_path).read_text(encoding="utf-8")
    assert "Teacher diagnostics not available" in page
    assert "importances not available" in page
    assert 'id="fig-importance"' not in page


# -- run directory + CLI -----------------------------------------------------------------------
def _make_run(tmp_path, name="quick"):
    """A run dir with a SQLite study copied from a synthetic one and the teacher artifacts."""
    run = tmp_path / "run"
    (run / "teacher").mkdir(parents=True)
    (run / "data").mkdir()
    spec = SyntheticSpec(n_trials=10, n_replicated=2, n_seeds=2, objective="both", n_pruned=0)
    source = make_study(spec)
    url = f"sqlite:///{run / 'studies.db'}"
    study = optuna.create_study(storage=url, study_name=name, directions=source.directions)
    for key, value in source.user_attrs.items():
        study.set_user_attr(key, value)
    study.add_trials(source.get_trials())
    teacher = make_teacher(spec)
    diag = json.loads(json.dumps(teacher.diagnostics).replace("NaN", "null"))
    (run / "teacher" / "diagnostics.json").write_text(json.dumps(diag))
    np.savez(
        run / "teacher" / "logits.npz",
        test=teacher.test_logits,
        train=teacher.test_logits,
        dev=teacher.test_logits,
    )
    np.savez(run / "data" / "test.npz", labels=teacher.test_labels)
    return run, url


def _cli(argv):
    parser = argparse.ArgumentParser(prog="distill-study")
    sub = parser.add_subparsers(dest="command", required=True)
    report_cmd.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_writes_the_report_to_the_default_place(tmp_path, capsys):
    run, _ = _make_run(tmp_path)
    assert _cli(["report", "--run", str(run), "--name", "quick"]) == 0
    out = run / "report" / "quick"
    assert capsys.readouterr().out.strip() == str(out / "report.html")
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Sensitivity report: quick" in page
    assert 'id="fig-reliability"' in page  # teacher artifacts were found in the run dir
    assert (out / "report.md").is_file() and (out / "csv" / "trials.csv").is_file()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_cli_unknown_study_lists_the_known_ones_and_writes_nothing(tmp_path):
    run, url = _make_run(tmp_path)
    with pytest.raises(UsageError, match=r"no study named 'nope'.*studies: quick"):
        _cli(["report", "--run", str(run), "--name", "nope", "--storage", url])
    assert not (run / "report").exists()


def test_missing_storage_is_a_usage_error_and_creates_no_database(tmp_path):
    run = tmp_path / "empty-run"
    run.mkdir()
    with pytest.raises(UsageError, match="no study storage"):
        _cli(["report", "--run", str(run), "--name", "quick"])
    assert not (run / "studies.db").exists()
    with pytest.raises(UsageError, match="does not exist"):
        _cli(["report", "--run", str(tmp_path / "missing"), "--name", "quick"])


def test_write_report_replaces_atomically_and_keeps_the_old_one_on_failure(tmp_path, monkeypatch):
    run, url = _make_run(tmp_path)
    out = tmp_path / "out"
    page = R.write_report(run, url, "quick", out)
    assert page == out / "report.html"
    (out / "stale.txt").write_text("from an earlier report")
    R.write_report(run, url, "quick", out)
    assert not (out / "stale.txt").exists()  # replaced as a whole
    before = page.read_text(encoding="utf-8")

    def broken(report, out_dir):
        (out_dir / "report.html").write_text("half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(R, "render_report", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        R.write_report(run, url, "quick", out)
    assert page.read_text(encoding="utf-8") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "run"]
