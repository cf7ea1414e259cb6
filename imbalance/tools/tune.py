"""Probe candidate remedies on the tuning seeds, by validation ROC AUC only (issue 22).

    python -m imbalance.tools.tune CANDIDATE [CANDIDATE ...] [--seeds 100 101]
        [--negative cat --positive dog] [--work /tmp/tune] [--out results/tuning/runs.json]

Why a tool and not the pipeline: a design must be frozen before the seeds it is reported
on are looked at, so candidates are trained on ``tuning_seeds`` (params.yaml, disjoint from
``seeds``) in a scratch project (``--work``), never in the study's workspace, and only their
*validation* predictions are read. The test predictions the training library writes stay
in the scratch directory, unread and unprinted.

Each run goes through the real training library (:func:`imbalance.training.train.run`)
with the project's params.yaml, except: ``seeds`` (the tuning seeds), the class pair
(``--negative``/``--positive``), the remedy (a candidate from :data:`CANDIDATES`) and, per
candidate, ``train.stopping`` / ``train.max_steps``. One JSON record per (pair, candidate,
seed) is merged into ``--out``: validation ROC AUC, steps run, kept step and wall seconds.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from imbalance import files, params
from imbalance.cli import UserError, run
from imbalance.layout import Layout

STRONG = {"flip": True, "translate": 0.1, "brightness": 0.2, "contrast": 0.2, "erase": 0.5}
BASIC = {"flip": True, "translate": 0.1}

#: name -> (remedy spec as params.yaml writes it, train overrides). ``None`` overrides
#: keep the project's train section (the study's early-stopping protocol).
CANDIDATES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # the references, under the study's protocol (early stopping)
    "oversample_augment": ({"sampler": "oversample", "augment": BASIC}, {}),
    "strong_sam_ema_tta": (
        {"sampler": "oversample", "augment": STRONG, "sam": 0.05, "average": "ema", "tta": True},
        {},
    ),
    # the measured lead: the budget (no early stopping), final EMA weights
    "strong_ema_tta_b6k": (
        {"sampler": "oversample", "augment": STRONG, "average": "ema", "tta": True},
        {"stopping": "budget", "max_steps": 6000},
    ),
    "strong_sam_ema_tta_b6k": (
        {"sampler": "oversample", "augment": STRONG, "sam": 0.05, "average": "ema", "tta": True},
        {"stopping": "budget", "max_steps": 6000},
    ),
    "strong_ema_tta_b10k": (
        {"sampler": "oversample", "augment": STRONG, "average": "ema", "tta": True},
        {"stopping": "budget", "max_steps": 10000},
    ),
    "strong_ema9999_tta_b10k": (
        {
            "sampler": "oversample",
            "augment": STRONG,
            "average": {"kind": "ema", "momentum": 0.9999},
            "tta": True,
        },
        {"stopping": "budget", "max_steps": 10000},
    ),
    "strong_swa_tta_b6k": (
        {
            "sampler": "oversample",
            "augment": STRONG,
            "average": {"kind": "swa", "start": 3000},
            "tta": True,
        },
        {"stopping": "budget", "max_steps": 6000},
    ),
    "strong_ema_tta_wd_b6k": (
        {
            "sampler": "oversample",
            "augment": STRONG,
            "average": "ema",
            "tta": True,
            "weight_decay": 0.05,
        },
        {"stopping": "budget", "max_steps": 6000},
    ),
    "oversample_augment_b6k": (
        {"sampler": "oversample", "augment": BASIC},
        {"stopping": "budget", "max_steps": 6000},
    ),
}


def scratch_params(
    raw: dict[str, Any],
    seeds: list[int],
    pair: tuple[str, str] | None,
    name: str,
) -> params.Params:
    """The project's params with the tuning seeds, the pair and one candidate remedy."""
    spec, train_update = CANDIDATES[name]
    raw = copy.deepcopy(raw)
    raw.pop("tuning_seeds", None)
    raw["seeds"] = seeds  # every tuning seed: split writes them all in one directory swap
    if pair is not None:
        raw["classes"] = {"negative": pair[0], "positive": pair[1]}
    raw["train"].update(train_update)
    raw["remedies"] = {name: spec}
    raw["retrain"] = {}
    raw["compare"]["reference"] = name
    raw["compare"]["also_against"] = []
    return params.parse(raw)


