"""Draw a :class:`reports.analysis.Report`: plotly figures, one offline HTML file, markdown, CSVs.

Everything here reads the analysis' DataFrames and dataclasses and computes nothing new
(STYLE.md §9). Optuna's own plotly figures are used where they fit (slice plots, timeline);
the rest are plain plotly. The HTML embeds plotly.js once, inline, so it opens offline.
"""

from __future__ import annotations

import html
import math
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import plotly.graph_objects as go
from optuna.trial import TrialState
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from reports import analysis as A
from reports.inputs import ARMS, load_inputs, quiet_optuna
from study.errors import UsageError

__all__ = [
    "SECTIONS",
    "sections",
    "figures",
    "render_html",
    "render_markdown",
    "write_csvs",
    "render_report",
    "write_report",
]

#: Section id and title, in reading order (ids are the HTML anchors and Report attributes);
#: ``report --against`` adds :func:`sections`' last one.
SECTIONS = (
    ("summary", "1. Summary: teacher vs best students"),
    ("paired", "2. Paired comparison: does distillation beat the baseline?"),
    ("sensitivity", "3. Sensitivity: which hyperparameters matter, and how much is seed noise?"),
    ("expected_max", "4. How many trials are enough?"),
    ("teacher", "5. Teacher: calibration and temperature"),
    ("test_check", "6. Test set check"),
    ("cost", "7. Cost"),
)


def sections(report: A.Report) -> tuple[tuple[str, str], ...]:
    """The report's sections: :data:`SECTIONS`, then "against" when it compares two studies."""
    if report.against is None:
        return SECTIONS
    return (*SECTIONS, ("against", f"8. Against study {report.against.other}: the same "
                                   "configurations and seeds"))


_COLORS = {"distill": "#1f77b4", "baseline": "#ff7f0e", "gap": "#2ca02c", "teacher": "#7f7f7f"}
_HEIGHT = 420


# -- figures ---------------------------------------------------------------------------------
def _layout(fig: go.Figure, title: str, **kwargs) -> go.Figure:
    kwargs.setdefault("height", _HEIGHT)
    fig.update_layout(
        title=title, template="plotly_white", margin={"l": 60, "r": 20, "t": 60, "b": 50}, **kwargs
    )
    return fig


def _summary_figure(s: A.Summary) -> go.Figure | None:
    t = s.table
    if t.empty:
        return None
    fig = go.Figure()
    for col, name in (("dev_acc", "dev"), ("test_acc", "test")):
        fig.add_bar(
            x=t["model"],
            y=100 * t[col],
            name=name,
            text=[f"{100 * v:.1f}" if np.isfinite(v) else "n/a" for v in t[col]],
        )
    return _layout(
        fig,
        "Accuracy of the teacher and the best students (chosen on dev)",
        yaxis_title="accuracy (%)",
        barmode="group",
    )


def _gap_histogram(p: A.PairedComparison) -> go.Figure:
    gaps = 100 * p.pairs["gap"]
    fig = go.Figure(
        go.Histogram(
            x=gaps, name="gap", marker_color=_COLORS["gap"], nbinsx=max(10, min(40, len(gaps)))
        )
    )
    fig.add_vline(x=0, line_dash="dot", line_color="black")
    o = p.overall
    fig.add_vline(
        x=100 * o.mean.estimate,
        line_color="crimson",
        annotation_text=f"mean {100 * o.mean.estimate:+.2f}",
    )
    if np.isfinite(o.mean.low):
        fig.add_vrect(
            x0=100 * o.mean.low,
            x1=100 * o.mean.high,
            fillcolor="crimson",
            opacity=0.15,
            line_width=0,
        )
    return _layout(
        fig,
        "Per-trial gap (distill − baseline), with the mean and its 95% CI",
        xaxis_title="gap (points)",
        yaxis_title="trials",
    )


