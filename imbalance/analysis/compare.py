"""All runs -> the comparative study: key metrics, statistics, comparison.md, figures, claims.

No TensorFlow: everything comes from the per-run metrics files and plot data that
``evaluate`` wrote, the dvclive curves of ``train`` and the fetch manifest.

Writes (the ``compare`` stage):

- ``metrics/remedies/<remedy>.json``: the declared ``dvc metrics``, one small flat file
  per remedy so that ``dvc metrics show`` prints one row per remedy with a handful of
  columns (:data:`KEY_METRICS`, means over seeds) and ``dvc metrics diff`` stays
  readable; everything else lives in
- ``metrics/statistics.json``: mean, sd, t-interval and the per-seed values per remedy
  and metric, and the paired comparisons against ``compare.reference`` and against the
  best remedy (not a declared metric: thousands of numbers);
- ``metrics/comparison.md``: the table people read in a pull request, the paired
  comparisons, and "The study's claims, checked", all generated from the numbers above;
- ``figures/comparison/*.png`` (see :mod:`imbalance.analysis.figures`) and
  ``plots/comparison/training.json`` (the training curves of every remedy in one file,
  drawn by ``dvc plots``).

``python -m imbalance.analysis.compare sweep ...`` collects an imbalance-ratio sweep of DVC
experiments instead; see :mod:`imbalance.analysis.sweep`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np

from imbalance.analysis import text
from imbalance.analysis.claims import check_claims
from imbalance.analysis.evaluate import METRICS
from imbalance.analysis.runs import Runs, load_runs, read_curves, read_manifest, read_roc, series
from imbalance.analysis.stats import describe, paired
from imbalance.cli import UserError
from imbalance.files import atomic_dir, write_json, write_text
from imbalance.layout import Layout
from imbalance.params import Params

#: Metrics at the tuned threshold (the threshold-free ones equal the 0.5 ones).
TUNED_METRICS = tuple(m for m in METRICS if m not in ("roc_auc", "pr_auc"))
#: Every statistic is computed for these keys (``<where>.<metric>``).
KEYS = (
    *(f"test.{m}" for m in METRICS),
    *(f"tuned.{m}" for m in TUNED_METRICS),
    "tuned.value",
)
LOWER_IS_BETTER = {"fp", "fn"}
#: Per-epoch curves put into plots/comparison/training.json and the training figure.
#: SHA-256 of two archives whose identity the report states in words.
OFFICIAL_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
JPEG_COPY_SHA256 = "6c9b930289b4e49b2ec38c4eec6d8f11a272ce9d803b1c98018fbcc8682241ce"


# ------------------------------------------------------------------------ statistics


def statistics(params: Params, runs: Runs) -> dict[str, Any]:
    """Per-remedy intervals and the paired comparisons (the content of statistics.json)."""
    conf, resamples, seeds = params.compare.confidence, params.compare.bootstrap, params.seeds
    remedies = list(params.all_remedies)
    per = {r: {k: describe(series(runs, r, k, seeds), conf) for k in KEYS} for r in remedies}
    aucs = {r: per[r]["test.roc_auc"]["mean"] for r in remedies}
    best = max(remedies, key=lambda r: -np.inf if aucs[r] is None else aucs[r])

    def against(other: str) -> dict[str, Any]:
        base = {k: series(runs, other, k, seeds) for k in KEYS}
        return {
            r: {k: paired(series(runs, r, k, seeds), base[k], conf, resamples) for k in KEYS}
            for r in remedies
            if r != other
        }

    return {
        "confidence": conf,
        "seeds": seeds,
        "reference": params.compare.reference,
        "best": best,
        "best_by": "mean test roc_auc",
        "remedies": per,
        "paired": {
            "reference": against(params.compare.reference),
            "best": against(best),
        },
    }


#: The columns of ``dvc metrics show``: (column, statistics key). Short names keep a
#: row under 120 characters.
KEY_METRICS = (
    ("roc_auc", "test.roc_auc"),
    ("pr_auc", "test.pr_auc"),
    ("precision", "test.precision"),
    ("recall", "test.recall"),
    ("bal_acc", "test.balanced_accuracy"),
    ("recall_tuned", "tuned.recall"),
    ("bal_acc_tuned", "tuned.balanced_accuracy"),
)


def remedy_metrics(stats: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """metrics/remedies/<remedy>.json: flat means over seeds (4 decimals) and ``n_seeds``."""
    out = {}
    for remedy, per in stats["remedies"].items():
        row: dict[str, Any] = {"n_seeds": per["test.roc_auc"]["n"] or per["test.recall"]["n"]}
        for column, key in KEY_METRICS:
            mean = per[key]["mean"]
            row[column] = None if mean is None else round(mean, 4)
        out[remedy] = row
    return out


# --------------------------------------------------------------------------- report


def describe_source(manifest: dict[str, Any]) -> str:
    """Where the images came from, in words: never let a copy pass for the original."""
    sha = str(manifest.get("sha256", ""))
    kind = str(manifest.get("kind", ""))
    source = manifest.get("source", "?")
    facts = f"source `{source}`, kind `{kind}`, SHA-256 `{sha or 'not recorded'}`"
    if sha == OFFICIAL_SHA256:
        return f"the official CIFAR-10 python archive, SHA-256 verified ({facts})"
    if sha == JPEG_COPY_SHA256:
        return (
            "an offline JPEG re-encoding of CIFAR-10 (image folders, quality-75 JPEG) \u2014 "
            f"**NOT the official archive**; numbers are close to, not equal to, results on "
            f"the official data ({facts})"
        )
    if any(word in kind.lower() for word in ("folder", "image", "jpeg", "png")):
        return f"an image-folder copy of CIFAR-10 \u2014 **NOT the official archive** ({facts})"
    return f"a copy of CIFAR-10 whose SHA-256 is not the official archive's ({facts})"


def _cell(d: dict[str, Any], digits: int, bold: bool) -> str:
    if d["mean"] is None:
        return "n/a"
    text = f"{d['mean']:.{digits}f}"
    if d["ci_low"] is not None:
        text += f" \u00b1 {(d['ci_high'] - d['ci_low']) / 2:.{digits}f}"
    return f"**{text}**" if bold else text


TABLE = (  # (key, header, digits, bold-able)
    ("test.roc_auc", "ROC AUC", 3, True),
    ("test.pr_auc", "PR AUC", 3, True),
    ("test.precision", "precision", 3, True),
    ("test.recall", "recall", 3, True),
    ("test.balanced_accuracy", "bal. acc.", 3, True),
    ("test.fn", "FN", 1, True),
    ("test.fp", "FP", 1, True),
    ("tuned.value", "tuned t", 3, False),
    ("tuned.recall", "recall @t", 3, True),
    ("tuned.precision", "precision @t", 3, True),
    ("tuned.balanced_accuracy", "bal. acc. @t", 3, True),
)
PAIRED = (  # (key, label)
    ("test.roc_auc", "ROC AUC"),
    ("test.recall", "recall"),
    ("tuned.balanced_accuracy", "bal. acc. @t"),
)


def _best(per: dict[str, dict[str, Any]], key: str) -> float | None:
    means = [p[key]["mean"] for p in per.values() if p[key]["mean"] is not None]
    if not means:
        return None
    metric = key.split(".", 1)[1]
    return min(means) if metric in LOWER_IS_BETTER else max(means)


def _paired_table(comparisons: dict[str, Any], other: str) -> list[str]:
    lines = [
        f"| remedy \u2212 `{other}` | metric | mean difference | t-interval | bootstrap "
        "interval | d_z | p (paired t) | p (Wilcoxon) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for remedy, per_key in comparisons.items():
        for key, label in PAIRED:
            p = per_key[key]
            if p["mean_diff"] is None:
                continue
            boot = text.ci(p, "bootstrap_low", "bootstrap_high")
            d_z = "n/a" if p["d_z"] is None else f"{p['d_z']:+.2f}"
            lines.append(
                f"| `{remedy}` | {label} | {text.signed(p['mean_diff'])} | {text.ci(p)} | {boot} "
                f"| {d_z} | {text.p_value(p['p_ttest'])} | {text.p_value(p['p_wilcoxon'])} |"
            )
    return lines


def comparison_markdown(
    params: Params,
    stats: dict[str, Any],
    runs: Runs,
    manifest: dict[str, Any],
    claims: list[dict[str, Any]],
) -> str:
    """metrics/comparison.md: what a person reads in a pull request."""
    neg, pos = params.classes.negative, params.classes.positive
    per = stats["remedies"]
    seeds = params.seeds
    n = len(seeds)
    pct = f"{params.compare.confidence:.0%}"
    protocols = sorted({run["validation_protocol"] for r in runs.values() for run in r.values()})
    objective = params.evaluate.threshold_objective.replace("_", " ")
    first = next(iter(runs.values()))[seeds[0]]["test"]
    n_pos, n_neg = first["tp"] + first["fn"], first["tn"] + first["fp"]
    sp = params.split
    cells = (
        f"mean \u00b1 half-width of the {pct} t-interval over seeds"
        if n > 1
        else "single values (n=1: no intervals)"
    )
    out = [
        f"# Comparative study: {neg} vs {pos}",
        "",
        "Generated by the `compare` stage from `metrics/runs/`; do not edit by hand.",
        "",
        f"- **Data**: {describe_source(manifest)}.",
        f"- **Classes**: `{neg}` = negative (label 0, the majority); `{pos}` = positive "
        "(label 1, the minority); precision, recall, FN and FP are about the positive class.",
        f"- **Training sets**: imbalanced {sp.n_majority} / {sp.n_minority} "
        f"(imbalance ratio {sp.n_majority / sp.n_minority:g}:1), balanced "
        f"{sp.n_majority} / {sp.n_majority}; test set {n_neg} {neg} / {n_pos} {pos}.",
        f"- **Validation protocol**: {'; '.join(protocols)}.",
        f"- **Seeds**: {', '.join(map(str, seeds))} (n = {n}). Cells: {cells}. **Bold**: the "
        "best mean of the column (highest; lowest for FN and FP).",
        f"- **Thresholds**: {params.evaluate.threshold} (fixed, as in the study) and t, chosen "
        f"per run on the {'validation' if sp.validation == 'holdout' else 'test (!)'} set to "
        f"maximise {objective} (columns marked @t).",
        "",
        "## Test metrics",
        "",
        "| remedy | " + " | ".join(h for _, h, _, _ in TABLE) + " |",
        "|---|" + "---:|" * len(TABLE),
    ]
    best = {key: _best(per, key) for key, _, _, boldable in TABLE if boldable}
    for remedy, p in per.items():
        row = [f"`{remedy}`"]
        for key, _, digits, boldable in TABLE:
            mean = p[key]["mean"]
            is_best = (
                boldable
                and mean is not None
                and best[key] is not None
                and round(mean, digits) == round(best[key], digits)
            )
            row.append(_cell(p[key], digits, is_best))
        out.append("| " + " | ".join(row) + " |")

    ref, top = stats["reference"], stats["best"]
    protocol = (
        "held-out validation"
        if sp.validation == "holdout"
        else "early stopping on the test set, as the study did"
    )
    out += [
        "",
        "## Paired comparisons (same seed \u21d2 same data)",
        "",
        f"Differences are taken within each seed, then summarised over the {n} seeds: mean, "
        f"{pct} t-interval (the verdicts below use it), {pct} percentile bootstrap interval "
        f"({params.compare.bootstrap} resamples), Cohen's d_z (mean / sd of the differences), "
        "p-values of the paired t-test and the Wilcoxon signed-rank test"
        + (
            f" (with {n} seeds the Wilcoxon p cannot fall below {2 / 2**n:.3g})."
            if n > 1
            else " (n=1: none of these exist; only the single differences are shown)."
        ),
        "",
        f"### Against the reference `{ref}`",
        "",
        *_paired_table(stats["paired"]["reference"], ref),
        "",
        f"### Against the best remedy by mean test ROC AUC, `{top}`",
        "",
        "<details><summary>table</summary>",
        "",
        *_paired_table(stats["paired"]["best"], top),
        "",
        "</details>",
        "",
        "## The study's claims, checked",
        "",
        f"From our own numbers ({n} seed{'s' if n != 1 else ''}, {protocol}). "
        "Remedies are found by composition (params.yaml), not by name. Intervals are "
        f"paired {pct} t-intervals; a verdict is *inconclusive* when the interval straddles "
        "the claim's bound."
        + (
            " **With one seed there is no interval, so every verdict is inconclusive by "
            "construction: the numbers below are one draw, not a finding.**"
            if n == 1
            else ""
        ),
        "",
    ]
    for c in claims:
        out.append(
            f"**({c['id']}) {c['claim']}** \u2014 *{c['verdict']}*. The study: {c['study']}."
        )
        out += [f"- {e}" for e in c["evidence"]]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


# ------------------------------------------------------------------- training curves


def training_rows(curves: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Long-format rows {remedy, metric, epoch, value} for ``dvc plots``."""
    rows = []
    for remedy, per in curves.items():
        for metric, (epochs, values) in per.items():
            rows += [
                {"remedy": remedy, "metric": metric, "epoch": int(e), "value": round(float(v), 6)}
                for e, v in zip(epochs, values, strict=True)
            ]
    return rows


