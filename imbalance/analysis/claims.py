"""The study's primary questions (``compare.questions`` in params.yaml), checked by one
generic checker, each with a verdict.

A question names its metric, its remedies (by name, by composition, or ``@best``), its
kind (bound, superiority, non-inferiority, equivalence with a margin, best) and its
threshold; adding a question is one params entry, no code. Verdicts: held / did not hold
when the repeated t-interval lies on one side of the bound (every pair of the question
agreeing), inconclusive otherwise (pairs pointing in opposite directions say so), not
run when a remedy it names is not declared; ``best`` questions give the set of remedies
that could be the best (Hsu's MCB, :func:`imbalance.analysis.stats.could_be_best`).

Error control: the questions are their own family, ``1 - compare.confidence`` split
equally among them (Bonferroni), half per side for a two-way verdict, and each look's
share from the group-sequential plan (``compare.sequential``,
:func:`imbalance.analysis.stats.level_at`), so checking after every batch of seeds keeps
the level. The large paired tables of the report are exploratory and not in this family.

Every question carries its ``rule`` in words, ``evidence`` lines whose p-value is that
rule's one-sided test, ``to_decide`` and ``seeds_needed`` when inconclusive (an estimate
from the observed mean and sd at the plan's last level, or the cap reached), the
``remedies`` more seeds would go to, and ``practice``: the params' sentence for its verdict.
"""

from __future__ import annotations

from typing import Any

from imbalance.analysis.runs import Runs, value, value_range
from imbalance.analysis.stats import (
    MAX_SEEDS,
    bound_test,
    could_be_best,
    difference_range,
    differences,
    level_at,
    nominal_levels,
    seeds_needed,
)
from imbalance.analysis.text import num, p_value, signed
from imbalance.cli import UserError
from imbalance.params import Params, Question
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
    plan_confidence: float | None = None,
) -> dict[str, Any]:
    """Claim "the mean of ``values`` is below ``bound``": verdict, p-value, seeds to decide.

    held: the interval's upper end is below the bound (one-sided t-test of H0: mean >=
    bound, ``p < (1 - confidence) / 2``); did not hold: its lower end is at or above it;
    inconclusive otherwise, or with no interval (n = 1, or no values). The seeds-needed
    estimate uses ``plan_confidence`` (the level at the sequential cap) when given.
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
        t["seeds_needed"] = seeds_needed(t["std"], t["gap"], plan_confidence or confidence)
    # the p-value of the test whose rejection the verdict would be
    t["p"] = t["p_above"] if t["verdict"] == "did not hold" else t["p_below"]
    return t


def check_above(
    what: str,
    values: Any,
    bound: float,
    confidence: float,
    bounds: tuple[float, float],
    digits: int = 3,
    difference: bool = True,
    plan_confidence: float | None = None,
) -> dict[str, Any]:
    """Claim "the mean of ``values`` is above ``bound``": :func:`check_below` of the negated
    values against the negated bound, reported back on the original scale."""
    neg = [None if v is None else -float(v) for v in values]
    lo, hi = bounds
    t = check_below(what, neg, -bound, confidence, (-hi, -lo), digits, difference, plan_confidence)
    t["kind"] = "above"
    t["bound"] = float(bound)
    for key in ("mean",):
        if t[key] is not None:
            t[key] = -t[key]
    t["ci_low"], t["ci_high"] = (
        (None, None) if t["ci_low"] is None else (-t["ci_high"], -t["ci_low"])
    )
    t["p_below"], t["p_above"] = t["p_above"], t["p_below"]
    return t


def check_within(
    what: str,
    values: Any,
    margin: float,
    confidence: float,
    bounds: tuple[float, float],
    digits: int = 3,
    plan_confidence: float | None = None,
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
        t["seeds_needed"] = seeds_needed(t["std"], t["gap"], plan_confidence or confidence)
    if None not in p_inside:
        t["p"] = min(p_outside) if t["verdict"] == "did not hold" else max(p_inside)
    return t


def _pct(confidence: float) -> str:
    """A level as a percentage with the digits it needs: 95%, 99.17%."""
    return f"{confidence * 100:.2f}".rstrip("0").rstrip(".") + "%"


def _value(t: dict[str, Any], v: float) -> str:
    """A number of a test as the evidence prints it: signed when it is a difference."""
    return signed(v, t["digits"]) if t["difference"] else num(v, t["digits"])


def _describe_test(t: dict[str, Any], confidence: float) -> str:
    """One evidence line: the mean, the t-interval, the rule's p-value and the verdict."""
    pct, side = _pct(confidence), (1 - confidence) / 2
    if t["mean"] is None:
        return f"{t['what']}: n/a"
    head = f"{t['what']}: {_value(t, t['mean'])}"
    if t["ci_low"] is None:
        return f"{head} (n={t['n']}: no interval, no test) \u2192 {t['verdict']}"
    head += f", {pct} t-interval [{_value(t, t['ci_low'])}, {_value(t, t['ci_high'])}]"
    if t["p"] is None:
        return f"{head} (the same value on every seed: no test) \u2192 {t['verdict']}"
    if t["kind"] in ("below", "above"):
        b = f"{t['bound']:g}"
        le, ge = f"H0: mean \u2264 {b}", f"H0: mean \u2265 {b}"
        held_h0 = ge if t["kind"] == "below" else le
        other_h0 = le if t["kind"] == "below" else ge
        h0 = other_h0 if t["verdict"] == "did not hold" else held_h0
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
    pct = _pct(confidence)
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
            ("above", "held"): f"entirely above {side}",
            ("above", "did not hold"): f"at or below {side}",
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


