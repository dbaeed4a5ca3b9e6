"""Pure statistics for the report: paired comparisons, expected maximum, McNemar, Wilson.

Nothing here knows about Optuna or plotly; every function takes arrays and returns numbers
(NamedTuples or arrays), so tests can check them against worked examples and brute force.

References:
    Bouthillier et al. 2021, "Accounting for Variance in Machine Learning Benchmarks" (MLSys):
    P(A > B) on paired runs with a bootstrap interval.
    Dodge et al. 2019, "Show Your Work: Improved Reporting of Experimental Results" (EMNLP):
    expected maximum validation performance against the number of trials.
    Tang et al. 2020, "Showing Your Work Doesn't Always Work" (ACL): the plug-in estimator of
    Dodge et al. is biased; the without-replacement (U-statistic) estimator is unbiased.
    McNemar 1947; the exact form is a binomial test on the discordant pairs.
    Wilson 1927: score interval for a binomial proportion.
    Davison & Hinkley 1997, "Bootstrap Methods and their Application", §3.2: the stratified
    bootstrap (resample within each stratum, keep the strata's sizes).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
from scipy import special, stats

__all__ = [
    "Interval",
    "GapSummary",
    "McNemarResult",
    "bootstrap_ci",
    "wilcoxon_p",
    "prob_better",
    "gap_summary",
    "stratified_bootstrap_ci",
    "expected_max_weights",
    "expected_max_unbiased",
    "expected_max_plugin",
    "expected_max_std",
    "expected_max_bootstrap",
    "mcnemar_exact",
    "wilson_interval",
]


class Interval(NamedTuple):
    """A point estimate with a two-sided confidence interval (NaN when not estimable)."""

    estimate: float
    low: float
    high: float


class GapSummary(NamedTuple):
    """Paired comparison of two arms over the same trials (gap = distill - baseline).

    All accuracies and gaps are fractions (multiply by 100 for points).
    """

    n: int
    mean_distill: float
    mean_baseline: float
    mean: Interval
    median: Interval
    wilcoxon_p: float
    p_better: Interval
    ties: int = 0  # pairs whose gap is exactly 0 (the signed-rank test gives them no sign)


class McNemarResult(NamedTuple):
    """Exact McNemar test on two classifiers' paired predictions.

    Attributes:
        n: number of test examples.
        both_right, only_a, only_b, both_wrong: the 2x2 table of correctness.
        p_value: two-sided exact p-value (binomial on ``only_a`` of ``only_a + only_b``, p=1/2).
    """

    n: int
    both_right: int
    only_a: int
    only_b: int
    both_wrong: int
    p_value: float


_NAN_INTERVAL = Interval(float("nan"), float("nan"), float("nan"))


def bootstrap_ci(
    values: np.ndarray,
    statistic=np.mean,
    *,
    seed: int = 0,
    n_resamples: int = 4999,
    confidence_level: float = 0.95,
) -> Interval:
    """Seeded bootstrap confidence interval of ``statistic`` with ``scipy.stats.bootstrap``.

    BCa is tried first (better coverage for skewed statistics); when it is undefined (e.g. all
    values equal, or a median on heavily tied data gives a degenerate jackknife) the percentile
    interval is used; for constant data the interval collapses to the value.

    Args:
        values: 1-D sample.
        statistic: vectorised statistic taking ``axis=`` (``np.mean``, ``np.median``).
        seed: seed of the resampling generator, so reports are reproducible.
        n_resamples: bootstrap resamples.
        confidence_level: coverage of the two-sided interval.

    Returns:
        The statistic on ``values`` and its interval; NaNs for fewer than two values.
    """
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return _NAN_INTERVAL
    estimate = float(statistic(values))
    if values.size < 2:
        return Interval(estimate, float("nan"), float("nan"))
    if np.all(values == values[0]):
        return Interval(estimate, estimate, estimate)
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = stats.bootstrap(
                (values,),
                statistic,
                n_resamples=n_resamples,
                confidence_level=confidence_level,
                method=method,
                rng=np.random.default_rng(seed),
            )
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if np.isfinite(low) and np.isfinite(high):
            return Interval(estimate, low, high)
    return Interval(estimate, float("nan"), float("nan"))


def wilcoxon_p(gaps: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of the per-trial gaps against zero.

    Accuracies on a finite dev set are discrete, so exact zero gaps are common; Pratt's
    treatment keeps them in the ranking (more conservative than dropping them). All-zero gaps
    give p = 1; fewer than two trials give NaN.
    """
    gaps = np.asarray(gaps, dtype=float)
    if gaps.size < 2:
        return float("nan")
    if np.all(gaps == 0):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.wilcoxon(gaps, zero_method="pratt").pvalue)


