"""Comparison: statistics against scipy / hand values, the claims' verdicts, the stage's
files end to end, and the imbalance-ratio sweep collector on `dvc exp show --json` output.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from scipy import stats as sps

from imbalance.analysis import claims, compare, evaluate, stats, sweep
from imbalance.analysis import runs as runs_mod
from imbalance.cli import UserError
from imbalance.layout import Layout
from imbalance.params import Params, parse

ROOT = Path(__file__).resolve().parents[1]
T_975_DF3 = 3.182446305284263  # Student t quantile 0.975, 3 degrees of freedom (tables)


# ------------------------------------------------------------------------ statistics


def test_describe_gives_mean_sd_and_the_t_interval() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    sd = math.sqrt(((1.5**2) * 2 + (0.5**2) * 2) / 3)
    t_half = T_975_DF3 * sd / 2  # by hand, t from the tables
    d = stats.describe(values, 0.95)
    assert d["n"] == 4 and d["mean"] == pytest.approx(2.5) and d["std"] == pytest.approx(sd)
    assert (d["ci_low"], d["ci_high"]) == pytest.approx((2.5 - t_half, 2.5 + t_half))
    cut = stats.describe(values, 0.95, (0.0, 4.0))  # cut to the range, other end untouched
    assert (cut["ci_low"], cut["ci_high"]) == pytest.approx((2.5 - t_half, 4.0))


def test_describe_one_seed_and_missing_values() -> None:
    one = stats.describe([0.7], 0.95)
    assert one["mean"] == 0.7 and one["ci_low"] is None and "n=1" in one["note"]
    assert stats.describe([None, 0.5, None, 0.7], 0.95)["n"] == 2
    assert stats.describe([], 0.95)["mean"] is None
    flat = stats.describe([0.3, 0.3, 0.3], 0.95)
    assert flat["ci_low"] == flat["ci_high"] == flat["mean"] == pytest.approx(0.3)


def test_paired_equals_scipy_and_hand_values() -> None:
    a = [0.80, 0.70, 0.90, 0.62]
    b = [0.70, 0.65, 0.80, 0.60]
    d = np.array(a) - np.array(b)  # 0.10, 0.05, 0.10, 0.02
    p = stats.paired(a, b, 0.95)
    assert p["n"] == 4
    assert p["mean_diff"] == pytest.approx(d.mean())
    assert p["std_diff"] == pytest.approx(d.std(ddof=1))
    assert p["d_z"] == pytest.approx(d.mean() / d.std(ddof=1))
    half = T_975_DF3 * d.std(ddof=1) / 2
    assert p["ci_low"] == pytest.approx(d.mean() - half)
    assert p["ci_high"] == pytest.approx(d.mean() + half)
    assert p["p_ttest"] == pytest.approx(sps.ttest_rel(a, b).pvalue)
    assert p["p_wilcoxon"] == pytest.approx(0.125)  # all 4 differences positive: 2 / 2^4


def test_paired_degenerate_cases_do_not_raise_or_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = stats.paired([0.5, 0.6, 0.7], [0.4, 0.5, 0.6], 0.95)
        one = stats.paired([0.5], [0.4], 0.95)
        equal = stats.paired([0.5, 0.6], [0.5, 0.6], 0.95)
    assert same["ci_low"] == same["ci_high"] == pytest.approx(0.1)
    assert same["p_ttest"] is None and "identical" in same["note"]
    assert one["mean_diff"] == pytest.approx(0.1) and one["ci_low"] is None
    assert "n=1" in one["note"]
    assert equal["d_z"] == 0.0 and equal["p_ttest"] == 1.0


# ------------------------------------------------------------------------ the claims

STUDY = {
    "baseline": {},
    "class_weight": {"weights": {"kind": "balanced"}},
    "oversample": {"sampler": "oversample"},
    "undersample": {"sampler": "undersample"},
}
TWO_PHASE = {
    "two_phase_oversample": {"start": "oversample"},
    "two_phase_undersample": {"start": "undersample"},
}


def make_params(
    seeds: list[int],
    remedies: dict[str, Any] | None = None,
    retrain: dict[str, Any] | None = None,
    **compare_overrides: Any,
) -> Params:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["seeds"] = seeds
    raw["classes"] = {"negative": "cat", "positive": "dog"}
    raw["remedies"] = STUDY if remedies is None else remedies
    raw["retrain"] = TWO_PHASE if retrain is None else retrain
    raw["compare"].update(
        {
            "reference": "baseline",
            "also_against": [],
            # one look at the test's seed count: the fixed-sample test at the question's
            # share of the family error
            "sequential": {"looks": [max(len(seeds), 2)], "spending": "pocock"},
            **compare_overrides,
        }
    )
    return parse(raw)


def run_file(recall: float, auc: float, n_pos: int = 100, n_neg: int = 100) -> dict[str, Any]:
    """A hand-made metrics file: recall and AUC given, counts derived from them."""
    tp = round(recall * n_pos)
    fp = 5
    test = {
        "roc_auc": auc,
        "pr_auc": auc,
        "precision": tp / (tp + fp),
        "recall": tp / n_pos,
        "f1": 0.0,
        "balanced_accuracy": (tp / n_pos + (n_neg - fp) / n_neg) / 2,
        "mcc": 0.0,
        "accuracy": (tp + n_neg - fp) / (n_pos + n_neg),
        "tp": tp,
        "fp": fp,
        "tn": n_neg - fp,
        "fn": n_pos - tp,
    }
    return {
        "test": test,
        "train": test,
        "threshold": 0.5,
        "validation_protocol": "holdout: hand-made",
        "tuned_threshold": {"value": 0.3, "objective": "balanced_accuracy", "test": test},
        "steps_trained": 300,
        "best_step": 200,
        "images_seen": 19200,
    }


# recall per seed; AUC per seed
HELD = {
    "baseline": ([0.0, 0.01, 0.0], [0.80, 0.78, 0.82]),
    "class_weight": ([0.80, 0.78, 0.82], [0.90, 0.91, 0.89]),
    "oversample": ([0.70, 0.69, 0.73], [0.90, 0.90, 0.90]),
    "undersample": ([0.81, 0.78, 0.82], [0.89, 0.90, 0.89]),
    "two_phase_oversample": ([0.20, 0.25, 0.22], [0.90, 0.89, 0.90]),
    "two_phase_undersample": ([0.10, 0.12, 0.09], [0.88, 0.89, 0.89]),
}


def make_runs(table: dict[str, tuple[list[float], list[float]]], seeds: list[int]) -> runs_mod.Runs:
    return {
        remedy: {s: run_file(r, a) for s, r, a in zip(seeds, recalls, aucs, strict=False)}
        for remedy, (recalls, aucs) in table.items()
    }


def check(params: Params, runs: runs_mod.Runs) -> list[dict[str, Any]]:
    return claims.check_questions(params, runs, compare.ceiling_remedies(params))


def verdicts(params: Params, runs: runs_mod.Runs) -> dict[str, str]:
    return {c["id"]: c["verdict"] for c in check(params, runs) if c["id"] in "abcd"}


def test_claims_held_on_clear_numbers() -> None:
    params = make_params([0, 1, 2])
    assert verdicts(params, make_runs(HELD, [0, 1, 2])) == {
        "a": "held",
        "b": "held",
        "c": "held",
        "d": "held",
    }


def test_claims_that_did_not_hold_or_are_inconclusive() -> None:
    table = {
        **HELD,
        "baseline": ([0.5, 0.52, 0.48], [0.85, 0.86, 0.84]),  # learns the minority
        "class_weight": ([0.60, 0.60, 0.63], [0.9, 0.9, 0.9]),  # more FN than oversample
        "undersample": ([0.70, 0.95, 0.40], [0.9, 0.9, 0.9]),  # spread: straddles margin
        "two_phase_oversample": ([0.69, 0.70, 0.72], [0.9, 0.9, 0.9]),  # no loss
        "two_phase_undersample": ([0.80, 0.60, 0.95], [0.9, 0.9, 0.9]),  # noisy
    }
    got = verdicts(make_params([0, 1, 2]), make_runs(table, [0, 1, 2]))
    assert got["a"] == "did not hold"
    assert got["b"] == "did not hold"
    assert got["c"] == "inconclusive"
    assert got["d"] == "inconclusive"  # one pair did not hold, the other inconclusive


def test_claims_of_undeclared_remedies_are_not_run_and_names_do_not_matter() -> None:
    remedies = {"none": {}, "cw": {"weights": {"kind": "balanced"}}}  # renamed, no samplers
    params = make_params([0, 1, 2], remedies=remedies, retrain={}, reference="none")
    table = {"none": HELD["baseline"], "cw": HELD["class_weight"]}
    got = verdicts(params, make_runs(table, [0, 1, 2]))
    assert got == {"a": "held", "b": "not run", "c": "not run", "d": "not run"}


def test_one_seed_gives_inconclusive_verdicts_saying_n1() -> None:
    params = make_params([7])
    runs = make_runs({k: ([v[0][0]], [v[1][0]]) for k, v in HELD.items()}, [7])
    checked = check(params, runs)
    checked = [c for c in checked if c["id"] in "abcd"]
    assert {c["verdict"] for c in checked} == {"inconclusive"}
    assert any("n=1" in e for c in checked for e in c["evidence"])
    assert all(c["to_decide"].startswith("at least 2 seeds (now 1)") for c in checked)
    assert all(c["seeds_needed"] is None for c in checked)  # no spread: no estimate


# --------------------------------------------- best, ceiling, multiple comparisons

PAIRED_KEYS = [key for key, _ in compare.PAIRED]


def test_best_excludes_remedies_trained_on_the_balanced_set() -> None:
    remedies = {**STUDY, "balanced": {"train_set": "balanced"}}
    retrain = {**TWO_PHASE, "from_balanced": {"start": "balanced"}}
    params = make_params([0, 1, 2], remedies=remedies, retrain=retrain)
    table = {
        **HELD,
        "balanced": ([0.95, 0.96, 0.97], [0.99, 0.99, 0.98]),  # the top AUC by far
        "from_balanced": ([0.90, 0.91, 0.92], [0.97, 0.98, 0.97]),  # second
    }
    runs = make_runs(table, [0, 1, 2])
    st = compare.statistics(params, runs)
    assert st["ceiling"] == ["balanced", "from_balanced"]
    aucs = {r: st["remedies"][r]["test.roc_auc"]["mean"] for r in st["remedies"]}
    assert max(aucs, key=lambda r: aucs[r]) == "balanced"  # would have been "best" before
    assert st["best"] not in st["ceiling"]
    assert st["best"] == max((r for r in aucs if r not in st["ceiling"]), key=lambda r: aucs[r])
    checked = check(params, runs)
    md = compare.comparison_markdown(params, st, runs, {"sha256": ""}, checked)
    assert "| `balanced` *ceiling* |" in md and "| `from_balanced` *ceiling* |" in md
    assert f"### Against the best remedy by mean test ROC AUC, `{st['best']}`" in md
    row = next(line for line in md.splitlines() if line.startswith("| `balanced` *ceiling*"))
    assert "**" not in row  # the ceiling is never bold, though its values are the highest
    assert "**Ceiling**" in md and "never the best remedy" in md


def _reported_family(st: dict[str, Any], test: str) -> dict[tuple[frozenset, str], float]:
    """The p-values of the report's paired tables, a pair in two tables counted once."""
    family: dict[tuple[frozenset, str], float] = {}
    for other, table in (
        (st["reference"], st["paired"]["reference"]),
        (st["best"], st["paired"]["best"]),
        *((o, st["paired"][f"against {o}"]) for o in st["also_against"]),
    ):
        for remedy, per_key in table.items():
            for key in PAIRED_KEYS:
                if per_key[key][test] is not None:
                    family.setdefault((frozenset((remedy, other)), key), per_key[key][test])
    return family


