"""The comparison's PNG figures (matplotlib, Agg; no TensorFlow).

Every figure is meant to be read without this file: a title that says what and over
which seeds, axis labels that name the classes, legends outside the data, and one
colour per remedy that stays the same across figures (the declaration order of
params.yaml picks it). Up to 20 remedies get distinct colours (tab20); line styles
separate the rest.
"""

from __future__ import annotations

import math
from collections.abc import Collection
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
    """A remedy's label: the ceiling (trained on the balanced set) says so everywhere, and
    a remedy with more seeds than the others (sequential blocks) says how many."""
    name = f"{remedy} (ceiling)" if remedy in stats.get("ceiling", ()) else remedy
    by_remedy = stats.get("seeds_by_remedy", {})
    if remedy in by_remedy and len(by_remedy[remedy]) > min(map(len, by_remedy.values())):
        name += f" (n={len(by_remedy[remedy])})"
    return name


def _over_stats(params: Params, stats: dict[str, Any]) -> str:
    """What a figure of the statistics averages over: the seeds, or with sequential blocks
    each remedy's own seeds (the labels of those with more say n)."""
    by_remedy = stats.get("seeds_by_remedy")
    if not by_remedy:
        return _over(params.seeds)
    counts = sorted({len(s) for s in by_remedy.values()})
    return f"mean over each remedy's own seeds ({counts[0]} to {counts[-1]}, sequential blocks)"


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


#: Most curves on the ROC figure: beyond ten, colours repeat and the chart stops reading.
ROC_MAX_CURVES = 10


def roc_remedies(params: Params, stats: dict[str, Any], limit: int = ROC_MAX_CURVES) -> list[str]:
    """The remedies the ROC figure draws: the report's (reference, ``also_against``, the
    ceiling, the best) first, then the best others by mean test ROC AUC up to ``limit``."""
    per = stats["remedies"]
    report = [stats.get("reference"), *stats.get("also_against", ()), *stats.get("ceiling", ())]
    report.append(stats.get("best"))
    chosen = [r for r in dict.fromkeys(report) if r in per]
    for remedy in sorted(params.all_remedies, key=lambda r: -(per[r]["test.roc_auc"]["mean"] or 0)):
        if len(chosen) >= limit:
            break
        if remedy not in chosen:
            chosen.append(remedy)
    return chosen


def roc_test(
    params: Params,
    roc: dict[Any, list[dict[str, Any]]],
    stats: dict[str, Any],
    path: Path,
) -> None:
    """All remedies' test ROC curves, each vertically averaged over the remedy's own seeds
    (those its legend AUC averages), on one chart.

    Curves that coincide (:func:`coinciding`) would hide one another: the first is drawn
    wide and pale underneath, the others over it in dash patterns of their own colours
    with a dark rim, and the legend says which curve each one lies on.
    """
    neg, pos = params.classes.negative, params.classes.positive
    grid = np.linspace(0.0, 1.0, 201)
    fig, ax = plt.subplots(figsize=(10.5, 6.6))
    ax.plot([0, 1], [0, 1], color="0.75", lw=1, ls=":", label="chance (AUC 0.5)")
    per = stats["remedies"]
    shown = roc_remedies(params, stats)
    order = sorted(shown, key=lambda r: -(per[r]["test.roc_auc"]["mean"] or 0.0))
    # distinct colours: tab10 over the (at most ten) curves shown, in declaration order
    index = {r: i for i, r in enumerate(r for r in params.all_remedies if r in shown)}
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
        style: dict[str, Any] = {"color": plt.get_cmap("tab10")(i % 10), "lw": 1.8, "zorder": 2}
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
    hidden = len(params.all_remedies) - len(shown)
    ax.set_title(
        f"Test ROC: the report's remedies and the best by AUC, {_over_stats(params, stats)}"
        f"{' (vertical average)' if len(params.seeds) > 1 else ''}\n"
        f"positive class: {pos}; legend: mean test ROC AUC [{_interval_name(params)}], "
        "best first" + (f"; {hidden} other remedies: metrics/comparison.md" if hidden else ""),
        fontsize=11,
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=9, frameon=False)
    _save(fig, path)


BAR_METRICS = tuple((c.key, metrics.label(c, "bars")) for c in metrics.columns("bars"))
#: A bar shorter than this (in axis units) gets its value written next to it.
SHORT_BAR = 0.02


