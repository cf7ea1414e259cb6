"""All runs -> the comparative study: key metrics, statistics, comparison.md, figures, claims.

No TensorFlow: everything comes from the per-run metrics files and plot data that
``evaluate`` wrote, the dvclive curves of ``train`` and the fetch manifest.

Writes (the ``compare`` stage):

- ``metrics/remedies/<remedy>.json``: the declared ``dvc metrics``, one small flat file
  per remedy so that ``dvc metrics show`` prints one row per remedy with a handful of
  columns (the registry's ``dvc_metrics`` view, means over seeds) and ``dvc metrics diff`` stays
  readable; everything else lives in
- ``metrics/statistics.json``: mean, sd and t-interval per remedy and metric, the
  paired comparisons against ``compare.reference`` and against the best remedy (the
  ceiling excluded), with raw and multiplicity-adjusted p-values (exploratory), the primary
  questions with their rules (``questions``), and ``could_be_best`` (the set of remedies
  that could be the best, their MCB intervals and training costs, and the recommended one;
  what the forest plot draws) (not a declared metric: thousands of numbers);
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

from imbalance import blocks as blocks_mod
from imbalance.analysis import metrics, text
from imbalance.analysis.claims import check_questions
from imbalance.analysis.evaluate import CHOSEN_ON, TRAINING_RECORD
from imbalance.analysis.runs import (
    Runs,
    load_runs,
    read_curves,
    read_manifest,
    read_roc,
    series,
    value_range,
)
from imbalance.analysis.stats import (
    PAdjust,
    adjust_p,
    describe,
    difference_range,
    paired,
)
from imbalance.blocks import Blocks, all_seeds
from imbalance.cli import UserError
from imbalance.files import atomic_dir, write_json, write_text
from imbalance.layout import Layout
from imbalance.params import Params
from imbalance.training.components import Retrain

#: Every statistic is computed for these keys (``<at>.<metric>``, :mod:`.metrics`).
KEYS = metrics.stat_keys()
#: The paired tests the report prints (key, label): the family the p-values are adjusted over.
PAIRED = tuple((c.key, metrics.label(c, "paired")) for c in metrics.columns("paired"))
#: The entry of ``data.sources`` that is the official archive (its SHA-256 says which data
#: is the original); the others are copies.
OFFICIAL_SOURCE = "official"
#: What the report says about a declared copy it knows, by its ``data.sources`` name; the
#: identity is the SHA-256 declared there, never a constant here.
KNOWN_COPIES = {
    "jpeg_offline": "an offline JPEG re-encoding of CIFAR-10 (image folders, quality-75 JPEG)",
}


# ------------------------------------------------------------------------ statistics


#: The protocol's name in the paired-comparison text, per split.validation.
PROTOCOL = {
    "holdout": "held-out validation",
    "test": "early stopping on the test set, as the study did",
    "kfold": "k-fold cross-validated training length and threshold",
}


def ceiling_remedies(params: Params) -> list[str]:
    """Remedies trained on data a user with the imbalanced set does not have: the ceiling.

    A remedy with ``train_set: balanced`` sees ``split.n_majority`` minority images
    instead of ``split.n_minority`` (100x at the defaults): an upper bound of what the
    model can do, not a remedy anyone with 50 minority images could use. So is a retrain
    remedy that starts from such a model. They are reported as the ceiling and never
    chosen as the best remedy that the others are compared against.
    """
    out: list[str] = []
    for name, spec in params.all_remedies.items():  # scratch remedies first: starts known
        start = spec.start.remedy if isinstance(spec, Retrain) else None
        if spec.train_set.kind == "balanced" or start in out:
            out.append(name)
    return out


def adjust_paired(paired: dict[str, dict[str, Any]], method: PAdjust) -> dict[str, Any]:
    """Adds ``p_ttest_adj`` / ``p_wilcoxon_adj`` to the reported paired tests; the family.

    The family is every test the report's paired tables print (:data:`PAIRED` keys, every
    remedy against the reference and against the best); a remedy pair that appears in
    both tables is one test (the two-sided p-value does not depend on the direction), so
    it is counted once and gets one adjusted p. The t-tests and the Wilcoxon tests are
    adjusted as two families of the same tests: each column's p-values are then
    controlled as a set. Keys the report does not print get no adjusted p-value.
    """
    sizes = {}
    for test in ("p_ttest", "p_wilcoxon"):
        family: dict[tuple[tuple[str, ...], str], float] = {}
        for other, table in paired.items():
            for remedy, per_key in table.items():
                for key, _ in PAIRED:
                    p = per_key[key][test]
                    if p is not None:
                        family.setdefault((tuple(sorted((remedy, other))), key), p)
        adjusted = dict(zip(family, adjust_p(list(family.values()), method), strict=True))
        for other, table in paired.items():
            for remedy, per_key in table.items():
                for key, _ in PAIRED:
                    ident = (tuple(sorted((remedy, other))), key)
                    per_key[key][f"{test}_adj"] = adjusted.get(ident)
        sizes[test] = len(family)
    return {
        "method": method,
        "tests": sizes,
        "family": (
            "the two-sided paired tests of the report's tables: every remedy against the "
            "reference, against the best and against each of compare.also_against, on "
            + ", ".join(f"`{k}`" for k, _ in PAIRED)
            + "; a pair in both tables counted once; t-tests and Wilcoxon tests adjusted "
            "as two families"
        ),
    }


def statistics(params: Params, runs: Runs, blocks: Blocks | None = None) -> dict[str, Any]:
    """Per-remedy intervals and the paired comparisons (the content of statistics.json).

    The best remedy, the one every other is compared against in the second table, is
    chosen among the remedies a user of the imbalanced set could train: the ceiling
    (:func:`ceiling_remedies`) would win every time and say nothing about the remedies.
    """
    # every seed any remedy ran: a block's seeds only for its remedies (series gives None
    # elsewhere), so each interval is over the remedy's own seeds and each paired one
    # over the seeds both remedies ran
    blocks = blocks or Blocks()
    conf, seeds = params.compare.confidence, all_seeds(params, blocks)
    remedies = list(params.all_remedies)
    per = {
        r: {k: describe(series(runs, r, k, seeds), conf, value_range(runs, k)) for k in KEYS}
        for r in remedies
    }
    ceiling = ceiling_remedies(params)
    aucs = {r: per[r]["test.roc_auc"]["mean"] for r in remedies}
    candidates = [r for r in remedies if r not in ceiling and aucs[r] is not None]
    best = max(candidates, key=lambda r: aucs[r]) if candidates else None
    ranges = {k: difference_range(value_range(runs, k)) for k in KEYS}

    def against(other: str) -> dict[str, Any]:
        base = {k: series(runs, other, k, seeds) for k in KEYS}
        return {
            r: {k: paired(series(runs, r, k, seeds), base[k], conf, ranges[k]) for k in KEYS}
            for r in remedies
            if r != other
        }

    comparisons = {"reference": against(params.compare.reference)}
    if best is not None:
        comparisons["best"] = against(best)
    for other in params.compare.also_against:
        comparisons[f"against {other}"] = against(other)
    by_other = {params.compare.reference: comparisons["reference"]}
    if best is not None:
        by_other[best] = comparisons["best"]
    for other in params.compare.also_against:
        by_other.setdefault(other, comparisons[f"against {other}"])
    # ``by_other`` shares its tables with ``comparisons``: adjusting one adjusts both
    # (when best is the reference, the one table is the whole family)
    p_adjust = adjust_paired(by_other, params.compare.p_adjust)
    block_stats: dict[str, Any] = {}
    if blocks.sequential_blocks:  # absent without blocks: the file keeps its bytes
        block_stats = {
            "sequential_blocks": {
                name: {"seeds": b.seeds, "remedies": b.remedies}
                for name, b in blocks.sequential_blocks.items()
            },
            "seeds_by_remedy": {r: sorted(runs[r]) for r in remedies},
        }
    return {
        "confidence": conf,
        "seeds": seeds,
        **block_stats,
        "interval": (
            "per remedy: Student-t interval of the mean over seeds, cut to the metric's "
            "range; paired: t-interval of the paired difference, cut to its range"
        ),
        "reference": params.compare.reference,
        "also_against": list(params.compare.also_against),
        "best": best,
        "best_by": "mean test roc_auc among remedies that are not the ceiling",
        "ceiling": ceiling,
        "p_adjust": p_adjust,
        "remedies": per,
        "paired": comparisons,
    }


#: The columns of ``dvc metrics show``: (column, statistics key). Short names keep a
#: row under 120 characters.
KEY_METRICS = tuple(
    (metrics.label(c, "dvc_metrics"), c.key) for c in metrics.columns("dvc_metrics")
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


def declared_source(params: Params, sha: str) -> str | None:
    """The ``data.sources`` entry whose declared SHA-256 is ``sha``, if any."""
    found = [n for n, s in params.data.sources.items() if sha and s.sha256 == sha]
    return found[0] if found else None


def is_official(params: Params, manifest: dict[str, Any]) -> bool:
    """Whether the fetched archive is the official one, by the SHA-256 that params.yaml
    declares for ``data.sources.official``."""
    return declared_source(params, str(manifest.get("sha256", ""))) == OFFICIAL_SOURCE


def describe_source(params: Params, manifest: dict[str, Any]) -> str:
    """Where the images came from, in words: never let a copy pass for the original.

    Identities are the SHA-256 values of ``data.sources`` in params.yaml (declared in the
    compare stage's ``params:``), so a source re-published with another hash is named as
    an unknown copy rather than passed off as a known one.
    """
    sha = str(manifest.get("sha256", ""))
    kind = str(manifest.get("kind", ""))
    source = manifest.get("source", "?")
    facts = f"source `{source}`, kind `{kind}`, SHA-256 `{sha or 'not recorded'}`"
    name = declared_source(params, sha)
    if name == OFFICIAL_SOURCE:
        return f"the official CIFAR-10 python archive, SHA-256 verified ({facts})"
    if name in KNOWN_COPIES:
        return (
            f"{KNOWN_COPIES[name]} \u2014 "
            f"**NOT the official archive**; numbers are close to, not equal to, results on "
            f"the official data ({facts})"
        )
    if any(word in kind.lower() for word in ("folder", "image", "jpeg", "png")):
        return f"an image-folder copy of CIFAR-10 \u2014 **NOT the official archive** ({facts})"
    return f"a copy of CIFAR-10 whose SHA-256 is not the official archive's ({facts})"


def defined_on(n: int | None, n_seeds: int | None) -> str:
    """`` (3 of 5 seeds)`` when a metric is defined on fewer seeds than the study ran."""
    if n is None or n_seeds is None or n >= n_seeds:
        return ""
    return f" ({n} of {n_seeds} seed{'s' if n_seeds != 1 else ''})"


def _cell(d: dict[str, Any], digits: int, bold: bool, n_seeds: int | None = None) -> str:
    """``mean [low, high]`` (the interval whole: it is not symmetric), bold if the best,
    with the number of seeds it is defined on when that is not all of them: an undefined
    value (precision without a positive prediction) is left out of the mean, not 0."""
    if d["mean"] is None:
        return "n/a"
    cell = text.mean_ci(d, digits) if d["ci_low"] is not None else f"{d['mean']:.{digits}f}"
    cell = f"**{cell}**" if bold else cell
    return cell + defined_on(d.get("n"), n_seeds)


TABLE = tuple(  # (key, header, digits, bold-able)
    (c.key, metrics.label(c, "table"), c.digits, c.metric is not None)
    for c in metrics.columns("table")
)
ADJUST_NAMES = {"holm": "Holm", "bh": "BH", "none": "none"}


def _best(per: dict[str, dict[str, Any]], key: str, ceiling: list[str]) -> float | None:
    """Best mean of a column among the remedies that are not the ceiling."""
    means = [
        p[key]["mean"] for r, p in per.items() if r not in ceiling and p[key]["mean"] is not None
    ]
    if not means:
        return None
    return min(means) if metrics.lower_is_better(key) else max(means)


def _paired_table(
    comparisons: dict[str, Any],
    other: str,
    method: str,
    n_seeds: int | None = None,
    runs: Runs | None = None,
) -> list[str]:
    """The paired rows against ``other``; with ``runs`` of remedies that differ in seeds
    (sequential blocks), each row's seeds are those both remedies ran, and the remedy
    cell says n when that differs from ``n_seeds``."""
    adj = method != "none"
    name = ADJUST_NAMES[method]
    head = (
        f"| remedy \u2212 `{other}` | metric | mean difference | t-interval | d_z | p (paired t) |"
        + (f" p adj. ({name}) |" if adj else "")
        + " p (Wilcoxon) |"
        + (f" p adj. ({name}) |" if adj else "")
    )
    lines = [head, "|---|---|" + "---:|" * (7 if adj else 5)]
    for remedy, per_key in comparisons.items():
        common = n_seeds
        if runs is not None:
            common = len(set(runs[remedy]) & set(runs[other]))
        more = f" (n = {common})" if common is not None and common != n_seeds else ""
        for key, label in PAIRED:
            p = per_key[key]
            if p["mean_diff"] is None:
                continue
            d_z = "n/a" if p["d_z"] is None else f"{p['d_z']:+.2f}"
            cells = [
                f"`{remedy}`{more}",
                label,
                text.signed(p["mean_diff"]) + defined_on(p.get("n"), common),
                text.ci(p),
                d_z,
                text.p_value(p["p_ttest"]),
            ]
            if adj:
                cells.append(text.p_value(p.get("p_ttest_adj")))
            cells.append(text.p_value(p["p_wilcoxon"]))
            if adj:
                cells.append(text.p_value(p.get("p_wilcoxon_adj")))
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def _budget_table(params: Params, runs: Runs) -> list[str]:
    """What each remedy's training cost, in deterministic units (wall time is not: it
    depends on the machine, and the metrics must be byte-identical across runs)."""
    t = params.train
    stopping = (
        f"early stopping ends a run {t.early_stopping.patience} steps after its best check, "
        f"at {t.max_steps} steps at most"
        if t.stopping == "early_stopping"
        else f"every remedy trains exactly {t.max_steps} steps (the equal-budget protocol)"
    )
    if params.split.validation == "kfold":
        stopping += (
            f"; under k-fold validation each run is {params.split.folds} fold trainings and a "
            "refit for their mean best step, and steps and images count all of them, the "
            "best step is the refit's length"
        )
    own = {name: cfg for name in runs if (cfg := params.remedy(name).train_config(t)) != t}
    if own:
        stopping += "; remedies with their own budget (`budget:`): " + ", ".join(
            f"`{name}` {cfg.stopping.replace('_', ' ')}, {cfg.max_steps} steps at most"
            for name, cfg in own.items()
        )
    lines = [
        "## Training budget",
        "",
        f"Means over the seeds (`train.stopping: {t.stopping}`: {stopping}). A step is one "
        f"batch of {t.batch_size}; SAM takes two forward-backward passes per step, every "
        "other remedy one.",
        "",
        "| remedy | steps trained | best step (weights kept) | images seen | passes |",
        "|---|---:|---:|---:|---:|",
    ]
    for remedy, by_seed in runs.items():
        n = len(by_seed)
        mean = {k: sum(run.get(k, 0) for run in by_seed.values()) / n for k in TRAINING_RECORD}
        passes = mean["steps_trained"] * (2 if _uses_sam(params, remedy) else 1)
        lines.append(
            f"| `{remedy}` | {mean['steps_trained']:.0f} | {mean['best_step']:.0f} | "
            f"{mean['images_seen']:.0f} | {passes:.0f} |"
        )
    return lines


def _adjust_text(params: Params, stats: dict[str, Any]) -> str:
    """The multiple-comparison paragraph: which family, which method, what it controls."""
    adj = stats["p_adjust"]
    size = adj["tests"]["p_ttest"]
    tables = 2 + len(stats["also_against"])
    also = "".join(f", against `{o}`" for o in stats["also_against"])
    family = (
        f"The family: every paired test in the {tables} tables below, i.e. every remedy "
        f"against the reference, against the best{also} on "
        f"{', '.join(label for _, label in PAIRED)} ({size} distinct paired t-tests: a pair "
        "in two tables is one test, counted once); "
        "the Wilcoxon p-values are adjusted the same way as a family of their own."
    )
    n = len(params.seeds)
    if adj["method"] == "holm":
        how = (
            "**p adj.** is Holm's step-down adjustment (`compare.p_adjust: holm`): a test "
            f"with p adj. < {1 - params.compare.confidence:g} is a finding while the chance "
            "of even one false finding in the whole family stays below that level, whatever "
            "the dependence between the tests (they share the reference's seeds)."
        )
        if n > 1 and adj["tests"]["p_wilcoxon"]:
            floor = min(1.0, adj["tests"]["p_wilcoxon"] * 2 / 2**n)
            how += (
                f" With {n} seeds and {adj['tests']['p_wilcoxon']} tests no adjusted "
                f"Wilcoxon p can fall below {floor:.3g}: more seeds, not this test, decide."
            )
    elif adj["method"] == "bh":
        how = (
            "**p adj.** is the Benjamini-Hochberg adjustment (`compare.p_adjust: bh`, "
            "`scipy.stats.false_discovery_control`): the tests with p adj. < "
            f"{1 - params.compare.confidence:g} are findings of which that share is expected "
            "to be false at most (false discovery rate)."
        )
    else:
        how = (
            "**No adjustment** (`compare.p_adjust: none`): with this many tests, several raw "
            "p-values below 0.05 are expected by chance alone; read them as exploratory."
        )
    return f"{family} {how}"


def training_cost(params: Params, runs: Runs, remedy: str) -> dict[str, Any]:
    """A remedy's mean training cost over its seeds: steps, forward-backward passes (SAM
    doubles them) and wall seconds where the run recorded them (``wall_s``; machine-
    dependent, so never the tie-break)."""
    by_seed = list(runs[remedy].values())
    steps = sum(r.get("steps_trained", 0) for r in by_seed) / max(len(by_seed), 1)
    spec = params.remedy(remedy)
    passes = steps * (2 if _uses_sam(params, remedy) else 1)
    if isinstance(spec, Retrain) and spec.start.remedy in runs:  # its start model, too
        start = training_cost(params, runs, spec.start.remedy)
        steps, passes = steps + start["steps"], passes + start["passes"]
    walls = [r["wall_s"] for r in by_seed if isinstance(r.get("wall_s"), int | float)]
    return {
        "steps": round(steps, 1),
        "passes": round(passes, 1),
        "wall_s": round(sum(walls) / len(walls), 1) if walls else None,
    }


def recommendation(
    params: Params, runs: Runs, stats: dict[str, Any], questions: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The set of remedies that could be best (the first ``best`` question) and the one to
    use: since the data cannot tell them apart on the question's metric, the one with the
    best mean balanced accuracy at the validation-tuned threshold (what a user deploys),
    ties to the cheapest to train (fewest forward-backward passes, a retrain remedy's start
    model included)."""
    best_q = next((q for q in questions if q["kind"] == "best"), None)
    if best_q is None or not best_q["members"]:
        return None
    per = stats["remedies"]
    members = {
        r: {
            **best_q["mcb"][r],
            "mean": per[r][best_q["metric"]]["mean"],
            "balanced_accuracy_tuned": per[r]["tuned.balanced_accuracy"]["mean"],
            "cost": training_cost(params, runs, r),
        }
        for r in best_q["members"]
    }
    choice = min(
        members,
        key=lambda r: (
            -(members[r]["balanced_accuracy_tuned"] or 0.0),
            members[r]["cost"]["passes"],
            r,
        ),
    )
    return {
        "question": best_q["id"],
        "metric": best_q["metric"],
        "confidence": best_q["confidence"],
        "n": best_q["n"],
        "members": members,
        "intervals": {r: best_q["mcb"][r] for r in best_q["mcb"]},
        "recommended": choice,
        "tie_break": (
            "highest mean balanced accuracy at the tuned threshold among the could-be-best "
            "set, then fewest forward-backward passes"
        ),
    }