def _holm_by_hand(p: list[float]) -> list[float]:
    """Holm (1979) step-down, written out: the i-th smallest times (m - i), running max."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    out, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        out[i] = running
    return out


@pytest.mark.parametrize("method", ["holm", "bh", "none"])
def test_paired_p_values_are_adjusted_over_the_reported_family(method: str) -> None:
    params = make_params([0, 1, 2, 3], p_adjust=method)
    table = {
        r: ([*recalls, recalls[0] + 0.02], [*aucs, aucs[1] - 0.01])
        for r, (recalls, aucs) in HELD.items()
    }
    st = compare.statistics(params, make_runs(table, [0, 1, 2, 3]))
    assert st["best"] != st["reference"]
    family = _reported_family(st, "p_ttest")
    # (remedies - 1) rows in each of two tables, 3 metrics each, the shared pair once
    assert st["p_adjust"]["tests"]["p_ttest"] == len(family) == (2 * (len(table) - 1) - 1) * 3
    raw = list(family.values())
    expected = {
        "holm": _holm_by_hand(raw),
        "bh": sps.false_discovery_control(raw, method="bh").tolist(),
        "none": raw,
    }[method]
    want = dict(zip(family, expected, strict=True))
    for other, tbl in (
        (st["reference"], st["paired"]["reference"]),
        (st["best"], st["paired"]["best"]),
    ):
        for remedy, per_key in tbl.items():
            for key in PAIRED_KEYS:
                got = per_key[key]["p_ttest_adj"]
                assert got == pytest.approx(want[(frozenset((remedy, other)), key)])
                assert got >= per_key[key]["p_ttest"] - 1e-12
            assert "p_ttest_adj" not in per_key["test.f1"]  # not reported: not in the family
    assert st["p_adjust"]["method"] == method
    md = compare.comparison_markdown(params, st, make_runs(table, [0, 1, 2, 3]), {}, [])
    if method == "none":
        assert "p adj." not in md.split("## Paired")[1].split("###")[1]
        assert "No adjustment" in md
    else:
        name = {"holm": "Holm", "bh": "BH"}[method]
        assert f"| p (paired t) | p adj. ({name}) |" in md
        assert f"({len(family)} distinct paired t-tests" in md


def test_also_against_adds_a_paired_table_to_the_family_and_the_report() -> None:
    seeds = [0, 1, 2, 3]
    table = {
        r: ([*recalls, recalls[0] + 0.02], [*aucs, aucs[1] - 0.01])
        for r, (recalls, aucs) in HELD.items()
    }
    runs = make_runs(table, seeds)
    plain = compare.statistics(make_params(seeds), runs)
    params = make_params(seeds, also_against=["two_phase_undersample"])
    st = compare.statistics(params, runs)
    extra = st["paired"]["against two_phase_undersample"]
    assert set(extra) == set(table) - {"two_phase_undersample"}
    diff = extra["oversample"]["test.roc_auc"]["mean_diff"]
    want = np.mean(table["oversample"][1]) - np.mean(table["two_phase_undersample"][1])
    assert diff == pytest.approx(want)
    # the new pairs join the adjusted family; pairs already in a table are not counted twice
    family = _reported_family(st, "p_ttest")
    assert st["p_adjust"]["tests"]["p_ttest"] == len(family)
    assert len(family) > plain["p_adjust"]["tests"]["p_ttest"]
    assert extra["oversample"]["test.roc_auc"]["p_ttest_adj"] is not None
    md = compare.comparison_markdown(params, st, runs, {}, [])
    assert "### Against `two_phase_undersample` (`compare.also_against`, exploratory)" in md
    assert "| `oversample` | ROC AUC |" in md.split("(`compare.also_against`, exploratory)")[1]
    with pytest.raises(UserError, match=r"compare\.also_against names 'nope'"):
        make_params(seeds, also_against=["nope"])


def test_report_opens_with_ceiling_best_claims_protocol_and_data() -> None:
    seeds = [0, 1, 2]
    remedies = {**STUDY, "balanced": {"train_set": "balanced"}}
    params = make_params(seeds, remedies=remedies)
    table = {**HELD, "balanced": ([0.95, 0.96, 0.94], [0.99, 0.98, 0.99])}
    runs = make_runs(table, seeds)
    st = compare.statistics(params, runs)
    found = check(params, runs)
    md = compare.comparison_markdown(params, st, runs, {"source": "x.tar.gz"}, found)
    head = md.split("**Summary.**")[1].split("- **Data**")[0].strip().splitlines()
    assert head[0] == "| question | verdict | seeds | in practice |"
    rows = head[2 : 2 + len(found)]
    for q, row in zip(found, rows, strict=True):
        assert row.startswith(f"| ({q['id']}) {q['claim']} | *{q['verdict']}* | {q['n']} |")
    a_row = rows[0]  # (a) held: its practical meaning from params.yaml
    assert "never deploy it at 0.5" in a_row
    rest = head[2 + len(found) + 1 :]
    assert "could_be_best" not in st  # statistics() alone does not recommend; run_compare adds it
    assert rest[0].startswith("- Ceiling") and "`balanced`: test ROC AUC 0.987" in rest[0]
    assert rest[1].startswith("- Protocol: holdout: hand-made; early stopping after")
    assert rest[2] == "- Data: `x.tar.gz` (a copy; see below)"


def test_summary_recommends_the_cheapest_remedy_that_could_be_best() -> None:
    seeds = list(range(8))
    remedies = {**STUDY, "sharp": {"sam": 0.05}}
    params = make_params(seeds, remedies=remedies, retrain={})
    jitter = [0.0, 0.004, -0.003, 0.002, -0.001, 0.003, -0.004, 0.001]  # shared by a seed
    top = [0.95 + j for j in jitter]
    table = {
        r: ([0.8] * 8, [0.85 + j + 0.001 * (i % 3) for i, j in enumerate(jitter)]) for r in STUDY
    }
    table["class_weight"] = ([0.8] * 8, top)  # class_weight and sharp tie on AUC
    table["sharp"] = ([0.8] * 8, [t + 0.0005 * (-1) ** i for i, t in enumerate(top)])
    runs = make_runs(table, seeds)
    st = compare.statistics(params, runs)
    found = check(params, runs)
    rec = compare.recommendation(params, runs, st, found)
    assert rec is not None and set(rec["members"]) == {"class_weight", "sharp"}
    assert rec["members"]["sharp"]["cost"]["passes"] == 600  # SAM: 2 passes x 300 steps
    assert rec["recommended"] == "class_weight"  # 300 passes: the cheaper of the two
    st["could_be_best"] = rec
    md = compare.comparison_markdown(params, st, runs, {}, found)
    assert "- **Use `class_weight`**: 2 remedies could be the best on `test.roc_auc`" in md
    bal = rec["members"]["class_weight"]["balanced_accuracy_tuned"]
    assert bal == rec["members"]["sharp"]["balanced_accuracy_tuned"]  # tied: the cheaper
    assert f"at the validation-tuned threshold ({bal:.3f}), the threshold a deployment uses, " in md
    assert "tied with `sharp`, and is the cheaper to train." in md
    # a higher balanced accuracy at the tuned threshold beats the cheaper training
    table["sharp"] = ([0.9] * 8, table["sharp"][1])
    runs = make_runs(table, seeds)
    st = compare.statistics(params, runs)
    rec = compare.recommendation(params, runs, st, check(params, runs))
    assert rec is not None and rec["recommended"] == "sharp"
    assert rec["members"]["sharp"]["balanced_accuracy_tuned"] == pytest.approx((0.9 + 0.95) / 2)
    st["could_be_best"] = rec
    md = compare.comparison_markdown(params, st, runs, {}, check(params, runs))
    assert "- **Use `sharp`**:" in md
    assert "threshold (0.925), the threshold a deployment uses." in md  # no tie, no cost said


def test_undefined_precision_is_averaged_over_the_seeds_where_it_is_defined() -> None:
    """Issue 23: precision without a positive prediction is None in the run file; the mean
    is over the defined seeds, and every view says on how many; none defined stays n/a."""
    seeds = [0, 1, 2, 3, 4]
    table = {  # recall per seed (of 100 positives, FP 5 each) and AUC per seed
        "baseline": ([0.0, 0.02, 0.0, 0.03, 0.01], [0.80, 0.78, 0.82, 0.79, 0.81]),
        "class_weight": ([0.80, 0.78, 0.82, 0.79, 0.81], [0.90, 0.91, 0.89, 0.90, 0.92]),
        "oversample": ([0.70, 0.69, 0.73, 0.71, 0.72], [0.90, 0.90, 0.90, 0.89, 0.91]),
    }
    params = make_params(seeds, remedies={r: STUDY[r] for r in table}, retrain={})
    runs = make_runs(table, seeds)
    # evaluate writes None for a run without a positive prediction; run_file's counts
    # always hold 5 FP, so the undefined seeds are set by hand
    for s in (0, 2):
        runs["baseline"][s]["test"] = {**runs["baseline"][s]["test"], "precision": None}
    for s in seeds:  # never defined
        runs["oversample"][s]["test"] = {**runs["oversample"][s]["test"], "precision": None}
    st = compare.statistics(params, runs)
    cell = st["remedies"]["baseline"]["test.precision"]
    by_hand = (2 / 7 + 3 / 8 + 1 / 6) / 3  # TP / (TP + 5) on seeds 1, 3, 4
    assert cell["n"] == 3 and cell["mean"] == pytest.approx(by_hand)
    assert st["remedies"]["oversample"]["test.precision"]["mean"] is None
    assert compare.remedy_metrics(st)["baseline"]["precision"] == round(by_hand, 4)
    assert compare.remedy_metrics(st)["oversample"]["precision"] is None
    manifest = {"source": "x", "sha256": "", "kind": "image-folder"}
    md = compare.comparison_markdown(
        params, st, runs, manifest, claims.check_questions(params, runs, st["ceiling"])
    )
    header = next(ln for ln in md.splitlines() if ln.startswith("| remedy | ROC AUC"))
    column = [c.strip() for c in header.strip("|").split("|")].index("precision")

    def cells(remedy: str) -> list[str]:
        row = next(ln for ln in md.splitlines() if ln.startswith(f"| `{remedy}` | 0."))
        return [c.strip() for c in row.strip("|").split("|")]

    assert cells("baseline")[column].startswith(f"{by_hand:.3f} [")
    assert cells("baseline")[column].endswith("] (3 of 5 seeds)")
    assert cells("oversample")[column] == "n/a"
    assert "(5 of 5" not in md and "averaged over the seeds where it is defined" in md
    # a paired difference defined on fewer seeds says so too
    pair = stats.paired([0.5, None, 0.7, 0.6, None], [0.4, 0.5, 0.5, 0.5, 0.5], 0.95)
    lines = compare._paired_table({"r": {k: pair for k, _ in compare.PAIRED}}, "ref", "none", 5)
    assert "| +0.133 (3 of 5 seeds) |" in lines[2]


def test_budget_table_gives_mean_steps_and_doubles_the_passes_of_sam() -> None:
    seeds = [0, 1, 2]
    params = make_params(seeds, remedies={**STUDY, "sharp": {"sam": 0.05}})
    table = {**HELD, "sharp": HELD["oversample"]}
    runs = make_runs(table, seeds)
    runs["sharp"][1] = {**runs["sharp"][1], "steps_trained": 600, "images_seen": 38400}
    md = compare.comparison_markdown(params, compare.statistics(params, runs), runs, {}, [])
    budget = md.split("## Training budget")[1].split("##")[0]
    assert "| `baseline` | 300 | 200 | 19200 | 300 |" in budget
    assert "| `sharp` | 400 | 200 | 25600 | 800 |" in budget  # 2 passes a SAM step


def test_budget_table_names_the_remedies_with_their_own_budget() -> None:
    seeds = [0, 1, 2]
    own = {"budget": {"stopping": "budget", "max_steps": 600}}
    params = make_params(seeds, remedies={**STUDY, "own": own})
    runs = make_runs({**HELD, "own": HELD["oversample"]}, seeds)
    md = compare.comparison_markdown(params, compare.statistics(params, runs), runs, {}, [])
    budget = md.split("## Training budget")[1].split("##")[0]
    assert "remedies with their own budget (`budget:`): `own` budget, 600 steps at most" in budget
    assert budget.count("their own budget") == 1  # the study's remedies are not listed


# ------------------------------------------------------------ rules and seeds needed


def test_every_verdict_states_its_rule_and_inconclusive_ones_what_would_decide() -> None:
    table = {
        **HELD,
        "undersample": ([0.70, 0.95, 0.40], [0.9, 0.9, 0.9]),  # spread: (c) inconclusive
    }
    params = make_params([0, 1, 2])
    runs = make_runs(table, [0, 1, 2])
    st = compare.statistics(params, runs)
    checked = {c["id"]: c for c in check(params, runs)}
    side = 0.05 / 6 / 2  # the family's 0.05 over 6 questions, half per side
    for c in (checked[q] for q in "abcd"):
        assert "repeated 99.17% t-interval" in c["rule"] and f"Level {side:.3g}" in c["rule"]
    c = checked["c"]
    assert c["verdict"] == "inconclusive"
    d = np.subtract([0.70, 0.95, 0.40], HELD["class_weight"][0])
    gap = abs(d.mean()) - 0.05 if abs(d.mean()) > 0.05 else 0.05 - abs(d.mean())
    need = next(  # by hand: the first n whose t-interval half-width is under the gap
        n for n in range(2, 10_000) if sps.t.ppf(1 - side, n - 1) * d.std(ddof=1) / np.sqrt(n) < gap
    )
    assert need is not None and need > 3 and c["seeds_needed"] == need
    assert f"about {need} seeds (now 3)" in c["to_decide"] and "estimate" in c["to_decide"]
    assert checked["a"]["to_decide"] is None  # held: nothing to decide
    md = compare.comparison_markdown(params, st, runs, {}, list(checked.values()))
    assert md.count("- *Rule*: ") == sum(1 for c in checked.values() if c.get("rule"))
    assert (
        "- *To decide*: cap of 3 seeds reached (the plan's last look): the verdict stays "
        f"inconclusive; test.recall `undersample` − `class_weight`: about {need} seeds" in md
    )


def test_claim_d_prints_the_p_value_of_its_own_rule() -> None:
    # a clear drop (p < 0.05 against no change), but not clearly one beyond 0.1
    table = {**HELD, "two_phase_oversample": ([0.55, 0.60, 0.55], [0.9, 0.9, 0.9])}
    params = make_params([0, 1, 2])
    runs = make_runs(table, [0, 1, 2])
    d_claim = next(c for c in check(params, runs) if c["id"] == "d")
    over = next(t for t in d_claim["tests"] if "two_phase_oversample" in t["what"])
    diffs = np.subtract([0.55, 0.60, 0.55], HELD["oversample"][0])
    p_rule = sps.ttest_1samp(diffs, -0.1, alternative="less").pvalue
    p_zero = sps.ttest_1samp(diffs, 0.0).pvalue
    side = 0.05 / 6 / 2  # this question's level per side (one look)
    assert p_zero < 0.05 and side <= p_rule  # the confusing case the rule has to explain
    assert over["p"] == pytest.approx(p_rule) and over["verdict"] == "inconclusive"
    assert (over["ci_high"] < -0.1) == (over["p"] < side)  # interval and p agree
    assert d_claim["verdict"] == "inconclusive"  # the undersample pair held: they disagree
    text = "\n".join(d_claim["evidence"])
    assert f"H0: mean ≥ -0.1: p = {p_rule:.3f} (≥ {side:g}) → inconclusive" in text
    assert "lies below -0.1, for every pair" in d_claim["rule"]
    assert "about" in d_claim["to_decide"] and "seeds" in d_claim["to_decide"]


# ----------------------------------------------------------------------------- figures


class _Captured:
    """Stands in for ``figures._save``: keeps the figure to look at instead of writing it."""

    def __init__(self) -> None:
        self.figs: list[Any] = []

    def __call__(self, fig: Any, path: Path) -> None:
        fig.canvas.draw()  # what savefig would do: renders, so a broken artist raises here
        self.figs.append(fig)


def test_bars_axis_holds_every_interval_and_zero_bars_are_drawn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from imbalance.analysis import figures

    captured = _Captured()
    monkeypatch.setattr(figures, "_save", captured)
    table = {
        **HELD,
        "baseline": ([0.0, 0.0, 0.0], [0.80, 0.78, 0.82]),  # recall 0: a zero-length bar
        "class_weight": ([1.0, 1.0, 0.9], [0.99, 1.0, 0.98]),  # intervals up to 1.0
    }
    params = make_params([0, 1, 2])
    st = compare.statistics(params, make_runs(table, [0, 1, 2]))
    figures.bars(params, st, Path("unused.png"))
    panels = captured.figs[0].axes
    assert len(panels) == len(figures.BAR_METRICS)  # one panel (own axis) per metric
    for ax, (key, _) in zip(panels, figures.BAR_METRICS, strict=True):
        lows = [st["remedies"][r][key]["ci_low"] for r in table]
        highs = [st["remedies"][r][key]["ci_high"] for r in table]
        left, right = ax.get_xlim()
        assert left < min(lows) and right > max(highs)  # no cap lies on the frame
    auc = panels[0]  # its axis shows the differences: it does not start at 0
    assert auc.get_xlim()[0] > 0.5
    ranked = [t.get_text() for t in auc.get_yticklabels()]
    aucs = [st["remedies"][r.split()[0]]["test.roc_auc"]["mean"] for r in ranked]
    assert aucs == sorted(aucs, reverse=True)  # ranked, best on top (the axis is inverted)
    recall = panels[[k for k, _ in figures.BAR_METRICS].index("test.recall")]
    markers = [ln for ln in recall.get_lines() if ln.get_marker() == "D"]
    assert any(0.0 in ln.get_xdata() for ln in markers)  # the reference's zero-length bar
    assert "0.000" in [t.get_text() for t in recall.texts]  # ... and its value written


def test_bars_panel_of_a_metric_undefined_for_every_remedy_says_n_a(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a one-remedy study whose model never calls the minority: precision is undefined
    # (None) in every cell, and the figure must still be drawn (it raised on NaN limits)
    from imbalance.analysis import figures

    captured = _Captured()
    monkeypatch.setattr(figures, "_save", captured)
    params = make_params([0, 1, 2])
    st = compare.statistics(params, make_runs(HELD, [0, 1, 2]))
    key = figures.BAR_METRICS[-1][0]
    for cell in st["remedies"].values():
        cell[key] = {**cell[key], "mean": None, "ci_low": None, "ci_high": None}
    figures.bars(params, st, Path("unused.png"))
    panel = captured.figs[0].axes[-1]
    assert [t.get_text() for t in panel.texts] == ["n/a"] * len(params.all_remedies)
    assert panel.get_xlim()[0] < 0 < 1 < panel.get_xlim()[1]


def test_roc_figure_keeps_coinciding_curves_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    from imbalance.analysis import figures

    captured = _Captured()
    monkeypatch.setattr(figures, "_save", captured)
    remedies = {"baseline": {}, "oversample": {"sampler": "oversample"}}
    retrain = {"shifted": {"start": "baseline", "trainable": [], "posthoc_tau": 1.0}}
    params = make_params([0], remedies=remedies, retrain=retrain)
    st = compare.statistics(
        params,
        make_runs(
            {"baseline": ([0.0], [0.8]), "oversample": ([0.7], [0.9]), "shifted": ([0.6], [0.8])},
            [0],
        ),
    )
    fpr = np.linspace(0, 1, 11)
    curve = {"baseline": np.sqrt(fpr), "shifted": np.sqrt(fpr), "oversample": fpr**0.3}
    roc = {
        0: [
            {"remedy": r, "split": "test", "fpr": float(f), "tpr": float(t)}
            for r, tpr in curve.items()
            for f, t in zip(fpr, tpr, strict=True)
        ]
    }
    figures.roc_test(params, roc, st, Path("unused.png"))
    ax = captured.figs[0].axes[0]
    lines = {ln.get_label().split()[0]: ln for ln in ax.get_lines()}
    assert {"baseline", "shifted", "oversample"} <= set(lines)
    leader, twin = lines["baseline"], lines["shifted"]
    assert "identical to baseline's curve" in twin.get_label()
    assert twin.get_zorder() > leader.get_zorder()  # drawn over it ...
    assert leader.get_linewidth() > twin.get_linewidth()  # ... which shows around it
    assert twin.get_linestyle() != leader.get_linestyle()
    assert figures.coinciding({"a": fpr, "b": fpr + 0.001, "c": fpr + 0.1}) == {
        "b": ("a", pytest.approx(0.001))
    }


# ------------------------------------------------------------ the stage, end to end


def _write_seed(root: Path, params: Params, seed: int) -> None:
    """Fake labels, predictions and dvclive curves of one seed; then evaluate them."""
    rng = np.random.default_rng(seed)
    data = root / "data" / "cifar2" / f"seed{seed}"
    data.mkdir(parents=True, exist_ok=True)
    labels = {}
    for name, (n0, n1) in {
        "train_balanced": (50, 50),
        "val_balanced": (20, 20),
        "train_imbalanced": (50, 8),
        "val_imbalanced": (20, 4),
        "test": (50, 50),
    }.items():
        labels[name] = np.r_[np.zeros(n0, np.uint8), np.ones(n1, np.uint8)]
        np.savez(data / f"{name}.npz", y=labels[name])
    skill = {
        "balanced": (3.0, 0.0),
        "baseline": (1.0, -2.5),
        "class_weight": (1.6, 0.0),
        "oversample": (1.4, -0.2),
    }
    pred = root / "predictions" / f"seed{seed}"
    pred.mkdir(parents=True, exist_ok=True)
    for remedy, spec in params.all_remedies.items():
        sep, shift = skill.get(remedy, (1.2, -1.5))
        out = {}
        for split, name in (
            ("train", f"train_{spec.train_set.kind}"),
            ("val", f"val_{spec.train_set.kind}"),
            ("test", "test"),
        ):
            y = labels[name].astype(float)
            logit = rng.normal(0, 1, y.size) + sep * (2 * y - 1) + shift
            out[split] = (1 / (1 + np.exp(-logit))).astype(np.float32)
        record = {"steps_trained": 400, "best_step": 200, "images_seen": 400 * 64}
        np.savez(pred / f"{remedy}.npz", **out, **{k: np.int64(v) for k, v in record.items()})
        curves = root / "training" / remedy / f"seed{seed}" / "plots" / "metrics"
        curves.mkdir(parents=True, exist_ok=True)
        for metric, values in (
            ("val_auc", [0.6, 0.7, 0.75, 0.74]),
            ("loss", [0.7, 0.5, 0.4, 0.35]),
        ):
            # dvclive's step column: the optimizer step of each check (every 100 here)
            rows = "".join(
                f"{1700000000 + i}\t{100 * (i + 1)}\t{v}\n" for i, v in enumerate(values)
            )
            (curves / f"{metric}.tsv").write_text(f"timestamp\tstep\t{metric}\n{rows}")
    evaluate.evaluate_seed(params, seed, Layout(root))


def test_compare_stage_end_to_end(tmp_path: Path) -> None:
    remedies = {
        "balanced": {"train_set": "balanced"},
        "baseline": {},
        "class_weight": {"weights": {"kind": "balanced"}},
        "oversample": {"sampler": "oversample"},
    }
    retrain = {"two_phase_oversample": {"start": "oversample"}}
    params = make_params([0, 1], remedies=remedies, retrain=retrain)
    for seed in params.seeds:
        _write_seed(tmp_path, params, seed)
    (tmp_path / "data" / "raw").mkdir(parents=True)
    manifest = {"source": "/x/imgs.tar.gz", "sha256": "ab" * 32, "kind": "image-folder"}
    (tmp_path / "data" / "raw" / "manifest.json").write_text(json.dumps(manifest))

    compare.run_compare(params, Layout(tmp_path))

    folder = tmp_path / "metrics" / "remedies"
    summary = {p.stem: json.loads(p.read_text()) for p in sorted(folder.iterdir())}
    assert sorted(summary) == sorted([*remedies, *retrain])
    runs = runs_mod.load_runs(params, Layout(tmp_path))
    for remedy, row in summary.items():
        assert row["n_seeds"] == 2
        assert row["recall"] == pytest.approx(
            np.mean([runs[remedy][s]["test"]["recall"] for s in (0, 1)]), abs=1e-4
        )
        assert row["recall_tuned"] == pytest.approx(
            np.mean([runs[remedy][s]["tuned_threshold"]["test"]["recall"] for s in (0, 1)]),
            abs=1e-4,
        )
        assert len(row) <= 10 and all(not isinstance(v, dict) for v in row.values())  # flat
    md = (tmp_path / "metrics" / "comparison.md").read_text()
    assert "NOT the official archive" in md
    assert "Seeds**: 0, 1 (n = 2)" in md
    assert "holdout: early stopping" in md
    assert "The primary questions, checked" in md
    assert "(c) Undersampling is comparable to class weights.** — *not run* (0 seeds)" in md
    assert "`dog`" in md and "airplane" not in md and "automobile" not in md
    assert md.count("**") >= 2 * 10  # best values bold
    stats_file = json.loads((tmp_path / "metrics" / "statistics.json").read_text())
    assert stats_file["best"] in summary and stats_file["best"] != "balanced"
    assert stats_file["ceiling"] == ["balanced"] and "`balanced` *ceiling*" in md
    assert set(stats_file["paired"]["reference"]) == set(summary) - {"baseline"}
    for per_key in stats_file["remedies"].values():  # the shape the PR comment and sweep read
        for cell in per_key.values():
            assert {"mean", "ci_low", "ci_high", "n", "std"} <= set(cell)
            if cell["ci_low"] is not None:
                assert cell["ci_low"] <= cell["mean"] <= cell["ci_high"]
    assert all(c["rule"] for c in stats_file["questions"] if c["verdict"] != "not run")
    for name in ("roc_test", "bars", "confusion", "training_curves"):
        png = tmp_path / "figures" / "comparison" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    training = json.loads((tmp_path / "plots" / "comparison" / "training.json").read_text())
    assert {r["metric"] for r in training["training"]} == {"val_auc", "loss"}
    assert sorted({r["step"] for r in training["training"]}) == [100, 200, 300, 400]

    written = [
        "metrics/remedies/baseline.json",
        "metrics/statistics.json",
        "metrics/comparison.md",
    ]
    before = {p: (tmp_path / p).read_bytes() for p in written}
    compare.run_compare(params, Layout(tmp_path))
    assert {p: (tmp_path / p).read_bytes() for p in written} == before  # deterministic


def test_compare_names_a_missing_run(tmp_path: Path) -> None:
    params = make_params([0], remedies={"baseline": {}}, retrain={})
    with pytest.raises(UserError, match=r"seed0/baseline.json: missing"):
        runs_mod.load_runs(params, Layout(tmp_path))


def test_describe_source_takes_the_identities_from_params() -> None:
    """Which archive is the official one is the SHA-256 params.yaml declares for
    data.sources.official, not a constant in the code: with other declared hashes, the
    real official hash (copied here from cs.toronto.edu's page) is an unknown copy."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["data"]["sources"]["official"]["sha256"] = "11" * 32
    raw["data"]["sources"]["jpeg_offline"]["sha256"] = "22" * 32
    params = parse(raw)
    official = {"sha256": "11" * 32, "kind": "cifar10-python", "source": "u"}
    jpeg = {"sha256": "22" * 32, "kind": "image-folder", "source": "j"}
    real = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
    other = {"sha256": real, "kind": "cifar10-python", "source": "x"}
    assert compare.describe_source(params, official).startswith("the official CIFAR-10")
    assert compare.is_official(params, official) and not compare.is_official(params, jpeg)
    assert "offline JPEG re-encoding" in compare.describe_source(params, jpeg)
    assert "NOT the official archive" in compare.describe_source(params, jpeg)
    assert "not the official archive's" in compare.describe_source(params, other)
    assert not compare.is_official(params, other)
    assert not compare.is_official(params, {"sha256": "", "kind": "image-folder"})
    # ... and the stage's file carries what it reads, so a changed hash re-runs the report
    from imbalance import resolution

    assert "data.sources" in resolution.STAGES["compare"].params


# ---------------------------------------------------------------------------- sweep


#: rev -> the statistics.json its commit holds (filled by :func:`_exp_data`).
STATISTICS: dict[str, dict[str, Any]] = {}


def read_statistics(rev: str, path: str) -> str | None:
    """Stands in for ``git show <rev>:metrics/statistics.json``."""
    assert path == "metrics/statistics.json"
    return json.dumps(STATISTICS[rev]) if rev in STATISTICS else None


def _exp_data(rev: str, ts: str | None, n_min: int, batch: int, auc: list[float]) -> dict:
    """One ``data`` block in the layout `dvc exp show --json` (dvc 3.67.1) prints."""
    params = {
        "seeds": [0, 1],
        "classes": {"negative": "cat", "positive": "dog"},
        "split": {"n_majority": 500, "n_minority": n_min},
        "remedies": {"baseline": {}},
        "train": {"batch_size": batch},
    }
    mean = float(np.mean(auc)) if auc else None
    metrics = {"metrics/remedies/baseline.json": {"data": {"roc_auc": mean, "n_seeds": len(auc)}}}
    if auc:  # what the experiment's commit holds in metrics/statistics.json
        STATISTICS[rev] = {
            "remedies": {
                "baseline": {
                    "test.roc_auc": stats.describe(auc, 0.95),
                    "test.recall": stats.describe([a / 2 for a in auc], 0.95),
                    "tuned.recall": stats.describe([a / 1.5 for a in auc], 0.95),
                }
            }
        }
    return {
        "rev": rev,
        "timestamp": ts,
        "params": {"params.yaml": {"data": params}},
        "metrics": metrics,
        "deps": {"fake.py": {"hash": "1798", "size": 798, "nfiles": None}},
        "outs": {},
        "meta": {},
    }


def _exp(name: str, state: str, data: dict) -> dict:
    executor = {"state": state, "name": "dvc-task", "local": {"root": None, "log": None}}
    return {
        "executor": executor,
        "name": name,
        "revs": [{"rev": data["rev"], "name": name, "data": data, "error": None}],
    }


def fake_exp_show() -> list[dict[str, Any]]:
    """Captured from a tiny repo (dvc 3.67.1), reduced: workspace, commit, experiments."""
    commit = _exp_data("c0ffee", "2026-01-01T10:00:00", 50, 64, [0.80, 0.84])
    return [
        {
            "rev": "workspace",
            "name": None,
            "data": _exp_data("workspace", None, 50, 64, [0.1, 0.1]),
            "error": None,
            "experiments": None,
        },
        {
            "rev": "c0ffee",
            "name": "main",
            "data": commit,
            "error": None,
            "experiments": [
                _exp("bs128", "success", _exp_data("e1", "2026-01-01T11:00", 50, 128, [0.5, 0.5])),
                _exp("r5", "success", _exp_data("e2", "2026-01-01T12:00", 5, 64, [0.60, 0.66])),
                _exp("r500", "success", _exp_data("e3", "2026-01-01T13:00", 500, 64, [0.9, 0.96])),
                _exp("r5-new", "success", _exp_data("e4", "2026-01-01T14:00", 5, 64, [0.62, 0.64])),
                _exp("queued", "queued", _exp_data("e5", "2026-01-01T15:00", 25, 64, [])),
                _exp("broken", "failed", _exp_data("e6", "2026-01-01T16:00", 10, 64, [])),
            ],
        },
    ]


def test_sweep_collects_only_finished_experiments_that_differ_in_the_ratio() -> None:
    result = sweep.collect(fake_exp_show(), read=read_statistics)
    assert [(e["name"], e["ratio"]) for e in result["experiments"]] == [
        ("r500", 1.0),
        ("main", 10.0),
        ("r5-new", 100.0),
    ]
    reasons = {s["name"]: s["reason"] for s in result["skipped"]}
    assert reasons["bs128"] == "other params differ: train.batch_size"
    assert reasons["r5"] == "superseded at ratio 100"
    assert reasons["queued"].startswith("not finished")
    assert reasons["broken"].startswith("not finished")
    assert "workspace" not in reasons  # never a candidate
    auc = result["points"]["baseline"]["test.roc_auc"]
    assert [p["ratio"] for p in auc] == [1.0, 10.0, 100.0]
    assert auc[1]["mean"] == pytest.approx(0.82)
    # t-interval of [0.80, 0.84] by hand: 0.82 - t(0.975, 1) * 0.02828 / sqrt(2), t from tables
    assert auc[1]["ci_low"] == pytest.approx(0.82 - 12.7062 * 0.0282843 / np.sqrt(2), abs=1e-4)
    recall_tuned = result["points"]["baseline"]["tuned.recall"]
    assert recall_tuned[0]["mean"] == pytest.approx(np.mean([0.9, 0.96]) / 1.5)
    assert result["classes"]["positive"] == "dog"


def test_sweep_command_writes_figure_and_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweep, "git_show", read_statistics)
    saved = tmp_path / "exp_show.json"
    saved.write_text(json.dumps(fake_exp_show()))
    compare.main(["sweep", "--input", str(saved), "--out", str(tmp_path / "out")])
    assert (tmp_path / "out" / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    written = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert len(written["experiments"]) == 3


def test_sweep_without_commit_results_is_a_clear_error() -> None:
    with pytest.raises(UserError, match="no commit"):
        sweep.collect([{"rev": "workspace", "data": {}, "experiments": None}])


# ------------------------------------------------ the generic checker, every verdict branch


def _question_runs(diffs: list[float], seeds: list[int]) -> runs_mod.Runs:
    """Two remedies whose recall differs by ``diffs`` per seed (a - b); a also alone.

    Recalls are whole percentages (100 test positives): diffs are multiples of 0.01."""
    base = [0.5 + 0.01 * i for i in range(len(seeds))]
    return make_runs(
        {
            "baseline": ([b + d for b, d in zip(base, diffs, strict=True)], [0.9] * len(seeds)),
            "class_weight": (base, [0.9] * len(seeds)),
        },
        seeds,
    )


def _one(question: dict[str, Any], diffs: list[float], looks: list[int] | None = None) -> dict:
    seeds = list(range(len(diffs)))
    params = make_params(
        seeds,
        remedies={"baseline": {}, "class_weight": {"weights": {"kind": "balanced"}}},
        retrain={},
        questions={"q": {"claim": "x", "metric": "test.recall", **question}},
        **({"sequential": {"looks": looks, "spending": "pocock"}} if looks else {}),
    )
    return check(params, _question_runs(diffs, seeds))[0]


PAIR = {"pairs": [["baseline", "class_weight"]]}
# level per side with one question and one look: 0.025; t(0.975, 4) = 2.776 (tables)
CLEAR_UP = [0.20, 0.21, 0.19, 0.20, 0.22]  # mean 0.204, far above 0 and 0.05
NOISY = [0.20, -0.30, 0.40, -0.25, 0.10]  # straddles everything


@pytest.mark.parametrize(
    ("question", "diffs", "verdict"),
    [
        ({"kind": "superiority", "direction": "higher", **PAIR}, CLEAR_UP, "held"),
        ({"kind": "superiority", "direction": "lower", **PAIR}, CLEAR_UP, "did not hold"),
        ({"kind": "superiority", "direction": "higher", **PAIR}, NOISY, "inconclusive"),
        (
            {"kind": "non_inferiority", "direction": "higher", "threshold": 0.1, **PAIR},
            [-0.02, -0.01, 0.0, -0.01, -0.01],
            "held",
        ),
        (
            {"kind": "non_inferiority", "direction": "higher", "threshold": 0.05, **PAIR},
            [-0.2, -0.21, -0.19, -0.2, -0.22],
            "did not hold",
        ),
        (
            {"kind": "equivalence", "threshold": 0.05, **PAIR},
            [0.01, -0.01, 0.0, 0.01, -0.01],
            "held",
        ),
        ({"kind": "equivalence", "threshold": 0.05, **PAIR}, CLEAR_UP, "did not hold"),
        ({"kind": "equivalence", "threshold": 0.05, **PAIR}, NOISY, "inconclusive"),
        (
            {"kind": "bound", "direction": "above", "threshold": 0.1, "remedy": "baseline"},
            [0.0] * 5,
            "held",
        ),  # baseline recall 0.50..0.54, all above 0.1
        (
            {"kind": "bound", "direction": "below", "threshold": 0.1, "remedy": "baseline"},
            [0.0] * 5,
            "did not hold",
        ),
        (
            {"kind": "bound", "direction": "below", "threshold": 0.1, "remedy": {"sam": 0.05}},
            [0.0] * 5,
            "not run",
        ),  # no remedy composed so
    ],
)
def test_every_verdict_branch_of_the_checker(question: dict, diffs: list, verdict: str) -> None:
    q = _one(question, diffs)
    assert q["verdict"] == verdict
    if verdict in ("held", "did not hold") and question["kind"] != "bound":
        t = q["tests"][0]
        d = np.asarray(diffs)
        half = 2.776445 * d.std(ddof=1) / np.sqrt(5)  # t(0.975, 4) from tables
        assert t["ci_low"] == pytest.approx(d.mean() - half, abs=1e-5)
        assert t["ci_high"] == pytest.approx(d.mean() + half, abs=1e-5)


def test_pairs_pointing_in_opposite_directions_are_inconclusive_and_say_so() -> None:
    seeds = list(range(5))
    params = make_params(
        seeds,
        remedies={**STUDY},
        retrain={},
        questions={
            "q": {
                "claim": "x",
                "metric": "test.recall",
                "kind": "superiority",
                "direction": "higher",
                "pairs": [["class_weight", "baseline"], ["baseline", "class_weight"]],
            }
        },
    )
    table = {
        "baseline": ([0.1, 0.11, 0.09, 0.1, 0.12], [0.9] * 5),
        "class_weight": ([0.8, 0.81, 0.79, 0.8, 0.82], [0.9] * 5),
        "oversample": ([0.5] * 5, [0.9] * 5),
        "undersample": ([0.5] * 5, [0.9] * 5),
    }
    q = check(params, make_runs(table, seeds))[0]
    assert [t["verdict"] for t in q["tests"]] == ["held", "did not hold"]
    assert q["verdict"] == "inconclusive" and "opposite directions" in q["to_decide"]


def test_later_looks_use_the_spending_plans_level_and_the_cap_says_so() -> None:
    # n = 5 at the first of looks [5, 10]: the Pocock level of look 1 (0.025 spent in two)
    q = _one({"kind": "superiority", "direction": "higher", **PAIR}, NOISY, looks=[5, 10])
    level = q["tests"][0]["level"]
    assert 0.025 / 2 < level < 0.025  # more than half, less than all of the 2.5 % per side
    assert q["verdict"] == "inconclusive" and "cap" not in q["to_decide"]
    capped = _one({"kind": "superiority", "direction": "higher", **PAIR}, NOISY, looks=[5])
    assert capped["to_decide"].startswith("cap of 5 seeds reached")


@pytest.mark.parametrize(
    ("question", "sentence"),
    [
        ({"verdict": "held"}, ""),
        ({"verdict": "not run"}, "not run: a remedy it names is not declared"),
        (
            {"verdict": "inconclusive", "n": 50, "seeds_needed": 80},
            "undecided at the cap of 50 seeds: treat the remedies as equal here",
        ),
        (
            {"verdict": "inconclusive", "n": 15, "seeds_needed": 118},
            "not decided: about 118 seeds would decide it half of the time (estimate), over "
            "the cap of 50: seeds up to the cap decide it less often; read its interval below",
        ),
        (
            {"verdict": "inconclusive", "n": 20, "seeds_needed": 47},
            "not decided yet: about 47 seeds would decide it (estimate)",
        ),
        (
            {"verdict": "inconclusive", "n": 5, "seeds_needed": None},
            "not decided yet: more seeds for its remedies (see below)",
        ),
    ],
)
def test_the_summary_says_what_an_undecided_question_needs(
    question: dict[str, Any], sentence: str
) -> None:
    assert compare._undecided(question, 50) == sentence