def bars(params: Params, stats: dict[str, Any], path: Path) -> None:
    """Ranked diverging bars, one panel per metric of :data:`BAR_METRICS`: each remedy's
    mean as a bar from the reference's mean (the vertical line), with its interval.

    Remedies are ranked by mean test ROC AUC (best on top, the same order in every
    panel). Each panel's axis is sized from that metric's intervals, not from 0: AUCs of
    0.83 and 0.95 would look alike on a 0-1 axis. A bar of (nearly) zero length (the
    reference itself, or a remedy that equals it) is drawn as a marker with its value
    written beside it, so "no change" never looks like "missing".
    """
    per = stats["remedies"]
    ref = stats.get("reference")
    remedies = sorted(params.all_remedies, key=lambda r: -(per[r]["test.roc_auc"]["mean"] or 0))
    k = len(BAR_METRICS)
    fig, axes = plt.subplots(
        1, k, figsize=(3.3 * k + 2.2, 0.32 * len(remedies) + 1.8), sharey=True,
        layout="constrained", squeeze=False,
    )  # fmt: skip
    y = np.arange(len(remedies))
    for ax, (key, label) in zip(axes[0], BAR_METRICS, strict=True):
        cells = [per[r][key] for r in remedies]
        missing = np.array([c["mean"] is None for c in cells])
        means = np.array([np.nan if c["mean"] is None else c["mean"] for c in cells])
        lows = np.array([np.nan if c["ci_low"] is None else c["ci_low"] for c in cells])
        highs = np.array([np.nan if c["ci_high"] is None else c["ci_high"] for c in cells])
        base = per[ref][key]["mean"] if ref in per and per[ref][key]["mean"] is not None else None
        if missing.all():  # undefined for every remedy (e.g. precision, no positive call)
            origin, lo, hi = 0.0, 0.0, 1.0
        else:
            origin = base if base is not None else float(np.nanmin(means))
            lo = float(np.nanmin(np.r_[lows, means, origin]))
            hi = float(np.nanmax(np.r_[highs, means, origin]))
        span = (hi - lo) or 0.1
        diffs = np.nan_to_num(means - origin)
        colors = np.where(diffs >= 0, "#54a24b", "#e45756")
        ax.barh(y, diffs, left=origin, height=0.7, color=colors, alpha=0.85)
        has = ~np.isnan(lows)  # n=1: no interval, so no (zero-length) error bar either
        if has.any():
            err = np.vstack([means[has] - lows[has], highs[has] - means[has]])
            ax.errorbar(
                means[has], y[has], xerr=np.clip(err, 0, None), fmt="none", ecolor="0.15",
                elinewidth=1, capsize=2, zorder=3,
            )  # fmt: skip
        short = ~missing & (np.abs(diffs) < SHORT_BAR * span)
        if short.any():
            ax.plot(
                means[short], y[short], ls="none", marker="D", ms=4, color="0.3",
                markeredgecolor="0.15", markeredgewidth=0.6, zorder=4,
            )  # fmt: skip
        for m, p, h, is_short, is_missing in zip(means, y, highs, short, missing, strict=True):
            if is_short or is_missing:
                x = origin if is_missing else (h if np.isfinite(h) else m)
                ax.text(
                    x + 0.015 * span, p, "n/a" if is_missing else f"{m:.3f}", va="center",
                    fontsize=7, color="0.25", zorder=5,
                )  # fmt: skip
        if base is not None:
            ax.axvline(base, color="0.2", lw=1, ls="--", zorder=2)
        ax.set_xlim(lo - 0.04 * span, hi + 0.12 * span)
        ax.set_title(
            label + (f"\n(line: {ref} {base:.3f})" if base is not None else ""), fontsize=10
        )
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(y, [_name(r, stats) for r in remedies])
    axes[0][0].invert_yaxis()
    ci = f"error bars: {_interval_name(params)}" if len(params.seeds) > 1 else "no error bars"
    fig.suptitle(
        f"Test metrics per remedy, ranked by ROC AUC, {_over_stats(params, stats)}\nbars from the "
        f"reference's mean ({ref}); {ci}; positive class: {params.classes.positive}; threshold "
        f"{params.evaluate.threshold} unless tuned",
        fontsize=10,
    )
    _save(fig, path)


