"""The comparison's PNG figures (matplotlib, Agg; no TensorFlow).

Every figure is meant to be read without this file: a title that says what and over
which seeds, axis labels that name the classes, legends outside the data, and one
colour per remedy that stays the same across figures (the declaration order of
params.yaml picks it). Up to 20 remedies get distinct colours (tab20); line styles
separate the rest.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import patheffects
from matplotlib.figure import Figure

from imbalance.analysis import metrics
from imbalance.params import Params

DPI = 120
STYLES = ("-", "--", ":", "-.")


def _color(i: int) -> Any:
    cmap = plt.get_cmap("tab20")
    # tab20 pairs a dark and a light shade; dark ones first keeps the first 10 crisp
    order = [*range(0, 20, 2), *range(1, 20, 2)]
    return cmap(order[i % 20])


def _style(i: int) -> str:
    return STYLES[(i // 10) % len(STYLES)]


def _save(fig: Figure, path: Path) -> None:
    # metadata without the matplotlib version/date keeps the bytes a function of the data
    fig.savefig(path, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def _over(seeds: list[int]) -> str:
    """ "mean over 5 seeds (0, 1, 2, 3, 4)", or "seed 3" when there is nothing to average."""
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"mean over {_seeds_text(seeds)}"


def _seeds_text(seeds: list[int]) -> str:
    return (
        f"seed {seeds[0]}"
        if len(seeds) == 1
        else f"{len(seeds)} seeds ({', '.join(map(str, seeds))})"
    )


def mean_roc(curves: list[tuple[np.ndarray, np.ndarray]], grid: np.ndarray) -> np.ndarray:
    """Vertical average of ROC curves (Fawcett 2006): the mean TPR at each FPR of ``grid``.

    At an FPR where a curve jumps vertically, its highest TPR counts (the ROC step is
    taken), so an average of identical curves is that curve.
    """
    tprs = []
    for fpr, tpr in curves:
        fpr, tpr = np.asarray(fpr, float), np.asarray(tpr, float)
        # keep the last (highest-TPR) point of every FPR value: np.interp needs unique x
        last = np.r_[fpr[1:] != fpr[:-1], True]
        tprs.append(np.interp(grid, fpr[last], tpr[last]))
    return np.mean(tprs, axis=0)


def _interval_name(params: Params) -> str:
    """What the error bars and bracketed numbers of every figure are (the table's too)."""
    if len(params.seeds) == 1:
        return "n=1: no intervals"
    return f"{params.compare.confidence:.0%} t-interval over seeds"


def _name(remedy: str, stats: dict[str, Any]) -> str:
    """A remedy's label: the ceiling (trained on the balanced set) says so everywhere."""
    return f"{remedy} (ceiling)" if remedy in stats.get("ceiling", ()) else remedy


#: Mean ROC curves closer than this everywhere (in TPR) look like one line at DPI 120.
COINCIDE_TPR = 0.005
#: Dash patterns of curves drawn over a coinciding one: each leaves gaps the others fill.
OVERLAY_DASHES = ((0, (6, 4)), (3, (1.5, 3.0)), (0, (10, 3, 2, 3)), (5, (3, 6)))


def coinciding(
    curves: dict[str, np.ndarray], tol: float = COINCIDE_TPR
) -> dict[str, tuple[str, float]]:
    """remedy -> (the earlier remedy its curve coincides with, the largest TPR gap).

    Curves are compared in ``curves``' order; a curve within ``tol`` everywhere of an
    earlier, not itself coinciding, curve is that curve's overlay. A post-hoc remedy
    that only moves the threshold (``posthoc_logit_adjusted``) has exactly its start's
    ROC curve; ``crt`` retrains one layer and lands within a fraction of a percent.
    """
    leaders: list[str] = []
    out: dict[str, tuple[str, float]] = {}
    for remedy, tpr in curves.items():
        for leader in leaders:
            gap = float(np.max(np.abs(tpr - curves[leader])))
            if gap <= tol:
                out[remedy] = (leader, gap)
                break
        else:
            leaders.append(remedy)
    return out


def roc_test(
    params: Params,
    roc: dict[int, list[dict[str, Any]]],
    stats: dict[str, Any],
    path: Path,
) -> None:
    """All remedies' test ROC curves, vertically averaged over seeds, on one chart.

    Curves that coincide (:func:`coinciding`) would hide one another: the first is drawn
    wide and pale underneath, the others over it in dash patterns of their own colours
    with a dark rim, and the legend says which curve each one lies on.
    """
    neg, pos = params.classes.negative, params.classes.positive
    grid = np.linspace(0.0, 1.0, 201)
    fig, ax = plt.subplots(figsize=(10.5, 6.6))
    ax.plot([0, 1], [0, 1], color="0.75", lw=1, ls=":", label="chance (AUC 0.5)")
    per = stats["remedies"]
    order = sorted(
        params.all_remedies,
        key=lambda r: -(per[r]["test.roc_auc"]["mean"] or 0.0),
    )
    index = {r: i for i, r in enumerate(params.all_remedies)}
    means: dict[str, np.ndarray] = {}
    for remedy in order:
        curves = []
        for rows in roc.values():
            pts = [r for r in rows if r["remedy"] == remedy and r["split"] == "test"]
            if pts:
                curves.append(
                    (np.array([p["fpr"] for p in pts]), np.array([p["tpr"] for p in pts]))
                )
        if curves:
            means[remedy] = mean_roc(curves, grid)
    twins = coinciding(means)
    leaders = {leader for leader, _ in twins.values()}
    overlays: dict[str, int] = {}
    for remedy, tpr in means.items():
        auc = per[remedy]["test.roc_auc"]
        label = f"{_name(remedy, stats)}  AUC {auc['mean']:.3f}"
        if auc["ci_low"] is not None:
            label += f" [{auc['ci_low']:.3f}, {auc['ci_high']:.3f}]"
        i = index[remedy]
        style: dict[str, Any] = {"color": _color(i), "ls": _style(i), "lw": 1.8, "zorder": 2}
        if remedy in leaders:
            style.update(ls="-", lw=4.5, alpha=0.55, zorder=2)
        if remedy in twins:
            leader, gap = twins[remedy]
            k = overlays[leader] = overlays.get(leader, -1) + 1
            style.update(
                ls=OVERLAY_DASHES[k % len(OVERLAY_DASHES)],
                lw=2.0,
                zorder=3 + k,
                # a dark rim: pale dashes on a pale wide line still read as their own line
                path_effects=[patheffects.withStroke(linewidth=3.4, foreground="0.2")],
            )
            label += (
                f"\n    identical to {leader}'s curve"
                if gap < 1e-9
                else f"\n    on {leader}'s curve (TPR within {gap:.3f})"
            )
        ax.plot(grid, tpr, label=label, **style)
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.005),
        xlabel=f"false positive rate ({neg} images called {pos})",
        ylabel=f"true positive rate (recall of {pos})",
        aspect="equal",
    )
    ax.grid(alpha=0.3)
    ax.set_title(
        f"Test ROC of every remedy, {_over(params.seeds)}"
        f"{' (vertical average)' if len(params.seeds) > 1 else ''}\n"
        f"positive class: {pos}; legend: mean test ROC AUC [{_interval_name(params)}], "
        "best first",
        fontsize=11,
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=9, frameon=False)
    _save(fig, path)


