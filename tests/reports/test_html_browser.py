"""Load the report in headless Chromium: every figure must render, with no JavaScript errors.

Needs Debian's ``chromium`` (``apt-get install -y chromium``). Skipped with a printed reason
when it is absent, unless the ``CI`` environment variable is set: then it must run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from reports import analysis as A
from reports import render as R
from reports.inputs import inputs_from_study
from reports.synthetic import SyntheticSpec, make_study, make_teacher

_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _browser() -> str:
    for name in _BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    missing = f"none of {', '.join(_BROWSERS)} on PATH (apt-get install -y chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, so the headless-browser check must run, but {missing}")
    reason = f"headless-browser check skipped: {missing}"
    print(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """The report of a synthetic study (all sections), its DOM after load, and Chromium's log."""
    browser = _browser()
    spec = SyntheticSpec(n_trials=20, gap_slope=0.03, objective="both", n_pruned=0, seed=8)
    teacher = make_teacher(spec)
    inputs = inputs_from_study(
        make_study(spec),
        teacher_diagnostics=teacher.diagnostics,
        teacher_test_logits=teacher.test_logits,
        test_labels=teacher.test_labels,
    )
    report = A.analyze(inputs, n_resamples=499)
    figure_ids = [div for figs in R.figures(report).values() for div, _ in figs]
    out = tmp_path_factory.mktemp("browser")
    page = R.render_report(report, out / "report")
    profile = out / "profile"
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        # let Plotly's promise-based drawing finish before the DOM is dumped
        "--virtual-time-budget=15000",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return figure_ids, proc.stdout, proc.stderr


def _figure_blocks(dom: str) -> dict[str, str]:
    """``data-figure`` id -> the DOM of that figure's wrapper (up to the next figure/section)."""
    blocks = {}
    for match in re.finditer(r'data-figure="([^"]+)"', dom):
        rest = dom[match.end() :]
        end = min(
            (i for i in (rest.find('data-figure="'), rest.find("</section>")) if i >= 0),
            default=len(rest),
        )
        blocks[match.group(1)] = rest[:end]
    return blocks


def test_every_figure_is_drawn_as_plotly_svg(loaded):
    figure_ids, dom, _ = loaded
    assert len(figure_ids) >= 15
    blocks = _figure_blocks(dom)
    assert sorted(blocks) == sorted(figure_ids)
    for div in figure_ids:
        block = blocks[div]
        # Plotly replaces the empty div with its rendered SVG layers.
        assert re.search(r'<svg class="main-svg"', block), f"{div} did not render"
        assert 'class="plot-container plotly"' in block, div


def test_no_javascript_errors(loaded):
    _, dom, log = loaded
    # The page's own error hook writes errors into #js-errors (and un-hides it).
    box = re.search(r'<div id="js-errors"([^>]*)>(.*?)</div>', dom, re.S)
    assert box is not None
    assert "hidden" in box.group(1) and box.group(2).strip() == "", box.group(0)
    # Chromium logs every console message and uncaught exception as INFO:CONSOLE.
    console = [line for line in log.splitlines() if ":CONSOLE" in line]
    assert console == []