def _paired_scatter(p: A.PairedComparison) -> go.Figure:
    pairs = p.pairs
    x, y = 100 * pairs["baseline"], 100 * pairs["distill"]
    lo, hi = float(min(x.min(), y.min())) - 0.5, float(max(x.max(), y.max())) + 0.5
    hover = [f"trial {n}" for n in pairs["number"]]
    fig = go.Figure()
    fig.add_scatter(
        x=[lo, hi],
        y=[lo, hi],
        mode="lines",
        name="distill = baseline",
        line={"dash": "dot", "color": "black"},
    )
    fig.add_scatter(
        x=x,
        y=y,
        mode="markers",
        name="trial",
        text=hover,
        marker={
            "color": 100 * pairs["gap"],
            "colorscale": "RdBu",
            "cmid": 0,
            "colorbar": {"title": "gap"},
        },
    )
    return _layout(
        fig,
        "Paired dev accuracy: each point is one trial (config + seed)",
        xaxis_title="baseline dev accuracy (%)",
        yaxis_title="distill dev accuracy (%)",
    )


def _subgroup_forest(p: A.PairedComparison) -> go.Figure:
    g = p.subgroups.iloc[::-1]
    labels = [f"{r.group}: {r.value} (n={r.n})" for r in g.itertuples()]
    fig = go.Figure(
        go.Scatter(
            x=100 * g["mean_gap"],
            y=labels,
            mode="markers",
            marker_color=_COLORS["gap"],
            error_x={
                "type": "data",
                "symmetric": False,
                "array": 100 * (g["mean_gap_high"] - g["mean_gap"]),
                "arrayminus": 100 * (g["mean_gap"] - g["mean_gap_low"]),
            },
            name="mean gap",
        )
    )
    fig.add_vline(x=0, line_dash="dot", line_color="black")
    return _layout(
        fig,
        "Mean gap with bootstrap 95% CI, by subset",
        xaxis_title="gap (points)",
        height=max(_HEIGHT, 40 * len(g) + 120),
    )


def _importance_figure(s: A.Sensitivity) -> go.Figure:
    imp = s.importances
    evaluators = list(dict.fromkeys(imp["evaluator"]))
    fig = make_subplots(rows=1, cols=len(evaluators), subplot_titles=evaluators, shared_yaxes=True)
    order = imp.groupby("param")["importance"].max().sort_values().index.tolist()
    for col, ev in enumerate(evaluators, start=1):
        for target in ("distill", "baseline", "gap"):
            sub = imp[(imp["evaluator"] == ev) & (imp["target"] == target)].set_index("param")
            fig.add_bar(
                y=order,
                x=[sub["importance"].get(p, 0.0) for p in order],
                orientation="h",
                name=target,
                marker_color=_COLORS[target],
                legendgroup=target,
                showlegend=col == 1,
                row=1,
                col=col,
            )
    return _layout(
        fig,
        "Parameter importance (normalised) for each target",
        barmode="group",
        height=max(_HEIGHT, 30 * len(order) * 3 + 120),
    )


def _slice_figure(study: optuna.Study, params: list[str], target: str, objective: str) -> go.Figure:
    if target == "gap":
        fn: Callable = lambda t: 100 * A.trial_gap(t, objective)  # noqa: E731
    else:
        fn = lambda t, arm=target: 100 * A.arm_dev_acc(t, arm, objective)  # noqa: E731
    fig = optuna.visualization.plot_slice(
        study,
        params=params,
        target=fn,
        target_name=f"{target} (%)" if target != "gap" else "gap (points)",
    )
    fig.update_layout(
        title=f"Slice plot: {target} against the leading parameters (Optuna plot_slice)",
        height=_HEIGHT,
    )
    return fig


def _variance_figure(s: A.Sensitivity) -> go.Figure:
    v = s.variance
    fig = go.Figure()
    for col, name in (
        ("study_range", "study range (max − min)"),
        ("study_iqr", "study IQR"),
        ("seed_range_mean", "seed range (mean over configs)"),
        ("seed_std_pooled", "seed std (pooled)"),
    ):
        fig.add_bar(x=v["metric"], y=100 * v[col], name=name)
    return _layout(
        fig,
        "Spread across the study vs across seeds of one configuration",
        yaxis_title="points",
        barmode="group",
    )