# ----------------------------------------------------------------------------- stage


def run_compare(params: Params, layout: Layout) -> None:
    """The compare stage: read every run, write key metrics, statistics, report, figures."""
    from imbalance.analysis import figures

    runs = load_runs(params, layout)
    manifest = read_manifest(layout.manifest)
    stats = statistics(params, runs)
    claims = check_claims(params, stats, runs)
    first_seed = params.seeds[0]
    curves = read_curves(params, first_seed, layout)
    roc = read_roc(params, layout)
    best_epochs = {r: runs[r][first_seed].get("best_epoch", 0) for r in runs}

    with atomic_dir(layout.comparison_figures) as fig_dir:
        figures.roc_test(params, roc, stats, fig_dir / "roc_test.png")
        figures.bars(params, stats, fig_dir / "bars.png")
        figures.confusion(params, stats, fig_dir / "confusion.png")
        figures.training_curves(params, curves, best_epochs, fig_dir / "training_curves.png")
    with atomic_dir(layout.comparison_plots) as plot_dir:
        body = ",\n".join(
            json.dumps(r, sort_keys=True, separators=(",", ":")) for r in training_rows(curves)
        )
        write_text(plot_dir / "training.json", f'{{"training": [\n{body}\n]}}\n')
        # The first seed's per-run plot data, git-tracked here (plots/runs is DVC-cached
        # so that evaluate stays run-cacheable), for `dvc plots diff` in a fresh clone.
        for name in ("roc.json", "precision_recall.json", "confusion.json"):
            src = layout.run_plots_dir(first_seed) / name
            write_text(plot_dir / name, src.read_text())
    write_json(layout.statistics, {**stats, "claims": claims})
    write_text(
        layout.comparison_md,
        comparison_markdown(params, stats, runs, manifest, claims),
    )
    with atomic_dir(layout.remedy_metrics_dir) as remedies_dir:
        for remedy, row in remedy_metrics(stats).items():
            write_json(remedies_dir / f"{remedy}.json", row)


def main(argv: list[str] | None = None) -> None:
    """``python -m imbalance.analysis.compare [sweep ...]``: the stage, or the sweep collector."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "sweep":
        from imbalance.analysis import sweep

        sweep.main(argv[1:])
        return
    if argv:
        raise UserError("usage: python -m imbalance.analysis.compare [sweep [--out DIR] ...]")
    from imbalance import params as params_mod

    run_compare(params_mod.load(), Layout())


if __name__ == "__main__":
    from imbalance.cli import run

    run(main)