def _why(rec: dict[str, Any]) -> str:
    """Why the recommendation chose its remedy among the could-be-best set, as the rule
    (:func:`recommendation`) decided it: balanced accuracy at the tuned threshold, or,
    between members tied on it, the cheaper training."""
    m, choice = rec["members"], rec["recommended"]
    bal = m[choice]["balanced_accuracy_tuned"]
    tied = [r for r in m if r != choice and m[r]["balanced_accuracy_tuned"] == bal]
    if bal is None:
        return "none has a balanced accuracy at the tuned threshold: it is the cheapest to train"
    why = (
        f"of these it has the highest mean balanced accuracy at the validation-tuned threshold "
        f"({_mean(bal)}), the threshold a deployment uses"
    )
    if tied:
        why += f", tied with {', '.join(f'`{r}`' for r in tied)}, and is the cheaper to train"
    return why


def _summary(
    params: Params,
    stats: dict[str, Any],
    questions: list[dict[str, Any]],
    protocols: list[str],
    manifest: dict[str, Any],
) -> list[str]:
    """What a reader needs first: each question's verdict and meaning, the remedy to use,
    ceiling, protocol, data."""
    per, ceiling = stats["remedies"], stats["ceiling"]
    rec = stats.get("could_be_best")

    def auc(remedy: str) -> str:
        ran = stats.get("seeds_by_remedy", {}).get(remedy, stats["seeds"])  # blocks: its own
        cell = _cell(per[remedy]["test.roc_auc"], 3, False, len(ran))
        return f"`{remedy}`: test ROC AUC {cell}"

    source = str(manifest.get("source", "?"))
    kind = "the official archive" if is_official(params, manifest) else "a copy"
    t = params.train
    stopping = (
        f"early stopping after {t.early_stopping.patience} steps without improvement"
        if t.stopping == "early_stopping"
        else f"{t.max_steps} steps for every remedy (equal budget)"
    )
    out = [
        "**Summary.**",
        "",
        "| question | verdict | seeds | in practice |",
        "|---|---|---:|---|",
    ]
    for q in questions:
        meaning = q.get("practice") or _undecided(q, params.compare.sequential.looks[-1])
        out.append(
            f"| ({q['id']}) {q['claim']} | *{q['verdict']}* | {q.get('n', 0)} | "
            f"{meaning.replace('|', '/')} |"
        )
    out.append("")
    if rec is not None:
        m = rec["members"]
        costs = "; ".join(
            f"`{r}` {_mean(m[r]['mean'])} (bal. acc. @t {_mean(m[r]['balanced_accuracy_tuned'])}"
            f", {m[r]['cost']['passes']:.0f} passes"
            + (f", {m[r]['cost']['wall_s']:.0f} s" if m[r]["cost"]["wall_s"] else "")
            + ")"
            for r in m
        )
        out.append(
            f"- **Use `{rec['recommended']}`**: {len(m)} remedies could be the best on "
            f"`{rec['metric']}` at {rec['confidence']:.2%} simultaneous confidence (Hsu's "
            f"comparison with the best, {rec['n']} seeds) — {costs}; {_why(rec)}."
        )
    out += [
        "- Ceiling (data a user of the imbalanced set lacks): "
        + ("; ".join(auc(r) for r in ceiling) or "none declared"),
        f"- Protocol: {'; '.join(protocols)}; {stopping}",
        f"- Data: `{source}` ({kind}; see below)",
    ]
    return out


