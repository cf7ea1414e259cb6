"""The sequential rule and the reported intervals keep their stated levels, by simulation.

Thousands of simulated seed sequences, no training: a few seconds. The expected levels
are the declared ones (scipy quantiles), never the functions' own output.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from imbalance.analysis import stats

LOOKS = (5, 10, 15, 20, 30, 40, 50)
SIMULATIONS = 20_000


def _t_pvalues_at_looks(data: np.ndarray, looks: tuple[int, ...]) -> np.ndarray:
    """One-sided p-values of H0: mean <= 0 at every look, per simulated sequence."""
    out = []
    for n in looks:
        x = data[:, :n]
        t = x.mean(axis=1) / (x.std(axis=1, ddof=1) / np.sqrt(n))
        out.append(sps.t.sf(t, n - 1))
    return np.stack(out, axis=1)


def _wrong_decisions(levels: tuple[float, ...], looks: tuple[int, ...], rng_seed: int) -> float:
    data = np.random.default_rng(rng_seed).normal(0.0, 1.0, size=(SIMULATIONS, looks[-1]))
    p = _t_pvalues_at_looks(data, looks)
    return float(np.mean(np.any(p < np.asarray(levels), axis=1)))


@pytest.mark.parametrize("spending", ["obrien_fleming", "pocock"])
def test_repeated_looks_keep_the_declared_one_sided_level(spending: str) -> None:
    alpha = 0.025
    levels = stats.nominal_levels(LOOKS, alpha, spending)
    rate = _wrong_decisions(levels, LOOKS, 1)
    se = np.sqrt(alpha * (1 - alpha) / SIMULATIONS)
    assert rate <= alpha + 3 * se, rate
    assert rate >= alpha - 6 * se, rate  # not wildly conservative either: the plan spends it


def test_naive_repeated_looks_at_the_fixed_level_would_not() -> None:
    """The check above can fail: testing at 2.5 % at every look errs far more often."""
    rate = _wrong_decisions((0.025,) * len(LOOKS), LOOKS, 2)
    assert rate > 0.05


def test_one_look_is_the_fixed_sample_test() -> None:
    assert stats.nominal_levels([30], 0.025, "pocock") == pytest.approx((0.025,), abs=1e-9)
    assert stats.nominal_levels([30], 0.025, "obrien_fleming") == pytest.approx((0.025,), abs=1e-9)


def test_spending_functions_match_their_formulas() -> None:
    # by hand: OBF 2 (1 - Phi(z_{0.9875} / sqrt(0.25))), Pocock 0.025 ln(1 + (e - 1) / 4)
    z = sps.norm.isf(0.0125)
    assert stats.spent(0.25, 0.025, "obrien_fleming") == pytest.approx(2 * sps.norm.sf(2 * z))
    assert stats.spent(0.25, 0.025, "pocock") == pytest.approx(0.025 * np.log(1 + (np.e - 1) / 4))
    assert stats.spent(1.0, 0.025, "pocock") == pytest.approx(0.025)


def test_level_at_uses_the_last_planned_look_at_or_below_n() -> None:
    levels = stats.nominal_levels(LOOKS, 0.025, "pocock")
    assert stats.level_at(12, LOOKS, 0.025, "pocock") == levels[1]
    assert stats.level_at(50, LOOKS, 0.025, "pocock") == levels[-1]
    assert stats.level_at(3, LOOKS, 0.025, "pocock") == levels[0]


# ------------------------------------------------------------ coverage of the intervals


@pytest.mark.parametrize("n", [5, 20, 50])
def test_reported_interval_covers_at_its_level(n: int) -> None:
    """The interval describe and paired report covers 95 % within one point at the study's
    n (5 seeds; 20 and 50, the sequential study's looks). 40,000 simulated studies."""
    rng = np.random.default_rng(n)
    data = rng.normal(0.8, 0.05, size=(40_000, n))
    low, high = stats.t_interval(data, 0.95, (0.0, 1.0))
    assert abs(np.mean((low <= 0.8) & (high >= 0.8)) - 0.95) < 0.01
    # describe and paired report exactly this interval (checked on a few rows)
    for row in data[:3]:
        d = stats.describe(row, 0.95, (0.0, 1.0))
        assert (d["ci_low"], d["ci_high"]) == stats.t_interval(row, 0.95, (0.0, 1.0))
        p = stats.paired(row, np.zeros(n), 0.95, (-1.0, 1.0))
        assert (p["ci_low"], p["ci_high"]) == stats.t_interval(row, 0.95, (-1.0, 1.0))


def test_paired_interval_covers_at_its_level() -> None:
    """Paired differences with a large shared seed effect: the interval of the difference
    keeps 95 % at n = 5, where the interval of each mean alone would be 10x wider."""
    rng = np.random.default_rng(105)
    trials, n = 40_000, 5
    shared = rng.normal(0.0, 0.1, size=(trials, n))
    a = 0.9 + shared + rng.normal(0.0, 0.01, size=(trials, n))
    b = 0.88 + shared + rng.normal(0.0, 0.01, size=(trials, n))
    low, high = stats.t_interval(a - b, 0.95, (-1.0, 1.0))
    assert abs(np.mean((low <= 0.02) & (high >= 0.02)) - 0.95) < 0.01


def test_mcb_set_contains_the_best_at_its_level() -> None:
    """Hsu's MCB: the could-be-best set misses the true best in at most `level` of studies."""
    rng = np.random.default_rng(7)
    means = np.array([0.95, 0.945, 0.94, 0.93, 0.90])
    misses, trials, n = 0, 600, 5
    for _ in range(trials):
        seed_effect = rng.normal(0, 0.02, size=n)
        vals = {
            f"r{i}": (m + seed_effect + rng.normal(0, 0.01, size=n)).tolist()
            for i, m in enumerate(means)
        }
        misses += not stats.could_be_best(vals, 0.05)["r0"]["could_be_best"]
    assert misses / trials <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / trials)


def test_mcb_by_hand_two_remedies() -> None:
    """With two remedies MCB is the one-sided paired t-bound of their difference."""
    a, b = [0.9, 0.92, 0.91, 0.95, 0.93], [0.85, 0.86, 0.88, 0.90, 0.87]
    d = np.subtract(a, b)
    q = sps.t.isf(0.05, 4)
    hi_b = -d.mean() + q * d.std(ddof=1) / np.sqrt(5)  # upper bound of mu_b - mu_a
    out = stats.could_be_best({"a": a, "b": b}, 0.05)
    assert out["a"]["could_be_best"] and out["b"]["could_be_best"] == (hi_b > 0)
    assert out["b"]["high"] == pytest.approx(max(0.0, hi_b))
    assert out["a"]["low"] == pytest.approx(min(0.0, d.mean() - q * d.std(ddof=1) / np.sqrt(5)))
