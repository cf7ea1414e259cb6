"""Another class pair, through params only (issue 22): apply its overrides, collect results.

    python -m imbalance.tools.pairs apply NEGATIVE POSITIVE     # edits ./params.yaml
    dvc repro                                                   # the pair's study
    python -m imbalance.tools.pairs collect DEST                # -> DEST/ (results/pairs/..)

Why: a remedy designed on airplane vs automobile may only work there (the last round's
best remedy scored chance on cat vs dog). A pair study is the project's own pipeline with
other ``classes`` and a smaller roster, nothing else changed: ``apply`` keeps the
:data:`REMEDIES` the check needs with their params.yaml settings, drops the retrain
remedies and reports :data:`SEEDS`. Run it in a clone, not in the study's workspace: its
outputs replace the workspace's. ``collect`` copies what the compare stage wrote, with the
params.yaml that produced it and the commit, and writes ``summary.md``: the four remedies'
test ROC AUC with intervals, the new remedy's paired difference to ``oversample_augment``
and the per-seed chance check the issue asks for.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

from ruamel.yaml import YAML

from imbalance import params as params_mod
from imbalance.analysis import text
from imbalance.cli import UserError, run
from imbalance.files import write_text
from imbalance.layout import Layout

#: The roster of a pair study: the untreated model, the reference, the new best, the ceiling.
REMEDIES = ("baseline", "oversample_augment", "strong_ema_budget", "balanced")
NEW, REFERENCE = "strong_ema_budget", "oversample_augment"
SEEDS = [0, 1, 2, 3, 4]
#: A run "at chance": test ROC AUC below this while the reference of the same seed is above.
CHANCE = 0.6
#: What collect copies (relative to the project root); statistics.json is required.
OUTPUTS = (
    "params.yaml",
    "metrics/comparison.md",
    "metrics/statistics.json",
    "metrics/remedies",
    "figures/comparison/forest.png",
)


def apply(negative: str, positive: str, path: Path = params_mod.PARAMS_FILE) -> None:
    """Rewrite params.yaml for the pair (round-trip YAML: comments and order kept)."""
    yaml = YAML()
    raw = yaml.load(path.read_text())
    missing = [r for r in REMEDIES if r not in raw["remedies"]]
    if missing:
        raise UserError(
            f"{path}: remedies {', '.join(missing)} are not declared; a pair study runs "
            f"{', '.join(REMEDIES)} (copy them from catalogue.yaml)"
        )
    raw["classes"]["negative"], raw["classes"]["positive"] = negative, positive
    raw["seeds"] = SEEDS
    for name in [r for r in raw["remedies"] if r not in REMEDIES]:
        del raw["remedies"][name]
    raw["retrain"] = {}
    params_mod.parse(json.loads(json.dumps(raw)))  # the project's own checks, before writing
    with path.open("w") as f:
        yaml.dump(raw, f)


def summary(root: Path, commit: str) -> str:
    """The pair's answer to issue 22, from the compare stage's statistics and run files."""
    p = params_mod.load(root / "params.yaml")
    layout = Layout(root)
    stats = json.loads(layout.statistics.read_text())
    pair = f"{p.classes.negative} (negative, majority) vs {p.classes.positive} (positive)"
    lines = [
        f"# Pair study: {pair}",
        "",
        f"Commit `{commit}`, params.yaml here (`python -m imbalance.tools.pairs apply "
        f"{p.classes.negative} {p.classes.positive}` on that commit's params.yaml), data "
        f"`{p.data.source}` ({p.data.sources[p.data.source].location}), seeds "
        f"{', '.join(map(str, p.seeds))}; {p.split.n_minority} positives in the imbalanced "
        f"training set. Intervals ({stats['confidence']:.0%}): {stats['interval']}.",
        "",
        "| remedy | test ROC AUC, mean [interval] |",
        "|---|---:|",
        *(f"| `{r}` | {text.mean_ci(stats['remedies'][r]['test.roc_auc'])} |" for r in REMEDIES),
        "",
    ]
    d = stats["paired"][f"against {REFERENCE}"][NEW]["test.roc_auc"]
    lines += [
        f"Paired difference `{NEW}` - `{REFERENCE}`, test ROC AUC over {d['n']} seeds: "
        f"{text.diff(d)}.",
        "",
        "| seed | " + " | ".join(f"`{r}`" for r in REMEDIES) + " | at chance? |",
        "|---:|" + "---:|" * len(REMEDIES) + "---|",
    ]
    for seed in p.seeds:
        auc = {
            r: json.loads(layout.run_metrics(r, seed).read_text())["test"]["roc_auc"]
            for r in REMEDIES
        }
        chance = auc[NEW] is not None and auc[NEW] < CHANCE < (auc[REFERENCE] or 0)
        row = " | ".join("n/a" if auc[r] is None else text.num(auc[r]) for r in REMEDIES)
        lines.append(f"| {seed} | {row} | {'**yes**' if chance else 'no'} |")
    lines += [
        "",
        f"*At chance*: `{NEW}` below {CHANCE} test ROC AUC where `{REFERENCE}` of the same "
        "seed is above it.",
    ]
    return "\n".join(lines) + "\n"


def collect(root: Path, dest: Path) -> None:
    """Copy the compare stage's outputs and params.yaml to ``dest``, with summary.md."""
    layout = Layout(root)
    if not layout.statistics.is_file():
        raise UserError(f"{layout.statistics}: missing; run `dvc repro` in {root} first")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
    ).stdout.strip()
    report = summary(root, commit or "unknown")
    dest.mkdir(parents=True, exist_ok=True)
    for rel in OUTPUTS:
        src, out = root / rel, dest / Path(rel).name
        if src.is_dir():
            shutil.rmtree(out, ignore_errors=True)
            shutil.copytree(src, out)
        elif src.is_file():
            shutil.copy2(src, out)
    write_text(dest / "summary.md", report)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m imbalance.tools.pairs")
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("apply", help="rewrite ./params.yaml for a class pair")
    a.add_argument("negative")
    a.add_argument("positive")
    c = sub.add_parser("collect", help="copy this project's compare outputs to DEST")
    c.add_argument("dest", type=Path)
    args = parser.parse_args(argv)
    if args.command == "apply":
        apply(args.negative, args.positive)
    else:
        collect(Path("."), args.dest)


if __name__ == "__main__":
    run(main)