#: (statistics key, label) of the bars: the registry's ``bars`` view.
BAR_METRICS = tuple((c.key, metrics.label(c, "bars")) for c in metrics.columns("bars"))
#: A bar shorter than this (in axis units) gets its value written next to it.
SHORT_BAR = 0.02


def bars(params: Params, stats: dict[str, Any], path: Path) -> None:
    """Grouped horizontal bars: ROC AUC, precision, recall per remedy, interval error bars.

    The axis is sized from the intervals (never the other way round), so no error bar is
    cut at the frame; a bar of (nearly) zero length is still drawn as a marker at its
    value with the value written beside it, so "0" never looks like "missing".
    """
    per = stats["remedies"]
    remedies = list(params.all_remedies)
    k = len(BAR_METRICS)
    height = 0.8 / k
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(remedies) * k / 3 + 1.8))
    y = np.arange(len(remedies))
    colors = ("#4c78a8", "#f58518", "#54a24b", "#b279a2")
    lo_all, hi_all = [0.0], [1.0]
    for j, (key, label) in enumerate(BAR_METRICS):
        color = colors[j % len(colors)]
        cells = [per[r][key] for r in remedies]
        missing = np.array([c["mean"] is None for c in cells])
        means = np.array([np.nan if c["mean"] is None else c["mean"] for c in cells])
        lows = np.array([np.nan if c["ci_low"] is None else c["ci_low"] for c in cells])
        highs = np.array([np.nan if c["ci_high"] is None else c["ci_high"] for c in cells])
        pos = y - 0.4 + height * (j + 0.5)
        ax.barh(pos, np.nan_to_num(means), height=height * 0.92, color=color, label=label)
        has = ~np.isnan(lows)  # n=1: no interval, so no (zero-length) error bar either
        if has.any():
            err = np.vstack([means[has] - lows[has], highs[has] - means[has]])
            ax.errorbar(
                means[has], pos[has], xerr=np.clip(err, 0, None), fmt="none", ecolor="0.15",
                elinewidth=1, capsize=2, zorder=3,
            )  # fmt: skip
            lo_all.append(float(np.nanmin(lows)))
            hi_all.append(float(np.nanmax(highs)))
        short = ~missing & (np.abs(np.nan_to_num(means)) < SHORT_BAR)
        if short.any():
            ax.plot(
                means[short], pos[short], ls="none", marker="D", ms=4, color=color,
                markeredgecolor="0.15", markeredgewidth=0.6, zorder=4,
            )  # fmt: skip
        for m, p, h, is_short, is_missing in zip(means, pos, highs, short, missing, strict=True):
            if is_short or is_missing:
                x = 0.0 if is_missing else (h if np.isfinite(h) else m)
                ax.text(
                    x + 0.012, p, "n/a" if is_missing else f"{m:.3f}", va="center",
                    fontsize=7, color="0.25", zorder=5,
                )  # fmt: skip
    ax.set_yticks(y, [_name(r, stats) for r in remedies])
    ax.invert_yaxis()
    span = max(hi_all) - min(lo_all)
    ax.set_xlim(min(lo_all) - 0.03 * span, max(hi_all) + 0.03 * span)
    ax.set_xlabel(
        f"test metric (positive class: {params.classes.positive}; threshold "
        f"{params.evaluate.threshold} unless tuned)"
    )
    ax.grid(axis="x", alpha=0.3)
    ci = f"error bars: {_interval_name(params)}" if len(params.seeds) > 1 else "no error bars"
    ax.set_title(f"Test metrics per remedy, {_over(params.seeds)}; {ci}", fontsize=11, pad=26)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=k, frameon=False, fontsize=9)
    _save(fig, path)