def _undecided(q: dict[str, Any], cap: int) -> str:
    """The summary's sentence for a question without a practical verdict."""
    if q["verdict"] == "not run":
        return "not run: a remedy it names is not declared"
    if q["verdict"] != "inconclusive":
        return ""
    if q.get("n", 0) >= cap:
        return f"undecided at the cap of {cap} seeds: treat the remedies as equal here"
    needed = q.get("seeds_needed")
    if needed and needed > cap:
        return (
            f"not decided: about {needed} seeds would decide it half of the time (estimate), "
            f"over the cap of {cap}: seeds up to the cap decide it less often; read its "
            "interval below"
        )
    if needed:
        return f"not decided yet: about {needed} seeds would decide it (estimate)"
    return "not decided yet: more seeds for its remedies (see below)"


def _mean(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def comparison_markdown(
    params: Params,
    stats: dict[str, Any],
    runs: Runs,
    manifest: dict[str, Any],
    claims: list[dict[str, Any]],
    blocks: Blocks | None = None,
) -> str:
    """metrics/comparison.md: what a person reads in a pull request (``blocks``: the
    sequential study's seed blocks, blocks.yaml)."""
    blocks = blocks or Blocks()
    neg, pos = params.classes.negative, params.classes.positive
    per = stats["remedies"]
    ceiling = stats["ceiling"]
    seeds = params.seeds
    n = len(seeds)
    pct = f"{params.compare.confidence:.0%}"
    alpha = 1 - params.compare.confidence
    protocols = sorted({run["validation_protocol"] for r in runs.values() for run in r.values()})
    objective = params.evaluate.threshold_objective.replace("_", " ")
    first = next(iter(runs.values()))[seeds[0]]["test"]
    n_pos, n_neg = first["tp"] + first["fn"], first["tn"] + first["fp"]
    sp = params.split
    cells = (
        f"mean over seeds [{pct} Student-t interval], cut to the metric's range (rates in "
        "[0, 1], counts in [0, n]); the figures show the same intervals"
        if n > 1
        else "single values (n=1: no intervals)"
    )
    ceiling_names = ", ".join(f"`{r}`" for r in ceiling)
    lower = [h for key, h, _, _ in TABLE if metrics.lower_is_better(key)]
    lowest = f"; lowest for {' and '.join(lower)}" if lower else ""
    own = {r: len(runs[r]) for r in per}  # each remedy's seeds (blocks add some)
    partly = (
        " A metric undefined on some seeds (precision without any positive prediction) is "
        "averaged over the seeds where it is defined, and the cell says on how many."
        if any(cell["n"] < own[r] for r, p in per.items() for cell in p.values())
        else ""
    )
    block_text = ""
    if blocks.sequential_blocks:
        block_text = (
            " **Sequential blocks** (blocks.yaml `sequential_blocks`, added by `./dev.sh decide`): "
            + "; ".join(
                f"`{name}` seeds {', '.join(map(str, b.seeds))} for "
                + ", ".join(f"`{r}`" for r in b.remedies)
                for name, b in blocks.sequential_blocks.items()
            )
            + ". Each remedy's row is over its own seeds (n after its name when more than "
            f"{n}); each paired row over the seeds both remedies ran."
        )
    out = [
        f"# Comparative study: {neg} vs {pos}",
        "",
        "Generated by the `compare` stage from `metrics/runs/`; do not edit by hand.",
        "",
        *_summary(params, stats, claims, protocols, manifest),
        "",
        f"- **Data**: {describe_source(params, manifest)}.",
        f"- **Classes**: `{neg}` = negative (label 0, the majority); `{pos}` = positive "
        "(label 1, the minority); precision, recall, FN and FP are about the positive class.",
        f"- **Training sets**: imbalanced {sp.n_majority} / {sp.n_minority} "
        f"(imbalance ratio {sp.n_majority / sp.n_minority:g}:1), balanced "
        f"{sp.n_majority} / {sp.n_majority}; test set {n_neg} {neg} / {n_pos} {pos}.",
        f"- **Validation protocol**: {'; '.join(protocols)}.",
        f"- **Seeds**: {', '.join(map(str, seeds))} (n = {n}).{block_text} Cells: {cells}.{partly} "
        "**Bold**: "
        f"the best mean of the column (highest{lowest}) among the remedies that are "
        "not the ceiling.",
        f"- **Thresholds**: {params.evaluate.threshold} (fixed, as in the study) and t, chosen "
        f"per run on the {CHOSEN_ON[sp.validation]}{' (!)' if sp.validation == 'test' else ''} "
        "set to "
        f"maximise {objective} (columns marked @t).",
    ]
    if ceiling:
        out.append(
            f"- **Ceiling** (marked *ceiling*): {ceiling_names}, trained on the balanced set "
            f"with {sp.n_majority} {pos} images, {sp.n_majority / sp.n_minority:g}\u00d7 the "
            f"{sp.n_minority} a user of the imbalanced set has: what the model can reach with "
            "data such a user does not have, shown for scale; never bold, never the best remedy."
        )
    out += [
        "",
        "## Test metrics",
        "",
        "| remedy | " + " | ".join(h for _, h, _, _ in TABLE) + " |",
        "|---|" + "---:|" * len(TABLE),
    ]
    best = {key: _best(per, key, ceiling) for key, _, _, boldable in TABLE if boldable}
    for remedy, p in per.items():
        more = f" (n = {own[remedy]})" if own[remedy] != n else ""
        row = [f"`{remedy}`{more}" + (" *ceiling*" if remedy in ceiling else "")]
        for key, _, digits, boldable in TABLE:
            mean = p[key]["mean"]
            is_best = (
                boldable
                and remedy not in ceiling
                and mean is not None
                and best[key] is not None
                and round(mean, digits) == round(best[key], digits)
            )
            row.append(_cell(p[key], digits, is_best, own[remedy]))
        out.append("| " + " | ".join(row) + " |")

    ref, top = stats["reference"], stats["best"]
    method = stats["p_adjust"]["method"]
    protocol = PROTOCOL[sp.validation]
    out += [
        "",
        "## Paired comparisons (same seed \u21d2 same data)",
        "",
        f"Differences are taken within each seed, then summarised over the {n} seeds: mean, "
        f"{pct} t-interval (cut to the difference's possible range, [\u22121, 1] for a rate: "
        "the true difference lies in that range, so the cut interval keeps its coverage), "
        "Cohen's d_z (mean / sd of the differences), two-sided p-values "
        "against no difference of the paired t-test (dual to the t-interval) and the "
        "Wilcoxon signed-rank test"
        + (
            f" (with {n} seeds the Wilcoxon p cannot fall below {2 / 2**n:.3g})."
            if n > 1
            else " (n=1: none of these exist; only the single differences are shown)."
        ),
        "",
        f"**Multiple comparisons.** {_adjust_text(params, stats)}",
        "",
        f"### Against the reference `{ref}` (exploratory)",
        "",
        *_paired_table(stats["paired"]["reference"], ref, method, n, runs),
    ]
    if top is not None:
        out += [
            "",
            f"### Against the best remedy by mean test ROC AUC, `{top}` (exploratory)",
            "",
            "The best among the remedies a user with the imbalanced set can train"
            + (
                f"; the ceiling ({ceiling_names}) is excluded from the choice and shown "
                "below as one more row: how far the best is from it."
                if ceiling
                else "."
            ),
            "",
            "<details><summary>table</summary>",
            "",
            *_paired_table(stats["paired"]["best"], top, method, n, runs),
            "",
            "</details>",
        ]
    for other in stats["also_against"]:
        out += [
            "",
            f"### Against `{other}` (`compare.also_against`, exploratory)",
            "",
            "The remedy later ones build on: each one's paired difference to it is what the "
            "component it adds contributes.",
            "",
            "<details><summary>table</summary>",
            "",
            *_paired_table(stats["paired"][f"against {other}"], other, method, n, runs),
            "",
            "</details>",
        ]
    out += ["", *_budget_table(params, runs)]
    out += [
        "",
        "## The primary questions, checked",
        "",
        f"From our own numbers ({protocol}). Remedies are found by composition or name "
        "(`compare.questions` in params.yaml). The questions are their own family: the "
        f"error {alpha:g} is split equally among them (Bonferroni), each verdict either way "
        "spends half of its share, and the group-sequential plan "
        f"(`compare.sequential`: {params.compare.sequential.spending} alpha spending, looks at "
        f"{params.compare.sequential.looks} seeds) gives each look its nominal level, so the "
        "verdicts stay valid although the study looks after every batch of seeds. Each "
        "verdict states its rule; the p-value printed is that rule's one-sided t-test. The "
        "paired tables above are exploratory: they are not part of this family. An "
        "*inconclusive* verdict says what would decide it (an estimate from the observed "
        "mean and sd)."
        + (
            " **With one seed there is no interval, so every verdict is inconclusive by "
            "construction: the numbers below are one draw, not a finding.**"
            if n == 1
            else ""
        ),
        "",
    ]
    for c in claims:
        study = f" The study: {c['study']}." if c.get("study") else ""
        out.append(
            f"**({c['id']}) {c['claim']}** \u2014 *{c['verdict']}* ({c.get('n', 0)} seeds).{study}"
        )
        if c.get("rule"):
            out.append(f"- *Rule*: {c['rule']}.")
        out += [f"- {e}" for e in c["evidence"]]
        if c.get("to_decide"):
            out.append(f"- *To decide*: {c['to_decide']}.")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


# ------------------------------------------------------------------- training curves


def training_rows(curves: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Long-format rows {remedy, metric, step, value} for ``dvc plots`` (``step``: the
    optimizer step of the check, comparable across remedies)."""
    rows = []
    for remedy, per in curves.items():
        for metric, (steps, values) in per.items():
            rows += [
                {"remedy": remedy, "metric": metric, "step": int(t), "value": round(float(v), 6)}
                for t, v in zip(steps, values, strict=True)
            ]
    return rows


# ----------------------------------------------------------------------------- stage


def run_compare(params: Params, layout: Layout) -> None:
    """The compare stage: read every run, write key metrics, statistics, report, figures."""
    from imbalance.analysis import figures

    blocks = blocks_mod.load(params, layout.root / blocks_mod.BLOCKS_FILE)
    runs = load_runs(params, layout, blocks)
    manifest = read_manifest(layout.manifest)
    stats = statistics(params, runs, blocks)
    claims = check_questions(params, runs, stats["ceiling"])
    stats["could_be_best"] = recommendation(params, runs, stats, claims)
    first_seed = params.seeds[0]
    all_curves = {seed: read_curves(params, seed, layout) for seed in params.seeds}
    curves = all_curves[first_seed]
    roc = read_roc(params, layout, blocks)
    best_steps = {r: [runs[r][s].get("best_step", 0) for s in params.seeds] for r in runs}

    with atomic_dir(layout.comparison_figures) as fig_dir:
        # the headline: paired differences to the reference, the could-be-best set marked
        could_be_best = list((stats.get("could_be_best") or {}).get("members", {}))
        figures.forest(params, stats, could_be_best, fig_dir / "forest.png")
        figures.roc_test(params, roc, stats, fig_dir / "roc_test.png")
        figures.bars(params, stats, fig_dir / "bars.png")
        figures.confusion(params, stats, fig_dir / "confusion.png")
        figures.training_curves(params, all_curves, best_steps, fig_dir / "training_curves.png")
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
    write_json(layout.statistics, {**stats, "questions": claims})
    write_text(
        layout.comparison_md,
        comparison_markdown(params, stats, runs, manifest, claims, blocks),
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


def _uses_sam(params: Params, remedy: str) -> bool:
    """SAM's two passes per step (its ``sam`` component set with a radius above 0)."""
    sam = params.remedy(remedy).sam
    return sam is not None and sam.rho > 0
