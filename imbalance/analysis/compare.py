"""All runs -> the comparative study: summary, statistics, comparison.md, figures, claims.

No TensorFlow: everything comes from the per-run metrics files and plot data that
``evaluate`` wrote, the dvclive curves of ``train`` and the fetch manifest.

Writes (the ``compare`` stage):

- ``metrics/summary.json``: per remedy the MEAN over seeds of every test metric (and the
  test metrics at the tuned threshold), plus ``n_seeds``. It is the ``dvc metrics`` file a
  reviewer diffs, so it is two levels deep at most (``baseline.recall``,
  ``baseline.tuned.recall``) and holds means only; the spread lives in
- ``metrics/statistics.json``: mean, sd and t-interval per remedy and metric, and the
  paired comparisons against ``compare.reference`` and against the best remedy;
- ``metrics/comparison.md``: the table people read in a pull request, the paired
  comparisons, and "The study's claims, checked", all generated from the numbers above;
- ``figures/comparison/*.png`` (see :mod:`imbalance.analysis.figures`) and
  ``plots/comparison/training.json`` (the training curves of every remedy in one file,
  drawn by ``dvc plots``).

``python -m imbalance.analysis.compare sweep ...`` collects an imbalance-ratio sweep of DVC
experiments instead; see :mod:`imbalance.analysis.sweep`.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from imbalance.analysis.evaluate import METRICS
from imbalance.analysis.stats import describe, paired
from imbalance.cli import UserError
from imbalance.files import atomic_dir, write_json, write_text
from imbalance.params import Params, Remedy, Retrain, Weights

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
CURVES = ("val_auc", "loss", "val_loss")
#: SHA-256 of two archives whose identity the report states in words.
OFFICIAL_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
JPEG_COPY_SHA256 = "6c9b930289b4e49b2ec38c4eec6d8f11a272ce9d803b1c98018fbcc8682241ce"

Runs = dict[str, dict[int, dict[str, Any]]]  # remedy -> seed -> metrics file


# --------------------------------------------------------------------------- loading


def load_runs(params: Params, root: Path = Path(".")) -> Runs:
    """Every declared remedy x seed's metrics file; a missing one is a clear error."""
    runs: Runs = {}
    for remedy in params.all_remedies:
        runs[remedy] = {}
        for seed in params.seeds:
            path = root / "metrics" / "runs" / f"seed{seed}" / f"{remedy}.json"
            if not path.is_file():
                raise UserError(f"{path}: missing; run `dvc repro evaluate@{seed}`")
            try:
                runs[remedy][seed] = json.loads(path.read_text())
            except json.JSONDecodeError as err:
                raise UserError(f"{path}: not valid JSON ({err.msg}); rebuild it") from None
    return runs


def value(run: dict[str, Any], key: str) -> float | None:
    """One number of a run's metrics file by key: ``test.recall``, ``tuned.fn``, ``tuned.value``."""
    where, metric = key.split(".", 1)
    if where == "test":
        return run["test"].get(metric)
    tuned = run["tuned_threshold"]
    return tuned["value"] if metric == "value" else tuned["test"].get(metric)


def series(runs: Runs, remedy: str, key: str, seeds: list[int]) -> list[float | None]:
    """One key over seeds, in ``seeds`` order (the pairing of the paired comparisons)."""
    return [value(runs[remedy][s], key) for s in seeds]


def read_manifest(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"{path}: missing; run `dvc repro fetch`")
    return json.loads(path.read_text())


def read_curves(params: Params, seed: int, root: Path = Path(".")) -> dict[str, dict[str, Any]]:
    """The dvclive curves of one seed: remedy -> metric -> (epochs, values); absent = {}.

    dvclive's TSVs have the columns ``timestamp step <metric>``; ``step`` is 0-based, the
    epochs here are 1-based like ``best_epoch``. A remedy with no training (post-hoc
    only) has no curves, which the figure says instead of failing.
    """
    out: dict[str, dict[str, Any]] = {}
    for remedy in params.all_remedies:
        out[remedy] = {}
        folder = root / "training" / remedy / f"seed{seed}" / "plots" / "metrics"
        for metric in CURVES:
            path = folder / f"{metric}.tsv"
            if not path.is_file():
                continue
            with path.open(newline="") as fh:
                rows = list(csv.DictReader(fh, delimiter="\t"))
            if rows and metric in rows[0]:
                epochs = np.array([int(r["step"]) + 1 for r in rows])
                values = np.array([float(r[metric]) for r in rows])
                out[remedy][metric] = (epochs, values)
    return out