# ------------------------------------------------------------ headline: the forest plot

#: The primary metric: the forest plot's, and the statistics' ``could_be_best`` set's.
PRIMARY = ("test.roc_auc", "test ROC AUC")


def forest(
    params: Params,
    stats: dict[str, Any],
    could_be_best: Collection[str],
    path: Path,
    metric: tuple[str, str] = PRIMARY,
) -> None:
    """The headline figure: each remedy's paired difference to the reference on the
    primary metric (mean over seeds of the per-seed differences) with its paired
    interval, ranked, the remedies that could be the best marked.

    ``could_be_best`` is the statistics' set (``metrics/statistics.json`` key
    ``could_be_best``, a list of remedy names): remedies the data cannot rule out as the
    best. The ceiling (trained on other data) is drawn apart, in grey.
    """
    key, label = metric
    ref = stats["reference"]
    paired = stats["paired"]["reference"]
    ceiling = set(stats.get("ceiling", ()))
    rows = [
        (r, paired[r][key])
        for r in params.all_remedies
        if r in paired and paired[r].get(key, {}).get("mean_diff") is not None
    ]
    rows.sort(key=lambda row: -row[1]["mean_diff"])
    marked = set(could_be_best)
    fig, ax = plt.subplots(figsize=(8.5, 0.34 * len(rows) + 1.9), layout="constrained")
    y = np.arange(len(rows))
    for i, (remedy, d) in enumerate(rows):
        best = remedy in marked
        color = "0.55" if remedy in ceiling else ("#1f6fb4" if best else "0.2")
        if d.get("ci_low") is not None:
            ax.plot([d["ci_low"], d["ci_high"]], [i, i], color=color, lw=2.2 if best else 1.3)
        ax.plot(
            d["mean_diff"], i, marker="D" if best else "o", ms=7 if best else 5, color=color,
            markeredgecolor="black" if best else color, zorder=3,
        )  # fmt: skip
    ax.axvline(0.0, color="0.3", lw=1, ls="--")
    names = [_name(r, stats) + ("  ◆ could be best" if r in marked else "") for r, _ in rows]
    ax.set_yticks(y, names, fontsize=9)
    for tick, (remedy, _) in zip(ax.get_yticklabels(), rows, strict=True):
        if remedy in marked:
            tick.set_fontweight("bold")
    ax.invert_yaxis()
    ax.set_xlabel(f"{label}: remedy − {ref} (paired by seed; > 0 is better)")
    ax.grid(axis="x", alpha=0.3)
    interval = (
        "no intervals (n=1)"
        if len(params.seeds) == 1
        else (f"{params.compare.confidence:.0%} paired t-interval")
    )
    fig.suptitle(
        f"Paired difference to {ref} in {label}, "
        + (
            f"over the seeds each remedy shares with {ref} (sequential blocks)"
            if "seeds_by_remedy" in stats
            else _over(params.seeds)
        )
        + ": mean and "
        f"{interval}\n◆ = could be the best (statistics.json could_be_best); grey: "
        "the ceiling, trained on the balanced set",
        fontsize=10,
    )
    _save(fig, path)


def confusion(params: Params, stats: dict[str, Any], path: Path) -> None:
    """A grid of test confusion matrices: mean counts over seeds at the fixed threshold,
    each with the same interval as the table (not an sd: one kind of spread everywhere)."""
    neg, pos = params.classes.negative, params.classes.positive
    per = stats["remedies"]
    remedies = list(params.all_remedies)
    cols = min(4, len(remedies))
    rows = math.ceil(len(remedies) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.1 * cols + 0.8, 2.9 * rows + 0.8), squeeze=False,
        layout="constrained",
    )  # fmt: skip
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
            else f"mean counts [{_interval_name(params)}], "
            + (
                _over_stats(params, stats).removeprefix("mean over ")
                if "seeds_by_remedy" in stats
                else _seeds_text(params.seeds)
            )
        )
        + f" (positive class: {pos})",
        fontsize=12,
    )
    if image is not None:  # constrained layout places it beside the grid, not over it
        fig.colorbar(image, ax=axes, shrink=0.6, label="test images")
    _save(fig, path)