def _expected_max_figure(e: A.ExpectedMax) -> go.Figure:
    fig = go.Figure()
    for arm in ARMS:
        c = e.curve[e.curve["arm"] == arm]
        color = _COLORS[arm]
        n = c["n"].tolist()
        fig.add_scatter(
            x=n + n[::-1],
            y=(100 * c["high"]).tolist() + (100 * c["low"]).tolist()[::-1],
            fill="toself",
            line_width=0,
            fillcolor=color,
            opacity=0.25,
            name=f"{arm} bootstrap 95%",
            legendgroup=arm,
            hoverinfo="skip",
        )
        fig.add_scatter(
            x=n,
            y=100 * (c["expected_max"] + c["std"]),
            mode="lines",
            line={"color": color, "width": 1, "dash": "dot"},
            name=f"{arm} ±1 std",
            legendgroup=arm,
        )
        fig.add_scatter(
            x=n,
            y=100 * (c["expected_max"] - c["std"]),
            mode="lines",
            line={"color": color, "width": 1, "dash": "dot"},
            showlegend=False,
            legendgroup=arm,
        )
        fig.add_scatter(
            x=n,
            y=100 * c["plugin"],
            mode="lines",
            line={"color": color, "dash": "dash"},
            name=f"{arm} plug-in (Dodge)",
            legendgroup=arm,
        )
        fig.add_scatter(
            x=n,
            y=100 * c["expected_max"],
            mode="lines+markers",
            line={"color": color, "width": 3},
            name=f"{arm} unbiased (Tang)",
            legendgroup=arm,
        )
    return _layout(
        fig,
        "Expected best dev accuracy after n trials",
        xaxis_title="trials n",
        yaxis_title="expected max dev accuracy (%)",
    )


def _confidence_figure(t: A.TeacherSection) -> go.Figure:
    h = t.confidence_hist
    fig = go.Figure(
        go.Bar(
            x=(h["left"] + h["right"]) / 2,
            y=h["count"],
            width=(h["right"] - h["left"]),
            marker_color=_COLORS["teacher"],
        )
    )
    return _layout(
        fig,
        "Teacher max-softmax confidence on train",
        xaxis_title="confidence",
        yaxis_title="examples",
    )


def _reliability_figure(t: A.TeacherSection) -> go.Figure:
    r = t.reliability
    fig = go.Figure()
    fig.add_scatter(
        x=[0.5, 1],
        y=[0.5, 1],
        mode="lines",
        name="perfect calibration",
        line={"dash": "dot", "color": "black"},
    )
    fig.add_scatter(
        x=r["bin_confidence"],
        y=r["bin_accuracy"],
        mode="lines+markers",
        name="teacher",
        text=[f"n={c}" for c in r["bin_count"]],
        marker={"size": 8, "color": _COLORS["teacher"]},
    )
    ece = f"ECE {100 * t.ece:.1f} points" if np.isfinite(t.ece) else "ECE n/a"
    return _layout(
        fig,
        f"Reliability diagram ({ece})",
        xaxis_title="mean confidence in bin",
        yaxis_title="accuracy in bin",
    )


def _entropy_figure(t: A.TeacherSection) -> go.Figure:
    e = t.entropy
    fig = go.Figure(
        go.Scatter(
            x=e["T"],
            y=e["normalized"],
            mode="lines+markers",
            marker_color=_COLORS["teacher"],
            name="mean entropy",
        )
    )
    return _layout(
        fig,
        "Entropy of the softened targets softmax(z / T)",
        xaxis_title="temperature T",
        xaxis_type="log",
        yaxis_title="mean entropy (bits)",
        yaxis_range=[0, 1.05],
    )


def _gap_temperature_figure(p: A.PairedComparison) -> go.Figure:
    pairs = p.pairs
    fig = go.Figure(
        go.Scatter(
            x=pairs["temperature"],
            y=100 * pairs["gap"],
            mode="markers",
            marker_color=_COLORS["gap"],
            text=[f"trial {n}" for n in pairs["number"]],
            name="trial",
        )
    )
    fig.add_hline(y=0, line_dash="dot", line_color="black")
    return _layout(
        fig,
        "Students' gap against the distillation temperature",
        xaxis_title="temperature T",
        xaxis_type="log",
        yaxis_title="gap (points)",
    )


