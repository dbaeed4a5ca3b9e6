"""The report's statistics against brute force and worked examples."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from reports import stats


@pytest.mark.parametrize(
    "values",
    [
        [0.81, 0.84, 0.79, 0.86, 0.83, 0.80, 0.85],
        [0.80, 0.80, 0.82, 0.82, 0.82, 0.79],  # ties, as on a finite dev set
        [0.5],
    ],
)
def test_expected_max_matches_brute_force_over_all_subsets(values):
    """Tang et al. 2020: E[max of n drawn without replacement] equals the average over subsets."""
    v = np.asarray(values)
    N = v.size
    unbiased = stats.expected_max_unbiased(v)
    spread = stats.expected_max_std(v)
    for n in range(1, N + 1):
        maxima = np.array([max(c) for c in itertools.combinations(v, n)])
        assert unbiased[n - 1] == pytest.approx(maxima.mean(), abs=1e-12)
        assert spread[n - 1] == pytest.approx(maxima.std(), abs=1e-9)
    assert unbiased[0] == pytest.approx(v.mean())
    assert unbiased[-1] == pytest.approx(v.max())


def test_expected_max_weights_are_distributions_even_for_large_n():
    w = stats.expected_max_weights(400)  # C(400, 200) overflows float64: log space needed
    assert np.all(np.isfinite(w))
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-9)
    assert np.all(np.tril(w, -1) == 0)  # the max of n values is at least the n-th smallest
    assert w[0] == pytest.approx(np.full(400, 1 / 400))
    assert w[-1, -1] == pytest.approx(1.0)


def test_plugin_estimator_matches_with_replacement_brute_force_and_is_biased_low():
    """Dodge et al.'s estimator is E[max] under draws *with* replacement: never above Tang's."""
    v = np.array([0.70, 0.75, 0.78, 0.90])
    plugin = stats.expected_max_plugin(v)
    for n in range(1, 5):
        maxima = [max(c) for c in itertools.product(v, repeat=n)]
        assert plugin[n - 1] == pytest.approx(np.mean(maxima))
    unbiased = stats.expected_max_unbiased(v)
    assert plugin[0] == pytest.approx(unbiased[0])
    assert np.all(plugin[1:] < unbiased[1:])


def test_expected_max_bootstrap_band_is_ordered_and_seeded():
    v = np.random.default_rng(3).normal(0.8, 0.02, 30)
    low, high = stats.expected_max_bootstrap(v, seed=1, n_resamples=300)
    again = stats.expected_max_bootstrap(v, seed=1, n_resamples=300)
    np.testing.assert_array_equal(low, again[0])
    assert low.shape == high.shape == (30,)
    assert np.all(low <= high)
    assert np.all(np.diff(low) >= -1e-12)  # resampled curves are monotone, so are quantiles


def test_mcnemar_worked_example():
    """1 vs 8 discordant pairs: p = 2 * P(X <= 1 | Binomial(9, 1/2)) = 2 * 10 / 512."""
    # 20 examples: 10 both right, 1 only A right, 8 only B right, 1 both wrong.
    a = np.array([1] * 10 + [1] + [0] * 8 + [0], dtype=bool)
    b = np.array([1] * 10 + [0] + [1] * 8 + [0], dtype=bool)
    r = stats.mcnemar_exact(a, b)
    assert (r.n, r.both_right, r.only_a, r.only_b, r.both_wrong) == (20, 10, 1, 8, 1)
    assert r.p_value == pytest.approx(20 / 512)
    assert r.p_value == pytest.approx(sps.binomtest(1, 9, 0.5).pvalue)
    assert stats.mcnemar_exact(b, a).p_value == pytest.approx(r.p_value)


def test_mcnemar_without_discordant_pairs_is_one_and_lengths_must_agree():
    same = np.array([True, False, True])
    assert stats.mcnemar_exact(same, same).p_value == 1.0
    with pytest.raises(ValueError):
        stats.mcnemar_exact(same, same[:2])


def test_wilson_interval_matches_the_formula():
    k, n, z = 380, 436, sps.norm.ppf(0.975)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    iv = stats.wilson_interval(k, n)
    assert iv.estimate == pytest.approx(p)
    assert iv.low == pytest.approx(centre - half, abs=1e-9)
    assert iv.high == pytest.approx(centre + half, abs=1e-9)
    # The study we reproduce: one of 436 examples is 0.23 points; ±3.2 points at 87%.
    iv87 = stats.wilson_interval(379, 436)
    assert 100 * (iv87.high - iv87.low) / 2 == pytest.approx(3.2, abs=0.1)


def test_prob_better_counts_ties_as_half():
    a = np.array([0.80, 0.82, 0.83, 0.90])
    b = np.array([0.79, 0.82, 0.84, 0.85])
    iv = stats.prob_better(a, b, n_resamples=500)
    assert iv.estimate == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert 0 <= iv.low <= iv.estimate <= iv.high <= 1


def test_planted_gap_is_recovered_inside_its_intervals():
    rng = np.random.default_rng(7)
    baseline = rng.normal(0.85, 0.02, 60)
    distill = baseline + rng.normal(0.01, 0.008, 60)
    s = stats.gap_summary(distill, baseline, seed=0, n_resamples=2000)
    assert s.n == 60
    assert s.mean.low < 0.01 < s.mean.high
    assert s.median.low < 0.01 < s.median.high
    assert s.mean.low > 0 and s.wilcoxon_p < 1e-6
    assert s.p_better.low > 0.75  # "meaningful" in Bouthillier et al.'s terms
    # Seeded: the same call gives the same interval.
    assert stats.gap_summary(distill, baseline, seed=0, n_resamples=2000) == s


def test_no_gap_gives_an_interval_around_zero():
    rng = np.random.default_rng(11)
    baseline = rng.normal(0.85, 0.02, 40)
    distill = baseline + rng.normal(0.0, 0.01, 40)
    s = stats.gap_summary(distill, baseline, n_resamples=2000)
    assert s.mean.low < 0 < s.mean.high
    assert s.wilcoxon_p > 0.05
    assert s.p_better.low < 0.5 < s.p_better.high


def test_degenerate_samples_do_not_fail():
    assert stats.wilcoxon_p(np.zeros(5)) == 1.0
    assert math.isnan(stats.wilcoxon_p(np.array([0.01])))
    iv = stats.bootstrap_ci(np.full(6, 0.02))
    assert iv == (0.02, 0.02, 0.02)
    one = stats.bootstrap_ci(np.array([0.3]))
    assert one.estimate == 0.3 and math.isnan(one.low)


def test_stratified_bootstrap_keeps_every_stratum_weight():
    """Constant within strata of sizes 2 and 4: every resample's mean is (2a + 4b) / 6, so the
    stratified interval collapses to it; an i.i.d. bootstrap also resamples the strata's shares
    and gives a wide interval."""
    values = np.array([0.01, 0.01, 0.05, 0.05, 0.05, 0.05])
    strata = np.array(["a", "a", "b", "b", "b", "b"])
    iv = stats.stratified_bootstrap_ci(values, strata, seed=1, n_resamples=500)
    assert iv.estimate == pytest.approx((2 * 0.01 + 4 * 0.05) / 6)
    assert iv.low == pytest.approx(iv.estimate) and iv.high == pytest.approx(iv.estimate)
    pooled = stats.bootstrap_ci(values, seed=1, n_resamples=500)
    assert pooled.high - pooled.low > 0.01


def test_stratified_bootstrap_matches_a_brute_force_resampling_distribution():
    """Two strata of two: 4 x 4 equally likely resamples; the percentile interval must lie
    on the support of that exact distribution and contain its median."""
    values = np.array([0.0, 0.04, 0.01, 0.03])
    strata = np.array([0, 0, 1, 1])
    exact = sorted(np.mean([values[i], values[j], values[k], values[m]])
                   for i in (0, 1) for j in (0, 1) for k in (2, 3) for m in (2, 3))
    iv = stats.stratified_bootstrap_ci(values, strata, seed=0, n_resamples=4000)
    assert min(exact) - 1e-12 <= iv.low <= np.median(exact) <= iv.high <= max(exact) + 1e-12
    assert iv.low < iv.estimate < iv.high
    again = stats.stratified_bootstrap_ci(values, strata, seed=0, n_resamples=4000)
    assert again == iv  # seeded


def test_stratified_bootstrap_refuses_a_stratum_of_one_and_mismatched_lengths():
    with pytest.raises(ValueError, match="at least two"):
        stats.stratified_bootstrap_ci(np.array([0.1, 0.2, 0.3]), np.array([0, 0, 1]))
    with pytest.raises(ValueError, match="must be equal"):
        stats.stratified_bootstrap_ci(np.array([0.1, 0.2]), np.array([0, 0, 1]))


def test_gap_summary_with_strata_changes_intervals_not_the_test():
    distill = np.array([0.86, 0.87, 0.88, 0.90, 0.90, 0.91])
    baseline = np.array([0.85, 0.86, 0.87, 0.86, 0.86, 0.87])  # gaps 1,1,1 and 4,4,4 points
    strata = np.array(["x", "x", "x", "y", "y", "y"])
    plain = stats.gap_summary(distill, baseline, seed=2, n_resamples=999)
    strat = stats.gap_summary(distill, baseline, seed=2, n_resamples=999, strata=strata)
    assert strat.wilcoxon_p == plain.wilcoxon_p < 0.05
    assert strat.mean.estimate == pytest.approx(plain.mean.estimate) == pytest.approx(0.025)
    # constant within each configuration: nothing left to resample once strata are kept
    assert strat.mean.low == pytest.approx(0.025) and strat.mean.high == pytest.approx(0.025)
    assert plain.mean.high - plain.mean.low > 0.01
    assert strat.p_better == (1.0, 1.0, 1.0)


@pytest.mark.parametrize(("n", "smallest"), [(2, 0.5), (4, 0.125), (5, 0.0625), (6, 0.03125)])
def test_the_smallest_signed_rank_p_a_number_of_pairs_can_give(n, smallest):
    assert stats.wilcoxon_min_p(n) == pytest.approx(smallest)
    # and it is attained: n gaps of one sign
    assert stats.wilcoxon_p(np.linspace(0.01, 0.02, n)) == pytest.approx(smallest)


@pytest.mark.parametrize(("n", "ties", "smallest"),
                         [(6, 0, 0.03125), (6, 1, 0.0625), (7, 1, 0.03125), (8, 3, 0.0625),
                          (3, 3, 1.0)])
def test_tied_pairs_carry_no_sign_so_they_raise_the_smallest_p(n, ties, smallest):
    assert stats.wilcoxon_min_p(n, ties) == pytest.approx(smallest)
    # attained by the other n - ties gaps all of one sign
    gaps = np.concatenate([np.zeros(ties), np.linspace(0.01, 0.02, n - ties)])
    assert stats.wilcoxon_p(gaps) == pytest.approx(smallest)
    summary = stats.gap_summary(0.8 + gaps, np.full(n, 0.8), n_resamples=99)
    assert summary.n == n and summary.ties == ties
