"""Reading what evaluate and train wrote: per-run metrics, ROC plot data, dvclive curves.

Shared by the comparison report and the claims; a missing or damaged file is one clear
line naming the stage that rebuilds it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from imbalance.analysis import metrics
from imbalance.blocks import Blocks, in_block
from imbalance.cli import UserError
from imbalance.layout import Layout
from imbalance.params import Params

#: Per-check curves put into plots/comparison/training.json and the training figure.
CURVES = ("val_auc", "loss", "val_loss")

Runs = dict[str, dict[int, dict[str, Any]]]  # remedy -> seed -> metrics file


# --------------------------------------------------------------------------- loading


def load_runs(params: Params, layout: Layout, blocks: Blocks | None = None) -> Runs:
    """Every declared remedy x seed's metrics file; a missing one is a clear error.

    Each remedy's seeds are ``seeds`` (``metrics/runs/seed<s>``), then those of every
    sequential block (``blocks``, blocks.yaml) naming it
    (``metrics/runs/blocks/<b>/seed<s>``, written by ``evaluate_block@<b>``): remedies of
    a sequential study differ in seeds, so a consumer pairs by the seeds two remedies
    share (:func:`series` gives None elsewhere).
    """
    runs: Runs = {remedy: {} for remedy in params.names}
    for block, seed, at, stage in run_places(params, layout, blocks):
        spec = (blocks or Blocks()).sequential_blocks.get(block)
        for remedy in (r for r in params.names if spec is None or r in spec.remedies):
            runs[remedy][seed] = _read_run(at.run_metrics(remedy, seed), stage)
    return runs


def run_places(
    params: Params, layout: Layout, blocks: Blocks | None = None
) -> list[tuple[str, int, Layout, str]]:
    """Where each seed's run files are: (its block, "" for ``seeds``; the seed; the layout
    its paths come from; the stage that writes them), ``seeds`` first, then each block's."""
    places = [("", seed, layout, f"evaluate@{seed}") for seed in params.seeds]
    for block, spec in (blocks or Blocks()).sequential_blocks.items():
        at = in_block(layout, block)
        places += [(block, seed, at, f"evaluate_block@{block}") for seed in spec.seeds]
    return places


def _read_run(path: Path, stage: str) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"{path}: missing; run `dvc repro {stage}`")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not valid JSON ({err.msg}); rebuild it") from None


def value(run: dict[str, Any], key: str) -> float | None:
    """One number of a run's metrics file by key: ``test.recall``, ``tuned.fn``, ``tuned.value``."""
    where, metric = key.split(".", 1)
    if where == "test":
        return run["test"].get(metric)
    tuned = run["tuned_threshold"]
    return tuned["value"] if metric == "value" else tuned["test"].get(metric)


def series(runs: Runs, remedy: str, key: str, seeds: list[int]) -> list[float | None]:
    """One key over seeds, in ``seeds`` order (the pairing of the paired comparisons);
    None where the remedy did not run that seed (a block's seed of another remedy), which
    the statistics drop: a remedy's interval uses its own seeds, a paired one the seeds
    both remedies ran."""
    return [value(runs[remedy][s], key) if s in runs[remedy] else None for s in seeds]


def value_range(runs: Runs, key: str) -> tuple[float, float]:
    """The range a key's values cannot leave: [0, 1] for a rate, [0, n] for a count.

    Intervals are cut to it (a t-interval knows nothing of it) and figures scale to it.
    ``n`` is the number of test images of the class the count is about, read from the
    runs' confusion counts (the same test set for every run, so the largest is the one).
    """
    metric = metrics.metric_of(key)  # None: the tuned threshold, in [0, 1]
    if metric is not None and metric.range == "signed":
        return -1.0, 1.0
    if metric is not None and metric.is_count:
        # the class's test images: every count of that class summed (tp + fn, tn + fp)
        same = [m.name for m in metrics.REGISTRY if m.range == metric.range]
        totals = [
            sum(run["test"][name] for name in same) for r in runs.values() for run in r.values()
        ]
        return 0.0, float(max(totals, default=0))
    return 0.0, 1.0


def read_manifest(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"{path}: missing; run `dvc repro fetch`")
    return json.loads(path.read_text())


def read_curves(params: Params, seed: int, layout: Layout) -> dict[str, dict[str, Any]]:
    """The dvclive curves of one seed: remedy -> metric -> (steps, values); absent = {}.

    dvclive's TSVs have the columns ``timestamp step <metric>``; ``step`` is the optimizer
    step of the validation check (``check_every``, 2 x ``check_every``, ...), the unit of
    ``best_step`` and the same for every remedy, so curves line up on one axis. A remedy
    with no training (post-hoc only) has no curves, which the figure says instead of
    failing.
    """
    out: dict[str, dict[str, Any]] = {}
    for remedy in params.names:
        out[remedy] = {}
        folder = layout.training_dir(remedy, seed) / "plots" / "metrics"
        for metric in CURVES:
            path = folder / f"{metric}.tsv"
            if not path.is_file():
                continue
            with path.open(newline="") as fh:
                rows = list(csv.DictReader(fh, delimiter="\t"))
            if rows and metric in rows[0]:
                steps = np.array([int(r["step"]) for r in rows])
                values = np.array([float(r[metric]) for r in rows])
                out[remedy][metric] = (steps, values)
    return out


def read_roc(
    params: Params, layout: Layout, blocks: Blocks | None = None
) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """The ROC plot data of every run: (block or "", seed) -> rows of its roc.json.

    The blocks' seeds are read too, so that a remedy's mean curve averages the same seeds
    as the AUC its legend entry gives (each remedy's own seeds, sequential blocks included).
    """
    return {
        (block, seed): _read_run(at.run_plots_dir(seed) / "roc.json", stage)["roc"]
        for block, seed, at, stage in run_places(params, layout, blocks)
    }
