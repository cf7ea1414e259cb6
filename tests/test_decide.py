"""The sequential loop's planning: which remedies get seeds, up to which look, at what cost.

No DVC, no training: hand-made questions and run files in a temporary project.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import blocks_yaml_without_blocks

from imbalance import blocks as blocks_mod
from imbalance.blocks import Blocks
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


def test_needs_pursues_only_the_questions_asked_for() -> None:
    p = _params([0, 1, 2, 3, 4])
    qs = [
        _q("b", "inconclusive", 5, ["class_weight", "oversample"]),
        _q("d", "inconclusive", 5, ["two_phase_oversample", "oversample"]),
    ]
    # d only: its retrain remedy with its start; class_weight (question b only) left out
    assert decide.needs(p, qs, {"d"}) == ["oversample", "two_phase_oversample"]
    assert decide.needs(p, qs, set()) == []
    assert decide.needs(p, qs) == ["class_weight", "oversample", "two_phase_oversample"]


def test_needs_leaves_out_a_question_its_estimate_says_the_cap_will_not_decide() -> None:
    p = _params([0, 1, 2, 3, 4])  # the committed plan's cap: 50 seeds
    assert p.compare.sequential.looks[-1] == 50
    qs = [
        {**_q("b", "inconclusive", 10, ["class_weight", "oversample"]), "seeds_needed": 66},
        {**_q("c", "inconclusive", 10, ["undersample", "class_weight"]), "seeds_needed": 773},
        {**_q("best", "inconclusive", 5, ["augment_strong"]), "seeds_needed": None},
    ]
    # 773 > 2 x 50: c is futile; 66 is not (100 is the limit); best has no estimate
    assert decide.futile(qs[1], 50, 2) and not decide.futile(qs[0], 50, 2)
    assert not decide.futile(qs[2], 50, 2) and not decide.futile(qs[1], 50, 0)
    assert decide.needs(p, qs, futility=2) == ["class_weight", "oversample", "augment_strong"]
    assert decide.needs(p, qs, futility=1) == ["augment_strong"]  # 66 > 50 as well
    assert "undersample" in decide.needs(p, qs)  # off by default in the function
    text = decide.report(qs, {"stop": "x"}, cap=50, futility=2)
    assert "(c) inconclusive" in text
    assert "about 773 would decide it, over 2 x the cap of 50" in text
    assert "about 66" not in text


def _write_runs(p: Any, layout: Layout) -> None:
    for seed in p.seeds:  # every remedy trained 1000 steps on every seed
        for remedy in p.all_remedies:
            path = layout.run_metrics(remedy, seed)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"steps_trained": 1000}))


def test_plan_is_a_block_to_the_next_look_priced_for_its_remedies_only(tmp_path: Path) -> None:
    p = _params([0, 1, 2, 3, 4])
    layout = Layout(tmp_path)
    _write_runs(p, layout)
    qs = [_q("c", "inconclusive", 5, ["undersample", "class_weight"])]
    batch = decide.plan(p, layout, qs, jobs=2, max_seeds=50)
    assert batch["look"] == 10 and batch["add"] == [5, 6, 7, 8, 9] and batch["block"] == "b10"
    assert batch["remedies"] == ["class_weight", "undersample"]  # declaration order
    assert batch["trainings"] == 10  # 5 seeds x the 2 remedies, not every remedy
    # by hand: 5 seeds x 2 remedies x 1000 passes x 0.0089 s, blocks.yaml block_workers 1
    # (not / jobs)
    assert batch["seconds"] == pytest.approx(5 * 2 * 1000 * 0.0089)
    text = decide.report(qs, batch)
    assert "next batch: block b10, seeds 5..9 (look 10) for 2 remedies " in text
    assert "(class_weight, undersample): 10 trainings, ~1 min (blocks.yaml block_workers" in text
    two = Blocks(block_workers=2)
    assert decide.plan(p, layout, qs, 1, 50, two)["seconds"] == pytest.approx(
        5 * 2 * 1000 * 0.0089 / 2
    )
    paced = decide.plan(p, layout, qs, 1, 50, pace=0.04)  # a pace the loop measured
    assert paced["seconds"] == pytest.approx(5 * 2 * 1000 * 0.04)
    assert "~7 min (blocks.yaml block_workers at a time; 0.0400 s a pass, measured on the " in (
        decide.report(qs, paced)
    )
    assert "at runtime.seconds_per_pass: measured elsewhere" in text
    stop = decide.plan(p, layout, qs, jobs=2, max_seeds=8)
    assert stop["stop"] and "past --max-seeds 8" in stop["stop"]
    done = decide.plan(p, layout, [_q("a", "held", 5, [])], jobs=1, max_seeds=50)
    assert done["stop"] == "every question is decided or at the cap"


def test_plan_starts_from_the_fewest_seeds_and_takes_only_new_seeds(tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["seeds"], raw["tuning_seeds"] = [0, 1, 2, 3, 4], [10, 11]
    p = parse(raw)
    b = blocks_mod.parse(
        {"sequential_blocks": {"b10": {"seeds": [5, 6, 7, 8, 9], "remedies": ["undersample"]}}}, p
    )
    layout = Layout(tmp_path)
    _write_runs(p, layout)
    # undersample has 10 seeds, class_weight 5: the block takes class_weight to look 10,
    # and undersample gains the same seeds (its pairs with class_weight need them)
    qs = [_q("c", "inconclusive", 5, ["undersample", "class_weight"])]
    batch = decide.plan(p, layout, qs, jobs=1, max_seeds=50, blocks=b)
    assert batch["look"] == 10 and batch["block"] == "b10_2"
    assert batch["add"] == [12, 13, 14, 15, 16]  # above every seed, past the tuning seeds
    only = decide.plan(p, layout, [_q("x", "inconclusive", 10, ["undersample"])], 1, 50, b)
    assert only["look"] == 15 and only["add"] == [12, 13, 14, 15, 16] and only["block"] == "b15"


def test_append_block_adds_one_line_and_keeps_every_other_byte(tmp_path: Path) -> None:
    path = tmp_path / "blocks.yaml"
    text = blocks_yaml_without_blocks()
    path.write_text(text)
    p = _params([0, 1, 2])
    decide.append_block(path, "b5", [3, 4], ["undersample", "class_weight"], params=p)
    first = path.read_text()
    head, _, tail = text.rpartition("sequential_blocks: {}\n")
    assert tail == ""  # the section is the file's last line
    assert first == head + (
        "sequential_blocks:\n  b5: {seeds: [3, 4], remedies: [undersample, class_weight]}\n"
    )
    decide.append_block(
        path, "b10", [5, 6, 7, 8, 9], ["oversample", "two_phase_oversample"], params=p
    )
    second = path.read_text()
    line = "  b10: {seeds: [5, 6, 7, 8, 9], remedies: [oversample, two_phase_oversample]}\n"
    assert second == first + line
    blocks = blocks_mod.parse(yaml.safe_load(second), p).sequential_blocks
    assert list(blocks) == ["b5", "b10"] and blocks["b10"].remedies[1] == "two_phase_oversample"
    assert yaml.safe_load(second)["block_workers"] == 1  # every other byte kept


@pytest.mark.parametrize(
    ("edit", "block", "message"),
    [
        (lambda t: t + "extra: 1\n", ("b5", [3], ["baseline"]), r"as the last top-level section"),
        (lambda t: t, ("b5", [1], ["baseline"]), r"sequential_blocks.b5.seeds: seed 1 is already"),
        (
            lambda t: t.replace(
                "sequential_blocks: {}",
                "sequential_blocks: {b5: {seeds: [3], remedies: [baseline]}}",
            ),
            ("b6", [4], ["baseline"]),
            r"would not give the intended blocks",
        ),
        (
            lambda t: t.replace(
                "sequential_blocks: {}",
                "sequential_blocks: {b5: {seeds: [3], remedies: [baseline]}}",
            ),
            ("b5", [4], ["baseline"]),
            r"sequential_blocks.b5 exists already; blocks are never edited",
        ),
    ],
)
def test_append_block_refuses_what_it_cannot_append_safely(
    tmp_path: Path, edit: Any, block: tuple[str, list[int], list[str]], message: str
) -> None:
    path = tmp_path / "blocks.yaml"
    path.write_text(edit(blocks_yaml_without_blocks()))
    before = path.read_bytes()
    with pytest.raises(UserError, match=message):
        decide.append_block(path, *block, params=_params([0, 1, 2]))
    assert path.read_bytes() == before  # nothing written


def test_the_loop_prices_its_next_batch_at_the_pace_it_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each repro of a batch it appended times the machine: 100 s for a batch of
    5 seeds x 6000 passes (no runs recorded: train.max_steps) is 1/300 s a pass."""
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    (tmp_path / "blocks.yaml").write_text(blocks_yaml_without_blocks())
    stats = {"questions": [_q("a", "inconclusive", 5, ["baseline"])]}
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "statistics.json").write_text(json.dumps(stats))
    monkeypatch.chdir(tmp_path)
    clock = iter(range(0, 1000, 100))  # each repro takes 100 s
    monkeypatch.setattr(decide, "time", type("T", (), {"perf_counter": lambda: next(clock)}))
    monkeypatch.setattr(decide, "repro", lambda jobs: None)
    p = _params([0, 1, 2, 3, 4])
    assert p.train.max_steps == 6000 and p.remedy("baseline").sam is None

    assert decide.main(["--questions", "a", "--max-seeds", "16"]) == 0

    out = capsys.readouterr().out.splitlines()
    batches = [line for line in out if line.startswith("next batch:")]
    assert len(batches) == 2  # b10 (look 10), then b15; look 20 is past --max-seeds 16
    assert "at runtime.seconds_per_pass" in batches[0]  # nothing measured yet
    assert "0.0033 s a pass, measured on the last batch" in batches[1]  # 100 s / 30000
    assert "~2 min" in batches[1]  # 5 x 6000 passes x 1/300 s = 100 s
    assert out[-1] == "stop: the next look (20) is past --max-seeds 16"
