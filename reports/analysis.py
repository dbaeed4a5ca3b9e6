"""The sensitivity report's numbers: one function per section, DataFrames and dataclasses out.

Compute first, draw second (STYLE.md §9): nothing here imports plotly. :func:`analyze` turns a
:class:`reports.inputs.ReportInputs` snapshot into a :class:`Report`; ``reports.render`` draws
it. Every section carries ``method`` (what was computed, with its reference) and
``conclusion`` (one sentence computed from the numbers); a section whose inputs are missing has
``available=False`` and says why in ``conclusion``.

Which trials count:

* gap statistics, importances, expected maximum: COMPLETE trials run with the study's budget
  (``epochs``, ``max_train_examples``), excluding seed replicates (``replicate_of``) so each
  sampled configuration counts once;
* seed spread: all COMPLETE in-budget trials grouped by ``config_id``;
* best-by-dev (summary, test check): all COMPLETE in-budget trials, replicates included;
* cost: every trial, whatever its state.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import optuna
import pandas as pd
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState
from scipy import stats as sps

from reports import stats
from reports.inputs import ARMS, ReportInputs, quiet_optuna
from study.errors import UsageError

__all__ = [
    "Against",
    "against",
    "Header",
    "PairedComparison",
    "Sensitivity",
    "ExpectedMax",
    "TeacherSection",
    "TestCheck",
    "Cost",
    "Summary",
    "Report",
    "analyze",
    "trial_frame",
    "arm_frame",
    "header",
    "paired_comparison",
    "sensitivity",
    "expected_max",
    "teacher_section",
    "test_check",
    "cost",
    "summary",
    "analysis_study",
    "arm_dev_acc",
    "trial_gap",
    "TEMPERATURE_BANDS",
    "MIN_IMPORTANCE_TRIALS",
]

#: Temperature bands ``(label, low, high)``; half-open, around the T = 1, 2, 4, 8 grid of the
#: teacher's entropy diagnostics.
TEMPERATURE_BANDS = (
    ("T < 1.5", 0.0, 1.5),
    ("1.5 ≤ T < 3", 1.5, 3.0),
    ("3 ≤ T < 6", 3.0, 6.0),
    ("T ≥ 6", 6.0, math.inf),
)
#: Fewer completed trials than this and importances are reported as not available.
MIN_IMPORTANCE_TRIALS = 5
_CATEGORICAL_CONFIG = ("cell", "soft_loss")


# -- formatting for conclusions --------------------------------------------------------------
def _pct(x: float, digits: int = 1) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.{digits}f}%"


def _pts(x: float, digits: int = 1) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:+.{digits}f}"


def _p(p: float) -> str:
    if p is None or not np.isfinite(p):
        return "p=n/a"
    return "p<0.001" if p < 0.001 else f"p={p:.3f}" if p < 0.1 else f"p={p:.2f}"


def _ci_pts(iv: stats.Interval) -> str:
    if not (np.isfinite(iv.low) and np.isfinite(iv.high)):
        return "95% CI n/a"
    return f"95% CI {_pts(iv.low)} to {_pts(iv.high)}"


# -- reading one trial -----------------------------------------------------------------------
def _objective(inputs: ReportInputs) -> str:
    """The study's objective (``distill``, ``gap`` or ``both``); a 2-direction study is ``both``."""
    default = "both" if inputs.is_multi_objective else "distill"
    return str(inputs.study_attrs.get("objective", default))


def arm_dev_acc(trial: FrozenTrial, arm: str, objective: str = "distill") -> float:
    """Best dev accuracy of one arm, from the ``<arm>`` user attribute.

    Falls back to the objective values when the attribute is missing: ``distill`` stores the
    distill arm's accuracy as the value, ``both`` stores ``(distill, baseline)``.
    """
    info = trial.user_attrs.get(arm)
    if isinstance(info, dict) and info.get("best_dev_acc") is not None:
        return float(info["best_dev_acc"])
    values = trial.values
    if values:
        if objective == "both" and len(values) == 2:
            return float(values[ARMS.index(arm)])
        if objective == "distill" and arm == "distill" and len(values) == 1:
            return float(values[0])
    return float("nan")


def trial_gap(trial: FrozenTrial, objective: str = "distill") -> float:
    """The trial's gap (distill − baseline best dev accuracy)."""
    gap = trial.user_attrs.get("gap")
    if gap is not None:
        return float(gap)
    if objective == "gap" and trial.values and len(trial.values) == 1:
        return float(trial.values[0])
    return arm_dev_acc(trial, "distill", objective) - arm_dev_acc(trial, "baseline", objective)


def _arm_info(trial: FrozenTrial, arm: str) -> dict:
    info = trial.user_attrs.get(arm)
    return info if isinstance(info, dict) else {}


def _epochs_trained(trial: FrozenTrial) -> float:
    run = trial.user_attrs.get("epochs_run")
    if run is not None:
        return float(run)
    curve = _arm_info(trial, "distill").get("dev_acc")
    return float(len(curve)) if isinstance(curve, list) else float("nan")


def _budget_epochs(trial: FrozenTrial, study_attrs: dict) -> float:
    budget = trial.user_attrs.get("budget")
    if isinstance(budget, dict) and budget.get("epochs") is not None:
        return float(budget["epochs"])
    config = trial.user_attrs.get("config")
    if isinstance(config, dict) and config.get("epochs") is not None:
        return float(config["epochs"])
    epochs = study_attrs.get("epochs")
    return float(epochs) if epochs is not None else float("nan")


def _in_budget(trial: FrozenTrial, study_attrs: dict) -> bool:
    """True unless the trial's recorded budget differs from the study's (never mix budgets)."""
    budget = trial.user_attrs.get("budget")
    if not isinstance(budget, dict):
        return True
    for key in ("epochs", "max_train_examples"):
        if key in study_attrs and key in budget and budget[key] != study_attrs[key]:
            return False
    return True


def _infer_rate(trial: FrozenTrial, arm: str) -> float:
    """CPU inference throughput (sentences/s) if the trial recorded one, else NaN."""
    value = _arm_info(trial, arm).get("infer_sent_per_s")
    if value is None:
        value = trial.user_attrs.get(f"{arm}_infer_sent_per_s")
    return float(value) if value is not None else float("nan")


_BASE_COLUMNS = [
    "number",
    "state",
    "config_id",
    "replicate_of",
    "seed",
    "worker",
    "requeued",
    "datetime_start",
    "datetime_complete",
    "epochs_run",
    "budget_epochs",
    "in_budget",
    "params_trainable",
    "params_total",
    "wall_seconds",
    "gap",
]
_ARM_COLUMNS = [
    "dev",
    "best_epoch",
    "test_acc",
    "train_seconds",
    "sentences_seen",
    "sent_per_s",
    "infer_sent_per_s",
    "epochs",
    "dev_curve",
]