def prepare(work: Path, p: params.Params) -> Layout:
    """Fetch once (shared by every pair) and split the tuning seeds for this pair."""
    from imbalance.data import fetch, split

    raw_root = work / "raw"
    raw_layout = Layout(root=raw_root)
    if not raw_layout.raw_npz.exists():
        print(fetch.run_fetch(p, raw_layout), flush=True)
    pair_root = work / f"{p.classes.negative}-{p.classes.positive}"
    layout = Layout(root=pair_root)
    (pair_root / "data").mkdir(parents=True, exist_ok=True)
    link = layout.raw_dir
    if not link.exists():
        link.symlink_to(raw_layout.raw_dir.resolve())
    if not all((layout.data_dir(s) / "val_imbalanced.npz").exists() for s in p.seeds):
        print(split.run_split(p, layout), flush=True)
    return layout


def val_auc(layout: Layout, name: str, seed: int) -> tuple[float, int, int]:
    """Validation ROC AUC of a finished run, its steps run and kept step (val only)."""
    from sklearn.metrics import roc_auc_score

    with np.load(layout.data_dir(seed) / "val_imbalanced.npz") as val:
        y = val["y"]
    with np.load(layout.predictions(name, seed)) as pred:
        score, steps, best = pred["val"], int(pred["steps_trained"]), int(pred["best_step"])
    return float(roc_auc_score(y, score)), steps, best


def merge(out: Path, record: dict[str, Any]) -> None:
    """Add or replace the record of (pair, candidate, seed) in ``out``."""
    rows = json.loads(out.read_text())["runs"] if out.exists() else []
    key = (record["pair"], record["candidate"], record["seed"])
    rows = [r for r in rows if (r["pair"], r["candidate"], r["seed"]) != key] + [record]
    rows.sort(key=lambda r: (r["pair"], r["candidate"], r["seed"]))
    files.write_json(out, {"note": __doc__.split("\n")[0], "runs": rows})
    out.with_suffix(".md").write_text(table(rows))


def table(rows: list[dict[str, Any]]) -> str:
    """The records as a markdown table (validation figures only), one row per run."""
    lines = [
        "# Tuning runs (validation ROC AUC only; written by `python -m imbalance.tools.tune`)",
        "",
        "| pair | candidate | seed | val ROC AUC | steps run | kept step | wall s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['pair']} | `{r['candidate']}` | {r['seed']} | {r['val_auc']:.4f} | "
            f"{r['steps_trained']} | {r['best_step']} | {r['wall_s']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("candidates", nargs="+", choices=sorted(CANDIDATES))
    parser.add_argument("--seeds", type=int, nargs="*", default=None)
    parser.add_argument("--negative")
    parser.add_argument("--positive")
    parser.add_argument("--work", type=Path, default=Path("/tmp/tune"))
    parser.add_argument("--out", type=Path, default=Path("results/tuning/runs.json"))
    args = parser.parse_args()
    raw = yaml.safe_load(Path("params.yaml").read_text())
    project = params.parse(raw)
    tuning = list(project.tuning_seeds)
    seeds = tuning if args.seeds is None else args.seeds
    if not set(seeds) <= set(tuning):
        raise UserError(
            f"--seeds {seeds} must be tuning seeds {tuning} (params.yaml `tuning_seeds`): "
            "the reported seeds are never used for design"
        )
    if (args.negative is None) != (args.positive is None):
        raise UserError("give both --negative and --positive, or neither")
    pair = None if args.negative is None else (args.negative, args.positive)
    from imbalance.training import train

    for name in args.candidates:
        p = scratch_params(raw, tuning, pair, name)
        layout = prepare(args.work, p)
        for seed in seeds:
            started = time.perf_counter()
            train.run(p, name, seed, layout)
            wall = time.perf_counter() - started
            auc, steps, best = val_auc(layout, name, seed)
            record = {
                "pair": f"{p.classes.negative}-{p.classes.positive}",
                "candidate": name,
                "seed": seed,
                "val_auc": round(auc, 4),
                "steps_trained": steps,
                "best_step": best,
                "wall_s": round(wall, 1),
                "remedy": CANDIDATES[name][0],
                "train": CANDIDATES[name][1],
            }
            merge(args.out, record)
            print(f"TUNE {record['pair']} {name} seed {seed}: val_auc {auc:.4f}", flush=True)


if __name__ == "__main__":
    run(main)
