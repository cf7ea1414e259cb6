"""Numbers as the report and the claims print them: means with intervals, signed differences.

One place, so the table, the paired comparisons and the claims' evidence agree digit for
digit.
"""

from __future__ import annotations

from typing import Any


def ci(p: dict[str, Any], key_low: str = "ci_low", key_high: str = "ci_high") -> str:
    if p.get(key_low) is None:
        return "no interval (n=1)" if p.get("n", 0) <= 1 else "no interval"
    return f"[{signed(p[key_low])}, {signed(p[key_high])}]"


def signed(v: float, digits: int = 3) -> str:
    return f"{v:+.{digits}f}"


def mean_ci(d: dict[str, Any], digits: int = 3) -> str:
    if d["mean"] is None:
        return "n/a"
    if d["ci_low"] is None:
        return f"{d['mean']:.{digits}f} (n={d['n']})"
    return f"{d['mean']:.{digits}f} [{d['ci_low']:.{digits}f}, {d['ci_high']:.{digits}f}]"


def diff(p: dict[str, Any], digits: int = 3) -> str:
    if p["mean_diff"] is None:
        return "n/a"
    text = f"{signed(p['mean_diff'], digits)}"
    if p["ci_low"] is not None:
        text += (
            f" [{signed(p['ci_low'], digits)}, {signed(p['ci_high'], digits)}]"
            f" (bootstrap [{signed(p['bootstrap_low'], digits)}, "
            f"{signed(p['bootstrap_high'], digits)}], p {p_value(p['p_ttest'], eq=True)})"
        )
    else:
        text += " (n=1: no interval)"
    return text


def p_value(p: float | None, eq: bool = False) -> str:
    if p is None:
        return "n/a"
    if p < 0.001:
        return "< 0.001" if eq else "<0.001"
    return f"= {p:.3f}" if eq else f"{p:.3f}"
