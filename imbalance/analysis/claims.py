"""The study's four claims, checked against our own numbers, each with a verdict.

The claims are about compositions (no remedy, class weights, oversampling, two-phase
training), found by composition, not by name; verdicts come from Student-t intervals over
seeds against bounds that are params (``compare.*``).

Every claim carries, besides its verdict and evidence:

- ``rule``: the decision rule in words: which interval, which bound, which test. A
  reader must be able to redo the verdict from the numbers printed next to it; a p-value
  printed beside a verdict is the p-value *of that rule's test* (one-sided, against the
  claim's bound), never a test against zero that the verdict does not use.
- ``to_decide`` (inconclusive only): how many seeds would probably decide it, estimated
  from the observed mean and sd (:func:`imbalance.analysis.stats.seeds_needed`), or why
  more seeds would not.
- ``tests``: the numbers of each test (JSON only).

All rules use the two-sided t-interval at ``compare.confidence``; that a bound lies
outside it is the same as a one-sided t-test against the bound at level
(1 - confidence) / 2 (2.5 % for 95 %), the convention for one-sided claims that keeps
them exactly as strict as the two-sided interval (ICH E9). The four claims are the
study's own, stated before our data existed; each is judged on its own, not adjusted
for the others nor for the exploratory paired tables.
"""

from __future__ import annotations

from typing import Any

from imbalance.analysis.runs import Runs, series, value_range
from imbalance.analysis.stats import (
    MAX_SEEDS,
    bound_test,
    difference_range,
    differences,
    paired,
    seeds_needed,
)
from imbalance.analysis.text import diff, mean_ci, num, p_value, signed
from imbalance.params import Params
from imbalance.training.components import Remedy, Retrain


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


# --------------------------------------------------------------------- one test each


def check_below(
    what: str,
    values: Any,
    bound: float,
    confidence: float,
    bounds: tuple[float, float],
    digits: int = 3,
    difference: bool = True,
) -> dict[str, Any]:
    """Claim "the mean of ``values`` is below ``bound``": verdict, p-value, seeds to decide.

    held: the interval's upper end is below the bound (one-sided t-test of H0: mean >=
    bound, ``p < (1 - confidence) / 2``); did not hold: its lower end is at or above it;
    inconclusive otherwise, or with no interval (n = 1, or no values).
    """
    t = bound_test(values, bound, confidence, bounds)
    t.update(what=what, kind="below", digits=digits, difference=difference)
    t.update(seeds_needed=None, target=None)
    if t["ci_low"] is None:
        t["verdict"] = "inconclusive"
    elif t["ci_high"] < bound:
        t["verdict"] = "held"
    elif t["ci_low"] >= bound:
        t["verdict"] = "did not hold"
    else:
        t["verdict"] = "inconclusive"
        t["target"] = "held" if t["mean"] < bound else "did not hold"
        t["gap"] = abs(t["mean"] - bound)
        t["seeds_needed"] = seeds_needed(t["std"], t["gap"], confidence)
    # the p-value of the test whose rejection the verdict would be
    t["p"] = t["p_above"] if t["verdict"] == "did not hold" else t["p_below"]
    return t


def check_within(
    what: str,
    values: Any,
    margin: float,
    confidence: float,
    bounds: tuple[float, float],
    digits: int = 3,
) -> dict[str, Any]:
    """Claim "the mean of ``values`` is within +-``margin``": equivalence by two one-sided tests.

    held: the interval lies inside [-margin, margin] (TOST: H0 mean <= -margin and H0
    mean >= margin both rejected, the larger p below (1 - confidence) / 2); did not hold:
    the interval lies entirely beyond one side; inconclusive otherwise.
    """
    low, high = (
        bound_test(values, -margin, confidence, bounds),
        bound_test(values, margin, confidence, bounds),
    )
    t = {k: v for k, v in high.items() if k not in ("bound", "p_below", "p_above")}
    t.update(what=what, kind="within", margin=margin, digits=digits, difference=True)
    t.update(seeds_needed=None, target=None, p=None)
    if t["ci_low"] is None:
        t["verdict"] = "inconclusive"
        return t
    p_inside = (low["p_above"], high["p_below"])  # H1: mean > -m, H1: mean < m
    p_outside = (low["p_below"], high["p_above"])  # H1: mean < -m, H1: mean > m
    if -margin <= t["ci_low"] and t["ci_high"] <= margin:
        t["verdict"] = "held"
    elif t["ci_low"] > margin or t["ci_high"] < -margin:
        t["verdict"] = "did not hold"
    else:
        t["verdict"] = "inconclusive"
        inside = abs(t["mean"]) < margin
        t["target"] = "held" if inside else "did not hold"
        t["gap"] = margin - abs(t["mean"]) if inside else abs(t["mean"]) - margin
        t["seeds_needed"] = seeds_needed(t["std"], t["gap"], confidence)
    if None not in p_inside:
        t["p"] = min(p_outside) if t["verdict"] == "did not hold" else max(p_inside)
    return t


