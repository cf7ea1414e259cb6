"""The study's four claims, checked against our own numbers, each with a verdict.

The claims are about compositions (no remedy, class weights, oversampling, two-phase
training), found by composition, not by name; verdicts come from paired intervals
against bounds that are params (``compare.*``).
"""

from __future__ import annotations

from typing import Any

from imbalance.analysis.runs import Runs, series
from imbalance.analysis.stats import paired
from imbalance.analysis.text import diff, mean_ci
from imbalance.params import Params, Remedy, Retrain


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
    weights = find_remedy(params, Remedy(weights={"kind": "balanced"}))
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
            f"`{baseline}` test recall at threshold {t}: {mean_ci(rec)} "
            f"(\u2248 0 means the {pct} interval ends below {cmp.near_zero_recall})",
            f"but its test ROC AUC is {mean_ci(auc)}, and at the validation-tuned threshold "
            f"its recall is {mean_ci(trec)}",
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
                f"`{weights}` {mean_ci(per[weights]['test.fn'], 1)}, "
                f"`{over}` {mean_ci(per[over]['test.fn'], 1)}",
                f"paired difference `{weights}` \u2212 `{over}`: {diff(fn, 1)}",
                f"the price in false positives: {diff(fp, 1)}; ROC AUC difference: {diff(auc)}",
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
                f"test recall at threshold {t}: `{under}` {mean_ci(per[under]['test.recall'])}, "
                f"`{weights}` {mean_ci(per[weights]['test.recall'])}",
                f"paired difference `{under}` \u2212 `{weights}`: {diff(rec)}; "
                f"comparable = the {pct} interval inside \u00b1{m}",
                f"ROC AUC difference: {diff(auc)}",
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
            f"`{second}` vs `{first}`: test recall {mean_ci(per[second]['test.recall'])} vs "
            f"{mean_ci(per[first]['test.recall'])}, paired difference {diff(rec)} "
            f"\u2192 {verdicts[-1]}; ROC AUC difference {diff(auc)}"
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
