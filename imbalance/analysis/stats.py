"""Statistics over seeds: intervals per remedy, paired comparisons, tests against bounds.

Why paired: every seed fixes the imbalanced subset, the validation split, the initial
weights and the data order, and every remedy of a seed sees the same ones. The seed-to-
seed spread of one remedy is as large as the differences between remedies (test AUC of
one baseline: 0.65, 0.83, 0.66), but much of it is shared by all remedies of a seed, so
differences taken within a seed are far less noisy than differences of two means.

Three kinds of numbers, each with the interval that fits its use:

- **One remedy's metric** (the table, every figure): :func:`describe`, an *expanded
  percentile bootstrap* interval of the mean over seeds (:func:`bootstrap_interval`).
  Metrics live in a range (rates in [0, 1], counts in [0, n]) and, with five seeds, a
  t-interval leaves it (recall [0, 0, 0, 0.9, 1]: t-interval [-0.27, 1.03]). See
  :func:`bootstrap_interval` for why this interval and not a logit one.
- **A paired difference** between two remedies (the paired tables): :func:`paired`, the
  paired t-interval (dual to the paired t-test whose p-value is printed beside it), cut to
  the difference's possible range, plus the same bootstrap interval as a check that does
  not assume normality; p-values of the paired t-test and of the Wilcoxon signed-rank
  test, to be adjusted for multiplicity over the family reported (:func:`adjust_p`).
- **A claim's bound** (the verdicts): :func:`bound_test`, one-sided t-tests of a mean
  against a bound, whose p-values say the same as the two-sided t-interval's ends, and
  :func:`seeds_needed`, the number of seeds at which an undecided effect would decide.

With a handful of seeds: the Wilcoxon test cannot reach p < 0.0625 with five pairs,
whatever the data; one seed gives no interval at all, and everything says "n=1" instead
of inventing one. Every random stream is seeded: equal inputs give byte-identical files.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from scipy import stats

BOOTSTRAP_SEED = 0  # fixed, so equal runs give byte-identical statistics files
#: Largest number of seeds :func:`seeds_needed` looks for; beyond it says "more than".
MAX_SEEDS = 10_000
PAdjust = Literal["holm", "bh", "none"]


def _clean(values: Any) -> np.ndarray:
    """Float array without the missing values (``None`` = a metric undefined for a run)."""
    arr = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    return arr[~np.isnan(arr)]


def _num(value: float | None) -> float | None:
    """Plain float for JSON, ``None`` for NaN/inf (JSON has neither)."""
    if value is None or not np.isfinite(value):
        return None
    return float(value)


def _clip(low: float, high: float, bounds: tuple[float, float] | None) -> tuple[float, float]:
    """An interval cut to ``bounds``, the range the quantity cannot leave.

    Cutting keeps the coverage: the true value always lies in its range, so it lies in the
    cut interval exactly when it lies in the uncut one.
    """
    if bounds is None:
        return float(low), float(high)
    lo, hi = bounds
    return float(min(max(low, lo), hi)), float(max(min(high, hi), lo))


def difference_range(bounds: tuple[float, float]) -> tuple[float, float]:
    """Possible range of ``a - b`` when ``a`` and ``b`` both lie in ``bounds``."""
    lo, hi = bounds
    return lo - hi, hi - lo


# -------------------------------------------------------------------------- bootstrap


def expanded_level(confidence: float, n: int) -> float:
    """Percentile level of the expanded percentile interval of a mean of ``n`` values.

    Hesterberg (2015, "What teachers should know about the bootstrap", The American
    Statistician 69:371) widens the percentile interval's level so that, for normal data,
    it is as wide as the t-interval: the bootstrap distribution of a mean has the
    plug-in sd ``s * sqrt((n - 1) / n) / sqrt(n)`` and a normal shape, so the percentile
    interval at level ``2 * Phi(z) - 1`` with ``z = t(1 - a/2, n - 1) * sqrt(n / (n - 1))``
    matches ``mean +- t * s / sqrt(n)``. At n = 5 and 95 %: the 0.095 and 99.905
    percentiles instead of 2.5 and 97.5.
    """
    if n < 2:
        raise ValueError("an interval needs at least two values")
    z = stats.t.ppf((1 + confidence) / 2, n - 1) * np.sqrt(n / (n - 1))
    return float(1 - 2 * stats.norm.sf(z))


@lru_cache(maxsize=16)
def _resample_index(n: int, resamples: int) -> np.ndarray:
    """Which seeds each bootstrap resample draws: one seeded matrix per (n, resamples).

    The same matrix for every remedy and metric: the resamples of two remedies draw the
    same seeds, as the pairing of the data asks, and no result depends on the order in
    which statistics are computed.
    """
    index = np.random.default_rng(BOOTSTRAP_SEED).integers(0, n, size=(resamples, n))
    index.flags.writeable = False
    return index


def bootstrap_interval(
    values: np.ndarray, confidence: float, resamples: int
) -> tuple[float, float]:
    """Expanded percentile bootstrap interval of the mean, resampling seeds.

    Why this interval for the per-remedy numbers:

    - **It cannot leave the metric's range.** Every resample mean is an average of observed
      values, so the interval lies within [min, max] of the seeds, hence inside [0, 1] for
      a rate and [0, n] for a count, for every metric alike: no metric needs its own
      transformation or denominator (precision's denominator changes from run to run,
      ROC AUC has none).
    - **It is an interval for the mean**, the number the table prints. A logit-scale
      t-interval would be an interval for the back-transformed mean logit, which is not
      the mean (recall [0, 0, 0, 0.9, 1]: mean 0.38, back-transformed mean logit 0.07),
      and needs an arbitrary continuity correction for the many values of exactly 0 or 1.
    - **Expanded, not plain.** The plain percentile interval is about 35 % narrower than
      the t-interval at n = 5 (it uses the plug-in sd and normal quantiles); the expanded
      level (:func:`expanded_level`) restores the t-interval's width where the data are
      normal, and keeps the range where they are not. With n <= 4 seeds the interval is
      practically [min, max] of the seeds: all that four numbers can say.
    - Seeded (:data:`BOOTSTRAP_SEED`) and deterministic; ``resamples`` is the param
      ``compare.bootstrap``.
    """
    x = np.asarray(values, dtype=np.float64)
    level = expanded_level(confidence, x.size)
    means = x[_resample_index(x.size, resamples)].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return _clip(low, high, (float(x.min()), float(x.max())))


# --------------------------------------------------------------------------- describe


def describe(values: Any, confidence: float, resamples: int) -> dict[str, Any]:
    """Mean, sample standard deviation and bootstrap interval of the mean over seeds.

    The keys ``n``, ``mean``, ``std``, ``ci_low``, ``ci_high`` are read by the PR comment
    and the sweep (statistics.json's ``remedies.<remedy>.<key>``).
    """
    x = _clean(values)
    n = int(x.size)
    out: dict[str, Any] = {"n": n, "mean": None, "std": None, "ci_low": None, "ci_high": None}
    if n == 0:
        out["note"] = "no values"
        return out
    mean = float(np.mean(x))
    out["mean"] = mean
    if n == 1:
        out["note"] = "n=1: no spread, no interval"
        return out
    std = float(np.std(x, ddof=1))
    out["std"] = std
    if std == 0.0:  # every resample is the point; say so exactly, not to the last bit
        out["ci_low"] = out["ci_high"] = mean
        return out
    out["ci_low"], out["ci_high"] = bootstrap_interval(x, confidence, resamples)
    return out


# ----------------------------------------------------------------------------- paired


def differences(a: Any, b: Any) -> np.ndarray:
    """``a[i] - b[i]`` per seed, seeds where either value is missing dropped from both."""
    a_arr = np.array([np.nan if v is None else float(v) for v in a], dtype=np.float64)
    b_arr = np.array([np.nan if v is None else float(v) for v in b], dtype=np.float64)
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"paired samples differ in length: {a_arr.size} vs {b_arr.size}")
    d = a_arr - b_arr
    return d[~np.isnan(d)]


def paired(
    a: Any,
    b: Any,
    confidence: float,
    resamples: int,
    bounds: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Paired comparison of ``a - b`` over seeds (``a[i]`` and ``b[i]`` share seed i).

    Returns the mean difference, its paired t-interval (cut to ``bounds``, the possible
    range of the difference, see :func:`difference_range`), the bootstrap interval of
    :func:`bootstrap_interval`, Cohen's d_z (mean difference / standard deviation of the
    differences, the effect size of a paired design), and the two-sided p-values of the
    paired t-test and of the Wilcoxon signed-rank test against no difference. The
    t-interval stays the one the p-value belongs to: it excludes 0 exactly when p is
    below 1 - ``confidence``. Seeds where either value is missing are dropped from both.
    """
    d = differences(a, b)
    n = int(d.size)
    out: dict[str, Any] = {
        "n": n,
        "mean_diff": None,
        "std_diff": None,
        "ci_low": None,
        "ci_high": None,
        "bootstrap_low": None,
        "bootstrap_high": None,
        "d_z": None,
        "p_ttest": None,
        "p_wilcoxon": None,
    }
    if n == 0:
        out["note"] = "no paired values"
        return out
    out["mean_diff"] = float(np.mean(d))
    if n == 1:
        out["note"] = "n=1: no interval, no test"
        return out
    sd = float(np.std(d, ddof=1))
    out["std_diff"] = sd
    if sd == 0.0:
        # Every seed gave the same difference: the interval is that point, a test is
        # undefined (scipy would divide by zero), and so is d_z unless the difference is 0.
        out["ci_low"] = out["ci_high"] = out["mean_diff"]
        out["bootstrap_low"] = out["bootstrap_high"] = out["mean_diff"]
        out["note"] = "identical differences on every seed: no test"
        if out["mean_diff"] == 0.0:
            out["d_z"] = 0.0
            out["p_ttest"] = out["p_wilcoxon"] = 1.0
        return out
    out["d_z"] = out["mean_diff"] / sd
    t_res = stats.ttest_1samp(d, 0.0)
    ci = t_res.confidence_interval(confidence)
    out["ci_low"], out["ci_high"] = _clip(ci.low, ci.high, bounds)
    out["p_ttest"] = _num(float(t_res.pvalue))
    if np.any(d != 0):
        out["p_wilcoxon"] = _num(float(stats.wilcoxon(d).pvalue))
    out["bootstrap_low"], out["bootstrap_high"] = bootstrap_interval(d, confidence, resamples)
    return out


# ------------------------------------------------------------------ multiple testing


def adjust_p(pvalues: Sequence[float], method: PAdjust) -> list[float]:
    """p-values adjusted for multiplicity over the family ``pvalues``, in their order.

    - ``holm``: Holm's step-down adjustment, ``max_{j<=i} min(1, (m - j + 1) p_(j))``
      over the sorted p-values; controls the family-wise error rate (the chance of any
      false finding in the family) under any dependence between the tests, which matters
      here: every test of a table shares its reference remedy's seeds.
    - ``bh``: Benjamini-Hochberg (``scipy.stats.false_discovery_control``); controls the
      expected share of false findings among the findings, under independence or
      positive dependence of the tests.
    - ``none``: the p-values unchanged.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if p.size == 0:
        return []
    if np.any((p < 0) | (p > 1) | np.isnan(p)):
        raise ValueError("p-values must lie in [0, 1]")
    if method == "none":
        return [float(v) for v in p]
    if method == "bh":
        return [float(v) for v in stats.false_discovery_control(p, method="bh")]
    if method == "holm":
        order = np.argsort(p, kind="stable")
        m = p.size
        stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
        out = np.empty(m)
        out[order] = np.minimum(stepped, 1.0)
        return [float(v) for v in out]
    raise ValueError(f"unknown p-value adjustment {method!r}; choose holm, bh or none")


# --------------------------------------------------------------- tests against a bound


def bound_test(
    values: Any,
    bound: float,
    confidence: float,
    bounds: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """The mean of ``values`` (one value per seed) against ``bound``: t-interval, one-sided tests.

    ``ci_low``/``ci_high`` is the two-sided t-interval at ``confidence`` (cut to
    ``bounds``, the range the mean cannot leave); ``p_below`` is the p-value of the
    one-sided t-test of H0: mean >= bound against H1: mean < bound, ``p_above`` of H0:
    mean <= bound against H1: mean > bound. The interval's upper end lies below ``bound``
    exactly when ``p_below < (1 - confidence) / 2``, and its lower end above ``bound``
    exactly when ``p_above`` is, so a verdict read off the interval and one read off the
    printed p-value never disagree.
    """
    x = _clean(values)
    n = int(x.size)
    out: dict[str, Any] = {
        "n": n,
        "bound": float(bound),
        "mean": None,
        "std": None,
        "ci_low": None,
        "ci_high": None,
        "p_below": None,
        "p_above": None,
    }
    if n == 0:
        out["note"] = "no values"
        return out
    out["mean"] = mean = float(np.mean(x))
    if n == 1:
        out["note"] = "n=1: no interval, no test"
        return out
    out["std"] = sd = float(np.std(x, ddof=1))
    if sd == 0.0:
        out["ci_low"] = out["ci_high"] = mean
        out["note"] = "identical values on every seed: no test"
        return out
    se = sd / np.sqrt(n)
    half = stats.t.ppf((1 + confidence) / 2, n - 1) * se
    out["ci_low"], out["ci_high"] = _clip(mean - half, mean + half, bounds)
    t_obs = (mean - bound) / se
    out["p_below"] = float(stats.t.cdf(t_obs, n - 1))
    out["p_above"] = float(stats.t.sf(t_obs, n - 1))
    return out


def seeds_needed(sd: float, margin: float, confidence: float) -> int | None:
    """Seeds at which a t-interval of half-width ``t * sd / sqrt(n)`` gets under ``margin``.

    The smallest n >= 2 with ``t(1 - a/2, n - 1) * sd / sqrt(n) < margin``, i.e.
    n ~ (t * sd / margin)^2 with t at the new n. ``margin`` is the distance from the
    observed mean to the bound to exclude. An estimate, not a promise: it takes the
    observed mean and sd for the true ones, and at that n a new experiment's interval
    excludes the bound only about half of the time (the mean scatters around the truth).
    ``None`` when no number up to :data:`MAX_SEEDS` would do (or the margin is 0).
    """
    if margin <= 0 or not np.isfinite(margin):
        return None
    if sd == 0.0:
        return 2
    n = np.arange(2, MAX_SEEDS + 1)
    ok = stats.t.ppf((1 + confidence) / 2, n - 1) * sd / np.sqrt(n) < margin
    return int(n[np.argmax(ok)]) if ok.any() else None
