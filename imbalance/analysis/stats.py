"""Statistics over seeds: intervals per remedy, paired comparisons, tests against bounds,
the group-sequential plan of the primary questions, and comparisons with the best.

Why paired: every seed fixes the imbalanced subset, the validation split, the initial
weights and the data order, and every remedy of a seed sees the same ones. The seed-to-
seed spread of one remedy can be as large as the differences between remedies (the
per-seed test AUCs are in ``metrics/runs/seed<s>/<remedy>.json``, their sd in
``metrics/statistics.json``), but much of it is shared by all remedies of a seed, so
differences taken within a seed are far less noisy than differences of two means.

**Intervals** (:func:`describe`, :func:`paired`, :func:`bound_test`): Student-t intervals
of the mean over seeds, cut to the range the quantity cannot leave (rates [0, 1], counts
[0, n], differences their difference range), which keeps the coverage. They keep their
level at the study's n (simulation tests at n = 5, 20, 50: within one point of 95 %);
the expanded percentile bootstrap used before could not (at n = 5 it never leaves the
observed range, so it covers at most 1 - 2/2^5 = 93.75 %; ~92 % measured). p-values of
the paired t-test and Wilcoxon signed-rank test go with the exploratory tables
(:func:`adjust_p` over the tables' family).

**The sequential rule** (:func:`nominal_levels`, :func:`level_at`): a group-sequential
alpha-spending plan (Lan-DeMets; Pocock- or O'Brien-Fleming-type spending), fixed in
params.yaml (``compare.sequential``) before the first look, with t-tests at each look's
nominal level; the simulation test shows the chance of a wrong decision over all looks
stays at the declared level. Why not anytime-valid confidence sequences (betting CS for
bounded differences): at n = 5..30 they cannot decide what this study asks. A paired
difference of rates lies in [-1, 1]; rescaled to [0, 1] with "no difference" at 0.5, a
betting martingale multiplies its wealth by at most 1 + lambda (x - 0.5) <= 2 per seed
(lambda <= 1/0.5), and must reach 2/alpha = 40 to reject at 95 % two-sided: after 5
seeds it is at most 2^5 = 32 even if *every* seed showed the largest possible
difference, and at the questions' Bonferroni share (0.05 / 6 per question) it needs 240,
i.e. 8 perfect seeds. Real differences (AUC 0.01-0.05 with seed sd 0.01-0.03) would need
hundreds of seeds, because a CS pays for validity at every n and for not knowing the
variance. The t-based group-sequential test uses the seeds' small spread directly: its
first look at 5 seeds loses little against a fixed-sample t-test (Pocock: 0.0037 instead
of 0.025 per side at 5 of 50 seeds), and the last look keeps most of the level. The price:
the looks must be the planned ones (``./dev.sh decide`` only stops at them).

**Which remedy could be best** (:func:`could_be_best`): Hsu's multiple comparisons with
the best, paired by seed, Bonferroni over the k - 1 comparisons.

With one seed there is no interval: everything says "n=1" instead of inventing one.
Everything here is deterministic: equal inputs give byte-identical files.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from scipy import optimize, stats

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


# ------------------------------------------------------------------------ t-intervals


def t_interval(
    values: np.ndarray, confidence: float, bounds: tuple[float, float] | None = None
) -> tuple[Any, Any]:
    """Student-t interval of the mean, ``mean +- t(1 - a/2, n - 1) s / sqrt(n)``, cut to bounds.

    Over the last axis (one sample, or a stack of samples as the coverage test passes).
    Why t and not a bootstrap: at the study's n (5 seeds, up to the sequential cap) the
    t-interval keeps its level for normal data exactly and for the metrics' skewed,
    bounded values nearly so, while the percentile bootstrap cannot (at n = 5 it never
    leaves the observed range, so it covers at most 1 - 2/2^5 = 93.75 %; it covered
    ~92 % in simulation). Cutting to the metric's range keeps coverage: the true mean
    always lies in it.
    """
    x = np.asarray(values, dtype=np.float64)
    n = x.shape[-1]
    if n < 2:
        raise ValueError("an interval needs at least two values")
    mean, sd = x.mean(axis=-1), x.std(axis=-1, ddof=1)
    half = stats.t.ppf((1 + confidence) / 2, n - 1) * sd / np.sqrt(n)
    low, high = mean - half, mean + half
    if bounds is not None:
        low = np.minimum(np.maximum(low, bounds[0]), bounds[1])
        high = np.maximum(np.minimum(high, bounds[1]), bounds[0])
    if x.ndim == 1:
        return float(low), float(high)
    return low, high


# --------------------------------------------------------------------------- describe


def describe(
    values: Any, confidence: float, bounds: tuple[float, float] | None = None
) -> dict[str, Any]:
    """Mean, sample standard deviation and t-interval of the mean over seeds.

    ``bounds`` is the range the metric cannot leave (:func:`imbalance.analysis.runs.value_range`);
    the interval is cut to it. The keys ``n``, ``mean``, ``std``, ``ci_low``, ``ci_high``
    are read by the PR comment and the sweep (statistics.json's
    ``remedies.<remedy>.<key>``). ``n`` counts the seeds where the metric is defined.
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
    if std == 0.0:  # the interval is the point; say so exactly, not to the last bit
        out["ci_low"] = out["ci_high"] = mean
        return out
    out["ci_low"], out["ci_high"] = t_interval(x, confidence, bounds)
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
    bounds: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Paired comparison of ``a - b`` over seeds (``a[i]`` and ``b[i]`` share seed i).

    Returns the mean difference, its paired t-interval (cut to ``bounds``, the possible
    range of the difference, see :func:`difference_range`), Cohen's d_z (mean difference
    / standard deviation of the differences, the effect size of a paired design), and
    the two-sided p-values of the paired t-test and of the Wilcoxon signed-rank test
    against no difference. The t-interval stays the one the p-value belongs to: it
    excludes 0 exactly when p is below 1 - ``confidence``. Seeds where either value is
    missing are dropped from both.
    """
    d = differences(a, b)
    n = int(d.size)
    out: dict[str, Any] = {
        "n": n,
        "mean_diff": None,
        "std_diff": None,
        "ci_low": None,
        "ci_high": None,
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
        out["note"] = "identical differences on every seed: no test"
        if out["mean_diff"] == 0.0:
            out["d_z"] = 0.0
            out["p_ttest"] = out["p_wilcoxon"] = 1.0
        return out
    out["d_z"] = out["mean_diff"] / sd
    t_res = stats.ttest_1samp(d, 0.0)
    out["ci_low"], out["ci_high"] = t_interval(d, confidence, bounds)
    out["p_ttest"] = _num(float(t_res.pvalue))
    if np.any(d != 0):
        out["p_wilcoxon"] = _num(float(stats.wilcoxon(d).pvalue))
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


# ------------------------------------------------------------ group-sequential looks

Spending = Literal["obrien_fleming", "pocock"]
#: Grid step and half-width of the numerical recursion of :func:`nominal_levels` (on the
#: Brownian scale, variance <= 1): boundaries to ~1e-4 in z, levels to a few % of themselves.
GRID_STEP, GRID_HALF_WIDTH = 0.01, 8.0


def spent(fraction: float, alpha: float, spending: Spending) -> float:
    """Lan-DeMets alpha-spending: the one-sided error spent by information ``fraction``.

    ``obrien_fleming``: ``2 (1 - Phi(z(1 - alpha/2) / sqrt(t)))``, almost nothing early and
    nearly the fixed-sample level at the cap; ``pocock``: ``alpha log(1 + (e - 1) t)``,
    evenly spread, so early looks can decide a large effect at the price of the last.
    Both equal ``alpha`` at t = 1 and 0 at t = 0.
    """
    t = min(max(float(fraction), 0.0), 1.0)
    if t == 0.0:
        return 0.0
    if spending == "obrien_fleming":
        return float(2 * stats.norm.sf(stats.norm.isf(alpha / 2) / np.sqrt(t)))
    if spending == "pocock":
        return float(alpha * np.log1p((np.e - 1) * t))
    raise ValueError(f"unknown spending {spending!r}; choose obrien_fleming or pocock")


#: Simulated sequences (and their generator seed) that calibrate the t-version of the
#: plan: deterministic, ~1 s.
CALIBRATION_SEQUENCES, CALIBRATION_SEED = 100_000, 20_231


@lru_cache(maxsize=64)
def _levels(looks: tuple[int, ...], alpha: float, spending: Spending) -> tuple[float, ...]:
    z_levels = np.asarray(_nominal_levels(looks, alpha, spending))
    return tuple(float(v) for v in z_levels * _t_calibration(looks, z_levels, alpha))


def _t_calibration(looks: tuple[int, ...], z_levels: np.ndarray, alpha: float) -> float:
    """Factor (<= 1) that scales the normal-theory levels down so that t-tests at them
    err at most ``alpha`` over all looks under H0, by seeded simulation.

    The recursion assumes a known variance; t-tests estimate it at every look, and with
    few seeds the chance of crossing *some* look comes out above alpha (Pocock at looks
    5..50: 2.7 % instead of 2.5 %). The smallest ratio p_k / level_k over the looks of a
    simulated null sequence crosses 1 exactly when it errs, so its alpha-quantile is the
    factor that makes the error alpha (only ever applied downwards).
    """
    if len(looks) == 1:  # one look: the t-test is exact at its level
        return 1.0
    rng = np.random.default_rng(CALIBRATION_SEED)
    x = rng.standard_normal((CALIBRATION_SEQUENCES, looks[-1]))
    ratios = np.full(CALIBRATION_SEQUENCES, np.inf)
    for n, level in zip(looks, z_levels, strict=True):
        head = x[:, :n]
        t = head.mean(axis=1) / (head.std(axis=1, ddof=1) / np.sqrt(n))
        ratios = np.minimum(ratios, stats.t.sf(t, n - 1) / level)
    return float(min(1.0, np.quantile(ratios, alpha)))


def nominal_levels(looks: Sequence[int], alpha: float, spending: Spending) -> tuple[float, ...]:
    """One-sided nominal level of each planned look (see :func:`_nominal_levels`); cached:
    the result is an immutable tuple of a pure function of its arguments (~1 s to compute)."""
    return _levels(tuple(int(n) for n in looks), float(alpha), spending)


def _nominal_levels(looks: Sequence[int], alpha: float, spending: Spending) -> tuple[float, ...]:
    """One-sided nominal level of each planned look, so that the chance of *ever* crossing
    under H0, over all looks, is ``alpha`` (the group-sequential boundary).

    ``looks`` are the planned sample sizes (seeds), the last one the cap; information
    fraction t_k = n_k / cap. The boundaries b_k of the standardised statistic follow from
    ``P(Z_1 < b_1, ..., Z_{k-1} < b_{k-1}, Z_k >= b_k) = spent(t_k) - spent(t_{k-1})`` with
    the canonical joint distribution (independent increments: Z_k = B(t_k) / sqrt(t_k) for
    a Brownian motion B), computed by the Armitage-McPherson-Rowe recursion on a grid
    (deterministic, no simulation). The level at look k is ``1 - Phi(b_k)``; a t-test at
    that level with n_k - 1 degrees of freedom is the usual small-sample version, scaled
    by :func:`_t_calibration` so that it keeps ``alpha`` with few seeds too; the
    simulation test checks the error under repeated looks with other random numbers.
    """
    n = np.asarray(looks, dtype=np.float64)
    if n.size == 0 or np.any(np.diff(n) <= 0) or n[0] < 2:
        raise ValueError("looks must be increasing sample sizes of at least 2")
    t = n / n[-1]
    x = np.arange(-GRID_HALF_WIDTH, GRID_HALF_WIDTH + GRID_STEP / 2, GRID_STEP)
    levels: list[float] = []
    weights = np.zeros_like(x)  # density x grid step of B(t_{k-1}) on the continuation set
    previous = 0.0
    for k, tk in enumerate(t):
        increment = spent(tk, alpha, spending) - spent(previous, alpha, spending)
        if k == 0:
            b = np.sqrt(tk) * stats.norm.isf(increment)
            density = stats.norm.pdf(x, scale=np.sqrt(tk))
        else:
            sd = np.sqrt(tk - previous)

            def crossing(
                bound: float, w: np.ndarray = weights, s: float = sd, inc: float = increment
            ) -> float:
                return float(np.sum(w * stats.norm.sf((bound - x) / s))) - inc

            b = optimize.brentq(crossing, -4 * GRID_HALF_WIDTH, 4 * GRID_HALF_WIDTH, xtol=1e-10)
            density = weights @ stats.norm.pdf((x[None, :] - x[:, None]) / sd) / sd
        weights = density * (x < b) * GRID_STEP
        levels.append(float(stats.norm.sf(b / np.sqrt(tk))))
        previous = tk
    return tuple(levels)


def level_at(n: int, looks: Sequence[int], alpha: float, spending: Spending) -> float:
    """The one-sided level of the look a sample of ``n`` belongs to: the last planned look
    at or below ``n`` (the first look's below it, where no decision is expected anyway)."""
    levels = nominal_levels(looks, alpha, spending)
    k = int(np.searchsorted(np.asarray(looks), n, side="right")) - 1
    return levels[max(k, 0)]


# ------------------------------------------------------ multiple comparisons with the best


def could_be_best(
    values: dict[str, Sequence[float | None]],
    level: float,
    higher_is_better: bool = True,
) -> dict[str, dict[str, Any]]:
    """Hsu's multiple comparisons with the best (MCB), paired by seed.

    For every remedy i a one-sided simultaneous interval [low, high] of
    ``mu_i - max_{j != i} mu_j`` (the sign flipped when lower is better), built from the
    paired t-bounds of ``mu_i - mu_j`` over the seeds both ran: high = max(0, min_j (mean_ij
    + q se_ij)), low = min(0, min_j (mean_ij - q se_ij)), with q the t quantile at the
    one-sided ``level`` / (k - 1) (Bonferroni over the k - 1 comparisons with the unknown
    best, so no equal-variance assumption; Hsu 1996, ch. 4). Remedy i *could be the best*
    when high > 0: the data cannot rule out that it is the best; the set of such remedies
    contains the true best with probability at least 1 - ``level``. ``values`` maps each
    remedy to its per-seed values, aligned by seed (``None`` where not run or undefined).
    """
    names = list(values)
    k = len(names)
    sign = 1.0 if higher_is_better else -1.0
    out: dict[str, dict[str, Any]] = {}
    for i in names:
        highs, lows, n_min = [], [], None
        for j in names:
            if j == i:
                continue
            d = sign * differences(values[i], values[j])
            n = int(d.size)
            n_min = n if n_min is None else min(n_min, n)
            if n < 2:
                highs.append(np.inf)
                lows.append(-np.inf)
                continue
            q = stats.t.isf(level / max(k - 1, 1), n - 1)
            se = float(np.std(d, ddof=1)) / np.sqrt(n)
            highs.append(float(d.mean()) + q * se)
            lows.append(float(d.mean()) - q * se)
        high = min(highs, default=np.inf)
        low = min(lows, default=-np.inf)
        out[i] = {
            "n": n_min,
            "low": _num(min(0.0, low)),
            "high": _num(max(0.0, high)),
            "could_be_best": bool(high > 0),
        }
    return out