def read_roc(params: Params, root: Path = Path(".")) -> dict[int, list[dict[str, Any]]]:
    """The ROC plot data of every seed (rows of plots/runs/seed<s>/roc.json)."""
    out = {}
    for seed in params.seeds:
        path = root / "plots" / "runs" / f"seed{seed}" / "roc.json"
        if not path.is_file():
            raise UserError(f"{path}: missing; run `dvc repro evaluate@{seed}`")
        out[seed] = json.loads(path.read_text())["roc"]
    return out


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


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 6)


def summary(params: Params, stats: dict[str, Any]) -> dict[str, Any]:
    """metrics/summary.json: means only, two levels deep, one block per remedy."""
    out: dict[str, Any] = {}
    for remedy, per in stats["remedies"].items():
        block: dict[str, Any] = {m: _round(per[f"test.{m}"]["mean"]) for m in METRICS}
        block["n_seeds"] = per["test.roc_auc"]["n"] or per["test.recall"]["n"]
        block["tuned"] = {m: _round(per[f"tuned.{m}"]["mean"]) for m in TUNED_METRICS}
        block["tuned"]["threshold"] = _round(per["tuned.value"]["mean"])
        out[remedy] = block
    return out


# ------------------------------------------------------------------------ the claims


def find_remedy(params: Params, spec: Remedy) -> str | None:
    """The first declared remedy composed exactly as ``spec``, whatever it is called.

    The study's claims are about compositions (no remedy, class weights, oversampling,
    ...), not names: names are params, so a renamed remedy is still found and a remedy
    that merely shares a name but is composed differently is not mistaken for it.
    """
    for name, remedy in params.all_remedies.items():
        if type(remedy) is type(spec) and remedy == spec:
            return name
    return None


def _ci(p: dict[str, Any], key_low: str = "ci_low", key_high: str = "ci_high") -> str:
    if p.get(key_low) is None:
        return "no interval (n=1)" if p.get("n", 0) <= 1 else "no interval"
    return f"[{_fmt_signed(p[key_low])}, {_fmt_signed(p[key_high])}]"


def _fmt_signed(v: float, digits: int = 3) -> str:
    return f"{v:+.{digits}f}"


def _mean_ci(d: dict[str, Any], digits: int = 3) -> str:
    if d["mean"] is None:
        return "n/a"
    if d["ci_low"] is None:
        return f"{d['mean']:.{digits}f} (n={d['n']})"
    return f"{d['mean']:.{digits}f} [{d['ci_low']:.{digits}f}, {d['ci_high']:.{digits}f}]"


def _diff_text(p: dict[str, Any], digits: int = 3) -> str:
    if p["mean_diff"] is None:
        return "n/a"
    text = f"{_fmt_signed(p['mean_diff'], digits)}"
    if p["ci_low"] is not None:
        text += (
            f" [{_fmt_signed(p['ci_low'], digits)}, {_fmt_signed(p['ci_high'], digits)}]"
            f" (bootstrap [{_fmt_signed(p['bootstrap_low'], digits)}, "
            f"{_fmt_signed(p['bootstrap_high'], digits)}], p {_fmt_p(p['p_ttest'], eq=True)})"
        )
    else:
        text += " (n=1: no interval)"
    return text


def _fmt_p(p: float | None, eq: bool = False) -> str:
    if p is None:
        return "n/a"
    if p < 0.001:
        return "< 0.001" if eq else "<0.001"
    return f"= {p:.3f}" if eq else f"{p:.3f}"


def _below(p: dict[str, Any], bound: float) -> str:
    """Verdict of "the paired difference is below ``bound``" from its t-interval."""
    if p["ci_low"] is None:
        return "inconclusive"
    if p["ci_high"] < bound:
        return "held"
    if p["ci_low"] >= bound:
        return "did not hold"
    return "inconclusive"