def _test_figure(c: A.TestCheck) -> go.Figure:
    m = c.models[c.models["test_acc"].notna()]
    fig = go.Figure(
        go.Bar(
            x=m["model"],
            y=100 * m["test_acc"].astype(float),
            error_y={
                "type": "data",
                "symmetric": False,
                "array": 100 * (m["high"].astype(float) - m["test_acc"].astype(float)),
                "arrayminus": 100 * (m["test_acc"].astype(float) - m["low"].astype(float)),
            },
            marker_color=[_COLORS.get(x.split()[-1], _COLORS["teacher"]) for x in m["model"]],
        )
    )
    return _layout(
        fig,
        f"Test accuracy with Wilson 95% intervals (n = {c.n_test})",
        yaxis_title="test accuracy (%)",
    )


def _timeline_study(inputs) -> optuna.Study | None:
    """All trials (any state) in an in-memory copy, for Optuna's timeline plot."""
    trials = [t for t in inputs.trials if t.datetime_start is not None]
    if not trials:
        return None
    with quiet_optuna():
        copy = optuna.create_study(
            storage=optuna.storages.InMemoryStorage(),
            directions=[d.name.lower() for d in inputs.directions],
        )
    for t in trials:
        new = optuna.trial.create_trial(
            state=t.state,
            params=t.params,
            distributions=t.distributions,
            values=t.values if t.state == TrialState.COMPLETE else None,
        )
        new.datetime_start, new.datetime_complete = t.datetime_start, t.datetime_complete
        copy.add_trial(new)
    return copy


def figures(report: A.Report) -> dict[str, list[tuple[str, go.Figure]]]:
    """Every figure of the report, by section id, each with its HTML div id."""
    out: dict[str, list[tuple[str, go.Figure]]] = {key: [] for key, _ in sections(report)}
    fig = _summary_figure(report.summary)
    if fig is not None:
        out["summary"].append(("fig-summary", fig))
    p = report.paired
    if p.available:
        out["paired"] += [
            ("fig-gap-histogram", _gap_histogram(p)),
            ("fig-paired-scatter", _paired_scatter(p)),
            ("fig-subgroups", _subgroup_forest(p)),
        ]
    s = report.sensitivity
    if len(s.importances):
        out["sensitivity"].append(("fig-importance", _importance_figure(s)))
        study = A.analysis_study(report.inputs, report.trials)
        if study is not None and s.top_params:
            for target in ("gap", "distill", "baseline"):
                out["sensitivity"].append(
                    (
                        f"fig-slice-{target}",
                        _slice_figure(study, s.top_params, target, report.header.objective),
                    )
                )
    if s.variance["study_n"].sum() > 0:
        out["sensitivity"].append(("fig-variance", _variance_figure(s)))
    if report.expected_max.available:
        out["expected_max"].append(("fig-expected-max", _expected_max_figure(report.expected_max)))
    t = report.teacher
    if len(t.confidence_hist):
        out["teacher"].append(("fig-confidence", _confidence_figure(t)))
    if len(t.reliability):
        out["teacher"].append(("fig-reliability", _reliability_figure(t)))
    if len(t.entropy):
        out["teacher"].append(("fig-entropy", _entropy_figure(t)))
    if t.temperature_effect:
        out["teacher"].append(("fig-gap-temperature", _gap_temperature_figure(p)))
    if report.test_check.available:
        out["test_check"].append(("fig-test", _test_figure(report.test_check)))
    timeline = _timeline_study(report.inputs)
    if timeline is not None:
        fig = optuna.visualization.plot_timeline(timeline)
        fig.update_layout(
            title="Trials over time by state (Optuna plot_timeline)",
            height=max(_HEIGHT, 12 * len(report.inputs.trials) + 150),
        )
        out["cost"].append(("fig-timeline", fig))
    return out