# ------------------------------------------------------------------------- questions

#: Verdicts of the primary questions. ``inconclusive`` carries what would decide it.
VERDICTS = ("held", "did not hold", "inconclusive", "not run")


def resolve(params: Params, ref: str | dict[str, Any]) -> str | None:
    """A question's remedy reference -> the declared remedy's name (None: not declared).

    A string is a name; a mapping is a composition, found by :func:`find_remedy` (a
    mapping with ``start`` is a retrain remedy): so a question keeps meaning "class
    weights" whatever the remedy is called.
    """
    if isinstance(ref, str):
        return ref if ref in params.all_remedies else None
    try:
        spec = Retrain(**ref) if "start" in ref else Remedy(**ref)
    except ValueError as err:
        raise UserError(
            f"params.yaml: compare.questions: {ref!r} is not a valid remedy composition "
            f"({err}); write it as under `remedies`"
        ) from None
    return find_remedy(params, spec)


def question_alpha(params: Params) -> float:
    """Each primary question's share of the family error (Bonferroni over the questions)."""
    return (1 - params.compare.confidence) / max(len(params.compare.questions), 1)


def _seeds(runs: Runs) -> list[int]:
    """Every seed any remedy ran, sorted: remedies of a sequential study differ in seeds."""
    return sorted({s for by_seed in runs.values() for s in by_seed})


def _values(runs: Runs, remedy: str, key: str, seeds: list[int]) -> list[float | None]:
    """A remedy's values over ``seeds``, None where it did not run that seed."""
    return [value(runs[remedy][s], key) if s in runs[remedy] else None for s in seeds]


def _combine(tests: list[dict[str, Any]]) -> str:
    """Every part must agree (intersection-union: no adjustment needed for it)."""
    verdicts = {t["verdict"] for t in tests}
    return verdicts.pop() if len(verdicts) == 1 else "inconclusive"