def seed_band(series: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
    """(steps, mean, low, high) over seeds of curves logged at (possibly) different steps.

    Runs stop early at different steps, so at each step of the union only the seeds that
    reached it count; the band is their min-max (with 5 seeds an interval would say
    little more, and min-max hides nothing).
    """
    steps = np.unique(np.concatenate([np.asarray(s) for s, _ in series]))
    table = np.full((len(series), len(steps)), np.nan)
    for i, (s, v) in enumerate(series):
        table[i, np.searchsorted(steps, s)] = v
    return steps, np.nanmean(table, 0), np.nanmin(table, 0), np.nanmax(table, 0)


def training_curves(
    params: Params,
    curves: dict[int, dict[str, dict[str, Any]]],
    best_steps: dict[str, list[int]],
    path: Path,
) -> None:
    """Small multiples, one panel per remedy: validation AUC (left) and losses (right),
    mean over seeds with a min-max band, over optimizer steps. Every panel has the same
    axes (steps, AUC, loss), so panels compare at a glance.

    ``curves``: seed -> remedy -> metric -> (steps, values); ``best_steps``: remedy -> the
    step each seed kept.
    """
    remedies = list(params.all_remedies)
    cols = min(4, len(remedies))
    rows = math.ceil(len(remedies) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.6 * cols, 2.7 * rows + 1.2), squeeze=False, layout="constrained"
    )
    kept = "best check, restored" if params.train.stopping == "early_stopping" else "final"
    every = [per for by_remedy in curves.values() for per in by_remedy.values()]
    last_step = max((float(np.max(s)) for per in every for s, _ in per.values()), default=1.0)
    auc_min = min(
        (float(np.min(per["val_auc"][1])) for per in every if "val_auc" in per), default=0.5
    )
    losses = [v for per in every for m in ("loss", "val_loss") if m in per for v in per[m][1]]
    # one loss scale for all panels; the 98th percentile keeps a few early spikes (focal,
    # logit-adjusted losses start high) from flattening every other panel
    loss_top = float(np.percentile(losses, 98)) * 1.05 if losses else 1.0
    styles = {
        "val_auc": ("validation ROC AUC (left)", "#4c78a8", "-"),
        "loss": ("training loss (right)", "#e45756", "-"),
        "val_loss": ("validation loss (right)", "#e45756", "--"),
    }
    handles = {}
    for ax, remedy in zip(axes.flat, remedies, strict=False):
        ax.set_title(remedy, fontsize=10, fontweight="bold")
        runs = [c[remedy] for c in curves.values() if c.get(remedy)]
        if not runs:
            ax.text(
                0.5, 0.5, "no training curves\n(post-hoc remedy:\nnothing trained)",
                ha="center", va="center", transform=ax.transAxes, color="0.4",
            )  # fmt: skip
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        twin = ax.twinx()
        for metric, (label, color, ls) in styles.items():
            series = [run[metric] for run in runs if metric in run]
            if not series:
                continue
            target = ax if metric == "val_auc" else twin
            steps, mean, low, high = seed_band(series)
            (handles[label],) = target.plot(steps, mean, color=color, ls=ls, lw=1.6)
            target.fill_between(steps, low, high, color=color, alpha=0.18, lw=0)
        best = best_steps.get(remedy, [])
        if any(best):
            line = ax.axvline(float(np.median(best)), color="0.3", lw=1, ls=":")
            handles[f"median step kept over seeds ({kept})"] = line
        ax.set_ylim(min(0.4, auc_min - 0.02), 1.0)
        ax.set_xlim(0, last_step)
        twin.set_ylim(0, loss_top)
        ax.set_xlabel("optimizer step", fontsize=9)
        ax.set_ylabel("val ROC AUC", fontsize=9, color="#4c78a8")
        twin.set_ylabel("loss", fontsize=9, color="#e45756")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(remedies) :]:
        ax.axis("off")
    band = "" if len(params.seeds) == 1 else "; band: min-max over seeds"
    fig.suptitle(
        f"Training curves per remedy, {_over(params.seeds)}{band} (positive class: "
        f"{params.classes.positive}); same axes in every panel",
        fontsize=12,
    )
    if handles:
        fig.legend(
            handles.values(), handles.keys(), loc="outside lower center", ncol=len(handles),
            frameon=False,
        )  # fmt: skip
    _save(fig, path)