def _value(t: dict[str, Any], v: float) -> str:
    """A number of a test as the evidence prints it: signed when it is a difference."""
    return signed(v, t["digits"]) if t["difference"] else num(v, t["digits"])


def _describe_test(t: dict[str, Any], confidence: float) -> str:
    """One evidence line: the mean, the t-interval, the rule's p-value and the verdict."""
    pct, side = f"{confidence:.0%}", (1 - confidence) / 2
    if t["mean"] is None:
        return f"{t['what']}: n/a"
    head = f"{t['what']}: {_value(t, t['mean'])}"
    if t["ci_low"] is None:
        return f"{head} (n={t['n']}: no interval, no test) \u2192 {t['verdict']}"
    head += f", {pct} t-interval [{_value(t, t['ci_low'])}, {_value(t, t['ci_high'])}]"
    if t["p"] is None:
        return f"{head} (the same value on every seed: no test) \u2192 {t['verdict']}"
    if t["kind"] == "below":
        b = f"{t['bound']:g}"
        h0 = f"H0: mean \u2264 {b}" if t["verdict"] == "did not hold" else f"H0: mean \u2265 {b}"
        test = f"one-sided t-test of {h0}"
    else:
        m = f"{t['margin']:g}"
        test = (
            f"one-sided t-test beyond \u00b1{m}"
            if t["verdict"] == "did not hold"
            else f"TOST of H0: |mean| \u2265 {m} (larger one-sided p)"
        )
    cmp = "<" if t["p"] < side else "\u2265"
    return f"{head}; {test}: p {p_value(t['p'], eq=True)} ({cmp} {side:g}) \u2192 {t['verdict']}"


def _to_decide(
    tests: list[dict[str, Any]], verdict: str, confidence: float
) -> tuple[str | None, int | None]:
    """What would decide an inconclusive claim: seeds, estimated, or why not seeds."""
    if verdict != "inconclusive":
        return None, None
    pct = f"{confidence:.0%}"
    decided = {t["verdict"] for t in tests} - {"inconclusive"}
    if decided == {"held", "did not hold"}:
        return (
            "the parts of the claim point in opposite directions ("
            + "; ".join(f"{t['what']}: {t['verdict']}" for t in tests)
            + "): more seeds would sharpen each part, not reconcile them",
            None,
        )
    parts, needs = [], []
    for t in tests:
        if t["verdict"] != "inconclusive":
            continue
        if t["n"] < 2:
            return (
                f"at least 2 seeds (now {t['n']}): one value has no spread, so neither an "
                "interval nor an estimate of the seeds needed exists",
                None,
            )
        d = t["digits"]
        side = f"\u00b1{t['margin']:g}" if t["kind"] == "within" else f"{t['bound']:g}"
        where = {
            ("below", "held"): f"entirely below {side}",
            ("below", "did not hold"): f"at or above {side}",
            ("within", "held"): f"inside {side}",
            ("within", "did not hold"): f"outside {side}",
        }[(t["kind"], t["target"])]
        observed = f"observed mean {_value(t, t['mean'])}, sd {num(t['std'], d)}"
        if t["seeds_needed"] is None:
            why = "the mean sits on the bound" if t["gap"] == 0 else f"more than {MAX_SEEDS}"
            parts.append(f"{t['what']}: no feasible number of seeds ({observed}: {why})")
            needs.append(None)
            continue
        parts.append(
            f"{t['what']}: about {t['seeds_needed']} seeds (now {t['n']}) would put the "
            f"{pct} t-interval {where} \u2192 *{t['target']}* ({observed})"
        )
        needs.append(t["seeds_needed"])
    if not parts:
        return None, None
    need = None if None in needs else max(needs)
    text = (
        "; ".join(parts)
        + ". An estimate, n \u2248 (t\u00b7sd / margin)\u00b2 with margin = the distance "
        "from the observed mean to the bound, taking the observed mean and sd for the true "
        "ones: at that n a new run would decide about half of the time"
    )
    return text, need