# -- tables ----------------------------------------------------------------------------------
def _fmt(value, kind: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    try:
        if pd.isna(value):
            return "n/a"
    except (TypeError, ValueError):
        pass
    if kind == "pct":
        return f"{100 * float(value):.2f}"
    if kind == "pts":
        return f"{100 * float(value):+.2f}"
    if kind == "p":
        return "<0.001" if float(value) < 0.001 else f"{float(value):.3f}"
    if kind == "prob":
        return f"{float(value):.2f}"
    if kind == "int":
        return f"{int(round(float(value))):,}"
    if kind == "bytes":
        return f"{float(value) / 1e6:.1f} MB"
    if kind == "float":
        return f"{float(value):.3g}"
    return str(value)


def _kind(col: str) -> str:
    if col.startswith("importance"):
        return "prob"
    if col.startswith("mean_diff"):
        return "pts"
    if col in ("mean_this", "mean_other"):
        return "pct"
    if col == "p_this_better":
        return "prob"
    if col.endswith("sentences_seen") or col in ("other_number", "equal"):
        return "int"
    if col in ("wilcoxon_p", "p_value"):
        return "p"
    if col.startswith("p_better") or col in (
        "seed_share",
        "importance",
        "spearman_rho",
        "normalized",
        "fraction",
        "bin_confidence",
        "bin_accuracy",
        "mean_entropy",
    ):
        return "prob"
    if "gap" in col:
        return "pts"
    if col in ("file_bytes",):
        return "bytes"
    if (
        col.endswith("_acc")
        or col
        in (
            "accuracy",
            "low",
            "high",
            "distill",
            "baseline",
            "expected_max",
            "plugin",
            "std",
            "mean",
            "min",
            "max",
            "range",
            "mean_distill",
            "mean_baseline",
            "test_mean",
            "test_min",
            "test_max",
        )
        or col.startswith(("study_", "seed_range", "seed_std"))
    ):
        return "pct" if col != "study_n" else "int"
    if (
        col
        in (
            "n",
            "trial",
            "rank",
            "count",
            "bin_count",
            "correct",
            "params_trainable",
            "params_total",
            "number",
            "n_seeds",
            "seed_configs",
            "seed_trials",
            "both_right",
            "only_a",
            "only_b",
            "both_wrong",
        )
        or col.isupper()
    ):
        return "int"
    if col in ("saved_fraction",):
        return "prob"
    if col in ("epochs_run", "epochs_full", "wall_seconds"):
        return "int"
    if col in (
        "infer_sent_per_s",
        "train_s_per_epoch",
        "T",
        "left",
        "right",
        "t_min",
        "t_max",
        "hours",
        "trials_per_hour",
    ):
        return "float"
    return "str"


def _display(df: pd.DataFrame) -> pd.DataFrame:
    """Strings for people: accuracies in %, gaps in signed points, p-values, counts."""
    out = pd.DataFrame(index=df.index)
    for col in df.columns:
        kind = _kind(str(col))
        out[col] = [_fmt(v, kind) for v in df[col]]
    return out


def _unit_note(df: pd.DataFrame) -> str:
    kinds = {_kind(str(c)) for c in df.columns}
    notes = []
    if "pct" in kinds:
        notes.append("accuracies and spreads in %")
    if "pts" in kinds:
        notes.append("gaps in points")
    return "; ".join(notes)


def _html_table(df: pd.DataFrame, caption: str) -> str:
    shown = _display(df)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
        for row in shown.itertuples(index=False)
    )
    unit = _unit_note(df)
    cap = html.escape(caption + (f" ({unit})" if unit else ""))
    return (
        f'<div class="tablewrap"><table class="data"><caption>{cap}</caption><thead><tr>'
        f"{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _md_table(df: pd.DataFrame, caption: str) -> str:
    shown = _display(df)
    unit = _unit_note(df)
    lines = [
        f"*{caption}{f' ({unit})' if unit else ''}*",
        "",
        "| " + " | ".join(str(c) for c in shown.columns) + " |",
        "| " + " | ".join("---" for _ in shown.columns) + " |",
    ]
    for row in shown.itertuples(index=False):
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines) + "\n"


