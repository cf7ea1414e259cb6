"""Statistics that mean what they say: intervals inside their metric's range, p-value
adjustment equal to scipy's / Holm's by hand, one-sided tests equal to scipy's, and the
seeds-needed estimate doing what its docstring says.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats as sps

from imbalance.analysis import stats

#: Adversarial per-seed values: three seeds learn nothing, two learn almost everything.
RECALL = [0.0, 0.0, 0.0, 0.9, 1.0]
FN = [1000, 1000, 1000, 100, 0]  # the same runs as false negatives of 1000 positives


def _t_interval(x: list[float], confidence: float = 0.95) -> tuple[float, float]:
    arr = np.asarray(x, float)
    half = sps.t.ppf((1 + confidence) / 2, arr.size - 1) * arr.std(ddof=1) / np.sqrt(arr.size)
    return arr.mean() - half, arr.mean() + half


# ------------------------------------------------------------------ per-remedy intervals


def test_rate_interval_stays_in_0_1_where_the_t_interval_leaves_it() -> None:
    low_t, high_t = _t_interval(RECALL)
    assert low_t < 0.0 and high_t > 1.0  # the input is adversarial: t leaves on both sides
    d = stats.describe(RECALL, 0.95, (0.0, 1.0))
    assert (d["ci_low"], d["ci_high"]) == (0.0, 1.0)  # the t-interval, cut to [0, 1]
    assert d["ci_high"] - d["ci_low"] > 0.5  # not a narrow interval pretending certainty


def test_count_interval_stays_in_0_n() -> None:
    d = stats.describe(FN, 0.95, (0.0, 1000.0))
    assert _t_interval(FN)[1] > 1000
    assert _t_interval(FN)[0] < 0
    assert (d["ci_low"], d["ci_high"]) == (0.0, 1000.0)  # the t-interval cut at both ends


@pytest.mark.parametrize("seed", range(20))
def test_intervals_stay_in_range_on_random_adversarial_inputs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 8))
    x = rng.choice([0.0, 0.0, 0.01, 0.99, 1.0], size=n)  # values piled on the range's ends
    d = stats.describe(x.tolist(), 0.95, (0.0, 1.0))
    if d["ci_low"] is not None:
        assert 0.0 <= d["ci_low"] <= d["ci_high"] <= 1.0
    p = stats.paired(x.tolist(), rng.permutation(x).tolist(), 0.95, (-1.0, 1.0))
    if p["ci_low"] is not None:
        assert -1.0 <= p["ci_low"] <= p["ci_high"] <= 1.0


def test_describe_is_the_t_interval_by_hand() -> None:
    """mean +- t(0.975, 4) s / sqrt(5), t from scipy's quantile, the rest by hand."""
    x = [0.61, 0.70, 0.64, 0.75, 0.68]
    mean, sd = 0.676, float(np.std(x, ddof=1))
    half = sps.t.ppf(0.975, 4) * sd / np.sqrt(5)
    d = stats.describe(x, 0.95, (0.0, 1.0))
    assert d["mean"] == pytest.approx(mean) and d["std"] == pytest.approx(sd)
    assert (d["ci_low"], d["ci_high"]) == pytest.approx((mean - half, mean + half))


# -------------------------------------------------------------------- paired intervals


def test_paired_t_interval_is_cut_to_the_difference_range() -> None:
    a, b = [1.0, 1.0, 1.0, 1.0, 0.2], [0.0, 0.0, 0.0, 0.1, 0.0]
    d = np.subtract(a, b)
    assert _t_interval(d.tolist())[1] > 1.0  # uncut, it would leave [-1, 1]
    p = stats.paired(a, b, 0.95, stats.difference_range((0.0, 1.0)))
    assert -1.0 < p["ci_low"] < p["ci_high"] == 1.0
    assert p["ci_low"] == pytest.approx(_t_interval(d.tolist())[0])  # the other end: untouched
    assert stats.difference_range((0.0, 1000.0)) == (-1000.0, 1000.0)


# ------------------------------------------------------------------ multiple comparisons

P = [0.01, 0.04, 0.03, 0.005, 1.0, 0.2]


def test_bh_equals_scipy() -> None:
    got = stats.adjust_p(P, "bh")
    assert got == pytest.approx(sps.false_discovery_control(P, method="bh").tolist())
    assert got == pytest.approx([0.03, 0.06, 0.06, 0.03, 1.0, 0.24])


def test_holm_equals_hand_values_in_input_order() -> None:
    # sorted: 0.005*6=0.03, 0.01*5=0.05, 0.03*4=0.12, 0.04*3=0.12, 0.2*2=0.4, 1.0*1=1.0
    assert stats.adjust_p(P, "holm") == pytest.approx([0.05, 0.12, 0.12, 0.03, 1.0, 0.4])
    # monotone step-down: a larger p never gets a smaller adjusted p; capped at 1
    assert stats.adjust_p([0.02, 0.021, 0.5], "holm") == pytest.approx([0.06, 0.06, 0.5])
    assert stats.adjust_p([0.6, 0.7], "holm") == [1.0, 1.0]


def test_adjust_none_empty_and_invalid() -> None:
    assert stats.adjust_p(P, "none") == P
    assert stats.adjust_p([], "holm") == []
    with pytest.raises(ValueError, match="p-values"):
        stats.adjust_p([0.5, 1.5], "holm")


# ----------------------------------------------------------------- tests against a bound


def test_bound_test_equals_scipy_one_sided_tests() -> None:
    x = [-0.30, -0.20, -0.25, -0.10, -0.40]
    t = stats.bound_test(x, -0.1, 0.95, (-1.0, 1.0))
    assert t["p_below"] == pytest.approx(sps.ttest_1samp(x, -0.1, alternative="less").pvalue)
    assert t["p_above"] == pytest.approx(sps.ttest_1samp(x, -0.1, alternative="greater").pvalue)
    low, high = _t_interval(x)
    assert (t["ci_low"], t["ci_high"]) == pytest.approx((low, high))
    # the interval's end and the one-sided p say the same thing at level (1 - conf) / 2
    for bound in np.linspace(-0.5, 0.0, 51):
        u = stats.bound_test(x, float(bound), 0.95)
        assert (u["ci_high"] < bound) == (u["p_below"] < 0.025)
        assert (u["ci_low"] > bound) == (u["p_above"] < 0.025)


def test_bound_test_degenerate_inputs_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        flat = stats.bound_test([0.0, 0.0, 0.0], 0.1, 0.95)
        one = stats.bound_test([0.3], 0.1, 0.95)
    assert flat["ci_low"] == flat["ci_high"] == 0.0 and flat["p_below"] is None
    assert one["ci_low"] is None and "n=1" in one["note"]


def test_seeds_needed_is_the_first_n_whose_interval_clears_the_margin() -> None:
    sd, margin = 0.137, 0.156
    n = stats.seeds_needed(sd, margin, 0.95)
    assert n is not None

    def half(k: int) -> float:
        return sps.t.ppf(0.975, k - 1) * sd / np.sqrt(k)

    assert half(n) < margin <= half(n - 1)
    # the closed form the report quotes, with t at the found n, lands on it
    assert n == pytest.approx((sps.t.ppf(0.975, n - 1) * sd / margin) ** 2, abs=1)
    assert stats.seeds_needed(sd, 0.0, 0.95) is None  # on the bound: no n decides
    assert stats.seeds_needed(10.0, 1e-4, 0.95) is None  # beyond MAX_SEEDS