def wilcoxon_min_p(n: int, ties: int = 0) -> float:
    """The smallest two-sided p :func:`wilcoxon_p` can give with ``n`` pairs of which ``ties``
    have a gap of exactly zero (every other gap of one sign): 2 / 2**(n - ties) for small n, so
    5 or fewer untied pairs can never reach p < 0.05, however many tied pairs come with them."""
    if n < 2:
        return float("nan")
    ties = min(max(int(ties), 0), n)
    gaps = np.concatenate([np.zeros(ties), np.arange(1, n - ties + 1, dtype=float)])
    return wilcoxon_p(gaps)


def _half_credit_mean(wins: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(wins, axis=axis)


def prob_better(
    a: np.ndarray, b: np.ndarray, *, seed: int = 0, n_resamples: int = 4999
) -> Interval:
    """P(A > B) over paired runs with a bootstrap 95% interval (Bouthillier et al. 2021).

    ``P(A > B) = mean_i 1[a_i > b_i]`` with ties counted as one half (paired accuracies on the
    same dev set tie often). Bouthillier et al. call A's advantage significant when the lower
    bound exceeds 0.5 and meaningful when it exceeds 0.75.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in shape: {a.shape} vs {b.shape}")
    wins = (a > b).astype(float) + 0.5 * (a == b)
    return bootstrap_ci(wins, _half_credit_mean, seed=seed, n_resamples=n_resamples)


def gap_summary(
    distill: np.ndarray,
    baseline: np.ndarray,
    *,
    seed: int = 0,
    n_resamples: int = 4999,
    strata: np.ndarray | None = None,
) -> GapSummary:
    """Mean and median gap with bootstrap CIs, Wilcoxon p and P(distill > baseline).

    Args:
        distill: per-trial dev accuracy of the distill arm.
        baseline: the baseline arm's dev accuracy in the same trials (same config and seed).
        seed: bootstrap seed.
        n_resamples: bootstrap resamples.
        strata: optional label per trial (its configuration): the intervals then come from
            :func:`stratified_bootstrap_ci`, for seed replicates of fixed configurations. The
            Wilcoxon test needs no change: given the configurations, the pairs are
            independent, and it assumes only that each gap is symmetric about 0 under H0.
    """
    distill = np.asarray(distill, dtype=float)
    baseline = np.asarray(baseline, dtype=float)
    gaps = distill - baseline
    n = int(gaps.size)
    if strata is None:
        def interval(values, statistic):
            return bootstrap_ci(values, statistic, seed=seed, n_resamples=n_resamples)
        better = prob_better(distill, baseline, seed=seed, n_resamples=n_resamples) \
            if n else _NAN_INTERVAL
    else:
        def interval(values, statistic):
            return stratified_bootstrap_ci(values, strata, statistic, seed=seed,
                                           n_resamples=n_resamples)
        wins = (distill > baseline).astype(float) + 0.5 * (distill == baseline)
        better = interval(wins, _half_credit_mean)
    return GapSummary(
        n=n,
        mean_distill=float(distill.mean()) if n else float("nan"),
        mean_baseline=float(baseline.mean()) if n else float("nan"),
        mean=interval(gaps, np.mean),
        median=interval(gaps, np.median),
        wilcoxon_p=wilcoxon_p(gaps),
        p_better=better,
        ties=int((gaps == 0).sum()),
    )


def stratified_bootstrap_ci(
    values: np.ndarray,
    strata: np.ndarray,
    statistic=np.mean,
    *,
    seed: int = 0,
    n_resamples: int = 4999,
    confidence_level: float = 0.95,
) -> Interval:
    """Percentile bootstrap interval that resamples within each stratum (Davison & Hinkley
    1997, §3.2).

    Used for seed replicates: with the configurations fixed, the seeds of each configuration
    are the independent replicates, so a resample draws each configuration's seeds with
    replacement and keeps every configuration's weight. An i.i.d. bootstrap of the pooled
    pairs would also resample how many pairs each configuration contributes.

    Args:
        values: 1-D sample.
        strata: a label per value (same length); every stratum needs two or more values.
        statistic: vectorised statistic taking ``axis=`` (``np.mean``, ``np.median``).
        seed: seed of the resampling generator.
        n_resamples: bootstrap resamples.
        confidence_level: coverage of the two-sided interval.

    Returns:
        The statistic on ``values`` and its percentile interval; NaNs for fewer than two values.

    Raises:
        ValueError: lengths differ, or a stratum has fewer than two values.
    """
    values = np.asarray(values, dtype=float)
    strata = np.asarray(strata)
    if values.shape != strata.shape or values.ndim != 1:
        raise ValueError(f"values {values.shape} and strata {strata.shape} must be equal 1-D")
    if values.size == 0:
        return _NAN_INTERVAL
    estimate = float(statistic(values))
    if values.size < 2:
        return Interval(estimate, float("nan"), float("nan"))
    groups = [np.flatnonzero(strata == s) for s in dict.fromkeys(strata.tolist())]
    if min(len(g) for g in groups) < 2:
        raise ValueError("every stratum needs at least two values to resample within it")
    rng = np.random.default_rng(seed)
    # (n_resamples, n): column block g holds draws from stratum g's own indices
    draws = np.concatenate(
        [g[rng.integers(0, len(g), size=(n_resamples, len(g)))] for g in groups], axis=1)
    dist = statistic(values[draws], axis=1)
    alpha = (1 - confidence_level) / 2
    low, high = np.quantile(dist, [alpha, 1 - alpha])
    return Interval(estimate, float(low), float(high))


# -- expected maximum after n trials ---------------------------------------------------------
def expected_max_weights(N: int) -> np.ndarray:
    """Weights ``W[n-1, i-1] = C(i-1, n-1) / C(N, n)`` for ``n, i = 1..N``.

    With the sample sorted ascending, ``W[n-1, i-1]`` is the probability that the ``i``-th
    smallest of N values is the maximum of ``n`` values drawn from them without replacement
    (Tang et al. 2020, Eq. for the unbiased estimator); each row sums to one (hockey-stick
    identity). Computed in log space so large N does not overflow.
    """
    if N < 1:
        return np.zeros((0, 0))
    n = np.arange(1, N + 1)[:, None]
    i = np.arange(1, N + 1)[None, :]
    valid = i >= n
    # log C(i-1, n-1) - log C(N, n); gammaln(k + 1) = log k!
    with np.errstate(invalid="ignore"):
        log_w = (
            special.gammaln(i)
            - special.gammaln(n)
            - special.gammaln(np.maximum(i - n + 1, 1))
            - (special.gammaln(N + 1) - special.gammaln(n + 1) - special.gammaln(N - n + 1))
        )
    return np.where(valid, np.exp(np.where(valid, log_w, 0.0)), 0.0)


def expected_max_unbiased(values: np.ndarray) -> np.ndarray:
    """Unbiased expected maximum of n trials, for n = 1..N (Tang et al. 2020).

    ``E[max of n] = sum_{i=n}^{N} v_(i) C(i-1, n-1) / C(N, n)`` with ``v_(i)`` sorted
    ascending: the exact mean of the maximum over all ``C(N, n)`` subsets of size n, i.e. a
    U-statistic, unbiased for the expected maximum of n i.i.d. trials. At n = N it is the
    sample maximum.
    """
    v = np.sort(np.asarray(values, dtype=float))
    return expected_max_weights(v.size) @ v


def expected_max_plugin(values: np.ndarray) -> np.ndarray:
    """Dodge et al. 2019's plug-in estimator (draws *with* replacement), for n = 1..N.

    ``sum_i v_(i) [(i/N)^n - ((i-1)/N)^n]``; Tang et al. 2020 show it is biased low for n > 1.
    Kept for comparison with the unbiased estimator.
    """
    v = np.sort(np.asarray(values, dtype=float))
    N = v.size
    n = np.arange(1, N + 1)[:, None]
    i = np.arange(1, N + 1)[None, :]
    w = (i / N) ** n - ((i - 1) / N) ** n
    return w @ v


def expected_max_std(values: np.ndarray) -> np.ndarray:
    """Standard deviation of the maximum of n draws without replacement, n = 1..N.

    The spread a practitioner with a budget of n trials would see around the expected maximum
    (the ``±std`` band of Dodge et al. 2019, here under the same without-replacement law as
    the unbiased mean).
    """
    v = np.sort(np.asarray(values, dtype=float))
    w = expected_max_weights(v.size)
    mean = w @ v
    # Centred second moment: E[(X - mean)^2] avoids the cancellation of E[X^2] - mean^2.
    return np.sqrt((w * (v[None, :] - mean[:, None]) ** 2).sum(axis=1))


def expected_max_bootstrap(
    values: np.ndarray, *, seed: int = 0, n_resamples: int = 1000, confidence_level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap band of the unbiased expected-max curve (uncertainty of the estimate).

    Resamples the N observed trials with replacement, recomputes the whole curve for each
    resample, and takes pointwise percentiles.

    Returns:
        ``(low, high)``, each of length N.
    """
    v = np.asarray(values, dtype=float)
    N = v.size
    if N < 2:
        return np.full(N, np.nan), np.full(N, np.nan)
    rng = np.random.default_rng(seed)
    samples = np.sort(v[rng.integers(0, N, size=(n_resamples, N))], axis=1)  # (B, N)
    curves = samples @ expected_max_weights(N).T  # (B, N): row b, column n-1
    alpha = (1 - confidence_level) / 2
    return np.quantile(curves, alpha, axis=0), np.quantile(curves, 1 - alpha, axis=0)


# -- one test set ----------------------------------------------------------------------------
def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> McNemarResult:
    """Exact McNemar test: binomial test of the discordant pairs (McNemar 1947).

    Under H0 (equal error rates) an example that only one classifier gets right is equally
    likely to favour either, so ``only_a ~ Binomial(only_a + only_b, 1/2)``.

    Args:
        correct_a: boolean array, classifier A right on each example.
        correct_b: same for B, on the same examples in the same order.
    """
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired predictions differ in length: {a.shape} vs {b.shape}")
    only_a = int(np.sum(a & ~b))
    only_b = int(np.sum(~a & b))
    discordant = only_a + only_b
    p = 1.0 if discordant == 0 else float(stats.binomtest(only_a, discordant, 0.5).pvalue)
    return McNemarResult(
        n=int(a.size),
        both_right=int(np.sum(a & b)),
        only_a=only_a,
        only_b=only_b,
        both_wrong=int(np.sum(~a & ~b)),
        p_value=p,
    )


def wilson_interval(correct: int, n: int, confidence_level: float = 0.95) -> Interval:
    """Accuracy ``correct / n`` with its Wilson score interval (Wilson 1927)."""
    if n <= 0:
        return _NAN_INTERVAL
    ci = stats.binomtest(int(correct), int(n)).proportion_ci(
        confidence_level=confidence_level, method="wilson"
    )
    return Interval(correct / n, float(ci.low), float(ci.high))
