"""Numbers as the report and the claims print them: means with intervals, signed differences.

One place, so the table, the paired comparisons and the claims' evidence agree digit for
digit.
"""

from __future__ import annotations

from typing import Any


def ci(p: dict[str, Any], key_low: str = "ci_low", key_high: str = "ci_high") -> str:
    """``[low, high]`` with signs (a difference's interval), or why there is none."""
    if p.get(key_low) is None:
        return "no interval (n=1)" if p.get("n", 0) <= 1 else "no interval"
    return f"[{signed(p[key_low])}, {signed(p[key_high])}]"


def signed(v: float, digits: int = 3) -> str:
    """A difference: the sign always shown, so +0.000 and -0.000 say which way it leans."""
    return f"{v:+.{digits}f}"


def num(v: float, digits: int = 3) -> str:
    """A plain number (a mean, an sd, a margin)."""
    return f"{v:.{digits}f}"


def mean_ci(d: dict[str, Any], digits: int = 3) -> str:
    """``mean [low, high]``: the interval is printed whole, never as ``mean +- half``.

    The intervals are not symmetric about the mean (they stay inside the metric's range),
    so a half-width would misstate one of the two ends.
    """
    if d["mean"] is None:
        return "n/a"
    if d["ci_low"] is None:
        return f"{d['mean']:.{digits}f} (n={d['n']})"
    return f"{d['mean']:.{digits}f} [{d['ci_low']:.{digits}f}, {d['ci_high']:.{digits}f}]"


def diff(p: dict[str, Any], digits: int = 3) -> str:
    """A paired difference with its t-interval and two-sided p against no difference."""
    if p["mean_diff"] is None:
        return "n/a"
    text = f"{signed(p['mean_diff'], digits)}"
    if p["ci_low"] is not None:
        text += (
            f" [{signed(p['ci_low'], digits)}, {signed(p['ci_high'], digits)}]"
            f" (paired t-interval; p {p_value(p['p_ttest'], eq=True)} against no difference)"
        )
    else:
        text += " (n=1: no interval)"
    return text


def p_value(p: float | None, eq: bool = False) -> str:
    """Three decimals, ``<0.001`` below; ``eq`` for running text (``= 0.014``)."""
    if p is None:
        return "n/a"
    if p < 0.001:
        return "< 0.001" if eq else "<0.001"
    return f"= {p:.3f}" if eq else f"{p:.3f}"