def check_claims(params: Params, stats: dict[str, Any], runs: Runs) -> list[dict[str, Any]]:
    """The study's four findings, each with a verdict and the numbers behind it.

    Verdicts come from the paired t-interval of the relevant difference (``compare.
    confidence``): held / did not hold when the interval lies on one side of the claim's
    bound, inconclusive when it straddles it, not run when a remedy the claim is about is
    not declared. The bounds are params (``compare.near_zero_recall``,
    ``compare.equivalence_margin``, ``compare.material_drop``), in units of test recall.
    """
    conf, resamples, seeds, cmp = (
        params.compare.confidence,
        params.compare.bootstrap,
        params.seeds,
        params.compare,
    )
    pct = f"{conf:.0%}"
    per = stats["remedies"]
    pos = params.classes.positive
    t = params.evaluate.threshold

    def pair(a: str, b: str, key: str) -> dict[str, Any]:
        return paired(series(runs, a, key, seeds), series(runs, b, key, seeds), conf, resamples)

    baseline = find_remedy(params, Remedy())
    weights = find_remedy(params, Remedy(weights=Weights(kind="balanced")))
    over = find_remedy(params, Remedy(sampler="oversample"))
    under = find_remedy(params, Remedy(sampler="undersample"))
    claims: list[dict[str, Any]] = []

    # (a) the baseline does not learn the minority class
    claim: dict[str, Any] = {
        "id": "a",
        "claim": f"The baseline (no remedy) does not learn the minority class ({pos}).",
        "study": "recall 0.0: every test image predicted as the majority class",
    }
    if baseline is None:
        claim.update(verdict="not run", evidence=["no remedy declared with no components"])
    else:
        rec, auc, trec = (
            per[baseline]["test.recall"],
            per[baseline]["test.roc_auc"],
            per[baseline]["tuned.recall"],
        )
        verdict = "inconclusive"
        if rec["ci_low"] is not None:
            if rec["ci_high"] < cmp.near_zero_recall:
                verdict = "held"
            elif rec["ci_low"] >= cmp.near_zero_recall:
                verdict = "did not hold"
        evidence = [
            f"`{baseline}` test recall at threshold {t}: {_mean_ci(rec)} "
            f"(\u2248 0 means the {pct} interval ends below {cmp.near_zero_recall})",
            f"but its test ROC AUC is {_mean_ci(auc)}, and at the validation-tuned threshold "
            f"its recall is {_mean_ci(trec)}",
        ]
        if auc["ci_low"] is not None and auc["ci_low"] > 0.5:
            evidence.append(
                "the AUC interval lies above 0.5: the scores do rank the minority class above "
                "chance; what fails is the threshold, not all learning"
            )
        claim.update(verdict=verdict, evidence=evidence)
    claims.append(claim)

    # (b) class weights beat oversampling (fewer false negatives)
    claim = {
        "id": "b",
        "claim": "Class weights beat oversampling (fewer false negatives).",
        "study": "198 vs 227 false negatives out of 1000 test images of the positive class",
    }
    if weights is None or over is None:
        missing = [n for n, r in (("class weights", weights), ("oversampling", over)) if r is None]
        claim.update(verdict="not run", evidence=[f"not declared: {', '.join(missing)}"])
    else:
        fn = pair(weights, over, "test.fn")
        fp = pair(weights, over, "test.fp")
        auc = pair(weights, over, "test.roc_auc")
        n_pos = _n_positives(runs, weights)
        claim.update(
            verdict=_below(fn, 0.0),
            evidence=[
                f"false negatives at threshold {t} (of {n_pos} test {pos} images): "
                f"`{weights}` {_mean_ci(per[weights]['test.fn'], 1)}, "
                f"`{over}` {_mean_ci(per[over]['test.fn'], 1)}",
                f"paired difference `{weights}` \u2212 `{over}`: {_diff_text(fn, 1)}",
                f"the price in false positives: {_diff_text(fp, 1)}; "
                f"ROC AUC difference: {_diff_text(auc)}",
            ],
        )
    claims.append(claim)

    # (c) undersampling is comparable to class weights
    m = cmp.equivalence_margin
    claim = {
        "id": "c",
        "claim": "Undersampling is comparable to class weights.",
        "study": "similar false negatives and AUC",
    }
    if weights is None or under is None:
        missing = [
            n for n, r in (("class weights", weights), ("undersampling", under)) if r is None
        ]
        claim.update(verdict="not run", evidence=[f"not declared: {', '.join(missing)}"])
    else:
        rec = pair(under, weights, "test.recall")
        auc = pair(under, weights, "test.roc_auc")
        verdict = "inconclusive"
        if rec["ci_low"] is not None:
            if -m <= rec["ci_low"] and rec["ci_high"] <= m:
                verdict = "held"
            elif rec["ci_low"] > m or rec["ci_high"] < -m:
                verdict = "did not hold"
        claim.update(
            verdict=verdict,
            evidence=[
                f"test recall at threshold {t}: `{under}` {_mean_ci(per[under]['test.recall'])}, "
                f"`{weights}` {_mean_ci(per[weights]['test.recall'])}",
                f"paired difference `{under}` \u2212 `{weights}`: {_diff_text(rec)}; "
                f"comparable = the {pct} interval inside \u00b1{m}",
                f"ROC AUC difference: {_diff_text(auc)}",
            ],
        )
    claims.append(claim)

    # (d) second-phase training on the natural distribution costs minority recall
    drop = cmp.material_drop
    claim = {
        "id": "d",
        "claim": (
            "Second-phase training on the natural distribution (retraining only the last "
            "layer of an over/undersampled model) costs much of the minority recall."
        ),
        "study": "two-phase recall falls back toward the baseline's",
    }
    verdicts, evidence = [], []
    for first in (over, under):
        if first is None:
            continue
        second = find_remedy(params, Retrain(start=first))
        if second is None:
            continue
        rec = pair(second, first, "test.recall")
        auc = pair(second, first, "test.roc_auc")
        verdicts.append(_below(rec, -drop))
        evidence.append(
            f"`{second}` vs `{first}`: test recall {_mean_ci(per[second]['test.recall'])} vs "
            f"{_mean_ci(per[first]['test.recall'])}, paired difference {_diff_text(rec)} "
            f"\u2192 {verdicts[-1]}; ROC AUC difference {_diff_text(auc)}"
        )
    if not verdicts:
        claim.update(
            verdict="not run",
            evidence=["no retrain remedy starting from an over/undersampled model is declared"],
        )
    else:
        evidence.append(
            f"costs much = the {pct} interval of the recall change ends below \u2212{drop}"
        )
        overall = verdicts[0] if len(set(verdicts)) == 1 else "inconclusive"
        claim.update(verdict=overall, evidence=evidence)
    claims.append(claim)
    return claims


