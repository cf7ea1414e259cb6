"""The class-pair tool: params-only overrides, and the summary it writes (hand-made inputs)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import PROJECT_ROOT

from imbalance import params
from imbalance.cli import UserError
from imbalance.layout import Layout
from imbalance.tools import pairs


def _applied(tmp_path: Path, negative: str = "cat", positive: str = "dog") -> Path:
    path = tmp_path / "params.yaml"
    shutil.copy2(PROJECT_ROOT / "params.yaml", path)
    pairs.apply(negative, positive, path)
    return path


def test_apply_changes_the_pair_roster_and_seeds_only(tmp_path: Path) -> None:
    path = _applied(tmp_path)
    p, before = params.load(path), params.load(PROJECT_ROOT / "params.yaml")
    assert (p.classes.negative, p.classes.positive) == ("cat", "dog")
    assert list(p.remedies) == [r for r in before.remedies if r in pairs.REMEDIES]
    assert sorted(p.remedies) == sorted(pairs.REMEDIES) and dict(p.retrain) == {}
    assert p.seeds == [0, 1, 2, 3, 4]
    for name in pairs.REMEDIES:  # the remedies keep their study settings
        assert p.remedies[name] == before.remedies[name]
    assert p.train == before.train and p.split == before.split and p.model == before.model
    assert "# label 0, the majority class" in path.read_text()  # comments kept


def test_apply_refuses_a_roster_without_the_new_remedy(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    text = (PROJECT_ROOT / "params.yaml").read_text().replace("strong_ema_budget:", "renamed:")
    path.write_text(text)
    with pytest.raises(UserError, match="strong_ema_budget are not declared"):
        pairs.apply("cat", "dog", path)
    assert path.read_text() == text  # nothing written


def _run(auc: float) -> dict[str, object]:
    return {"test": {"roc_auc": auc}}


def test_summary_tables_and_the_chance_check(tmp_path: Path) -> None:
    _applied(tmp_path, "ship", "truck")
    layout = Layout(tmp_path)
    # per seed: baseline, oversample_augment, strong_ema_budget, balanced
    aucs = {0: (0.52, 0.70, 0.55, 0.90), 1: (0.60, 0.58, 0.50, 0.91)}
    for seed, row in aucs.items():
        for remedy, auc in zip(pairs.REMEDIES, row, strict=True):
            path = layout.run_metrics(remedy, seed)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(_run(auc)))
    cell = {"mean": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": 2}
    stats = {
        "confidence": 0.95,
        "interval": "Student-t (hand-made)",
        "remedies": {r: {"test.roc_auc": cell} for r in pairs.REMEDIES},
        "paired": {
            "against oversample_augment": {
                "strong_ema_budget": {
                    "test.roc_auc": {
                        "mean_diff": -0.115,
                        "ci_low": -0.2,
                        "ci_high": -0.03,
                        "p_ttest": 0.04,
                        "n": 2,
                    }
                }
            }
        },
    }
    layout.statistics.parent.mkdir(parents=True, exist_ok=True)
    layout.statistics.write_text(json.dumps(stats))
    raw = yaml.safe_load((tmp_path / "params.yaml").read_text())
    raw["seeds"] = [0, 1]  # the hand-made study ran two seeds
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    text = pairs.summary(tmp_path, "abc1234")
    assert "# Pair study: ship (negative, majority) vs truck (positive)" in text
    assert "Commit `abc1234`" in text and "seeds 0, 1;" in text
    assert "| `baseline` | 0.500 [0.400, 0.600] |" in text
    assert "test ROC AUC over 2 seeds: -0.115 [-0.200, -0.030]" in text
    # seed 0: 0.55 < 0.6 < 0.70, at chance; seed 1: the reference is below 0.6 too, so not
    assert "| 0 | 0.520 | 0.700 | 0.550 | 0.900 | **yes** |" in text
    assert "| 1 | 0.600 | 0.580 | 0.500 | 0.910 | no |" in text


def test_collect_without_a_study_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"statistics\.json: missing; run `dvc repro`"):
        pairs.collect(tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()