def _best_question(
    qid: str, q: Question, params: Params, runs: Runs, ceiling: list[str]
) -> dict[str, Any]:
    """Hsu's MCB on the question's metric among the remedies that are not the ceiling."""
    seq, alpha = params.compare.sequential, question_alpha(params)
    seeds = _seeds(runs)
    names = [r for r in params.all_remedies if r not in ceiling and r in runs]
    vals = {r: _values(runs, r, q.metric, seeds) for r in names}
    n = min((sum(v is not None for v in vals[r]) for r in names), default=0)
    level = level_at(n, seq.looks, alpha, seq.spending)
    mcb = could_be_best(vals, level, higher_is_better=q.direction == "higher")
    members = [r for r in names if mcb[r]["could_be_best"]]
    conf = 1 - level
    out: dict[str, Any] = {
        "id": qid,
        "claim": q.claim,
        "study": q.study,
        "kind": q.kind,
        "metric": q.metric,
        "n": n,
        "level": level,
        "confidence": conf,
        "mcb": mcb,
        "members": members,
        "remedies": members if len(members) > 1 else [],
        "rule": (
            f"Hsu's multiple comparisons with the best on `{q.metric}` "
            f"({q.direction} is better), paired by seed, among the remedies that are not "
            f"the ceiling: one-sided simultaneous {_pct(conf)} intervals of "
            "mu_i \u2212 max_{j\u2260i} mu_j (Bonferroni t over the k \u2212 1 comparisons, "
            f"level {level:.3g} = this look's share of the question's {alpha:.3g}); a remedy "
            "could be the best when its upper end is above 0. Decided (held) when one "
            "remedy is left"
        ),
        "evidence": [
            f"could be best ({len(members)} of {len(names)}): "
            + ", ".join(
                f"`{r}` [{signed(mcb[r]['low'] or 0.0)}, {signed(mcb[r]['high'] or 0.0)}]"
                for r in members
            )
        ],
        "seeds_needed": None,
        "to_decide": None,
    }
    if len(members) == 1:
        out["verdict"] = "held"
    else:
        out["verdict"] = "inconclusive"
        out["to_decide"] = (
            f"{len(members)} remedies could be best: more seeds for them shrink the set"
            if n < seq.looks[-1]
            else f"cap of {seq.looks[-1]} seeds reached: these remedies are tied at this "
            "precision; choose among them by cost"
        )
    out["practice"] = q.practice.get(out["verdict"], "")
    return out