def trial_frame(inputs: ReportInputs) -> pd.DataFrame:
    """One row per trial (every state): configuration, both arms' metrics, bookkeeping.

    Configuration fields come from the ``config`` attribute (the full config, fixed parameters
    included) under their own names; sampled parameters not in the config are ``param_<name>``.
    Accuracies are fractions. ``used`` marks COMPLETE in-budget trials with both arms' dev
    accuracy; ``primary`` additionally excludes seed replicates.
    """
    objective = _objective(inputs)
    rows = []
    for t in inputs.trials:
        row: dict = {
            "number": t.number,
            "state": t.state.name,
            "config_id": t.user_attrs.get("config_id"),
            "replicate_of": t.user_attrs.get("replicate_of"),
            "seed": t.user_attrs.get("seed"),
            "worker": t.user_attrs.get("worker"),
            # ended on purpose (a stop signal, or a surplus start) and run again as a new trial
            "requeued": t.state == TrialState.FAIL and bool(
                t.user_attrs.get("interrupted") or t.user_attrs.get("surplus")),
            "datetime_start": t.datetime_start,
            "datetime_complete": t.datetime_complete,
            "epochs_run": _epochs_trained(t),
            "budget_epochs": _budget_epochs(t, inputs.study_attrs),
            "in_budget": _in_budget(t, inputs.study_attrs),
            "params_trainable": t.user_attrs.get("params_trainable"),
            "params_total": t.user_attrs.get("params_total"),
            "wall_seconds": t.user_attrs.get("wall_seconds"),
            "gap": trial_gap(t, objective),
        }
        for arm in ARMS:
            info = _arm_info(t, arm)
            curve = info.get("dev_acc") if isinstance(info.get("dev_acc"), list) else []
            row[f"{arm}_dev"] = arm_dev_acc(t, arm, objective)
            row[f"{arm}_best_epoch"] = info.get("best_epoch")
            row[f"{arm}_test_acc"] = info.get("test_acc")
            row[f"{arm}_train_seconds"] = info.get("train_seconds")
            row[f"{arm}_sentences_seen"] = info.get("sentences_seen")
            row[f"{arm}_sent_per_s"] = info.get("sent_per_s")
            row[f"{arm}_infer_sent_per_s"] = _infer_rate(t, arm)
            row[f"{arm}_epochs"] = len(curve)
            row[f"{arm}_dev_curve"] = ";".join(f"{x:.6g}" for x in curve)
        config = t.user_attrs.get("config")
        if isinstance(config, dict):
            for key, value in config.items():
                row[key if key not in row else f"cfg_{key}"] = value
        for key, value in t.params.items():
            if key not in row:
                row[f"param_{key}"] = value
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(
            columns=_BASE_COLUMNS + [f"{a}_{c}" for a in ARMS for c in _ARM_COLUMNS]
        )
    for col in ("gap", "distill_dev", "baseline_dev", "epochs_run", "budget_epochs"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    finite = np.isfinite(frame["distill_dev"]) & np.isfinite(frame["baseline_dev"])
    frame["used"] = (frame["state"] == "COMPLETE") & frame["in_budget"].astype(bool) & finite
    frame["primary"] = frame["used"] & frame["replicate_of"].isna()
    return frame.sort_values("number").reset_index(drop=True)


def arm_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The trial frame in long form: one row per trial and arm (the per-trial CSV)."""
    shared = [c for c in frame.columns if not any(c.startswith(f"{a}_") for a in ARMS)]
    parts = []
    for arm in ARMS:
        own = [c for c in frame.columns if c.startswith(f"{arm}_")]
        part = frame[shared + own].rename(columns={c: c[len(arm) + 1 :] for c in own})
        part.insert(1, "arm", arm)
        parts.append(part)
    return pd.concat(parts, ignore_index=True).sort_values(["number", "arm"], kind="stable")


# -- header ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Header:
    """What the report is about: the study, its budget and how complete it is."""

    study_name: str
    objective: str
    directions: tuple[str, ...]
    dataset: str | None
    teacher: str | None
    epochs: int | None
    max_train_examples: int | None
    test_size: int | None
    state_counts: dict[str, int]
    n_used: int
    n_primary: int
    n_replicates: int
    n_out_of_budget: int
    generated: str
    note: str


def _requeued(frame: pd.DataFrame) -> int:
    """FAIL trials ended on purpose (stop signal, surplus start) and re-queued."""
    if not len(frame) or "requeued" not in frame.columns:
        return 0
    return int(frame["requeued"].astype(bool).sum())


def _unaugmented(frame: pd.DataFrame) -> list[int]:
    """Used trials whose configuration asks for augmented rows that their distill arm did not
    see (distill sentences seen <= baseline's)."""
    cols = ("augment_factor", "distill_sentences_seen", "baseline_sentences_seen")
    if not len(frame) or not all(c in frame.columns for c in cols):
        return []
    factor, d, b = (pd.to_numeric(frame[c], errors="coerce") for c in cols)
    bad = frame["used"] & (factor > 0) & (d <= b)
    return [int(n) for n in frame.loc[bad, "number"]]


def header(inputs: ReportInputs, frame: pd.DataFrame) -> Header:
    """The report header; ``note`` says what is still running and what was left out."""
    counts = {s.name: int((frame["state"] == s.name).sum()) for s in TrialState}
    out_of_budget = int((~frame["in_budget"].astype(bool)).sum()) if len(frame) else 0
    n_used = int(frame["used"].sum())
    n_primary = int(frame["primary"].sum())
    parts = [
        f"{n_used} completed trials analysed ({n_primary} configurations, "
        f"{n_used - n_primary} seed replicates)"
    ]
    if counts["RUNNING"] or counts["WAITING"]:
        parts.append(
            f"the study is still running ({counts['RUNNING']} running, {counts['WAITING']} "
            "waiting): numbers cover what had completed when the report was written"
        )
    requeued = _requeued(frame)
    parts.append(
        f"{counts['PRUNED']} pruned and {counts['FAIL'] - requeued} failed trials are not in the "
        "gap statistics"
        + (f" ({requeued} more were stopped by a signal or started in surplus and re-queued: "
           "not failures, their work was re-run as other trials)" if requeued else "")
    )
    if out_of_budget:
        parts.append(f"{out_of_budget} trials ran with a different budget and are excluded")
    unaugmented = _unaugmented(frame)
    if len(unaugmented):
        parts.append(
            f"{len(unaugmented)} trial(s) ({', '.join(map(str, unaugmented))}) ask for "
            "augment_factor > 0, but their distill arm saw no more sentences than the baseline: "
            "they trained on no augmented rows (the run had no augmented set when their worker "
            "loaded its data; the trainer now refuses that), so they measure augment_factor = 0")
    attrs = inputs.study_attrs
    if attrs.get("confirm_from"):
        other = (f" and on another teacher checkpoint (source {attrs['source_teacher_key'][:12]}"
                 f", this study {str(attrs.get('teacher_key'))[:12]})"
                 if attrs.get("source_teacher_key") else "")
        fixes = attrs.get("confirm_fixes") or {}
        changed = (" with " + ", ".join(f"{k} = {v}" for k, v in sorted(fixes.items()))
                   + " in place of their own" if fixes else "")
        parts.insert(0, f"a confirmation study: the best configurations of study "
                        f"{attrs['confirm_from']!r}, re-run at this study's budget{changed}"
                        f"{other}")
    return Header(
        study_name=inputs.study_name,
        objective=_objective(inputs),
        directions=tuple(d.name.lower() for d in inputs.directions),
        dataset=attrs.get("dataset"),
        teacher=attrs.get("teacher"),
        epochs=attrs.get("epochs"),
        max_train_examples=attrs.get("max_train_examples"),
        test_size=attrs.get("test_size"),
        state_counts=counts,
        n_used=n_used,
        n_primary=n_primary,
        n_replicates=n_used - n_primary,
        n_out_of_budget=out_of_budget,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        note="; ".join(parts) + ".",
    )


# -- 2. paired comparison --------------------------------------------------------------------
@dataclass(frozen=True)
class PairedComparison:
    """Distill vs baseline over completed configurations.

    Attributes:
        pairs: one row per primary trial: ``number``, ``distill``, ``baseline``, ``gap`` and the
            grouping columns.
        overall: the gap summary over all of them.
        subgroups: one row per subset (``group``, ``value``) with the same statistics.
        top_k: how many configurations the "top configurations" subset holds.
    """

    available: bool
    pairs: pd.DataFrame
    overall: stats.GapSummary | None
    subgroups: pd.DataFrame
    top_k: int
    method: str
    conclusion: str


def _summary_row(group: str, value: str, s: stats.GapSummary) -> dict:
    return {
        "group": group,
        "value": value,
        "n": s.n,
        "mean_distill": s.mean_distill,
        "mean_baseline": s.mean_baseline,
        "mean_gap": s.mean.estimate,
        "mean_gap_low": s.mean.low,
        "mean_gap_high": s.mean.high,
        "median_gap": s.median.estimate,
        "median_gap_low": s.median.low,
        "median_gap_high": s.median.high,
        "wilcoxon_p": s.wilcoxon_p,
        "p_better": s.p_better.estimate,
        "p_better_low": s.p_better.low,
        "p_better_high": s.p_better.high,
    }


def _temperature_band(t: float) -> str | None:
    for label, low, high in TEMPERATURE_BANDS:
        if low <= t < high:
            return label
    return None


def _categorical_columns(inputs: ReportInputs, frame: pd.DataFrame) -> list[str]:
    names: list[str] = []
    for t in inputs.trials:
        for name, dist in t.distributions.items():
            if isinstance(dist, CategoricalDistribution):
                col = name if name in frame.columns else f"param_{name}"
                if col in frame.columns and col not in names:
                    names.append(col)
    names += [c for c in _CATEGORICAL_CONFIG if c in frame.columns and c not in names]
    return names


def _subset_label(row) -> str:
    name = row.value if row.group in ("all", "top") else f"{row.group}={row.value}"
    if row.group == "temperature":
        name = row.value
    return f"{name} ({_pts(row.mean_gap)} points, n={row.n})"


def _verdict(s: stats.GapSummary, alpha: float = 0.05) -> str:
    body = (
        f"{_pts(s.mean.estimate)} points ({_ci_pts(s.mean)}, Wilcoxon {_p(s.wilcoxon_p)}; "
        f"P(distill > baseline) = {s.p_better.estimate:.2f}, 95% CI "
        f"{s.p_better.low:.2f}–{s.p_better.high:.2f}; n = {s.n})"
    )
    judged = _judge(s.mean, s.wilcoxon_p, s.n, alpha, s.ties)
    if judged == "higher":
        return f"distillation beats the baseline by {body}"
    if judged == "lower":
        return f"distillation trails the baseline by {body}"
    return f"{_undecided(judged, s.n, s.ties)}: mean gap {body}"


def _judge(iv: stats.Interval, wilcoxon_p: float, n: int, alpha: float = 0.05,
           ties: int = 0) -> str:
    """"higher" or "lower" when the bootstrap interval is clear of zero and the signed-rank test
    agrees; "too_few" when the interval is clear but ``n`` pairs (``ties`` of them with a zero
    gap, which carry no sign) are too few for the test ever to agree (a direction the data
    suggest and cannot yet confirm); else "none"."""
    if not (np.isfinite(iv.low) and (iv.low > 0 or iv.high < 0)):
        return "none"
    if np.isfinite(wilcoxon_p) and wilcoxon_p < alpha:
        return "higher" if iv.estimate > 0 else "lower"
    return "too_few" if n >= 1 and not stats.wilcoxon_min_p(n, ties) < alpha else "none"


def _undecided(judged: str, n: int, ties: int = 0) -> str:
    """The words for a :func:`_judge` verdict that claims no difference."""
    if judged != "too_few":
        return "no difference detectable"
    smallest = stats.wilcoxon_min_p(n, ties)
    pairs = f"{n} pairs" + (f", {ties} of them tied," if ties else "")
    test = (f"the signed-rank test's smallest p with {pairs} is {smallest:.3g}"
            if np.isfinite(smallest) else "the signed-rank test needs at least 2 pairs")
    return f"too few pairs to decide (the bootstrap interval is clear of zero, but {test})"


def _seed_replicated(frame: pd.DataFrame) -> pd.DataFrame:
    """The used trials (replicates included) of configurations run with two or more seeds."""
    if "config_id" not in frame:
        return frame[:0]
    used = frame[frame["used"] & frame["config_id"].notna()]
    if not len(used):
        return used
    sizes = used.groupby("config_id")["number"].transform("size")
    return used[sizes >= 2]


def paired_comparison(
    inputs: ReportInputs,
    frame: pd.DataFrame,
    *,
    seed: int = 0,
    n_resamples: int = 4999,
    top_fraction: float = 0.25,
    min_top: int = 5,
) -> PairedComparison:
    """Section 2: the gap over all configurations, the top ones, and per parameter value.

    Args:
        inputs: the snapshot (for the parameter distributions).
        frame: :func:`trial_frame` of it.
        seed: bootstrap seed.
        n_resamples: bootstrap resamples.
        top_fraction: share of configurations in the "top configurations" subset.
        min_top: the top subset holds at least this many configurations (when there are).
    """
    method = (
        "Each trial trains both arms with the same configuration, seed and data order, so the "
        "gap (distill − baseline best dev accuracy) is a paired difference; we report its mean "
        "and median with seeded bootstrap 95% CIs, the Wilcoxon signed-rank test, and "
        "P(distill > baseline) with a bootstrap CI (Bouthillier et al. 2021), over completed "
        "trials with seed replicates excluded. Top configurations are ranked by the mean of both "
        "arms' dev accuracy, so the selection favours neither arm. The `compute` subgroups "
        "split trials by training sentences seen: `equal` where the distill arm saw no more "
        "sentences than the baseline (no augmented rows: the gap at equal compute), "
        "`distill_more` where augmented rows gave it more. The `seeds` row pools every seed of "
        "the configurations run with several seeds (`study replicate`, `study confirm --seeds`): "
        "it asks whether distillation beats the baseline for those configurations, with seeds "
        "as the replicates, so its interval comes from a bootstrap stratified by configuration "
        "(Davison & Hinkley 1997) and its Wilcoxon test is conditional on the configurations; "
        "with a handful of seeds the bootstrap interval is narrow, so read it with the test. "
        "A difference is claimed when both the interval excludes zero and Wilcoxon p < 0.05; "
        "with 5 pairs or fewer the test cannot reach 0.05 whatever the data (its smallest p is "
        "2/2^n, n counting only the pairs whose gap is not exactly zero: a tie has no sign), so "
        "an interval clear of zero is then reported as too few pairs to decide. "
        "Subgroup p-values are not corrected for multiple comparisons."
    )
    used = frame[frame["primary"]]
    categorical = _categorical_columns(inputs, frame)
    keep = ["number", "config_id", "distill_dev", "baseline_dev", "gap"]
    keep += [c for c in [*categorical, "temperature"] if c in used.columns and c not in keep]
    pairs = used[keep].rename(columns={"distill_dev": "distill", "baseline_dev": "baseline"})
    seen = [f"{arm}_sentences_seen" for arm in ARMS]
    if all(c in used.columns for c in seen):
        d, b = (pd.to_numeric(used[c], errors="coerce") for c in seen)
        pairs["compute"] = np.where(d.isna() | b.isna(), None,
                                    np.where(d <= b, "equal", "distill_more"))
    pairs = pairs.reset_index(drop=True)
    # The gap of record is distill − baseline of the two accuracies we analyse.
    pairs["gap"] = pairs["distill"] - pairs["baseline"]
    if len(pairs) < 2:
        return PairedComparison(
            available=False,
            pairs=pairs,
            overall=None,
            subgroups=pd.DataFrame(),
            top_k=0,
            method=method,
            conclusion=f"Not available: {len(pairs)} completed trial(s); a paired comparison "
            "needs at least 2.",
        )

    def summarise(sub: pd.DataFrame) -> stats.GapSummary:
        return stats.gap_summary(
            sub["distill"].to_numpy(),
            sub["baseline"].to_numpy(),
            seed=seed,
            n_resamples=n_resamples,
        )

    overall = summarise(pairs)
    rows = [_summary_row("all", "all configurations", overall)]
    top_k = min(len(pairs), max(min_top, math.ceil(top_fraction * len(pairs))))
    if top_k < len(pairs):
        quality = (pairs["distill"] + pairs["baseline"]) / 2
        top = pairs.loc[quality.sort_values(ascending=False, kind="stable").index[:top_k]]
        rows.append(_summary_row("top", f"top {top_k} by mean of both arms", summarise(top)))
    for col in [*categorical, *(["compute"] if "compute" in pairs.columns else [])]:
        if pairs[col].nunique(dropna=True) < 2:
            continue
        for value, sub in pairs.groupby(col, sort=True):
            if len(sub) >= 2:
                rows.append(_summary_row(col.removeprefix("param_"), str(value), summarise(sub)))
    if "temperature" in pairs.columns:
        bands = pairs["temperature"].astype(float).map(_temperature_band)
        if bands.nunique(dropna=True) >= 2:
            for label, _, _ in TEMPERATURE_BANDS:
                sub = pairs[bands == label]
                if len(sub) >= 2:
                    rows.append(_summary_row("temperature", label, summarise(sub)))
    seeded = _seed_replicated(frame)
    seeds_summary = None
    if len(seeded):
        seeds_summary = stats.gap_summary(
            seeded["distill_dev"].to_numpy(), seeded["baseline_dev"].to_numpy(),
            seed=seed, n_resamples=n_resamples, strata=seeded["config_id"].to_numpy())
        k = seeded["config_id"].nunique()
        rows.append(_summary_row("seeds", f"all seeds of {k} replicated configuration"
                                 f"{'s' if k > 1 else ''}", seeds_summary))
    subgroups = pd.DataFrame(rows)

    sentence = _verdict(overall)
    sentence = sentence[0].upper() + sentence[1:]
    if seeds_summary is not None:
        sentence += (f". Over every seed of the {k} configuration{'s' if k > 1 else ''} run "
                     f"with several seeds (for those configurations): {_verdict(seeds_summary)}")
    where = subgroups[~subgroups["group"].isin(["all", "seeds"])]  # seeds: said above
    helps = where[where["mean_gap_low"] > 0]
    hurts = where[where["mean_gap_high"] < 0]
    if len(where):
        if len(helps):
            listed = ", ".join(_subset_label(r) for r in helps.itertuples())
            sentence += f". Subsets where the gap's CI is above zero: {listed}"
        else:
            sentence += ". No subset has a gap whose 95% CI lies above zero"
        if len(hurts):
            listed = ", ".join(_subset_label(r) for r in hurts.itertuples())
            sentence += f"; below zero: {listed}"
    return PairedComparison(
        available=True,
        pairs=pairs,
        overall=overall,
        subgroups=subgroups,
        top_k=top_k,
        method=method,
        conclusion=sentence + ".",
    )


# -- 3. sensitivity --------------------------------------------------------------------------
@dataclass(frozen=True)
class Sensitivity:
    """Parameter importances and the variance decomposition.

    Attributes:
        importances: long table ``param, evaluator, target, importance, rank`` (rank 1 = most
            important for that evaluator and target).
        top_params: parameters worth a slice plot (the leading ones across targets).
        variance: one row per metric (``distill``, ``baseline``, ``gap``): spread across the
            study next to spread across seeds of one configuration.
        seed_groups: one row per replicated configuration and metric (its seeds' spread).
        notes: why an evaluator or part was skipped.
    """

    available: bool
    importances: pd.DataFrame
    top_params: list[str]
    variance: pd.DataFrame
    seed_groups: pd.DataFrame
    notes: list[str]
    method: str
    conclusion: str


def analysis_study(inputs: ReportInputs, frame: pd.DataFrame) -> optuna.Study | None:
    """An in-memory study of the primary trials (COMPLETE, in budget, no replicates).

    Optuna's importance evaluators and slice plots read a whole study; this copy lets them see
    exactly the trials the report analyses and stays fixed while the real study keeps running.
    Returns None when there are no such trials.
    """
    keep = set(frame.loc[frame["primary"], "number"].tolist())
    trials = [t for t in inputs.trials if t.number in keep]
    if not trials:
        return None
    with warnings.catch_warnings(), quiet_optuna():
        warnings.simplefilter("ignore")
        copy = optuna.create_study(
            storage=optuna.storages.InMemoryStorage(),
            directions=[d.name.lower() for d in inputs.directions],
            study_name=f"{inputs.study_name}-report",
        )
    for t in trials:
        # add_trial renumbers; the original number is kept for plot hover text.
        attrs = dict(t.user_attrs)
        attrs.setdefault("report_number", t.number)
        copy.add_trial(
            optuna.trial.create_trial(
                state=TrialState.COMPLETE,
                params=t.params,
                distributions=t.distributions,
                values=t.values,
                user_attrs=attrs,
                intermediate_values=t.intermediate_values,
            )
        )
    return copy


def _targets(objective: str) -> dict[str, Callable[[FrozenTrial], float]]:
    return {
        "distill": lambda t: arm_dev_acc(t, "distill", objective),
        "baseline": lambda t: arm_dev_acc(t, "baseline", objective),
        "gap": lambda t: trial_gap(t, objective),
    }


def _varying_params(study: optuna.Study) -> list[str]:
    trials = study.get_trials(deepcopy=False)
    common = set.intersection(*(set(t.params) for t in trials)) if trials else set()
    varying = []
    for name in sorted(common):
        values = {repr(t.params[name]) for t in trials}
        if len(values) > 1:
            varying.append(name)
    return varying


def _importances(
    study: optuna.Study, objective: str, n_trials: int, seed: int
) -> tuple[pd.DataFrame, list[str]]:
    from optuna.importance import (
        FanovaImportanceEvaluator,
        PedAnovaImportanceEvaluator,
        get_param_importances,
    )

    params = _varying_params(study)
    notes: list[str] = []
    if not params:
        return pd.DataFrame(), ["no sampled parameter varies across the completed trials"]
    # PED-ANOVA needs a few trials above the target quantile (its docs suggest >= 5), so the
    # quantile grows for small studies: gamma' = max(0.1, 5 / N), capped at 0.5.
    quantile = min(0.5, max(0.1, 5 / n_trials))
    evaluators = {
        "fANOVA": lambda: FanovaImportanceEvaluator(seed=seed),
        "PED-ANOVA": lambda: PedAnovaImportanceEvaluator(target_quantile=quantile),
    }
    rows = []
    for ev_name, make in evaluators.items():
        for target_name, target in _targets(objective).items():
            # PED-ANOVA ranks importance for *low* target values; accuracy and gap are
            # maximised, so it gets the negated target. fANOVA is sign-invariant.
            fn = (lambda t, f=target: -f(t)) if ev_name == "PED-ANOVA" else target
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    scores = get_param_importances(
                        study, evaluator=make(), params=params, target=fn, normalize=True
                    )
            except ImportError as exc:
                notes.append(f"{ev_name} not available: {exc}")
                break
            except (ValueError, RuntimeError, ZeroDivisionError) as exc:
                notes.append(f"{ev_name} for {target_name} failed: {exc}")
                continue
            for param in params:
                rows.append(
                    {
                        "param": param,
                        "evaluator": ev_name,
                        "target": target_name,
                        "importance": float(scores.get(param, 0.0)),
                    }
                )
    table = pd.DataFrame(rows)
    if len(table):
        table["rank"] = (
            table.groupby(["evaluator", "target"])["importance"]
            .rank(ascending=False, method="min")
            .astype(int)
        )
        table = table.sort_values(["evaluator", "target", "rank", "param"]).reset_index(drop=True)
    if n_trials < 20:
        notes.append(
            f"importances from {n_trials} trials are rough; fANOVA's surrogate and PED-ANOVA's "
            "top-quantile density both need more trials to be stable"
        )
    return table, notes


def _spread(values: np.ndarray) -> dict:
    if values.size == 0:
        return {
            "study_n": 0,
            "study_min": np.nan,
            "study_max": np.nan,
            "study_range": np.nan,
            "study_iqr": np.nan,
            "study_std": np.nan,
        }
    q75, q25 = np.percentile(values, [75, 25])
    return {
        "study_n": int(values.size),
        "study_min": float(values.min()),
        "study_max": float(values.max()),
        "study_range": float(values.max() - values.min()),
        "study_iqr": float(q75 - q25),
        "study_std": float(values.std(ddof=1)) if values.size > 1 else np.nan,
    }


def _seed_test(grp: pd.DataFrame, metric: str) -> np.ndarray:
    """Test accuracies (or test gaps) of one configuration's seeds; empty unless every seed
    has them, so a mean is never over a subset of the seeds."""
    cols = ["distill_test_acc", "baseline_test_acc"] if metric == "gap" \
        else [f"{metric}_test_acc"]
    if any(c not in grp for c in cols):
        return np.array([])
    values = grp[cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(values).all():
        return np.array([])
    return values[:, 0] - values[:, 1] if metric == "gap" else values[:, 0]


def _variance_tables(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    metrics = {"distill": "distill_dev", "baseline": "baseline_dev", "gap": "gap"}
    replicated = _seed_replicated(frame)
    group_rows = []
    rows = []
    for metric, col in metrics.items():
        primary = frame.loc[frame["primary"], col].to_numpy(dtype=float)
        row = {"metric": metric, **_spread(primary)}
        within_ss, within_df, ranges = 0.0, 0, []
        for config_id, grp in replicated.groupby("config_id", sort=True):
            v = grp[col].to_numpy(dtype=float)
            within_ss += float(((v - v.mean()) ** 2).sum())
            within_df += v.size - 1
            ranges.append(float(v.max() - v.min()))
            test = _seed_test(grp, metric)
            group_rows.append(
                {
                    "metric": metric,
                    "config_id": config_id,
                    "n_seeds": int(v.size),
                    "mean": float(v.mean()),
                    "min": float(v.min()),
                    "max": float(v.max()),
                    "range": float(v.max() - v.min()),
                    "std": float(v.std(ddof=1)),
                    # the same seeds on the test half: exploratory, never used to choose
                    "test_mean": float(test.mean()) if test.size else np.nan,
                    "test_min": float(test.min()) if test.size else np.nan,
                    "test_max": float(test.max()) if test.size else np.nan,
                }
            )
        pooled = math.sqrt(within_ss / within_df) if within_df else np.nan
        row.update(
            {
                "seed_configs": len(ranges),
                "seed_trials": int(within_df + len(ranges)),
                "seed_range_mean": float(np.mean(ranges)) if ranges else np.nan,
                "seed_range_max": float(np.max(ranges)) if ranges else np.nan,
                "seed_std_pooled": pooled,
                # Share of the study's variance that seed noise alone would produce
                # (Reimers & Gurevych 2017: compare distributions over seeds, not single runs).
                "seed_share": (pooled**2 / row["study_std"] ** 2)
                if ranges and np.isfinite(row["study_std"]) and row["study_std"] > 0
                else np.nan,
            }
        )
        rows.append(row)
    return pd.DataFrame(rows), pd.DataFrame(group_rows)


def sensitivity(
    inputs: ReportInputs, frame: pd.DataFrame, *, seed: int = 0, n_slice_params: int = 4
) -> Sensitivity:
    """Section 3: PED-ANOVA and fANOVA importances for three targets, and seed vs study spread."""
    method = (
        "fANOVA (Hutter et al. 2014) attributes the variance of a random-forest surrogate to "
        "each parameter; PED-ANOVA (Watanabe et al. 2023) measures how far each parameter's "
        "distribution among the top trials departs from all trials; both via optuna.importance "
        "with target = distill accuracy, baseline accuracy and gap. The spread of dev accuracy "
        "across the study (range, IQR, std) is set against its spread across seeds of one "
        "configuration (trials sharing config_id, from `study replicate`): the seed share is "
        "pooled within-configuration variance over study variance (Reimers & Gurevych 2017). "
        "The replicated configurations' table also gives the same seeds' test accuracy "
        "(`test_mean`, `test_min`, `test_max`; each arm's best-dev epoch): exploratory, never "
        "used to choose, and the seed-averaged view of how a configuration does on unseen data."
    )
    n = int(frame["primary"].sum())
    objective = _objective(inputs)
    notes: list[str] = []
    importances = pd.DataFrame()
    if n < MIN_IMPORTANCE_TRIALS:
        notes.append(
            f"importances not available: {n} completed trials, at least "
            f"{MIN_IMPORTANCE_TRIALS} needed"
        )
    else:
        study = analysis_study(inputs, frame)
        importances, more = _importances(study, objective, n, seed)
        notes += more
    variance, seed_groups = _variance_tables(frame)

    top_params: list[str] = []
    sentences = []
    if len(importances):
        preferred = "fANOVA" if (importances["evaluator"] == "fANOVA").any() else "PED-ANOVA"
        firsts = []
        for target in ("gap", "distill", "baseline"):
            sub = importances[
                (importances["evaluator"] == preferred) & (importances["target"] == target)
            ]
            if len(sub):
                lead = sub.sort_values("importance", ascending=False, kind="stable").iloc[0]
                firsts.append(f"{lead.param} for the {target} ({lead.importance:.2f})")
        sentences.append(f"Most important by {preferred}: " + "; ".join(firsts))
        ranked = importances[importances["evaluator"] == preferred].sort_values(
            ["rank", "importance"], ascending=[True, False], kind="stable"
        )
        for param in ranked["param"]:
            if param not in top_params:
                top_params.append(param)
            if len(top_params) >= n_slice_params:
                break
    else:
        sentences.append("Importances not available (" + "; ".join(notes) + ")")
    d = variance.set_index("metric")
    if len(d) and d.loc["distill", "seed_configs"] > 0:
        parts = []
        for metric in ("distill", "baseline"):
            r = d.loc[metric]
            share = r.seed_share
            if not np.isfinite(share):
                tail = ""
            elif share >= 1:
                tail = ", seed noise alone covers the study's variance"
            else:
                tail = f", seed noise ≈ {100 * share:.0f}% of the study's variance"
            parts.append(
                f"{metric}: seed std {100 * r.seed_std_pooled:.1f} points vs study range "
                f"{100 * r.study_range:.1f} (IQR {100 * r.study_iqr:.1f}){tail}"
            )
        sentences.append(
            f"Across {int(d.loc['distill', 'seed_configs'])} replicated configurations, "
            + "; ".join(parts)
        )
    elif len(d):
        r = d.loc["distill"]
        sentences.append(
            f"Study range of distill dev accuracy {100 * r.study_range:.1f} points "
            f"(IQR {100 * r.study_iqr:.1f}); seed spread not available: no configuration was "
            "run with more than one seed (run `distill-study study replicate`)"
        )
    return Sensitivity(
        available=bool(len(importances)) or bool(len(seed_groups)),
        importances=importances,
        top_params=top_params,
        variance=variance,
        seed_groups=seed_groups,
        notes=notes,
        method=method,
        conclusion=". ".join(sentences) + ".",
    )


# -- 4. expected maximum ---------------------------------------------------------------------
@dataclass(frozen=True)
class ExpectedMax:
    """Expected best dev accuracy after n trials, per arm.

    ``curve`` columns: ``arm, n, expected_max`` (unbiased, Tang et al. 2020), ``plugin``
    (Dodge et al. 2019, with replacement), ``std`` (of the max of n), ``low``/``high``
    (bootstrap 95% band of the estimate).
    """

    available: bool
    curve: pd.DataFrame
    n_trials: int
    enough: dict[str, int]
    method: str
    conclusion: str


def expected_max(
    frame: pd.DataFrame, *, seed: int = 0, n_resamples: int = 1000, tolerance: float = 0.005
) -> ExpectedMax:
    """Section 4: expected-max curves and how many trials come within ``tolerance`` of the best.

    Args:
        frame: :func:`trial_frame`.
        seed: bootstrap seed.
        n_resamples: bootstrap resamples of the band.
        tolerance: "enough" trials = smallest n whose expected max is within this (fraction)
            of the N-trial value.
    """
    method = (
        "Expected best dev accuracy after n trials (Dodge et al. 2019), estimated without bias "
        "as the exact mean of the maximum over all n-subsets of the N completed trials "
        "(Tang et al. 2020); the plug-in estimator is shown dashed. Bands: ±1 std of the "
        "maximum of n, and a bootstrap 95% band of the estimate. Trials are treated as "
        "exchangeable; with an adaptive sampler (TPE) the curve describes this study's sampler."
    )
    used = frame[frame["primary"]]
    N = len(used)
    if N < 2:
        return ExpectedMax(
            False,
            pd.DataFrame(),
            N,
            {},
            method,
            f"Not available: {N} completed trial(s); the curve needs at least 2.",
        )
    parts = []
    enough: dict[str, int] = {}
    for arm in ARMS:
        v = used[f"{arm}_dev"].to_numpy(dtype=float)
        mean = stats.expected_max_unbiased(v)
        low, high = stats.expected_max_bootstrap(v, seed=seed, n_resamples=n_resamples)
        parts.append(
            pd.DataFrame(
                {
                    "arm": arm,
                    "n": np.arange(1, N + 1),
                    "expected_max": mean,
                    "plugin": stats.expected_max_plugin(v),
                    "std": stats.expected_max_std(v),
                    "low": low,
                    "high": high,
                }
            )
        )
        enough[arm] = int(np.argmax(mean >= mean[-1] - tolerance)) + 1
    curve = pd.concat(parts, ignore_index=True)
    half = max(1, N // 2)
    at = curve.set_index(["arm", "n"])["expected_max"]
    gains = {arm: at[(arm, N)] - at[(arm, half)] for arm in ARMS}
    conclusion = (
        f"With {N} trials the best dev accuracy is {_pct(at[('distill', N)])} (distill) and "
        f"{_pct(at[('baseline', N)])} (baseline); the expected best of {half} trials is "
        f"{_pct(at[('distill', half)])} and {_pct(at[('baseline', half)])}, so the second half "
        f"of the budget added {_pts(gains['distill'])} and {_pts(gains['baseline'])} points; "
        f"{enough['distill']} (distill) and {enough['baseline']} (baseline) trials come within "
        f"{100 * tolerance:.1f} points of the {N}-trial best in expectation."
    )
    return ExpectedMax(True, curve, N, enough, method, conclusion)


# -- 5. teacher ------------------------------------------------------------------------------
@dataclass(frozen=True)
class TeacherSection:
    """Teacher diagnostics and the temperature effect on the students' gap.

    Attributes:
        accuracy: ``split, accuracy`` (plus ``low``/``high`` Wilson bounds where n is known).
        confidence_hist: ``left, right, count, fraction`` of max-softmax confidence on train.
        reliability: ``bin_confidence, bin_accuracy, bin_count``.
        ece: expected calibration error (fraction), NaN when missing.
        overconfidence: count-weighted mean (confidence − accuracy) over reliability bins.
        entropy: ``T, mean_entropy, normalized`` (entropy / log 2).
        temperature_effect: ``n, spearman_rho, p_value, t_min, t_max`` or None.
    """

    available: bool
    accuracy: pd.DataFrame
    confidence_hist: pd.DataFrame
    reliability: pd.DataFrame
    ece: float
    overconfidence: float
    entropy: pd.DataFrame
    temperature_effect: dict | None
    method: str
    conclusion: str


def teacher_section(inputs: ReportInputs, frame: pd.DataFrame) -> TeacherSection:
    """Section 5: is the teacher over-confident, and does temperature change the gap?"""
    method = (
        "Teacher accuracy per split; histogram of its max-softmax confidence on train; "
        "reliability diagram and expected calibration error over confidence bins (Naeini et al. "
        "2015; Guo et al. 2017); mean entropy of softmax(z / T) for the softened targets (Hinton "
        "et al. 2015); and Spearman's rank correlation between the trials' temperature and gap."
    )
    diag = inputs.teacher_diagnostics or {}
    acc_rows = [{"split": k, "accuracy": float(v)} for k, v in (diag.get("accuracy") or {}).items()]
    accuracy = pd.DataFrame(acc_rows, columns=["split", "accuracy"])
    if inputs.teacher_test_logits is not None and inputs.test_labels is not None:
        pred = np.argmax(inputs.teacher_test_logits, axis=1)
        correct = int((pred == inputs.test_labels).sum())
        iv = stats.wilson_interval(correct, len(pred))
        accuracy = accuracy[accuracy["split"] != "test"]
        accuracy = pd.concat(
            [
                accuracy,
                pd.DataFrame(
                    [
                        {
                            "split": "test",
                            "accuracy": iv.estimate,
                            "low": iv.low,
                            "high": iv.high,
                            "n": len(pred),
                        }
                    ]
                ),
            ],
            ignore_index=True,
        )
    hist = diag.get("confidence_hist") or {}
    if hist.get("edges") and hist.get("counts"):
        edges = np.asarray(hist["edges"], dtype=float)
        counts = np.asarray(hist["counts"], dtype=float)
        confidence_hist = pd.DataFrame(
            {
                "left": edges[:-1],
                "right": edges[1:],
                "count": counts,
                "fraction": counts / counts.sum() if counts.sum() else counts,
            }
        )
    else:
        confidence_hist = pd.DataFrame(columns=["left", "right", "count", "fraction"])
    rel = diag.get("reliability") or {}
    reliability = (
        pd.DataFrame({k: rel.get(k, []) for k in ("bin_confidence", "bin_accuracy", "bin_count")})
        if rel
        else pd.DataFrame(columns=["bin_confidence", "bin_accuracy", "bin_count"])
    )
    overconfidence = float("nan")
    raw_ece = diag.get("ece")
    if isinstance(raw_ece, dict):  # the teacher stores ECE per split; the diagram is on dev
        raw_ece = raw_ece.get(rel.get("split", "dev"), raw_ece.get("dev"))
    ece = float(raw_ece) if raw_ece is not None else float("nan")
    if len(reliability) and reliability["bin_count"].sum() > 0:
        w = reliability["bin_count"].to_numpy(dtype=float)
        gap = (reliability["bin_confidence"] - reliability["bin_accuracy"]).to_numpy(dtype=float)
        ok = np.isfinite(gap) & (w > 0)
        overconfidence = float((w[ok] * gap[ok]).sum() / w[ok].sum())
        if not np.isfinite(ece):  # ECE = sum_b (n_b / n) |conf_b - acc_b| (Naeini et al. 2015)
            ece = float((w[ok] * np.abs(gap[ok])).sum() / w[ok].sum())
    ent = diag.get("entropy_vs_T") or {}
    if "mean_entropy_bits" in ent:  # bits: for two classes already normalised to [0, 1]
        bits = np.asarray(ent["mean_entropy_bits"], dtype=float)
        entropy = pd.DataFrame({"T": ent.get("T", []), "mean_entropy": bits * math.log(2)})
    else:  # nats
        entropy = pd.DataFrame({"T": ent.get("T", []), "mean_entropy": ent.get("mean_entropy", [])})
    entropy["normalized"] = entropy["mean_entropy"].astype(float) / math.log(2)

    temperature_effect = None
    pairs = frame[frame["primary"]]
    if "temperature" in pairs.columns and len(pairs) >= 3:
        t = pairs["temperature"].astype(float).to_numpy()
        g = pairs["gap"].to_numpy(dtype=float)
        if np.unique(t).size >= 2:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rho, p = sps.spearmanr(t, g)
            temperature_effect = {
                "n": int(len(t)),
                "spearman_rho": float(rho),
                "p_value": float(p),
                "t_min": float(t.min()),
                "t_max": float(t.max()),
            }

    sentences = []
    if len(accuracy):
        sentences.append(
            "Teacher accuracy "
            + ", ".join(f"{r.split} {_pct(r.accuracy)}" for r in accuracy.itertuples())
        )
    if np.isfinite(ece):
        calib = f"ECE {100 * ece:.1f} points"
        if np.isfinite(overconfidence):
            if overconfidence > 0.01:
                calib += (
                    f", mean confidence exceeds accuracy by {100 * overconfidence:.1f} "
                    "points: over-confident"
                )
            elif overconfidence < -0.01:
                calib += (
                    f", accuracy exceeds mean confidence by {-100 * overconfidence:.1f} "
                    "points: under-confident"
                )
            else:
                calib += ", confidence within 1 point of accuracy: not over-confident"
        sentences.append(calib)
    if len(confidence_hist) and confidence_hist["count"].sum() > 0:
        top = confidence_hist.iloc[-1]
        sentences.append(
            f"{100 * top.fraction:.0f}% of train predictions have confidence in "
            f"[{top.left:.2f}, {top.right:.2f}]"
        )
    if len(entropy) >= 2:
        first, last = entropy.iloc[0], entropy.iloc[-1]
        sentences.append(
            f"softening raises the targets' entropy from {first.normalized:.2f} to "
            f"{last.normalized:.2f} bits (T = {first['T']:g} to {last['T']:g})"
        )
    if temperature_effect:
        te = temperature_effect
        trend = (
            "the gap grows with temperature"
            if te["p_value"] < 0.05 and te["spearman_rho"] > 0
            else "the gap shrinks with temperature"
            if te["p_value"] < 0.05
            else "no detectable trend of the gap with temperature"
        )
        sentences.append(
            f"{trend} (Spearman ρ = {te['spearman_rho']:+.2f}, {_p(te['p_value'])}, "
            f"n = {te['n']}, T {te['t_min']:.2g}–{te['t_max']:.2g})"
        )
    elif "temperature" in pairs.columns and len(pairs):
        sentences.append("temperature did not vary across completed trials")
    available = bool(diag) or inputs.teacher_test_logits is not None
    if not available:
        conclusion = (
            "Teacher diagnostics not available (no teacher/diagnostics.json or test "
            "logits in the run directory)"
        )
        conclusion += ("; " + sentences[-1]) if temperature_effect else ""
    else:
        conclusion = "; ".join(sentences)
    return TeacherSection(
        available=available,
        accuracy=accuracy,
        confidence_hist=confidence_hist,
        reliability=reliability,
        ece=ece,
        overconfidence=overconfidence,
        entropy=entropy,
        temperature_effect=temperature_effect,
        method=method,
        conclusion=conclusion + ".",
    )


# -- 6. test-set check -----------------------------------------------------------------------
@dataclass(frozen=True)
class TestCheck:
    """Best-by-dev students (and the teacher) on the test split.

    Attributes:
        models: ``model, trial, dev_acc, test_acc, correct, n, low, high`` (Wilson 95%).
        mcnemar: ``a, b, n, both_right, only_a, only_b, both_wrong, p_value``.
        best_trials: ``{"distill": number, "baseline": number}``.
        n_test: test set size (None when unknown).
        points_per_example: 100 / n_test.
    """

    __test__ = False  # not a pytest class despite the name

    available: bool
    models: pd.DataFrame
    mcnemar: pd.DataFrame
    best_trials: dict[str, int]
    n_test: int | None
    points_per_example: float
    method: str
    conclusion: str


def _best_trial(frame: pd.DataFrame, arm: str) -> pd.Series | None:
    used = frame[frame["used"]]
    if used.empty:
        return None
    # Highest dev accuracy; ties go to the earlier trial (stable sort). Test never chooses.
    return used.sort_values(f"{arm}_dev", ascending=False, kind="stable").iloc[0]


def _decode(pred: object, n: int | None) -> np.ndarray | None:
    if not isinstance(pred, str) or not pred or set(pred) - {"0", "1"}:
        return None
    out = np.frombuffer(pred.encode("ascii"), dtype=np.uint8) - ord("0")
    return out.astype(np.int64) if n is None or out.size == n else None


def test_check(inputs: ReportInputs, frame: pd.DataFrame) -> TestCheck:
    """Section 6: test accuracy of the best-by-dev students, McNemar on paired predictions."""
    method = (
        "The best distilled and best baseline trials are chosen on dev only; their best-dev "
        "checkpoints' test predictions give test accuracy with a Wilson 95% interval, and "
        "McNemar's exact test (a binomial test on the examples only one model gets right; "
        "McNemar 1947, Dietterich 1998) compares paired predictions."
    )
    labels = inputs.test_labels
    n_test = int(len(labels)) if labels is not None else inputs.study_attrs.get("test_size")
    points = 100.0 / n_test if n_test else float("nan")
    predictions: dict[str, np.ndarray] = {}
    rows = []
    best_trials: dict[str, int] = {}
    if labels is not None and inputs.teacher_test_logits is not None:
        predictions["teacher"] = np.argmax(inputs.teacher_test_logits, axis=1)
        dev = (inputs.teacher_diagnostics or {}).get("accuracy", {}).get("dev")
        rows.append(
            {
                "model": "teacher",
                "trial": None,
                "dev_acc": float(dev) if dev is not None else np.nan,
            }
        )
    for arm in ARMS:
        best = _best_trial(frame, arm)
        if best is None:
            continue
        number = int(best["number"])
        best_trials[arm] = number
        trial = next(t for t in inputs.trials if t.number == number)
        pred = _decode(
            trial.user_attrs.get(f"{arm}_test_pred"), n_test if labels is not None else None
        )
        row = {"model": f"best {arm}", "trial": number, "dev_acc": float(best[f"{arm}_dev"])}
        if pred is not None and labels is not None:
            predictions[row["model"]] = pred
        else:
            recorded = best.get(f"{arm}_test_acc")
            row["test_acc_recorded"] = float(recorded) if recorded is not None else np.nan
        rows.append(row)
    for row in rows:
        pred = predictions.get(row["model"])
        if pred is not None:
            correct = int((pred == labels).sum())
            iv = stats.wilson_interval(correct, len(labels))
            row.update(
                test_acc=iv.estimate, correct=correct, n=len(labels), low=iv.low, high=iv.high
            )
        elif np.isfinite(row.get("test_acc_recorded", np.nan)) and n_test:
            acc = row["test_acc_recorded"]
            correct = round(acc * n_test)
            iv = stats.wilson_interval(correct, n_test)
            row.update(test_acc=acc, correct=correct, n=n_test, low=iv.low, high=iv.high)
        row.pop("test_acc_recorded", None)
    models = pd.DataFrame(
        rows, columns=["model", "trial", "dev_acc", "test_acc", "correct", "n", "low", "high"]
    )
    mc_rows = []
    for a, b in (
        ("best distill", "best baseline"),
        ("teacher", "best distill"),
        ("teacher", "best baseline"),
    ):
        if a in predictions and b in predictions:
            r = stats.mcnemar_exact(predictions[a] == labels, predictions[b] == labels)
            mc_rows.append({"a": a, "b": b, **r._asdict()})
    mcnemar = pd.DataFrame(
        mc_rows,
        columns=["a", "b", "n", "both_right", "only_a", "only_b", "both_wrong", "p_value"],
    )
    available = bool(len(models)) and models["test_acc"].notna().any()
    if not available:
        conclusion = (
            "Not available: no completed trial with test predictions"
            + ("" if labels is not None else " (and no test labels in the run)")
            + "."
        )
    else:
        m = models.set_index("model")
        parts = []
        if n_test:
            half = ((m["high"] - m["low"]) / 2).dropna()
            parts.append(
                f"On {n_test} test examples (one example = {points:.2f} points; a Wilson 95% "
                f"interval spans about ±{100 * half.mean():.1f} points)"
            )
        scores = ", ".join(
            f"{name} {_pct(r.test_acc)}" for name, r in m.iterrows() if np.isfinite(r.test_acc)
        )
        parts.append(f"test accuracy: {scores}")
        main = mcnemar[(mcnemar["a"] == "best distill") & (mcnemar["b"] == "best baseline")]
        if len(main):
            r = main.iloc[0]
            verdict = "a significant difference" if r.p_value < 0.05 else "no difference detectable"
            parts.append(
                f"McNemar exact {_p(r.p_value)} on {int(r.only_a)} vs {int(r.only_b)} "
                f"discordant examples: {verdict}"
            )
        else:
            parts.append("McNemar not available (paired test predictions or labels missing)")
        conclusion = "; ".join(parts) + "."
    return TestCheck(
        available=bool(available),
        models=models,
        mcnemar=mcnemar,
        best_trials=best_trials,
        n_test=n_test,
        points_per_example=points,
        method=method,
        conclusion=conclusion,
    )


# -- 7. cost ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cost:
    """What the study cost and what pruning saved.

    Attributes:
        counts: trials per state name.
        epochs_run: epochs trained by complete + pruned trials.
        epochs_full: what they would have trained without pruning.
        saved_fraction: ``1 - epochs_run / epochs_full``.
        hours: first start to last completion.
        trials_per_hour: finished trials (complete, pruned, failed) per hour.
        workers: per-worker table ``worker, COMPLETE, PRUNED, FAIL, ...``.
    """

    counts: dict[str, int]
    epochs_run: float
    epochs_full: float
    saved_fraction: float
    hours: float
    trials_per_hour: float
    wall_seconds: float
    workers: pd.DataFrame
    method: str
    conclusion: str
    available: bool = True


def cost(frame: pd.DataFrame) -> Cost:
    """Section 7: trial counts, compute saved by pruning, throughput, workers."""
    method = (
        "Counts by trial state; compute saved by pruning = 1 − epochs trained by completed and "
        "pruned trials / the epochs their budget allowed; trials per hour from the trials' start "
        "and completion times; workers from the `worker` attribute."
    )
    counts = {s.name: int((frame["state"] == s.name).sum()) for s in TrialState}
    done = frame[frame["state"].isin(["COMPLETE", "PRUNED"])]
    ok = done["epochs_run"].notna() & done["budget_epochs"].notna()
    epochs_run = float(done.loc[ok, "epochs_run"].sum())
    epochs_full = float(done.loc[ok, "budget_epochs"].sum())
    saved = 1 - epochs_run / epochs_full if epochs_full > 0 else float("nan")
    finished = frame[frame["state"].isin(["COMPLETE", "PRUNED", "FAIL"])]
    starts = pd.to_datetime(frame["datetime_start"]).dropna() if len(frame) else pd.Series()
    ends = pd.to_datetime(finished["datetime_complete"]).dropna() if len(finished) else pd.Series()
    hours = float("nan")
    if len(starts) and len(ends):
        hours = (ends.max() - starts.min()).total_seconds() / 3600
    rate = len(finished) / hours if np.isfinite(hours) and hours > 0 else float("nan")
    wall = pd.to_numeric(frame.get("wall_seconds", pd.Series(dtype=float)), errors="coerce")
    if "worker" in frame.columns and frame["worker"].notna().any():
        workers = (
            frame[frame["worker"].notna()]
            .groupby(["worker", "state"])
            .size()
            .unstack(fill_value=0)
            .reset_index()
        )
        workers.columns.name = None
    else:
        workers = pd.DataFrame(columns=["worker"])
    n_workers = len(workers)
    running = counts["RUNNING"] + counts["WAITING"]
    requeued = _requeued(frame)
    conclusion = (
        f"{counts['COMPLETE']} trials completed, {counts['PRUNED']} pruned, "
        f"{counts['FAIL'] - requeued} failed"
        + (f", {requeued} stopped and re-queued" if requeued else "")
        + (f" ({running} still running or waiting)" if running else "")
        + (
            f"; pruning saved {100 * saved:.0f}% of the epochs ({epochs_run:.0f} of "
            f"{epochs_full:.0f} trained)"
            if np.isfinite(saved)
            else "; epochs not recorded"
        )
        + (f"; {rate:.1f} trials per hour over {hours:.2f} h" if np.isfinite(rate) else "")
        + (
            f" on {n_workers} worker{'s' if n_workers != 1 else ''}"
            if n_workers
            else "; workers not recorded"
        )
        + "."
    )
    return Cost(
        counts=counts,
        epochs_run=epochs_run,
        epochs_full=epochs_full,
        saved_fraction=saved,
        hours=hours,
        trials_per_hour=rate,
        wall_seconds=float(wall.sum()) if len(wall) else 0.0,
        workers=workers,
        method=method,
        conclusion=conclusion,
        available=bool(len(frame)),
    )


# -- 1. summary ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Summary:
    """Teacher vs best distilled vs best baseline student (chosen on dev).

    ``table`` columns: ``model, trial, dev_acc, test_acc, params_trainable, params_total,
    file_bytes, file_size_source, infer_sent_per_s, train_s_per_epoch``.
    """

    table: pd.DataFrame
    method: str
    conclusion: str
    available: bool = True


def summary(inputs: ReportInputs, frame: pd.DataFrame, check: TestCheck) -> Summary:
    """Section 1: the headline table."""
    method = (
        "Best = highest dev accuracy among completed trials (replicates included); test "
        "accuracy is reported, never used to choose. File size is the exported student file "
        "when one exists, otherwise estimated as 4 bytes × total parameters (float32)."
    )
    tests = check.models.set_index("model")["test_acc"] if len(check.models) else pd.Series()
    diag = inputs.teacher_diagnostics or {}
    rows = []
    if diag or inputs.teacher_test_logits is not None:
        params = diag.get("params")
        test_acc = tests.get("teacher", (diag.get("accuracy") or {}).get("test"))
        if inputs.teacher_checkpoint_bytes:
            size, source = inputs.teacher_checkpoint_bytes, "checkpoint"
        elif params:
            size, source = 4 * int(params), "estimated (4 B × params)"
        else:
            size, source = np.nan, "n/a"
        rows.append(
            {
                "model": "teacher",
                "trial": None,
                "dev_acc": (diag.get("accuracy") or {}).get("dev", np.nan),
                "test_acc": test_acc if test_acc is not None else np.nan,
                # Fine-tuning trains every teacher weight.
                "params_trainable": params,
                "params_total": params,
                "file_bytes": size,
                "file_size_source": source,
                "infer_sent_per_s": diag.get("infer_sent_per_s", np.nan),
                "train_s_per_epoch": diag.get("train_seconds_per_epoch", np.nan),
            }
        )
    for arm in ARMS:
        best = _best_trial(frame, arm)
        if best is None:
            continue
        number = int(best["number"])
        total = best.get("params_total")
        exported = inputs.student_files.get((number, arm))
        if exported is not None and exported.is_file():
            size, source = exported.stat().st_size, f"exported ({exported.name})"
        elif total is not None and np.isfinite(total):
            size, source = 4 * int(total), "estimated (4 B × params)"
        else:
            size, source = np.nan, "n/a"
        seconds = best.get(f"{arm}_train_seconds")
        epochs = best.get(f"{arm}_epochs") or best.get("epochs_run")
        rows.append(
            {
                "model": f"best {arm}",
                "trial": number,
                "dev_acc": float(best[f"{arm}_dev"]),
                "test_acc": tests.get(f"best {arm}", np.nan),
                "params_trainable": best.get("params_trainable"),
                "params_total": total,
                "file_bytes": size,
                "file_size_source": source,
                "infer_sent_per_s": best.get(f"{arm}_infer_sent_per_s", np.nan),
                "train_s_per_epoch": float(seconds) / float(epochs)
                if seconds is not None and epochs
                else np.nan,
            }
        )
    table = pd.DataFrame(
        rows,
        columns=[
            "model",
            "trial",
            "dev_acc",
            "test_acc",
            "params_trainable",
            "params_total",
            "file_bytes",
            "file_size_source",
            "infer_sent_per_s",
            "train_s_per_epoch",
        ],
    )
    for col in (
        "dev_acc",
        "test_acc",
        "params_trainable",
        "params_total",
        "file_bytes",
        "infer_sent_per_s",
        "train_s_per_epoch",
    ):
        table[col] = pd.to_numeric(table[col], errors="coerce")
    t = table.set_index("model")
    if "best distill" in t.index and "best baseline" in t.index:
        d, b = t.loc["best distill"], t.loc["best baseline"]
        sentence = (
            f"Best distilled student {_pct(d.dev_acc)} dev / {_pct(d.test_acc)} test vs best "
            f"baseline {_pct(b.dev_acc)} / {_pct(b.test_acc)}"
        )
        if "teacher" in t.index:
            tt = t.loc["teacher"]
            sentence += f"; teacher {_pct(tt.dev_acc)} / {_pct(tt.test_acc)}"
            if np.isfinite(tt.params_total) and np.isfinite(d.params_total) and d.params_total:
                sentence += (
                    f", with {tt.params_total / d.params_total:.1f}× the distilled "
                    "student's parameters"
                )
        conclusion = sentence + "."
    else:
        conclusion = "Not available: no completed trial yet."
    return Summary(
        table=table, method=method, conclusion=conclusion, available="best distill" in t.index
    )


# -- against another study ---------------------------------------------------------------------
@dataclass(frozen=True)
class Against:
    """``report --against OTHER``: this study's trials matched to another study's.

    Two trials match when they ran the same configuration with the same seed, apart from the
    parameters either study replaced with ``study confirm --fix`` (``ignored``), e.g. the same
    configurations and seeds with 4 augmented copies instead of 1. Each arm is compared
    between the studies; the differences are paired (this study − the other).

    Attributes:
        other: the other study's name.
        ignored: the parameters allowed to differ between matched trials.
        pairs: one row per matched pair: both trial numbers, seed, configuration label, each
            arm's dev and test accuracy and sentences seen in both studies.
        table: one row per compared quantity (this study's ``arm`` against the other's
            ``other_arm``, on ``split``): n, means, mean difference with its CI, Wilcoxon p,
            P(this > other), how many pairs are exactly equal, and the compute behind each
            side (``sentences_ratio``: this side's sentences seen over the other's, median over
            the pairs; ``equal_compute``: both sides saw as many sentences in every pair). Rows
            with ``arm != other_arm`` set one study's distill arm against the other's baseline
            arm: with ``equal_compute``, the comparison at equal compute that a same-study pair
            cannot give when the distill arm sees augmented rows.
    """

    available: bool
    other: str
    ignored: tuple[str, ...]
    pairs: pd.DataFrame
    table: pd.DataFrame
    method: str
    conclusion: str


#: (this study's arm, the other study's arm, split): same-arm rows, the gap, then cross-arm rows
_AGAINST_ROWS = (
    ("distill", "distill", "dev"),
    ("distill", "distill", "test"),
    ("baseline", "baseline", "dev"),
    ("baseline", "baseline", "test"),
    ("gap", "gap", "dev"),
    ("distill", "baseline", "dev"),
    ("distill", "baseline", "test"),
    ("baseline", "distill", "dev"),
    ("baseline", "distill", "test"),
)


def _against_column(arm: str, split: str) -> str:
    return "gap" if arm == "gap" else f"{arm}_{split}_acc"


def _match_keys(inputs: ReportInputs, ignored: set[str]) -> dict[int, tuple[str, object]]:
    """Trial number -> (configuration without the ignored parameters, seed)."""
    out = {}
    for t in inputs.trials:
        params = {k: v for k, v in t.params.items() if k not in ignored}
        out[t.number] = (json.dumps(params, sort_keys=True, default=str), t.user_attrs.get("seed"))
    return out


def against(inputs: ReportInputs, frame: pd.DataFrame, other: ReportInputs, *,
            seed: int = 0, n_resamples: int = 4999) -> Against:
    """Compare each arm of this study with the same arm of ``other``, matched trial by trial.

    Raises:
        UsageError: the other study was run on other data (a comparison would be meaningless).
    """
    mine, theirs = inputs.study_attrs, other.study_attrs
    if mine.get("data_key") and theirs.get("data_key") and mine["data_key"] != theirs["data_key"]:
        raise UsageError(f"--against {other.study_name!r}: that study was run on other data "
                         f"({str(theirs['data_key'])[:12]} != {str(mine['data_key'])[:12]})")
    ignored = sorted(set(mine.get("confirm_fixes") or {}) | set(theirs.get("confirm_fixes") or {}))
    changed = (", ".join(f"{k} = {(mine.get('confirm_fixes') or {}).get(k, 'own')} here, "
                         f"{(theirs.get('confirm_fixes') or {}).get(k, 'own')} there"
                         for k in ignored))
    other_teacher = (mine.get("teacher_key") and theirs.get("teacher_key")
                     and mine["teacher_key"] != theirs["teacher_key"])
    budgets = [f"{what} {mine.get(key)} here, {theirs.get(key)} there"
               for key, what in (("epochs", "epochs"), ("max_train_examples", "train examples"))
               if key in mine and key in theirs and mine.get(key) != theirs.get(key)]
    method = (
        f"Trials of this study and of study {other.study_name!r} are matched when they ran the "
        "same configuration with the same seed"
        + (f", apart from what `study confirm --fix` replaced ({changed})" if ignored else "")
        + ". For each arm, the difference (this study − the other) is paired; we report its "
        "mean with a bootstrap 95% CI (stratified by configuration when a configuration has "
        "several seeds), the Wilcoxon signed-rank test, P(this > other), and how many pairs are "
        "exactly equal. An arm the change cannot reach (the baseline never sees the teacher or "
        "the augmented rows) should be equal to the bit on one machine: a reproducibility "
        "check. The `gap` row asks whether the change moved distill − baseline. The rows "
        "whose `arm` and `other_arm` differ set one study's distill arm against the other's "
        "baseline arm, matched the same way; `sentences_ratio` is the sentences seen by this "
        "side over the other's (median over the pairs), and `equal_compute` marks rows where "
        "both sides saw as many sentences in every pair: the comparison at equal compute "
        "(e.g. a distill arm on augmented rows against a baseline trained for as many more "
        "epochs). Test numbers are each arm's best-dev epoch on the test half: exploratory."
        + (f" The studies' budgets differ ({'; '.join(budgets)})." if budgets else "")
        + (" The two studies were run on different teacher checkpoints." if other_teacher else "")
    )
    other_frame = trial_frame(other)
    ignore = set(ignored)
    keys_mine, keys_other = _match_keys(inputs, ignore), _match_keys(other, ignore)
    used_other = other_frame[other_frame["used"]]
    index = {}
    for number in used_other["number"]:
        index.setdefault(keys_other[int(number)], int(number))
    rows = []
    by_number = used_other.set_index("number")
    for r in frame[frame["used"]].itertuples(index=False):
        key = keys_mine[int(r.number)]
        if key not in index:
            continue
        o = by_number.loc[index[key]]
        row = {"number": int(r.number), "other_number": index[key], "seed": key[1],
               "config": str(key[0])}
        for arm in ARMS:
            for col in ("dev", "test_acc", "sentences_seen"):
                name = f"{arm}_{col}"
                shown = f"{arm}_dev_acc" if col == "dev" else name
                row[shown] = getattr(r, name)
                row[f"other_{shown}"] = o[name]
        row["gap"] = r.distill_dev - r.baseline_dev
        row["other_gap"] = o["distill_dev"] - o["baseline_dev"]
        rows.append(row)
    pairs = pd.DataFrame(rows)
    if len(pairs) < 2:
        return Against(False, other.study_name, tuple(ignored), pairs, pd.DataFrame(), method,
                       f"Not available: {len(pairs)} matched trial pair(s) with study "
                       f"{other.study_name!r}; a paired comparison needs at least 2.")
    # a short label per configuration (its order of first appearance)
    labels = {c: f"c{i}" for i, c in enumerate(dict.fromkeys(pairs["config"]))}
    pairs["config"] = pairs["config"].map(labels)
    strata = pairs["config"].to_numpy() if pairs["config"].duplicated().any() else None

    def seen(arm: str, prefix: str) -> np.ndarray:
        if arm == "gap":
            return np.full(len(pairs), np.nan)
        return pd.to_numeric(pairs[f"{prefix}{arm}_sentences_seen"],
                             errors="coerce").to_numpy(dtype=float)

    table = []
    for arm, other_arm, split in _AGAINST_ROWS:
        a = pd.to_numeric(pairs[_against_column(arm, split)],
                          errors="coerce").to_numpy(dtype=float)
        b = pd.to_numeric(pairs[f"other_{_against_column(other_arm, split)}"],
                          errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() < 2:
            continue
        s = stats.gap_summary(a[ok], b[ok], seed=seed, n_resamples=n_resamples,
                              strata=None if strata is None else strata[ok])
        n_this, n_other = seen(arm, "")[ok], seen(other_arm, "other_")[ok]
        known = bool(np.isfinite(n_this).all() and np.isfinite(n_other).all()
                     and (n_other > 0).all())
        table.append({"arm": arm, "other_arm": other_arm, "split": split, "n": s.n,
                      "mean_this": s.mean_distill, "mean_other": s.mean_baseline,
                      "mean_diff": s.mean.estimate, "mean_diff_low": s.mean.low,
                      "mean_diff_high": s.mean.high, "wilcoxon_p": s.wilcoxon_p,
                      "p_this_better": s.p_better.estimate,
                      "equal": s.ties,
                      "sentences_ratio": (float(np.median(n_this / n_other)) if known
                                          else np.nan),
                      "equal_compute": known and bool((n_this == n_other).all())})
    table = pd.DataFrame(table)

    def row_of(arm: str, other_arm: str, split: str) -> pd.Series | None:
        if not len(table):
            return None
        rows = table[(table["arm"] == arm) & (table["other_arm"] == other_arm)
                     & (table["split"] == split)]
        return rows.iloc[0] if len(rows) else None

    def say(arm: str, other_arm: str, split: str) -> str | None:
        r = row_of(arm, other_arm, split)
        if r is None:
            return None
        iv = stats.Interval(r.mean_diff, r.mean_diff_low, r.mean_diff_high)
        if r.equal == r.n:
            return f"equal in all {r.n} pairs"
        judged = _judge(iv, r.wilcoxon_p, r.n, ties=r.equal)
        word = (f"{judged} here" if judged in ("higher", "lower")
                else _undecided(judged, r.n, r.equal))
        return (f"{word}: {_pts(iv.estimate)} points ({_ci_pts(iv)}, Wilcoxon "
                f"{_p(r.wilcoxon_p)}, n = {r.n}, {r.equal} equal)")

    parts = [f"{len(pairs)} matched pair(s) over {len(labels)} configuration(s) with study "
             f"{other.study_name!r}" + (f" ({changed})" if ignored else "")]
    for arm, split, label in (("distill", "dev", "distill arm, dev"),
                              ("distill", "test", "distill arm, test (exploratory)"),
                              ("baseline", "dev", "baseline arm, dev"),
                              ("gap", "dev", "distill − baseline gap, dev")):
        said = say(arm, arm, split)
        if said:
            parts.append(f"{label}: {said}")
    # one study's distill arm against the other's baseline, where both saw as many sentences
    for arm, other_arm in (("distill", "baseline"), ("baseline", "distill")):
        r = row_of(arm, other_arm, "dev")
        if r is None or not bool(r["equal_compute"]):
            continue
        dev, test = say(arm, other_arm, "dev"), say(arm, other_arm, "test")
        parts.append(f"at equal compute (as many sentences seen in every pair), this study's "
                     f"{arm} arm − the {other_arm} arm of study {other.study_name!r}, dev: {dev}"
                     + (f", and test (exploratory): {test}" if test else ""))
    return Against(True, other.study_name, tuple(ignored), pairs, table, method,
                   "; ".join(parts) + ".")


# -- everything ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Report:
    """All sections of one report, in reading order."""

    header: Header
    summary: Summary
    paired: PairedComparison
    sensitivity: Sensitivity
    expected_max: ExpectedMax
    teacher: TeacherSection
    test_check: TestCheck
    cost: Cost
    trials: pd.DataFrame = field(repr=False)
    inputs: ReportInputs = field(repr=False)
    against: Against | None = None


def analyze(inputs: ReportInputs, *, seed: int = 0, n_resamples: int = 4999,
            against_inputs: ReportInputs | None = None) -> Report:
    """Compute every section of the report from one snapshot.

    Args:
        inputs: from :func:`reports.inputs.load_inputs` or :func:`reports.inputs.inputs_from_study`.
        seed: seed of every bootstrap and of fANOVA's forest, so a report is reproducible.
        n_resamples: bootstrap resamples for the gap statistics.
        against_inputs: another study's snapshot to compare with, trial by trial
            (:func:`against`); None for no such section.
    """
    frame = trial_frame(inputs)
    check = test_check(inputs, frame)
    other = None if against_inputs is None else against(
        inputs, frame, against_inputs, seed=seed, n_resamples=n_resamples)
    return Report(
        header=header(inputs, frame),
        summary=summary(inputs, frame, check),
        paired=paired_comparison(inputs, frame, seed=seed, n_resamples=n_resamples),
        sensitivity=sensitivity(inputs, frame, seed=seed),
        expected_max=expected_max(frame, seed=seed),
        teacher=teacher_section(inputs, frame),
        test_check=check,
        cost=cost(frame),
        trials=frame,
        inputs=inputs,
        against=other,
    )