def _section_tables(report: A.Report) -> dict[str, list[tuple[str, str, pd.DataFrame]]]:
    """``section id -> [(csv stem, caption, table)]``: what the HTML, markdown and CSVs show."""
    p, s, e, t, c, k = (
        report.paired,
        report.sensitivity,
        report.expected_max,
        report.teacher,
        report.test_check,
        report.cost,
    )
    out: dict[str, list] = {key: [] for key, _ in sections(report)}
    out["summary"].append(
        ("summary", "Teacher vs best students (best chosen on dev)", report.summary.table)
    )
    if p.available:
        out["paired"].append(("paired_subgroups", "Gap statistics by subset", p.subgroups))
    if len(s.importances):
        wide = s.importances.pivot_table(
            index="param", columns=["evaluator", "target"], values="importance"
        )
        wide.columns = [f"importance {ev} {tg}" for ev, tg in wide.columns]
        wide = wide.reset_index().sort_values(list(wide.columns)[-1], ascending=False)
        out["sensitivity"].append(
            ("importances", "Parameter importance (normalised per evaluator and target)", wide)
        )
    out["sensitivity"].append(("variance", "Spread across the study vs across seeds", s.variance))
    if len(s.seed_groups):
        out["sensitivity"].append(("seed_groups", "Replicated configurations", s.seed_groups))
    if e.available:
        n = e.n_trials
        marks = sorted({1, 2, 5, 10, 20, 50, 100, n // 2, n} & set(range(1, n + 1)))
        shown = e.curve[e.curve["n"].isin(marks)]
        out["expected_max"].append(
            ("expected_max", "Expected max dev accuracy (selected n)", shown)
        )
    if len(t.accuracy):
        out["teacher"].append(("teacher_accuracy", "Teacher accuracy per split", t.accuracy))
    if len(t.reliability):
        out["teacher"].append(("teacher_reliability", "Reliability bins", t.reliability))
    if len(t.entropy):
        out["teacher"].append(("teacher_entropy", "Entropy of softened targets vs T", t.entropy))
    if t.temperature_effect:
        out["teacher"].append(
            (
                "temperature_effect",
                "Temperature vs gap (Spearman)",
                pd.DataFrame([t.temperature_effect]),
            )
        )
    if len(c.models):
        out["test_check"].append(("test_models", "Best-by-dev models on test", c.models))
    if len(c.mcnemar):
        out["test_check"].append(("test_mcnemar", "McNemar exact tests (a vs b)", c.mcnemar))
    costs = pd.DataFrame(
        [
            {
                **k.counts,
                "epochs_run": k.epochs_run,
                "epochs_full": k.epochs_full,
                "saved_fraction": k.saved_fraction,
                "hours": k.hours,
                "trials_per_hour": k.trials_per_hour,
                "wall_seconds": k.wall_seconds,
            }
        ]
    )
    out["cost"].append(("cost", "Trials and compute", costs))
    if len(k.workers):
        out["cost"].append(("cost_workers", "Trials per worker", k.workers))
    a = report.against
    if a is not None and len(a.table):
        out["against"].append(("against", f"This study − study {a.other}, per arm, and each "
                               "study's distill arm against the other's baseline", a.table))
    if a is not None and len(a.pairs):
        out["against"].append(("against_pairs", "Matched trials (other_: the other study)",
                                a.pairs))
    return out


# -- HTML ------------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
header{border-bottom:2px solid #333;margin-bottom:1em}
.budget{background:#fff3cd;padding:.4em .8em;border-radius:4px;display:inline-block}
.method{color:#555;font-size:.95em}
.conclusion{font-weight:600;background:#eef5ff;padding:.5em .8em;border-left:4px solid #1f77b4}
.unavailable{color:#a33}
.tablewrap{overflow-x:auto}
table.data{border-collapse:collapse;margin:1em 0;font-size:.9em}
table.data td,table.data th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
table.data caption{text-align:left;font-style:italic;padding:.3em 0}
.figure{margin:1em 0;border:1px solid #eee}
nav ol{columns:2}
"""


# Errors while drawing are shown at the top of the page (and found by the headless-browser test)
# instead of leaving a silently blank figure.
_ERROR_HOOK = """
window.__reportErrors = [];
function __reportError(message) {
  if (message !== null) { window.__reportErrors.push(String(message)); }
  var box = document.getElementById("js-errors");
  if (box && window.__reportErrors.length) {
    box.hidden = false;
    box.textContent = "JavaScript errors: " + window.__reportErrors.join(" | ");
  }
}
window.addEventListener("error", function (e) { __reportError(e.message); });
window.addEventListener("unhandledrejection", function (e) { __reportError(e.reason); });
"""


def _header_lines(h: A.Header) -> list[tuple[str, str]]:
    return [
        ("study", h.study_name),
        ("objective", f"{h.objective} ({', '.join(h.directions)})"),
        ("dataset", str(h.dataset)),
        ("teacher", str(h.teacher)),
        ("budget: epochs", str(h.epochs)),
        (
            "budget: max_train_examples",
            "all" if h.max_train_examples is None else str(h.max_train_examples),
        ),
        ("test size", str(h.test_size)),
        ("trials", ", ".join(f"{k.lower()} {v}" for k, v in h.state_counts.items() if v)),
        ("generated", h.generated),
    ]


def render_html(
    report: A.Report, figs: dict[str, list[tuple[str, go.Figure]]] | None = None
) -> str:
    """The whole report as one self-contained HTML page.

    plotly.js is inlined once in ``<head>`` (the same bundle ``include_plotlyjs=True`` would
    embed), and every figure is a div drawn by ``Plotly.newPlot``; no network is needed.
    """
    figs = figures(report) if figs is None else figs
    h = report.header
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>distill-study report: {html.escape(h.study_name)}</title>",
        f"<style>{_CSS}</style>",
        f'<script type="text/javascript">{get_plotlyjs()}</script>',
        f"<script>{_ERROR_HOOK}</script>",
        "</head><body>",
        '<div id="js-errors" class="unavailable" hidden></div>',
        f"<header><h1>Sensitivity report: {html.escape(h.study_name)}</h1>",
        '<p class="budget">Budget: <b>epochs = '
        f"{html.escape(str(h.epochs))}</b>, <b>max_train_examples = "
        f"{html.escape('all' if h.max_train_examples is None else str(h.max_train_examples))}"
        "</b> — numbers from other budgets are not mixed in.</p>",
        "<table class='data'>"
        + "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in _header_lines(h)
        )
        + "</table>",
        f"<p>{html.escape(h.note)}</p>",
        "<nav><ol>"
        + "".join(f"<li><a href='#{key}'>{html.escape(title)}</a></li>"
                  for key, title in sections(report))
        + "</ol></nav></header>",
    ]
    tables = _section_tables(report)
    for key, title in sections(report):
        section = getattr(report, key)
        parts.append(f'<section id="{key}"><h2>{html.escape(title)}</h2>')
        parts.append(f'<p class="method"><b>Method.</b> {html.escape(section.method)}</p>')
        css = "conclusion" if section.available else "conclusion unavailable"
        parts.append(f'<p class="{css}">{html.escape(section.conclusion)}</p>')
        if key == "sensitivity" and section.notes:
            parts.append(
                "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in section.notes) + "</ul>"
            )
        for _, caption, table in tables[key]:
            parts.append(_html_table(table, caption))
        for div_id, fig in figs[key]:
            body = fig.to_html(
                full_html=False,
                include_plotlyjs=False,
                div_id=div_id,
                default_height=f"{fig.layout.height or _HEIGHT}px",
                config={"displaylogo": False, "responsive": True},
            )
            parts.append(f'<div class="figure" data-figure="{div_id}">{body}</div>')
        parts.append("</section>")
    parts.append("<script>__reportError(null);</script></body></html>")
    return "\n".join(parts)


# -- markdown and CSV ------------------------------------------------------------------------
def render_markdown(report: A.Report) -> str:
    """``report.md``: the same sections, methods, conclusions and tables, without figures."""
    h = report.header
    lines = [f"# Sensitivity report: {h.study_name}", ""]
    lines += [f"- **{k}**: {v}" for k, v in _header_lines(h)]
    lines += ["", f"> {h.note}", ""]
    tables = _section_tables(report)
    for key, title in sections(report):
        section = getattr(report, key)
        lines += [
            f"## {title}",
            "",
            f"**Method.** {section.method}",
            "",
            f"**Conclusion.** {section.conclusion}",
            "",
        ]
        if key == "sensitivity":
            lines += [f"- {n}" for n in section.notes] + ([""] if section.notes else [])
        for _, caption, table in tables[key]:
            lines += [_md_table(table, caption), ""]
    return "\n".join(lines)


def write_csvs(report: A.Report, out_dir: Path) -> list[Path]:
    """Raw numbers (fractions, unformatted): trials per arm, pairs, and every section table."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    frames = {
        "trials": A.arm_frame(report.trials),
        "pairs": report.paired.pairs,
        "paired_subgroups": report.paired.subgroups,
        "importances": report.sensitivity.importances,
        "variance": report.sensitivity.variance,
        "seed_groups": report.sensitivity.seed_groups,
        "expected_max": report.expected_max.curve,
        "teacher_accuracy": report.teacher.accuracy,
        "teacher_confidence_hist": report.teacher.confidence_hist,
        "teacher_reliability": report.teacher.reliability,
        "teacher_entropy": report.teacher.entropy,
        "summary": report.summary.table,
        "test_models": report.test_check.models,
        "test_mcnemar": report.test_check.mcnemar,
        "cost_workers": report.cost.workers,
    }
    tables = _section_tables(report)
    frames["cost"] = next(t for stem, _, t in tables["cost"] if stem == "cost")
    if report.against is not None:
        frames["against"] = report.against.table
        frames["against_pairs"] = report.against.pairs
    for stem, frame in frames.items():
        path = out_dir / f"{stem}.csv"
        frame.to_csv(path, index=False)
        written.append(path)
    return written


def render_report(report: A.Report, out_dir: str | Path) -> Path:
    """Write ``report.html``, ``report.md`` and ``csv/*.csv`` into ``out_dir`` (not atomic).

    Returns:
        The HTML file's path.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    page = out / "report.html"
    page.write_text(render_html(report), encoding="utf-8")
    (out / "report.md").write_text(render_markdown(report), encoding="utf-8")
    write_csvs(report, out / "csv")
    return page


def write_report(
    run_dir: str | Path,
    storage_url: str | None,
    study_name: str,
    out_dir: str | Path | None = None,
    *,
    seed: int = 0,
    against: str | None = None,
) -> Path:
    """Load, analyse and render a study's report, replacing ``out_dir`` atomically.

    The report is built in a temporary directory beside ``out_dir`` and moved into place only
    when complete, so a failure leaves the previous report (or nothing) behind.

    Args:
        run_dir: the run directory.
        storage_url: Optuna storage URL; None for ``sqlite:///DIR/studies.db``.
        study_name: the study.
        out_dir: output directory; None for ``DIR/report/NAME``.
        seed: seed of the bootstraps and fANOVA.
        against: another study in the same storage to compare with, trial by trial (the
            same configurations and seeds; see :func:`reports.analysis.against`).

    Returns:
        Path of the written ``report.html``.

    Raises:
        UsageError: unknown run directory, storage or study (before anything is written).
    """
    inputs = load_inputs(run_dir, storage_url, study_name)
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "report" / study_name
    other = None
    if against is not None:
        if against == study_name:
            raise UsageError(f"--against {against!r} is the study itself")
        other = load_inputs(run_dir, storage_url, against)
    report = A.analyze(inputs, seed=seed, against_inputs=other)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        render_report(report, tmp)
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            out.replace(old / out.name)
        tmp.replace(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "report.html"