def check_question(
    qid: str,
    q: Question,
    params: Params,
    runs: Runs,
    ceiling: list[str],
    best_members: list[str] | None = None,
) -> dict[str, Any]:
    """One primary question -> its verdict, rule, evidence and the remedies it involves.

    The level is the question's share of the family error (:func:`question_alpha`), half
    per side (a verdict either way is a decision), at this look of the group-sequential
    plan (:func:`imbalance.analysis.stats.level_at`, n = the fewest paired seeds of its
    tests): the interval printed is the repeated confidence interval at that level.
    """
    if q.kind == "best":
        return _best_question(qid, q, params, runs, ceiling)
    seq, alpha = params.compare.sequential, question_alpha(params)
    seeds = _seeds(runs)
    out: dict[str, Any] = {"id": qid, "claim": q.claim, "study": q.study, "kind": q.kind}
    out.update(metric=q.metric, practice="", seeds_needed=None, to_decide=None)
    refs = [[q.remedy]] if q.remedy is not None else q.pairs
    pairs: list[list[str]] = []
    missing: list[str] = []
    self_pairs: list[list[str]] = []
    for ref in refs:
        expanded: list[list[str]] = [[]]
        for r in ref:
            names = (best_members or []) if r == "@best" else [resolve(params, r)]
            if not names or None in names:
                missing.append(str(r))
                names = []
            expanded = [[*e, n] for e in expanded for n in names if n is not None]
        self_pairs = [e for e in expanded if len(e) == 2 and e[0] == e[1]]
        pairs += [e for e in expanded if e not in self_pairs]
    if missing or not pairs:
        out.update(verdict="not run", n=0, remedies=[], tests=[])
        out["evidence"] = [
            "not declared: " + (", ".join(f"`{m}`" for m in missing) or "no remedy pair")
        ]
        return out
    key_range = value_range(runs, q.metric)
    tests = []
    for pair in pairs:
        if len(pair) == 1:
            vals = _values(runs, pair[0], q.metric, seeds)
            what, rng, diff_ = f"`{pair[0]}` mean {q.metric}", key_range, False
        else:
            vals = list(
                differences(
                    _values(runs, pair[0], q.metric, seeds),
                    _values(runs, pair[1], q.metric, seeds),
                )
            )
            what, rng = f"{q.metric} `{pair[0]}` \u2212 `{pair[1]}`", difference_range(key_range)
            diff_ = True
        n = sum(v is not None for v in vals)
        level = level_at(n, seq.looks, alpha / 2, seq.spending)
        conf = 1 - 2 * level
        plan = 1 - 2 * nominal_levels(seq.looks, alpha / 2, seq.spending)[-1]
        digits = 1 if q.metric.split(".")[1] in ("fn", "fp", "tn", "tp") else 3
        args = (what, vals)
        if q.kind == "equivalence":
            t = check_within(*args, q.threshold, conf, rng, digits, plan_confidence=plan)
        else:
            if q.kind == "bound":
                bound, below = q.threshold, q.direction == "below"
            elif q.kind == "superiority":
                bound, below = 0.0, q.direction == "lower"
            else:  # non_inferiority: not worse than the margin
                below = q.direction == "lower"
                bound = q.threshold if below else -q.threshold
            check = check_below if below else check_above
            t = check(*args, bound, conf, rng, digits, diff_, plan_confidence=plan)
        t.update(level=level, confidence=conf, plan_confidence=plan, remedies=pair)
        tests.append(t)
    verdict = _combine(tests)
    if self_pairs and verdict == "held":  # the compared-against remedy could be best itself
        verdict = "inconclusive"
    n_min = min(t["n"] for t in tests)
    cap = seq.looks[-1]
    to_decide, need = _to_decide(tests, verdict, tests[0]["plan_confidence"])
    if verdict == "inconclusive" and n_min >= cap:
        to_decide = (
            f"cap of {cap} seeds reached (the plan's last look): the verdict stays "
            f"inconclusive; {to_decide or 'no estimate'}"
        )
    undecided = [r for t in tests if t["verdict"] == "inconclusive" for r in t["remedies"]]
    out.update(
        verdict=verdict,
        n=n_min,
        level=tests[0]["level"],
        confidence=tests[0]["confidence"],
        tests=tests,
        remedies=list(dict.fromkeys(undecided if verdict == "inconclusive" else [])),
        to_decide=to_decide,
        seeds_needed=need,
        evidence=[_describe_test(t, t["confidence"]) for t in tests],
        practice=q.practice.get(verdict, ""),
    )
    side = {"below": "below", "above": "above", "lower": "below", "higher": "above"}
    what = {
        "bound": f"lies {side[q.direction]} {q.threshold:g}",
        "superiority": f"lies {side[q.direction]} 0 ({q.direction} is better)",
        "non_inferiority": f"is not worse than the margin {q.threshold:g} ({q.direction} is "
        "better)",
        "equivalence": f"lies inside \u00b1{q.threshold:g} (two one-sided tests)",
    }[q.kind]
    out["rule"] = (
        f"held when the repeated {_pct(out['confidence'])} t-interval of the mean "
        f"{'paired difference' if q.pairs else 'value'} of `{q.metric}` over seeds {what}, "
        "for every pair; did not hold when it lies entirely on the other side; otherwise "
        f"inconclusive. Level {tests[0]['level']:.3g} per side: this look's share "
        f"({seq.spending} spending, looks {seq.looks}) of the question's "
        f"{alpha:.3g} (the family's {1 - params.compare.confidence:g} split over "
        f"{len(params.compare.questions)} questions)"
    )
    return out


def check_questions(params: Params, runs: Runs, ceiling: list[str]) -> list[dict[str, Any]]:
    """Every primary question of ``compare.questions``, in order; ``best`` questions first
    feed ``@best`` (the remedies that could be the best) to the questions naming it."""
    questions = params.compare.questions
    results: dict[str, dict[str, Any]] = {}
    members: list[str] | None = None
    for qid, q in questions.items():
        if q.kind == "best":
            results[qid] = check_question(qid, q, params, runs, ceiling)
            members = members or results[qid]["members"]
    for qid, q in questions.items():
        if q.kind != "best":
            results[qid] = check_question(qid, q, params, runs, ceiling, members)
    return [results[qid] for qid in questions]
