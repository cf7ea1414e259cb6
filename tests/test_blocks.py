"""The sequential study's seed blocks (params.yaml ``sequential_blocks``): their
validation, their paths, compare reading them, and the questions pairing by common seeds.

No DVC, no training: hand-made params and run files in a temporary project (the
end-to-end check through real `dvc repro` is the slow test at the end).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from imbalance.cli import UserError
from imbalance.layout import Layout
from imbalance.params import Params, parse

ROOT = Path(__file__).resolve().parents[1]


def _raw(**blocks: Any) -> dict[str, Any]:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["seeds"] = [0, 1, 2]
    raw["tuning_seeds"] = [100, 101]
    raw["sequential_blocks"] = blocks
    return raw


def _params(**blocks: Any) -> Params:
    return parse(_raw(**blocks))


# ----------------------------------------------------------------------------- params


def test_the_committed_params_have_no_block() -> None:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert raw["sequential_blocks"] == {}
    assert list(raw)[-1] == "sequential_blocks"  # decide appends to the end of the file


def test_a_valid_block_and_the_seeds_of_each_remedy() -> None:
    p = _params(
        b5={"seeds": [3, 4], "remedies": ["undersample", "two_phase_undersample"]},
        b10={"seeds": [5, 6, 7], "remedies": ["undersample"]},
    )
    assert p.seeds_of("undersample") == [0, 1, 2, 3, 4, 5, 6, 7]
    assert p.seeds_of("two_phase_undersample") == [0, 1, 2, 3, 4]
    assert p.seeds_of("baseline") == [0, 1, 2]
    assert p.block("b10").seeds == [5, 6, 7]
    with pytest.raises(UserError, match=r"unknown block 'b7': .* \['b10', 'b5'\]"):
        p.block("b7")


@pytest.mark.parametrize(
    ("blocks", "message"),
    [
        (
            {"b5": {"seeds": [2, 3], "remedies": ["baseline"]}},
            r"^params.yaml: sequential_blocks.b5.seeds: seed 2 is already in seeds; a block "
            r"adds new seeds only",
        ),
        (
            {"b5": {"seeds": [3, 100], "remedies": ["baseline"]}},
            r"sequential_blocks.b5.seeds: seed 100 is already in tuning_seeds",
        ),
        (
            {
                "b5": {"seeds": [3, 4], "remedies": ["baseline"]},
                "b10": {"seeds": [4, 5], "remedies": ["class_weight"]},
            },
            r"sequential_blocks.b10.seeds: seed 4 is already in sequential_blocks.b5",
        ),
        (
            {"b5": {"seeds": [3, 3], "remedies": ["baseline"]}},
            r"sequential_blocks.b5.seeds must be distinct non-negative integers",
        ),
        (
            {"b5": {"seeds": [3], "remedies": ["focal"]}},
            r"sequential_blocks.b5.remedies: 'focal' is not a declared remedy; declare it "
            r"under `remedies` or `retrain`",
        ),
        (
            {"b5": {"seeds": [3], "remedies": ["two_phase_oversample"]}},
            r"sequential_blocks.b5.remedies: retrain remedy 'two_phase_oversample' starts "
            r"from 'oversample'.*; add 'oversample' to the block's remedies",
        ),
        (
            {"seed3": {"seeds": [3], "remedies": ["baseline"]}},
            r"sequential_blocks.seed3: a block name is part of stage names and paths",
        ),
        (
            {"b5": {"seeds": [], "remedies": ["baseline"]}},
            r"^params.yaml: sequential_blocks.b5.seeds: List should have at least 1 item",
        ),
        (
            {"b5": {"seeds": [3], "remedies": ["baseline"], "look": 5}},
            r"^params.yaml: sequential_blocks.b5.look: unknown key",
        ),
    ],
)
def test_block_errors_name_the_key_and_the_fix(blocks: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError, match=message) as err:
        parse(_raw(**blocks))
    assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------- layout


def test_a_block_layout_puts_every_per_seed_path_in_the_block_folders() -> None:
    base = Layout(Path("/p"))
    b = base.in_block("b5")
    assert b.data_dir(3) == Path("/p/data/blocks/b5/seed3")
    assert b.model("oversample", 3) == Path("/p/models/blocks/b5/scratch/seed3/oversample.keras")
    assert b.model("x", 3, retrained=True) == Path("/p/models/blocks/b5/retrained/seed3/x.keras")
    assert b.predictions("x", 3) == Path("/p/predictions/blocks/b5/seed3/x.npz")
    assert b.training_dir("x", 3) == Path("/p/training/blocks/b5/x/seed3")
    assert b.run_metrics("x", 3) == Path("/p/metrics/runs/blocks/b5/seed3/x.json")
    assert b.run_plots_dir(3) == Path("/p/plots/runs/blocks/b5/seed3")
    assert b.composition("x") == base.composition("x")  # the code is the project's
    assert base.run_metrics("x", 3) == Path("/p/metrics/runs/seed3/x.json")  # unchanged