# ---------------------------------------------------------------------------- claims


def check_claims(params: Params, stats: dict[str, Any], runs: Runs) -> list[dict[str, Any]]:
    """The study's four findings, each with a verdict, its rule, and the numbers behind it.

    Verdicts come from t-intervals over seeds at ``compare.confidence`` (paired where two
    remedies are compared) against the claim's bound: held / did not hold when the
    interval lies on one side of the bound, inconclusive when it straddles it, not run
    when a remedy the claim is about is not declared. The bounds are params
    (``compare.near_zero_recall``, ``compare.equivalence_margin``,
    ``compare.material_drop``), in units of test recall (0 false negatives for claim b).
    """
    conf, resamples, seeds, cmp = (
        params.compare.confidence,
        params.compare.bootstrap,
        params.seeds,
        params.compare,
    )
    pct, side = f"{conf:.0%}", f"{(1 - conf) / 2:g}"
    per = stats["remedies"]
    pos = params.classes.positive
    t = params.evaluate.threshold

    def values(remedy: str, key: str) -> list[float | None]:
        return series(runs, remedy, key, seeds)

    def pair(a: str, b: str, key: str) -> dict[str, Any]:
        return paired(
            values(a, key),
            values(b, key),
            conf,
            resamples,
            difference_range(value_range(runs, key)),
        )

    def finish(claim: dict[str, Any], tests: list[dict[str, Any]], verdict: str) -> None:
        to_decide, need = _to_decide(tests, verdict, conf)
        claim.update(verdict=verdict, tests=tests, to_decide=to_decide, seeds_needed=need)

    baseline = find_remedy(params, Remedy())
    weights = find_remedy(params, Remedy(weights={"kind": "balanced"}))
    over = find_remedy(params, Remedy(sampler="oversample"))
    under = find_remedy(params, Remedy(sampler="undersample"))
    claims: list[dict[str, Any]] = []

    # (a) the baseline does not learn the minority class
    nz = cmp.near_zero_recall
    claim: dict[str, Any] = {
        "id": "a",
        "claim": f"The baseline (no remedy) does not learn the minority class ({pos}).",
        "study": "recall 0.0: every test image predicted as the majority class",
        "rule": (
            f"held when the upper end of the {pct} t-interval of the baseline's mean test "
            f"recall at threshold {t} over seeds lies below {nz} (one-sided one-sample "
            f"t-test of H0: mean recall \u2265 {nz}, p < {side}); did not hold when its lower "
            "end is at or above it; otherwise inconclusive. A t-interval, not the table's "
            "bootstrap interval, so that interval and p-value are one test"
        ),
    }
    if baseline is None:
        claim.update(verdict="not run", evidence=["no remedy declared with no components"])
    else:
        rec = check_below(
            f"`{baseline}` mean test recall",
            values(baseline, "test.recall"),
            nz,
            conf,
            value_range(runs, "test.recall"),
            difference=False,
        )
        auc, trec = per[baseline]["test.roc_auc"], per[baseline]["tuned.recall"]
        evidence = [
            _describe_test(rec, conf),
            f"but its test ROC AUC is {mean_ci(auc)}, and at the validation-tuned threshold "
            f"its recall is {mean_ci(trec)} (means with the table's {pct} bootstrap intervals)",
        ]
        if auc["ci_low"] is not None and auc["ci_low"] > 0.5:
            evidence.append(
                "the AUC interval lies above 0.5: the scores do rank the minority class above "
                "chance; what fails is the threshold, not all learning"
            )
        claim["evidence"] = evidence
        finish(claim, [rec], rec["verdict"])
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
        claim["rule"] = (
            f"held when the upper end of the {pct} paired t-interval of the difference in "
            f"test false negatives at threshold {t} (`{weights}` \u2212 `{over}`, same seed) "
            f"lies below 0 (one-sided paired t-test of H0: difference \u2265 0, p < {side}); "
            "did not hold when its lower end is at or above 0; otherwise inconclusive"
        )
        fn = check_below(
            f"false negatives `{weights}` \u2212 `{over}`",
            differences(values(weights, "test.fn"), values(over, "test.fn")),
            0.0,
            conf,
            difference_range(value_range(runs, "test.fn")),
            digits=1,
        )
        fp = pair(weights, over, "test.fp")
        auc = pair(weights, over, "test.roc_auc")
        n_pos = _n_positives(runs, weights)
        claim["evidence"] = [
            f"false negatives at threshold {t} (of {n_pos} test {pos} images): "
            f"`{weights}` {mean_ci(per[weights]['test.fn'], 1)}, "
            f"`{over}` {mean_ci(per[over]['test.fn'], 1)} (the table's bootstrap intervals)",
            _describe_test(fn, conf),
            f"the price in false positives: {diff(fp, 1)}; ROC AUC difference: {diff(auc)}",
        ]
        finish(claim, [fn], fn["verdict"])
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
        claim["rule"] = (
            f"held when the {pct} paired t-interval of the test-recall difference at "
            f"threshold {t} (`{under}` \u2212 `{weights}`) lies inside \u00b1{m} (two one-sided "
            f"paired t-tests, TOST, of H0: difference \u2264 \u2212{m} and H0: difference "
            f"\u2265 {m}, both p < {side}; the larger p is printed); did not hold when the "
            f"interval lies entirely outside \u00b1{m}; otherwise inconclusive"
        )
        rec = check_within(
            f"recall `{under}` \u2212 `{weights}`",
            differences(values(under, "test.recall"), values(weights, "test.recall")),
            m,
            conf,
            difference_range(value_range(runs, "test.recall")),
        )
        auc = pair(under, weights, "test.roc_auc")
        claim["evidence"] = [
            f"test recall at threshold {t}: `{under}` {mean_ci(per[under]['test.recall'])}, "
            f"`{weights}` {mean_ci(per[weights]['test.recall'])} (the table's bootstrap "
            "intervals)",
            _describe_test(rec, conf),
            f"ROC AUC difference: {diff(auc)}",
        ]
        finish(claim, [rec], rec["verdict"])
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
        "rule": (
            "for every over/undersampled model declared with a two-phase version: the pair "
            f"held when the upper end of the {pct} paired t-interval of the test-recall "
            f"change at threshold {t} (two-phase \u2212 one-phase) lies below \u2212{drop} "
            f"(one-sided paired t-test of H0: change \u2265 \u2212{drop}, p < {side}), did "
            f"not hold when its lower end is at or above \u2212{drop}. The claim held when "
            "every pair held, did not hold when every pair did not, otherwise inconclusive. "
            "A p-value against *no* change answers another question (is there a drop at "
            "all?) and is printed as such"
        ),
    }
    tests, evidence = [], []
    for first in (over, under):
        if first is None:
            continue
        second = find_remedy(params, Retrain(start=first))
        if second is None:
            continue
        rec = check_below(
            f"recall `{second}` \u2212 `{first}`",
            differences(values(second, "test.recall"), values(first, "test.recall")),
            -drop,
            conf,
            difference_range(value_range(runs, "test.recall")),
        )
        zero = pair(second, first, "test.recall")
        auc = pair(second, first, "test.roc_auc")
        tests.append(rec)
        evidence.append(
            f"`{second}` vs `{first}`: test recall {mean_ci(per[second]['test.recall'])} vs "
            f"{mean_ci(per[first]['test.recall'])} (the table's bootstrap intervals)"
        )
        evidence.append(_describe_test(rec, conf))
        if zero["p_ttest"] is not None:
            evidence.append(
                f"against no change (two-sided paired t-test, not the rule's test): "
                f"p {p_value(zero['p_ttest'], eq=True)}; ROC AUC difference {diff(auc)}"
            )
    if not tests:
        claim.update(
            verdict="not run",
            evidence=["no retrain remedy starting from an over/undersampled model is declared"],
        )
    else:
        verdicts = {r["verdict"] for r in tests}
        claim["evidence"] = evidence
        finish(claim, tests, verdicts.pop() if len(verdicts) == 1 else "inconclusive")
    claims.append(claim)
    return claims


def _n_positives(runs: Runs, remedy: str) -> int:
    run = next(iter(runs[remedy].values()))
    return int(run["test"]["tp"] + run["test"]["fn"])