def confusion(params: Params, stats: dict[str, Any], path: Path) -> None:
    """A grid of test confusion matrices: mean counts over seeds at the fixed threshold,
    each with the same interval as the table (not an sd: one kind of spread everywhere)."""
    neg, pos = params.classes.negative, params.classes.positive
    per = stats["remedies"]
    remedies = list(params.all_remedies)
    cols = min(4, len(remedies))
    rows = math.ceil(len(remedies) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols, 2.9 * rows + 0.6), squeeze=False)
    vmax = max(
        (per[r][f"test.{c}"]["mean"] or 0.0) for r in remedies for c in ("tp", "fp", "tn", "fn")
    )
    image = None
    for ax, remedy in zip(axes.flat, remedies, strict=False):
        cell = {c: per[remedy][f"test.{c}"] for c in ("tn", "fp", "fn", "tp")}
        matrix = np.array(
            [[cell["tn"]["mean"], cell["fp"]["mean"]], [cell["fn"]["mean"], cell["tp"]["mean"]]],
            float,
        )
        image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=vmax or 1)
        for (i, j), name in np.ndenumerate(np.array([["tn", "fp"], ["fn", "tp"]])):
            d = cell[name]
            text = f"{d['mean']:.0f}" if d["mean"] is not None else "n/a"
            if d["ci_low"] is not None:
                text += f"\n[{d['ci_low']:.0f}, {d['ci_high']:.0f}]"
            color = "white" if (d["mean"] or 0) > 0.55 * (vmax or 1) else "black"
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize=9)
        ax.set_xticks([0, 1], [neg, pos])
        ax.set_yticks([0, 1], [neg, pos], rotation=90, va="center")
        ax.set_title(_name(remedy, stats), fontsize=10, fontweight="bold")
        ax.set_xlabel("predicted", fontsize=9)
        ax.set_ylabel("actual", fontsize=9)
    for ax in list(axes.flat)[len(remedies) :]:
        ax.axis("off")
    fig.suptitle(
        f"Test confusion matrices at threshold {params.evaluate.threshold}: "
        + (
            f"counts, seed {params.seeds[0]}"
            if len(params.seeds) == 1
            else f"mean counts [{_interval_name(params)}], {_seeds_text(params.seeds)}"
        )
        + f" (positive class: {pos})",
        fontsize=12,
    )
    fig.tight_layout(rect=(0, 0, 0.93, 1))
    if image is not None:
        cax = fig.add_axes((0.945, 0.15, 0.015, 0.7))
        fig.colorbar(image, cax=cax, label="test images")
    _save(fig, path)


