"""The sequential study's loop: repro, check the questions, add a seed block, repro ...
until every primary question is decided or the plan's cap is reached.

    python -m imbalance.tools.decide [--jobs N] [--max-seeds K] [--questions a,d]
                                     [--futility F] [--plan]
    ./dev.sh decide [--jobs N] [--max-seeds K] [--questions a,d] [--futility F] [--plan]

After each batch it prints which questions are decided (verdict, seeds) and what the next
batch costs: its trainings (the block's remedies x seeds), and time: the mean passes each
remedy's runs recorded, divided by blocks.yaml ``block_workers``, times the seconds per
pass the loop measured on its own previous batch (its wall time over its estimated
passes), or before it has run one, ``runtime.seconds_per_pass`` (measured on another
machine: the default study's 3286 s on 1 worker over its 367,800 forward-backward passes;
the 2-core machine of the sequential study ran 3-5 times slower). A block is one stage
(``train_block@<b>``) that trains that many runs side by side, each in its own process;
``--jobs`` spreads only the ``seeds`` grid over DVC queue workers
(:mod:`imbalance.tools.parallel`).

How the seeds grow, and why it stays valid and reproducible:

- The questions are checked only at the looks of ``compare.sequential.looks``, fixed in
  params.yaml before the first look; each look's nominal level comes from the
  alpha-spending plan (:func:`imbalance.analysis.stats.nominal_levels`), so looking after
  every batch does not inflate the error.
- A batch appends ONE block to ``sequential_blocks`` in blocks.yaml (its own params
  file, :mod:`imbalance.blocks`; params.yaml is never edited, so no training's code
  dependency changes; append-only: an existing block and every other byte of the file
  are kept; :func:`append_block`): ``b<look>: {seeds: [...], remedies: [...]}``, the seeds that
  take the remedies the undecided questions need (:func:`needs`, with the start remedy of
  a retrain one, which imbalance/blocks.py requires in the same block) from the fewest seeds any of
  them has to the next planned look. The seeds are new ones: in no list of params.yaml
  or blocks.yaml, ``tuning_seeds`` included. Then the whole study is reproduced: every run already
  finished is an unchanged stage, never retrained. The final blocks.yaml is committed
  with the results, so ``dvc repro`` rebuilds exactly the study that decided.
- The shape in dvc.yaml: the ``resolve`` stage writes ``compositions/blocks/<b>.json``
  (the code and remedy params the block's training runs, :mod:`imbalance.resolution`),
  and three ``foreach`` stages per block: ``split_block@<b>``
  (``data/blocks/<b>``, ``stages/split_block.py``: the split's files for its seeds),
  ``train_block@<b>`` (the block's remedies x seeds through the train stage's loop,
  start remedies first; ``models|predictions|training/blocks/<b>``) and
  ``evaluate_block@<b>`` (``metrics/runs/blocks/<b>``, git-tracked, and
  ``plots/runs/blocks/<b>``), which compare reads beside ``metrics/runs``
  (:func:`imbalance.analysis.runs.load_runs`): remedies then differ in seeds, each
  remedy's interval is over its own seeds and a paired test over the seeds both ran.
  The graph grows by 3 stages per batch, not one per remedy and seed: the 5-seed
  study's 59 stages gain 3 per block, where the old shape (every remedy's seeds in
  ``seeds``) had ~510 stages at the cap (~1250 with the catalogue's remedies), far past
  the 10 s no-op ``dvc repro`` budget.
- Futility (``--futility F``, default 2): a question whose own estimate of the seeds
  that would decide it is over F times the cap gets no more seeds (:func:`futile`); it
  stays inconclusive, so no verdict's error rate changes. The estimate is compare's
  ``seeds_needed``, from the observed mean and sd, so an early look can misjudge it:
  ``--futility 0`` pursues every question to the cap.
- A block re-trains only when what it runs changes: ``compositions/blocks/<b>.json``
  (its seeds and remedies, the code its remedies load, their params and the ``model`` /
  ``train`` / ``split`` params a training reads); another remedy's edit re-runs
  ``resolve``, which writes that file's same bytes. Its evaluation re-runs (seconds) on
  any ``remedies`` / ``retrain`` change, as ``evaluate@<seed>`` does.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from imbalance import blocks as blocks_mod
from imbalance import files
from imbalance import params as params_mod
from imbalance.blocks import Blocks, all_seeds, seeds_of
from imbalance.cli import UserError
from imbalance.layout import Layout
from imbalance.params import Params
from imbalance.training.components import Retrain

#: The empty section of the committed study, rewritten to a block mapping by the first
#: batch.
EMPTY_BLOCKS = re.compile(r"^sequential_blocks: \{\}[ \t]*$", re.MULTILINE)


def futile(question: dict[str, Any], cap: int, futility: float) -> bool:
    """Whether an undecided question's own estimate of the seeds that would decide it
    (compare's ``seeds_needed``: at that n a new run decides about half of the time) is
    more than ``futility`` times the cap: more seeds up to the cap would most likely not
    decide it. A question without an estimate (``best``) is never futile; 0 turns the
    rule off.

    Stopping for futility never makes a verdict: the question stays inconclusive, so the
    plan's error rate, which is about the verdicts it does reach, is unchanged (a
    non-binding futility rule).
    """
    need = question.get("seeds_needed")
    return futility > 0 and isinstance(need, int) and need > futility * cap


def needs(
    params: Params,
    questions: list[dict[str, Any]],
    pursue: set[str] | None = None,
    futility: float = 0,
) -> list[str]:
    """Remedies the undecided questions involve, with the start remedies retrain ones need
    (a retrain run starts from its start remedy's model of the same seed).

    ``pursue``: the ids of the questions to add seeds for (``--questions``), None for all.
    Leaving a question out changes no verdict's error rate (each question is tested on its
    own remedies' seeds at its own share of the family's level); it spends no trainings on
    a question whose estimate says the next look will not decide it. ``futility``: leave
    out a question :func:`futile` says the cap will not decide (``--futility``).
    """
    cap = params.compare.sequential.looks[-1]
    out: list[str] = []
    for q in questions:
        if pursue is not None and q["id"] not in pursue:
            continue
        if futile(q, cap, futility):
            continue
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


def new_seeds(params: Params, blocks: Blocks, k: int) -> list[int]:
    """``k`` seeds above every seed params.yaml and blocks.yaml hold, none of them a
    tuning seed."""
    every = all_seeds(params, blocks)
    used = {*every, *params.tuning_seeds}
    out: list[int] = []
    seed = max(every) + 1
    while len(out) < k:
        if seed not in used:
            out.append(seed)
        seed += 1
    return out


def block_name(blocks: Blocks, look: int) -> str:
    """``b<look>``, or ``b<look>_<i>`` when a block of that look exists already (another
    set of remedies reaching the same look)."""
    name, i = f"b{look}", 2
    while name in blocks.sequential_blocks:
        name, i = f"b{look}_{i}", i + 1
    return name


def plan(
    params: Params,
    layout: Layout,
    questions: list[dict[str, Any]],
    jobs: int,
    max_seeds: int,
    blocks: Blocks | None = None,
    pursue: set[str] | None = None,
    futility: float = 0,
    pace: float | None = None,
) -> dict[str, Any]:
    """The next batch: a block (its name, seeds, remedies) and its cost.

    The cost is in passes per worker (``passes``) times ``pace``, the seconds per pass
    this loop measured on its last batch, or ``runtime.seconds_per_pass`` before it has
    one (measured on another machine: this one may be several times slower).

    The block takes the needed remedies from the fewest seeds any of them has (``n``)
    to the next look, with the same new seeds for all of them, so that their paired
    comparisons gain every seed. ``jobs`` does not divide the block's time: its stage
    trains blocks.yaml ``block_workers`` runs at a time.
    """
    del jobs  # the block's stage runs block_workers runs side by side
    blocks = blocks or Blocks()
    remedies = needs(params, questions, pursue, futility)
    out: dict[str, Any] = {"remedies": remedies, "look": None, "add": [], "stop": None}
    if not remedies:
        out["stop"] = "every question is decided or at the cap"
        return out
    n = min(len(seeds_of(params, blocks, r)) for r in remedies)
    look = next_look(params, n)
    out["look"] = look
    if look is None or look > max_seeds:
        out["stop"] = f"the next look ({look or 'none'}) is past --max-seeds {max_seeds}"
        return out
    out["add"] = new_seeds(params, blocks, look - n)
    out["block"] = block_name(blocks, look)
    per_seed = sum(mean_passes(params, layout, r) for r in remedies)
    out["trainings"] = len(out["add"]) * len(remedies)
    workers = min(blocks.block_workers, out["trainings"])
    out["passes"] = len(out["add"]) * per_seed / workers
    out["pace"] = pace
    out["seconds"] = out["passes"] * (pace or params.runtime.seconds_per_pass)
    return out


def report(
    questions: list[dict[str, Any]], batch: dict[str, Any], cap: int = 0, futility: float = 0
) -> str:
    """What a batch decided and what the next one costs, for the terminal."""
    lines = [
        f"  ({q['id']}) {q['verdict']:<13} {q.get('n', 0):>3} seeds  {q['claim']}"
        + (
            f" [no more seeds: about {q['seeds_needed']} would decide it, over "
            f"{futility:g} x the cap of {cap}]"
            if q["verdict"] == "inconclusive" and futile(q, cap, futility)
            else ""
        )
        for q in questions
    ]
    if batch["stop"]:
        lines.append(f"stop: {batch['stop']}")
    else:
        lines.append(
            f"next batch: block {batch['block']}, seeds {batch['add'][0]}..{batch['add'][-1]} "
            f"(look {batch['look']}) for {len(batch['remedies'])} remedies "
            f"({', '.join(batch['remedies'])}): {batch['trainings']} trainings, "
            f"~{batch['seconds'] / 60:.0f} min (blocks.yaml block_workers at a time; "
            + (
                f"{batch['pace']:.4f} s a pass, measured on the last batch)"
                if batch.get("pace")
                else "at runtime.seconds_per_pass: measured elsewhere, may differ here)"
            )
        )
    return "\n".join(lines)


def append_block(
    path: Path, name: str, seeds: list[int], remedies: list[str], *, params: Params
) -> None:
    """Append block ``name`` to blocks.yaml's ``sequential_blocks`` (its last section),
    every other byte kept: one flow-style line at the end of the file, and the empty
    ``sequential_blocks: {}`` of a study without blocks turned into ``sequential_blocks:``.
    The result is parsed back and must equal the old blocks plus the new one, and pass
    the blocks' validation against ``params``, before it is written (atomically)."""
    text = path.read_text()
    before = yaml.safe_load(text)
    blocks = before.get("sequential_blocks") if isinstance(before, dict) else None
    if not isinstance(blocks, dict) or list(before)[-1] != "sequential_blocks":
        raise UserError(
            f"{path}: expected `sequential_blocks` as the last top-level section (decide "
            "appends blocks to the end of the file); add `sequential_blocks: {}` at the end"
        )
    if name in blocks:
        raise UserError(f"{path}: sequential_blocks.{name} exists already; blocks are never edited")
    if not blocks:
        if len(EMPTY_BLOCKS.findall(text)) != 1:
            raise UserError(
                f"{path}: expected one line `sequential_blocks: {{}}` to turn into the first "
                "block; write the empty section on one line"
            )
        text = EMPTY_BLOCKS.sub("sequential_blocks:", text)
    entry = (
        f"  {name}: {{seeds: [{', '.join(map(str, seeds))}], remedies: [{', '.join(remedies)}]}}\n"
    )
    new = (text if text.endswith("\n") else text + "\n") + entry
    block = {"seeds": seeds, "remedies": remedies}
    try:
        after = yaml.safe_load(new)
    except yaml.YAMLError:
        after = None
    if after != {**before, "sequential_blocks": {**blocks, name: block}}:
        raise UserError(
            f"{path}: appending sequential_blocks.{name} at the end of the file would not "
            f"give the intended blocks (are the blocks indented by 2 spaces, in block "
            f"style?); add `{entry.strip()}` under sequential_blocks by hand"
        )
    blocks_mod.parse(after, params, path)  # the block's own checks (new seeds, remedies)
    files.write_text(path, new)


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
    parser.add_argument(
        "--questions", default=None, help="ids of the questions to add seeds for (a,d); all"
    )
    parser.add_argument(
        "--futility",
        type=float,
        default=2.0,
        help="add no seeds for a question whose estimate of the seeds that would decide "
        "it is over this many times the cap (default 2; 0: off)",
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        raise UserError(f"--jobs must be a positive number of workers, not {args.jobs}")
    if args.futility < 0:
        raise UserError(f"--futility must be 0 (off) or a positive factor, not {args.futility}")
    pursue = None if args.questions is None else set(args.questions.split(","))
    layout = Layout()
    pace, batch = None, None
    while True:
        if not args.plan:
            started = time.perf_counter()
            repro(args.jobs)
            if batch and batch.get("passes"):  # this loop's own batch: the machine's pace
                pace = (time.perf_counter() - started) / batch["passes"]
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
        unknown = sorted((pursue or set()) - {q["id"] for q in questions})
        if unknown:
            raise UserError(
                f"--questions: no question {', '.join(unknown)}; compare.questions has "
                f"{', '.join(q['id'] for q in questions)}"
            )
        blocks = blocks_mod.load(p)
        batch = plan(
            p, layout, questions, args.jobs, max_seeds, blocks, pursue, args.futility, pace
        )
        print(report(questions, batch, cap, args.futility), flush=True)
        if args.plan or batch["stop"]:
            return 0
        append_block(
            blocks_mod.BLOCKS_FILE, batch["block"], batch["add"], batch["remedies"], params=p
        )


if __name__ == "__main__":
    from imbalance.cli import run

    run(main)
