"""The report's sections on synthetic studies with known truth (in-memory Optuna storage)."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from reports import analysis as A
from reports import stats
from reports.inputs import inputs_from_study
from reports.synthetic import SyntheticSpec, make_study, make_teacher

N_RESAMPLES = 999


def _inputs(spec: SyntheticSpec, teacher: bool = True):
    study = make_study(spec)
    if not teacher:
        return inputs_from_study(study)
    t = make_teacher(spec)
    return inputs_from_study(
        study,
        teacher_diagnostics=t.diagnostics,
        teacher_test_logits=t.test_logits,
        test_labels=t.test_labels,
    )


@pytest.fixture(scope="module")
def planted():
    """A study with a planted +1 point gap that temperature does not change."""
    spec = SyntheticSpec(n_trials=40, gap_mean=0.01, gap_noise=0.006, seed=3)
    inputs = _inputs(spec)
    return spec, inputs, A.analyze(inputs, n_resamples=N_RESAMPLES)


def test_planted_gap_is_recovered_inside_its_ci(planted):
    spec, _, report = planted
    o = report.paired.overall
    assert o.n == spec.n_trials  # replicates excluded: one row per configuration
    assert o.mean.low < spec.gap_mean < o.mean.high
    assert o.mean.low > 0 and o.wilcoxon_p < 0.01
    assert report.paired.conclusion.startswith("Distillation beats the baseline by +")
    # The conclusion's numbers are the computed ones.
    assert f"{100 * o.mean.estimate:+.1f} points" in report.paired.conclusion


def test_no_planted_gap_reads_as_no_difference():
    spec = SyntheticSpec(n_trials=30, gap_mean=0.0, gap_noise=0.006, seed=5)
    p = A.paired_comparison(
        _inputs(spec, teacher=False),
        A.trial_frame(_inputs(spec, teacher=False)),
        n_resamples=N_RESAMPLES,
    )
    assert p.overall.mean.low < 0 < p.overall.mean.high
    assert p.conclusion.startswith("No difference detectable")


def test_subgroups_cover_top_categoricals_and_temperature_bands(planted):
    _, _, report = planted
    g = report.paired.subgroups
    assert set(g["group"]) == {"all", "top", "cell", "soft_loss", "temperature", "seeds"}
    assert set(g.loc[g["group"] == "cell", "value"]) == {"lstm", "gru"}
    # the 3 replicated configurations with all their seeds (3 each)
    assert g.loc[g["group"] == "seeds", "n"].item() == 9
    assert g.loc[g["group"] == "cell", "n"].sum() == 40
    assert g.loc[g["group"] == "temperature", "n"].sum() == 40
    assert g.loc[g["group"] == "top", "n"].item() == report.paired.top_k == 10


def test_gap_driver_ranks_first_for_the_gap_and_not_for_the_arms():
    """Temperature alone drives the gap; lr dominates both arms."""
    spec = SyntheticSpec(
        n_trials=48,
        gap_mean=0.0,
        gap_slope=0.05,
        gap_noise=0.001,
        seed_noise=0.001,
        lr_amplitude=0.15,
        n_replicated=0,
        seed=1,
    )
    inputs = _inputs(spec, teacher=False)
    s = A.sensitivity(inputs, A.trial_frame(inputs))
    imp = s.importances
    assert set(imp["evaluator"]) == {"fANOVA", "PED-ANOVA"}
    for evaluator in ("fANOVA", "PED-ANOVA"):

        def first(target, evaluator=evaluator):
            sub = imp[(imp["evaluator"] == evaluator) & (imp["target"] == target)]
            return sub.loc[sub["rank"] == 1, "param"].tolist()

        assert first("gap") == ["temperature"], evaluator
        assert first("distill") == first("baseline") == ["lr"], evaluator
    assert s.top_params[0] in ("temperature", "lr")
    assert "temperature for the gap" in s.conclusion


def test_too_few_trials_degrade_gracefully():
    spec = SyntheticSpec(n_trials=3, n_replicated=0, n_pruned=0, n_failed=0, n_running=0)
    inputs = _inputs(spec, teacher=False)
    report = A.analyze(inputs, n_resamples=N_RESAMPLES)
    assert report.sensitivity.importances.empty
    assert "at least" in report.sensitivity.conclusion
    assert report.paired.available and report.paired.overall.n == 3
    assert report.expected_max.available
    assert not report.teacher.available
    assert "not available" in report.teacher.conclusion
    assert "seed spread not available" in report.sensitivity.conclusion


def test_empty_study_makes_every_section_say_not_available():
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    report = A.analyze(inputs_from_study(study), n_resamples=N_RESAMPLES)
    for section in (
        report.summary,
        report.paired,
        report.expected_max,
        report.teacher,
        report.test_check,
    ):
        assert not section.available
        assert "not available" in section.conclusion.lower()
    assert report.cost.counts["COMPLETE"] == 0


def test_multi_objective_study_reads_both_arms_from_values_or_attrs():
    spec = SyntheticSpec(n_trials=12, objective="both", n_pruned=0)
    inputs = _inputs(spec)
    assert inputs.is_multi_objective
    frame = A.trial_frame(inputs)
    done = [t for t in inputs.trials if t.state == TrialState.COMPLETE]
    np.testing.assert_allclose(frame.loc[frame["used"], "distill_dev"], [t.values[0] for t in done])
    np.testing.assert_allclose(
        frame.loc[frame["used"], "baseline_dev"], [t.values[1] for t in done]
    )
    # Without the arm attributes the values are the fallback.
    bare = copy.deepcopy(done[0])
    bare.user_attrs = {}
    assert A.arm_dev_acc(bare, "baseline", "both") == done[0].values[1]
    report = A.analyze(inputs, n_resamples=N_RESAMPLES)
    assert report.header.directions == ("maximize", "maximize")
    assert report.sensitivity.importances["target"].nunique() == 3


def test_running_pruned_and_out_of_budget_trials_are_counted_not_mixed(planted):
    spec, inputs, report = planted
    h = report.header
    assert h.state_counts["RUNNING"] == spec.n_running
    assert h.state_counts["PRUNED"] == spec.n_pruned
    assert "still running" in h.note
    assert (h.epochs, h.max_train_examples) == (spec.epochs, spec.max_train_examples)
    # One completed trial with another budget is excluded and reported.
    t = next(t for t in inputs.trials if t.state == TrialState.COMPLETE)
    other = copy.deepcopy(t)
    other.user_attrs = {**t.user_attrs, "budget": {**t.user_attrs["budget"], "epochs": 99}}
    other.number = 10_000
    mixed = dataclasses.replace(inputs, trials=inputs.trials + (other,))
    frame = A.trial_frame(mixed)
    assert not frame.loc[frame["number"] == 10_000, "used"].item()
    assert "different budget" in A.header(mixed, frame).note


def test_variance_decomposition_matches_grouped_replicates(planted):
    spec, _, report = planted
    v = report.sensitivity.variance.set_index("metric")
    frame = report.trials
    used = frame[frame["used"]]
    groups = used.groupby("config_id").filter(lambda g: len(g) >= 2).groupby("config_id")
    assert v.loc["baseline", "seed_configs"] == spec.n_replicated == groups.ngroups
    pooled = np.sqrt(
        sum(((g - g.mean()) ** 2).sum() for _, g in groups["baseline_dev"])
        / sum(len(g) - 1 for _, g in groups["baseline_dev"])
    )
    assert v.loc["baseline", "seed_std_pooled"] == pytest.approx(pooled)
    primary = frame.loc[frame["primary"], "baseline_dev"]
    assert v.loc["baseline", "study_range"] == pytest.approx(primary.max() - primary.min())
    q75, q25 = np.percentile(primary, [75, 25])
    assert v.loc["baseline", "study_iqr"] == pytest.approx(q75 - q25)


def test_replicated_configurations_carry_their_seeds_test_accuracy(planted):
    _, _, report = planted
    g = report.sensitivity.seed_groups
    frame = report.trials
    used = frame[frame["used"]]
    groups = used.groupby("config_id").filter(lambda x: len(x) >= 2).groupby("config_id")
    for config_id, grp in groups:
        rows = g[g["config_id"] == config_id].set_index("metric")
        for arm in ("distill", "baseline"):
            test = grp[f"{arm}_test_acc"].astype(float)
            assert rows.loc[arm, "test_mean"] == pytest.approx(test.mean())
            assert rows.loc[arm, "test_min"] == pytest.approx(test.min())
            assert rows.loc[arm, "test_max"] == pytest.approx(test.max())
        gap = grp["distill_test_acc"].astype(float) - grp["baseline_test_acc"].astype(float)
        assert rows.loc["gap", "test_mean"] == pytest.approx(gap.mean())
    # A seed without a test accuracy leaves the configuration's test columns empty, never a
    # mean over some of its seeds.
    config_id, grp = next(iter(groups))
    frame = frame.copy()
    frame.loc[grp.index[0], "distill_test_acc"] = None
    rows = A._variance_tables(frame)[1]
    rows = rows[rows["config_id"] == config_id].set_index("metric")
    assert np.isnan(rows.loc["distill", "test_mean"]) and np.isnan(rows.loc["gap", "test_mean"])
    assert np.isfinite(rows.loc["baseline", "test_mean"])


def test_seed_spread_estimates_the_planted_seed_noise():
    spec = SyntheticSpec(
        n_trials=12,
        n_replicated=5,
        n_seeds=6,
        seed_noise=0.01,
        gap_noise=0.0,
        dev_size=100_000,
        seed=2,
    )
    inputs = _inputs(spec, teacher=False)
    v = A.sensitivity(inputs, A.trial_frame(inputs)).variance.set_index("metric")
    assert v.loc["baseline", "seed_trials"] == 30
    assert 0.6 * spec.seed_noise < v.loc["baseline", "seed_std_pooled"] < 1.4 * spec.seed_noise


def test_expected_max_curve_ends_at_the_sample_max_and_starts_at_the_mean(planted):
    _, _, report = planted
    e = report.expected_max
    frame = report.trials[report.trials["primary"]]
    for arm in ("distill", "baseline"):
        c = e.curve[e.curve["arm"] == arm].set_index("n")
        assert c.loc[1, "expected_max"] == pytest.approx(frame[f"{arm}_dev"].mean())
        assert c.loc[e.n_trials, "expected_max"] == pytest.approx(frame[f"{arm}_dev"].max())
        assert np.all(np.diff(c["expected_max"]) >= -1e-12)
        assert 1 <= e.enough[arm] <= e.n_trials


def test_test_check_picks_on_dev_and_runs_mcnemar_on_the_stored_predictions(planted):
    spec, inputs, report = planted
    c = report.test_check
    frame = report.trials[report.trials["used"]]
    assert c.best_trials["distill"] == int(frame.loc[frame["distill_dev"].idxmax(), "number"])
    assert c.n_test == spec.test_size
    assert c.points_per_example == pytest.approx(100 / spec.test_size)
    labels = inputs.test_labels
    by_number = {t.number: t for t in inputs.trials}

    def correct(arm):
        pred = by_number[c.best_trials[arm]].user_attrs[f"{arm}_test_pred"]
        return np.array([int(ch) for ch in pred]) == labels

    d, b = correct("distill"), correct("baseline")
    row = c.mcnemar[(c.mcnemar["a"] == "best distill") & (c.mcnemar["b"] == "best baseline")]
    assert row["only_a"].item() == int((d & ~b).sum())
    assert row["only_b"].item() == int((~d & b).sum())
    m = c.models.set_index("model")
    assert m.loc["best distill", "test_acc"] == pytest.approx(d.mean())
    assert m.loc["best distill", "low"] < d.mean() < m.loc["best distill", "high"]
    assert f"one example = {100 / spec.test_size:.2f} points" in c.conclusion


def test_test_check_without_labels_uses_recorded_accuracy():
    spec = SyntheticSpec(n_trials=6, n_replicated=0)
    inputs = _inputs(spec, teacher=False)
    c = A.test_check(inputs, A.trial_frame(inputs))
    assert c.available and c.mcnemar.empty
    assert "McNemar not available" in c.conclusion


def test_teacher_section_reads_diagnostics_and_temperature_trend():
    spec = SyntheticSpec(n_trials=40, gap_slope=0.04, gap_noise=0.003, seed=4)
    inputs = _inputs(spec)
    t = A.teacher_section(inputs, A.trial_frame(inputs))
    diag = inputs.teacher_diagnostics
    assert t.ece == pytest.approx(diag["ece"]["dev"])
    assert t.overconfidence > 0.01 and "over-confident" in t.conclusion
    assert list(t.entropy["T"]) == [1, 2, 4, 8]
    assert t.entropy["normalized"].is_monotonic_increasing
    assert t.temperature_effect["spearman_rho"] > 0.5
    assert "the gap grows with temperature" in t.conclusion
    acc = t.accuracy.set_index("split")
    expected = (inputs.teacher_test_logits.argmax(axis=1) == inputs.test_labels).mean()
    assert acc.loc["test", "accuracy"] == pytest.approx(expected)


def test_cost_counts_pruning_savings_and_throughput(planted):
    spec, _, report = planted
    k = report.cost
    complete = spec.n_trials + spec.n_replicated * (spec.n_seeds - 1)
    assert k.counts == {
        "RUNNING": spec.n_running,
        "COMPLETE": complete,
        "PRUNED": spec.n_pruned,
        "FAIL": spec.n_failed,
        "WAITING": 0,
    }
    assert k.epochs_full == (complete + spec.n_pruned) * spec.epochs
    assert k.epochs_run == complete * spec.epochs + spec.n_pruned  # pruned after one epoch
    assert k.saved_fraction == pytest.approx(1 - k.epochs_run / k.epochs_full)
    # Two workers run trials in pairs of `minutes_per_trial`.
    n_all = complete + spec.n_pruned + spec.n_failed + spec.n_running
    hours = ((n_all - 1) // 2 * spec.minutes_per_trial + spec.minutes_per_trial) / 60
    assert k.hours == pytest.approx(hours)
    finished = complete + spec.n_pruned + spec.n_failed
    assert k.trials_per_hour == pytest.approx(finished / hours)
    assert len(k.workers) == 2 and "on 2 workers" in k.conclusion


def test_summary_marks_estimated_sizes_and_missing_throughput(planted):
    _, _, report = planted
    t = report.summary.table.set_index("model")
    assert list(t.index) == ["teacher", "best distill", "best baseline"]
    d = t.loc["best distill"]
    assert d["file_bytes"] == 4 * d["params_total"]
    assert d["file_size_source"].startswith("estimated")
    assert np.isnan(d["infer_sent_per_s"])
    assert t.loc["teacher", "infer_sent_per_s"] == 350.0
    assert d["train_s_per_epoch"] == pytest.approx(30.0)
    assert d["dev_acc"] == report.trials.loc[report.trials["used"], "distill_dev"].max()


def test_arm_frame_has_one_row_per_trial_and_arm_with_params(planted):
    _, inputs, report = planted
    arms = A.arm_frame(report.trials)
    assert len(arms) == 2 * len(inputs.trials)
    assert {"temperature", "lr", "cell", "soft_loss", "dev", "test_acc", "arm"} <= set(arms)
    assert isinstance(arms, pd.DataFrame)


def test_gap_at_equal_compute_is_its_own_subgroup():
    """Trials whose distill arm saw augmented rows are split from those at equal compute."""
    spec = SyntheticSpec(n_trials=24, gap_mean=0.0, gap_noise=0.004, n_replicated=0, seed=9)
    inputs = _inputs(spec, teacher=False)
    frame = A.trial_frame(inputs)
    more = frame["primary"] & (frame.index % 2 == 0)
    # plant: the trials with twice the distill sentences (augmented) gain +3 points
    frame.loc[more, "distill_sentences_seen"] = 2 * frame.loc[more, "baseline_sentences_seen"]
    frame.loc[more, "distill_dev"] = frame.loc[more, "distill_dev"] + 0.03
    p = A.paired_comparison(inputs, frame, n_resamples=N_RESAMPLES)
    rows = p.subgroups.set_index(["group", "value"])
    equal, extra = rows.loc[("compute", "equal")], rows.loc[("compute", "distill_more")]
    assert equal["n"] + extra["n"] == p.overall.n
    assert equal["mean_gap_low"] < 0 < equal["mean_gap_high"]
    assert extra["mean_gap_low"] > 0.02
    assert "compute=distill_more" in p.conclusion


def test_stopped_and_surplus_trials_are_not_called_failures():
    spec = SyntheticSpec(n_trials=6, n_replicated=0, n_pruned=0, n_failed=3, n_running=0, seed=1)
    study = make_study(spec)
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(failed) == 3
    # mark one as stopped by SIGTERM and one as a surplus start (both re-queued by the runner)
    trials = []
    for t in study.trials:
        if t.number == failed[0].number:
            t = copy.deepcopy(t)
            t.set_user_attr("interrupted", "SIGTERM")
        elif t.number == failed[1].number:
            t = copy.deepcopy(t)
            t.set_user_attr("surplus", True)
        trials.append(t)
    marked = optuna.create_study(study_name="marked")
    marked.add_trials(trials)
    report = A.analyze(inputs_from_study(marked), n_resamples=99)
    assert "1 failed, 2 stopped and re-queued" in report.cost.conclusion
    assert "0 pruned and 1 failed trials are not in the gap statistics (2 more were stopped" \
        in report.header.note


@pytest.mark.parametrize(("gap_mean", "verdict"), [(0.03, "distillation beats the baseline"),
                                                    (0.0, "no difference detectable")])
def test_a_confirmation_with_seeds_is_judged_over_its_seeds(gap_mean, verdict):
    """Two configurations with three seeds each (a `study confirm --seeds 3`): two primary
    pairs are too few for a verdict, the six seeds of the two fixed configurations are not."""
    spec = SyntheticSpec(n_trials=2, n_replicated=2, n_seeds=3, gap_mean=gap_mean,
                         gap_noise=0.002, seed_noise=0.002, n_pruned=0, n_failed=0,
                         n_running=0, seed=4)
    inputs = _inputs(spec, teacher=False)
    p = A.paired_comparison(inputs, A.trial_frame(inputs), n_resamples=N_RESAMPLES)
    assert p.overall.n == 2
    # Two pairs: the signed-rank test's smallest p is 0.5, so it never decides; a bootstrap
    # interval clear of zero is then reported as a direction too few pairs to confirm.
    o = p.overall
    clear = o.mean.low > 0 or o.mean.high < 0
    assert clear == bool(gap_mean)
    assert p.conclusion.startswith(
        "Too few pairs to decide (the bootstrap interval is clear of zero, but the signed-rank "
        "test's smallest p with 2 pairs is 0.5)" if clear else "No difference detectable")
    rows = p.subgroups.set_index("group")
    seeds = rows.loc["seeds"]
    assert seeds["n"] == 6 and seeds["value"] == "all seeds of 2 replicated configurations"
    gaps = p.pairs["gap"]  # primary pairs only; the seeds row covers the replicates too
    assert len(gaps) == 2
    assert "Over every seed of the 2 configurations run with several seeds (for those " \
           f"configurations): {verdict}" in p.conclusion
    if gap_mean:
        assert seeds["mean_gap_low"] > 0.02 and seeds["wilcoxon_p"] < 0.05
    else:
        assert seeds["mean_gap_low"] <= 0 <= seeds["mean_gap_high"] or seeds["wilcoxon_p"] > 0.05


def test_a_tied_pair_counts_against_what_the_signed_rank_test_can_reach():
    """Six pairs, one tied and five positive: the signed-rank test's best is then 2/2^5, so an
    interval clear of zero is "too few pairs", not "no difference detectable"; a sixth
    positive pair in place of the tie decides."""
    baseline = np.full(6, 0.86)
    tied = stats.gap_summary(baseline + [0.0, 0.01, 0.012, 0.014, 0.016, 0.018], baseline,
                             n_resamples=999)
    assert tied.ties == 1 and tied.mean.low > 0 and tied.wilcoxon_p == pytest.approx(0.0625)
    assert A._verdict(tied).startswith(
        "too few pairs to decide (the bootstrap interval is clear of zero, but the signed-rank "
        "test's smallest p with 6 pairs, 1 of them tied, is 0.0625)")
    untied = stats.gap_summary(baseline + [0.008, 0.01, 0.012, 0.014, 0.016, 0.018], baseline,
                               n_resamples=999)
    assert untied.ties == 0
    assert A._verdict(untied).startswith("distillation beats the baseline by +1.3 points")


def test_trials_that_asked_for_augmented_rows_but_saw_none_are_named():
    """A configuration with augment_factor > 0 whose distill arm saw no more sentences than
    its baseline trained without augmented rows: the header says which trials."""
    inputs = _inputs(SyntheticSpec(n_trials=8, seed=2), teacher=False)
    used = A.trial_frame(inputs).query("used")["number"].tolist()[:3]
    trials = [copy.deepcopy(t) for t in inputs.trials]
    by_number = {t.number: t for t in trials}
    for number in used:
        t = by_number[number]
        t.user_attrs["config"] = {**t.user_attrs.get("config", {}), "augment_factor": 1}
    by_number[used[2]].user_attrs["distill"]["sentences_seen"] *= 2  # this one saw them
    inputs = dataclasses.replace(inputs, trials=trials)
    note = A.header(inputs, A.trial_frame(inputs)).note
    assert (f"2 trial(s) ({used[0]}, {used[1]}) ask for augment_factor > 0, but their distill "
            "arm saw no more sentences than the baseline") in note
    clean = _inputs(SyntheticSpec(n_trials=8, seed=2), teacher=False)
    assert "ask for augment_factor" not in A.header(clean, A.trial_frame(clean)).note


def _scaled(inputs, name: str, arm: str, seen: int, plus: float):
    """``inputs`` with one arm's sentences seen multiplied by ``seen`` and ``plus`` added to its
    best dev and test accuracy, in every trial."""
    trials = [copy.deepcopy(t) for t in inputs.trials]
    for t in trials:
        info = t.user_attrs.get(arm)
        if isinstance(info, dict) and info.get("best_dev_acc") is not None:
            info["sentences_seen"] *= seen
            info["best_dev_acc"] += plus
            info["test_acc"] += plus
    return dataclasses.replace(inputs, trials=trials, study_name=name)


def _with_epochs(inputs, epochs: int):
    """``inputs`` as a study (and trials) run for ``epochs`` epochs."""
    trials = [copy.deepcopy(t) for t in inputs.trials]
    for t in trials:
        t.user_attrs["budget"]["epochs"] = epochs
    return dataclasses.replace(inputs, trials=trials,
                               study_attrs={**inputs.study_attrs, "epochs": epochs})


def test_against_sets_one_studys_distill_arm_against_the_others_baseline_at_equal_compute():
    """Study 'aug' trains its distill arm on 5x the rows (+3 points); study 'longer' trains
    both arms 5x as long (the baseline gains 1 point). Matched trial by trial, the rows
    that compare 'longer's baseline with 'aug''s distill arm are the equal-compute ones."""
    spec = SyntheticSpec(n_trials=10, n_replicated=0, n_pruned=0, n_failed=0, n_running=0,
                         gap_mean=0.0, gap_noise=0.002, seed=5)
    plain = _inputs(spec, teacher=False)
    aug = _scaled(plain, "aug", "distill", 5, 0.03)
    aug = _with_epochs(aug, 3)
    longer = _scaled(_scaled(plain, "longer", "baseline", 5, 0.01), "longer", "distill", 5, 0.0)
    longer = _with_epochs(longer, 15)
    a = A.against(longer, A.trial_frame(longer), aug, n_resamples=N_RESAMPLES)
    assert a.available and len(a.pairs) == 10
    rows = a.table.set_index(["arm", "other_arm", "split"])
    assert len(rows) == 9 and rows.index.is_unique
    cross = rows.loc[("baseline", "distill", "dev")]
    assert cross["equal_compute"] and cross["sentences_ratio"] == 1.0
    assert cross["mean_diff_high"] < 0 and abs(cross["mean_diff"] + 0.02) < 0.005
    other_way = rows.loc[("distill", "baseline", "dev")]
    assert not other_way["equal_compute"] and other_way["sentences_ratio"] == 5.0
    same = rows.loc[("distill", "distill", "dev")]
    assert same["equal_compute"] and abs(same["mean_diff"] + 0.03) < 1e-9
    assert not rows.loc[("baseline", "baseline", "dev")]["equal_compute"]
    assert ("; at equal compute (as many sentences seen in every pair), this study's baseline "
            "arm − the distill arm of study 'aug', dev: lower here: -1.8 points (95% CI -2.1 to "
            "-1.5, Wilcoxon p=0.002, n = 10, 0 equal), and test (exploratory): lower here: "
            in a.conclusion)
    assert "this study's distill arm − the baseline arm" not in a.conclusion
    assert "The studies' budgets differ (epochs 15 here, 3 there)." in a.method