def training_curves(
    params: Params,
    curves: dict[str, dict[str, Any]],
    best_steps: dict[str, int],
    path: Path,
) -> None:
    """Small multiples, one panel per remedy: validation AUC (left) and losses (right),
    over optimizer steps (the same x for every remedy, whatever its sampler's epoch)."""
    remedies = list(params.all_remedies)
    cols = min(4, len(remedies))
    rows = math.ceil(len(remedies) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.7 * rows + 1.0), squeeze=False)
    seed = params.seeds[0]
    kept = "best check, restored" if params.train.stopping == "early_stopping" else "final"
    last_step = max(
        (float(np.max(steps)) for per in curves.values() for steps, _ in per.values()),
        default=1.0,
    )
    auc_min = min(
        (float(np.min(per["val_auc"][1])) for per in curves.values() if "val_auc" in per),
        default=0.5,
    )
    handles = {}
    for ax, remedy in zip(axes.flat, remedies, strict=False):
        per = curves.get(remedy, {})
        ax.set_title(remedy, fontsize=10, fontweight="bold")
        if not per:
            ax.text(
                0.5,
                0.5,
                "no training curves\n(post-hoc remedy:\nnothing trained)",
                ha="center",
                va="center",
                transform=ax.transAxes,
                color="0.4",
            )
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        twin = ax.twinx()
        if "val_auc" in per:
            e, v = per["val_auc"]
            (handles["validation ROC AUC (left)"],) = ax.plot(e, v, color="#4c78a8", lw=1.8)
        if "loss" in per:
            e, v = per["loss"]
            (handles["training loss (right)"],) = twin.plot(e, v, color="#e45756", lw=1.4)
        if "val_loss" in per:
            e, v = per["val_loss"]
            (handles["validation loss (right)"],) = twin.plot(
                e, v, color="#e45756", lw=1.4, ls="--"
            )
        best = best_steps.get(remedy, 0)
        if best:
            handles[f"step kept ({kept})"] = ax.axvline(best, color="0.3", lw=1, ls=":")
        # one AUC scale and one step axis for every panel (comparable: a step is a batch
        # whatever the sampler); losses differ by remedy (weighted, focal, logit-adjusted)
        # and are not comparable, so each panel scales its own
        ax.set_ylim(min(0.4, auc_min - 0.02), 1.0)
        ax.set_xlim(0, last_step)
        twin.set_ylim(bottom=0)
        ax.set_xlabel("optimizer step", fontsize=9)
        ax.set_ylabel("val ROC AUC", fontsize=9, color="#4c78a8")
        twin.set_ylabel("loss", fontsize=9, color="#e45756")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(remedies) :]:
        ax.axis("off")
    fig.suptitle(
        f"Training curves per remedy, seed {seed} (positive class: {params.classes.positive})",
        fontsize=12,
    )
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    if handles:
        fig.legend(
            handles.values(), handles.keys(), loc="lower center", ncol=len(handles), frameon=False
        )
    _save(fig, path)
