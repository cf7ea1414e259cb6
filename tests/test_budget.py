"""The per-remedy budget (``budget:``) and the tuning seeds: params validation, fast.

Expected values come from the params written here (the study's train section vs the
remedy's override), not from the code under test; the training-level check (exactly
``budget.max_steps`` steps and no early stopping for that remedy only) is in
tests/test_train.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from imbalance import params
from imbalance.cli import UserError

ROOT = Path(__file__).resolve().parents[1]


def shipped() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_a_remedy_budget_overrides_only_the_fields_it_sets_for_that_remedy_only():
    raw = shipped()
    raw["train"].update(stopping="early_stopping", max_steps=6000)
    raw["remedies"]["own"] = {"sampler": "oversample", "budget": {"stopping": "budget"}}
    raw["remedies"]["longer"] = {"budget": {"max_steps": 9000}}
    p = params.parse(raw)
    own = p.remedy("own").train_config(p.train)
    assert (own.stopping, own.max_steps) == ("budget", 6000)
    longer = p.remedy("longer").train_config(p.train)
    assert (longer.stopping, longer.max_steps) == ("early_stopping", 9000)
    # everything else is the study's, and a remedy without `budget` gets the section itself
    assert own.model_dump(exclude={"stopping"}) == p.train.model_dump(exclude={"stopping"})
    assert p.remedy("oversample").train_config(p.train) is p.train
    assert (p.train.stopping, p.train.max_steps) == ("early_stopping", 6000)


@pytest.mark.parametrize(
    ("budget", "expected"),
    [
        (
            {"max_steps": 6050},
            "remedies.bad.budget.max_steps is 6050, not a multiple of train.check_every (100)",
        ),
        ({"max_steps": 0}, "remedies.bad.budget.max_steps: Input should be greater than 0"),
        ({"stopping": "patience"}, "remedies.bad.budget.stopping: Input should be"),
        ({"steps": 100}, "remedies.bad.budget.steps: unknown key"),
    ],
)
def test_a_bad_budget_is_one_line_naming_the_remedy_key(budget: dict[str, Any], expected: str):
    raw = shipped()
    raw["remedies"]["bad"] = {"budget": budget}
    with pytest.raises(UserError) as err:
        params.parse(raw).remedy("bad")  # compositions are validated when asked for
    assert expected in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_tuning_seeds_must_be_disjoint_from_the_reported_seeds():
    raw = shipped()
    assert set(raw["tuning_seeds"]).isdisjoint(raw["seeds"])  # the shipped design holds
    raw["tuning_seeds"] = [100, raw["seeds"][-1]]
    shared = raw["seeds"][-1]
    with pytest.raises(UserError, match=rf"tuning_seeds and seeds share \[{shared}\]"):
        params.parse(raw)
    raw["tuning_seeds"] = [100, 100]
    with pytest.raises(UserError, match="tuning_seeds must be distinct"):
        params.parse(raw)


def test_the_frozen_remedy_trains_6000_steps_while_the_study_keeps_early_stopping():
    """issue 22's `strong_ema_budget`: the design the tuning seeds chose, as shipped."""
    p = params.load(ROOT / "params.yaml")
    cfg = p.remedy("strong_ema_budget").train_config(p.train)
    assert (cfg.stopping, cfg.max_steps) == ("budget", 6000)
    assert p.train.stopping == "early_stopping"
    assert p.remedy("augment_strong").train_config(p.train) is p.train
    frozen = p.remedy("strong_ema_budget")
    assert frozen.sam is None and frozen.tta.flip and frozen.average.kind == "ema"
