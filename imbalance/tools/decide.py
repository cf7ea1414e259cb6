"""The sequential study's loop: repro, check the questions, add seeds, repro ... until
every primary question is decided or the plan's cap is reached.

    python -m imbalance.tools.decide [--jobs N] [--max-seeds K] [--plan]
    ./dev.sh decide [--jobs N] [--max-seeds K] [--plan]

After each batch it prints which questions are decided (verdict, seeds) and what the next
batch costs: trainings, and time estimated from ``runtime.seconds_per_pass`` (measured:
the default study's 3286 s on 1 worker over its 367,800 forward-backward passes) times
the mean passes each remedy's runs recorded, divided by the workers.

How the seeds grow, and why it stays valid and reproducible:

- The questions are checked only at the looks of ``compare.sequential.looks``, fixed in
  params.yaml before the first look; each look's nominal level comes from the
  alpha-spending plan (:func:`imbalance.analysis.stats.nominal_levels`), so looking after
  every batch does not inflate the error.
- A batch extends the top-level ``seeds`` list of params.yaml to the next planned look
  (seeds are appended, never changed), and the whole study is reproduced: every run
  already finished is an unchanged matrix entry (``train@<remedy>-<seed>``), restored
  from DVC's run-cache, never retrained. The final ``seeds`` list is committed with the
  results, so ``dvc repro`` rebuilds exactly the study that decided.
- What this shape costs: every declared remedy gets the new seeds, not only those of the
  undecided questions (the report prints both counts), and the graph grows by one stage
  per remedy and seed: 128 stages at 5 seeds, ~1250 at the cap of 50, far past the
  10 s no-op ``dvc repro`` budget (~3 s at 128 stages). Until the seed-block stages below
  exist, use ``--max-seeds`` (e.g. 15: ~380 stages) and read the "remedies alone" cost.

The seed-block shape this loop is meant to drive (not in dvc.yaml yet): an append-only
params entry ``sequential_blocks: {b10: {seeds: [5..9], remedies: [...]}, ...}`` that
the loop writes once per batch and never edits; three added ``foreach`` stages over it,
``split_block@<b>`` (data/blocks/<b>), ``train_block@<b>`` (the train stage's deps plus
data/blocks/<b>, params model, train, split.validation, split.folds, remedies, retrain,
sequential_blocks.<b>; trains the block's remedies x seeds, start remedies first, in a
process pool of ``--jobs``; outs models|predictions|training/blocks/<b>) and
``evaluate_block@<b>`` (metrics/blocks/<b>, uncached), which compare reads beside
metrics/runs. A block never changes once run, so it is never retrained; 3 stages per
look, <= 146 stages at the cap.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from imbalance import params as params_mod
from imbalance.cli import UserError
from imbalance.layout import Layout
from imbalance.params import Params
from imbalance.training.components import Retrain

#: The params.yaml line the loop rewrites: the top-level seed list, in flow style.
SEEDS_LINE = re.compile(r"^seeds: \[[0-9, ]*\]$", re.MULTILINE)


def needs(params: Params, questions: list[dict[str, Any]]) -> list[str]:
    """Remedies the undecided questions involve, with the start remedies retrain ones need
    (a retrain run starts from its start remedy's model of the same seed)."""
    cap = params.compare.sequential.looks[-1]
    out: list[str] = []
    for q in questions:
        if q["verdict"] == "inconclusive" and q.get("n", 0) < cap:
            out += q.get("remedies", [])
    for name in list(out):
        spec = params.all_remedies.get(name)
        if isinstance(spec, Retrain):
            out.append(spec.start.remedy)
    return [r for r in params.all_remedies if r in set(out)]


def next_look(params: Params, n: int) -> int | None:
    """The first planned look above ``n`` seeds, or None past the cap."""
    return next((k for k in params.compare.sequential.looks if k > n), None)


def mean_passes(params: Params, layout: Layout, remedy: str) -> float:
    """Mean forward-backward passes of a remedy's finished runs (SAM doubles its steps)."""
    steps = []
    for seed in params.seeds:
        path = layout.run_metrics(remedy, seed)
        if path.is_file():
            steps.append(json.loads(path.read_text()).get("steps_trained", 0))
    mean = sum(steps) / len(steps) if steps else params.train.max_steps
    sam = params.remedy(remedy).sam
    return mean * (2 if sam is not None and sam.rho > 0 else 1)


def plan(
    params: Params, layout: Layout, questions: list[dict[str, Any]], jobs: int, max_seeds: int
) -> dict[str, Any]:
    """The next batch: the seeds to add, the remedies that need them, and its cost."""
    remedies = needs(params, questions)
    n = len(params.seeds)
    look = next_look(params, n)
    out: dict[str, Any] = {"remedies": remedies, "look": look, "add": [], "stop": None}
    if not remedies:
        out["stop"] = "every question is decided or at the cap"
        return out
    if look is None or look > max_seeds:
        out["stop"] = f"the next look ({look or 'none'}) is past --max-seeds {max_seeds}"
        return out
    start = max(params.seeds) + 1
    out["add"] = list(range(start, start + look - n))
    rate = params.runtime.seconds_per_pass
    per_seed_all = sum(mean_passes(params, layout, r) for r in params.all_remedies)
    per_seed_needed = sum(mean_passes(params, layout, r) for r in remedies)
    k = len(out["add"])
    out["trainings"] = k * len(params.all_remedies)
    out["trainings_needed"] = k * len(remedies)
    out["seconds"] = k * per_seed_all * rate / jobs
    out["seconds_needed"] = k * per_seed_needed * rate / jobs
    return out


def report(questions: list[dict[str, Any]], batch: dict[str, Any]) -> str:
    """What a batch decided and what the next one costs, for the terminal."""
    lines = [
        f"  ({q['id']}) {q['verdict']:<13} {q.get('n', 0):>3} seeds  {q['claim']}"
        for q in questions
    ]
    if batch["stop"]:
        lines.append(f"stop: {batch['stop']}")
    else:
        lines.append(
            f"next batch: seeds {batch['add'][0]}..{batch['add'][-1]} (look {batch['look']}), "
            f"{batch['trainings']} trainings, ~{batch['seconds'] / 60:.0f} min "
            f"(the undecided questions' {len(batch['remedies'])} remedies alone: "
            f"{batch['trainings_needed']} trainings, ~{batch['seconds_needed'] / 60:.0f} min)"
        )
    return "\n".join(lines)


def extend_seeds(path: Path, seeds: list[int]) -> None:
    """Rewrite params.yaml's top-level ``seeds`` list, every other byte kept."""
    text = path.read_text()
    if len(SEEDS_LINE.findall(text)) != 1:
        raise UserError(
            f"{path}: expected one top-level line `seeds: [...]` (flow style) to extend; "
            "write the seed list on one line"
        )
    path.write_text(SEEDS_LINE.sub(f"seeds: [{', '.join(map(str, seeds))}]", text))


def repro(jobs: int) -> None:
    """The whole study, on ``jobs`` workers (DVC's queue) or in the workspace."""
    cmd = (
        [sys.executable, "-m", "imbalance.tools.parallel", "--jobs", str(jobs)]
        if jobs > 1
        else ["dvc", "repro"]
    )
    print("$", " ".join(cmd), flush=True)
    if subprocess.run(cmd, check=False).returncode != 0:
        raise UserError(f"`{' '.join(cmd)}` failed; fix it and run decide again")


def main(argv: list[str] | None = None) -> int:
    """The loop; ``--plan`` checks the current results and prints the next batch only."""
    parser = argparse.ArgumentParser(prog="python -m imbalance.tools.decide")
    parser.add_argument("--jobs", "-j", type=int, default=1, help="workers per batch")
    parser.add_argument("--max-seeds", type=int, default=None, help="stop before this many")
    parser.add_argument("--plan", action="store_true", help="print the next batch only")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        raise UserError(f"--jobs must be a positive number of workers, not {args.jobs}")
    layout = Layout()
    while True:
        if not args.plan:
            repro(args.jobs)
        p = params_mod.load()
        cap = p.compare.sequential.looks[-1]
        max_seeds = min(args.max_seeds or cap, cap)
        if not layout.statistics.is_file():
            raise UserError(f"{layout.statistics}: missing; run `dvc repro` first")
        stats = json.loads(layout.statistics.read_text())
        if "questions" not in stats:
            raise UserError(
                f"{layout.statistics}: written before the primary questions existed; run "
                "`dvc repro compare`"
            )
        questions = stats["questions"]
        batch = plan(p, layout, questions, args.jobs, max_seeds)
        print(report(questions, batch), flush=True)
        if args.plan or batch["stop"]:
            return 0
        extend_seeds(params_mod.PARAMS_FILE, [*p.seeds, *batch["add"]])


if __name__ == "__main__":
    from imbalance.cli import run

    run(main)
