"""Statistics over seeds: intervals per remedy and paired comparisons between remedies.

Why paired: every seed fixes the imbalanced subset, the validation split, the initial
weights and the data order, and every remedy of a seed sees the same ones. The seed-to-
seed spread of one remedy is as large as the differences between remedies (test AUC of
one baseline: 0.65, 0.83, 0.66), but much of it is shared by all remedies of a seed, so
differences taken within a seed are far less noisy than differences of two means.

Everything here is scipy: the t-interval (``scipy.stats.t``), the paired t-test
(``ttest_rel``, whose ``confidence_interval`` is the paired t-interval), the Wilcoxon
signed-rank test and the bootstrap (``scipy.stats.bootstrap``). With a handful of seeds:

- the t-interval is the one the verdicts use: exact under normal differences, and honest
  about how little five numbers say;
- the percentile bootstrap interval is shown next to it, as a check that does not assume
  normality (with n = 5 it is too narrow: it cannot reach beyond the observed extremes);
- the Wilcoxon test cannot reach p < 0.0625 with five pairs, whatever the data;
- one seed gives no interval at all, and everything says "n=1" instead of inventing one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

BOOTSTRAP_SEED = 0  # fixed, so equal runs give byte-identical statistics files


def _clean(values: Any) -> np.ndarray:
    """Float array without the missing values (``None`` = a metric undefined for a run)."""
    arr = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    return arr[~np.isnan(arr)]


def _num(value: float | None) -> float | None:
    """Plain float for JSON, ``None`` for NaN/inf (JSON has neither)."""
    if value is None or not np.isfinite(value):
        return None
    return float(value)


def describe(values: Any, confidence: float) -> dict[str, Any]:
    """Mean, sample standard deviation and t-interval of the mean over seeds."""
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
    if std == 0.0:  # scipy returns NaN for a zero scale; the interval is the point
        out["ci_low"] = out["ci_high"] = mean
        return out
    low, high = stats.t.interval(confidence, df=n - 1, loc=mean, scale=std / np.sqrt(n))
    out["ci_low"], out["ci_high"] = float(low), float(high)
    return out


def paired(a: Any, b: Any, confidence: float, resamples: int) -> dict[str, Any]:
    """Paired comparison of ``a - b`` over seeds (``a[i]`` and ``b[i]`` share seed i).

    Returns the mean difference, its t-interval, a percentile bootstrap interval, Cohen's
    d_z (mean difference / standard deviation of the differences, the effect size of a
    paired design), and the p-values of the paired t-test and the Wilcoxon signed-rank
    test. Seeds where either value is missing are dropped from both.
    """
    a_arr = np.array([np.nan if v is None else float(v) for v in a], dtype=np.float64)
    b_arr = np.array([np.nan if v is None else float(v) for v in b], dtype=np.float64)
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"paired samples differ in length: {a_arr.size} vs {b_arr.size}")
    keep = ~(np.isnan(a_arr) | np.isnan(b_arr))
    a_arr, b_arr = a_arr[keep], b_arr[keep]
    d = a_arr - b_arr
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
    t_res = stats.ttest_rel(a_arr, b_arr)
    ci = t_res.confidence_interval(confidence)
    out["ci_low"], out["ci_high"] = float(ci.low), float(ci.high)
    out["p_ttest"] = _num(float(t_res.pvalue))
    if np.any(d != 0):
        out["p_wilcoxon"] = _num(float(stats.wilcoxon(d).pvalue))
    boot = stats.bootstrap(
        (d,),
        np.mean,
        n_resamples=resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(BOOTSTRAP_SEED),
    )
    out["bootstrap_low"] = _num(float(boot.confidence_interval.low))
    out["bootstrap_high"] = _num(float(boot.confidence_interval.high))
    return out