def _n_positives(runs: Runs, remedy: str) -> int:
    run = next(iter(runs[remedy].values()))
    return int(run["test"]["tp"] + run["test"]["fn"])


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
            boot = _ci(p, "bootstrap_low", "bootstrap_high")
            d_z = "n/a" if p["d_z"] is None else f"{p['d_z']:+.2f}"
            lines.append(
                f"| `{remedy}` | {label} | {_fmt_signed(p['mean_diff'])} | {_ci(p)} | {boot} "
                f"| {d_z} | {_fmt_p(p['p_ttest'])} | {_fmt_p(p['p_wilcoxon'])} |"
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


def run_compare(params: Params, root: Path = Path(".")) -> None:
    """The compare stage: read every run, write summary, statistics, report, figures."""
    from imbalance.analysis import figures

    runs = load_runs(params, root)
    manifest = read_manifest(root / "data" / "raw" / "manifest.json")
    stats = statistics(params, runs)
    claims = check_claims(params, stats, runs)
    first_seed = params.seeds[0]
    curves = read_curves(params, first_seed, root)
    roc = read_roc(params, root)
    best_epochs = {r: runs[r][first_seed].get("best_epoch", 0) for r in runs}

    with atomic_dir(root / "figures" / "comparison") as fig_dir:
        figures.roc_test(params, roc, stats, fig_dir / "roc_test.png")
        figures.bars(params, stats, fig_dir / "bars.png")
        figures.confusion(params, stats, fig_dir / "confusion.png")
        figures.training_curves(params, curves, best_epochs, fig_dir / "training_curves.png")
    with atomic_dir(root / "plots" / "comparison") as plot_dir:
        body = ",\n".join(
            json.dumps(r, sort_keys=True, separators=(",", ":")) for r in training_rows(curves)
        )
        write_text(plot_dir / "training.json", f'{{"training": [\n{body}\n]}}\n')
        # The first seed's per-run plot data, git-tracked here (plots/runs is DVC-cached
        # so that evaluate stays run-cacheable), for `dvc plots diff` in a fresh clone.
        for name in ("roc.json", "precision_recall.json", "confusion.json"):
            src = root / "plots" / "runs" / f"seed{first_seed}" / name
            write_text(plot_dir / name, src.read_text())
    write_json(root / "metrics" / "statistics.json", {**stats, "claims": claims})
    write_text(
        root / "metrics" / "comparison.md",
        comparison_markdown(params, stats, runs, manifest, claims),
    )
    write_json(root / "metrics" / "summary.json", summary(params, stats))


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

    run_compare(params_mod.load())


if __name__ == "__main__":
    from imbalance.cli import run

    run(main)
