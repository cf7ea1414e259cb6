"""The sequential loop's planning: which remedies get seeds, up to which look, at what cost.

No DVC, no training: hand-made questions and run files in a temporary project.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from imbalance.cli import UserError
from imbalance.layout import Layout
from imbalance.params import parse
from imbalance.tools import decide

ROOT = Path(__file__).resolve().parents[1]


def _params(seeds: list[int]) -> Any:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["seeds"] = seeds
    return parse(raw)


def _q(qid: str, verdict: str, n: int, remedies: list[str]) -> dict[str, Any]:
    return {"id": qid, "claim": qid, "verdict": verdict, "n": n, "remedies": remedies}


def test_needs_adds_the_start_remedy_of_a_retrain_one_and_skips_decided() -> None:
    p = _params([0, 1, 2, 3, 4])
    qs = [
        _q("a", "held", 5, []),
        _q("d", "inconclusive", 5, ["two_phase_undersample", "undersample"]),
        _q("b", "inconclusive", 50, ["class_weight"]),  # at the cap: no more seeds
    ]
    assert decide.needs(p, qs) == ["undersample", "two_phase_undersample"]


def test_plan_goes_to_the_next_look_and_prices_the_batch(tmp_path: Path) -> None:
    p = _params([0, 1, 2, 3, 4])
    layout = Layout(tmp_path)
    for seed in p.seeds:  # every remedy trained 1000 steps on every seed
        for remedy in p.all_remedies:
            path = layout.run_metrics(remedy, seed)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"steps_trained": 1000}))
    qs = [_q("c", "inconclusive", 5, ["undersample", "class_weight"])]
    batch = decide.plan(p, layout, qs, jobs=2, max_seeds=50)
    assert batch["look"] == 10 and batch["add"] == [5, 6, 7, 8, 9]
    assert batch["trainings"] == 5 * len(p.all_remedies) and batch["trainings_needed"] == 10
    # by hand: 5 seeds x 2 remedies x 1000 passes x 0.0089 s / 2 workers
    assert batch["seconds_needed"] == pytest.approx(5 * 2 * 1000 * 0.0089 / 2)
    assert "next batch: seeds 5..9 (look 10), " in decide.report(qs, batch)
    stop = decide.plan(p, layout, qs, jobs=2, max_seeds=8)
    assert stop["stop"] and "past --max-seeds 8" in stop["stop"]
    done = decide.plan(p, layout, [_q("a", "held", 5, [])], jobs=1, max_seeds=50)
    assert done["stop"] == "every question is decided or at the cap"


def test_extend_seeds_rewrites_only_the_seed_line(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    text = (ROOT / "params.yaml").read_text()
    path.write_text(text)
    decide.extend_seeds(path, [0, 1, 2, 3, 4, 5, 6])
    new = path.read_text()
    assert "\nseeds: [0, 1, 2, 3, 4, 5, 6]\n" in new
    shipped = next(line for line in text.splitlines() if line.startswith("seeds: ["))
    assert new.replace("seeds: [0, 1, 2, 3, 4, 5, 6]", "") == text.replace(shipped, "")
    path.write_text("seeds:\n  - 0\n")
    with pytest.raises(UserError, match=r"one top-level line `seeds: \[\.\.\.\]`"):
        decide.extend_seeds(path, [0, 1])
