"""The tuning probe's scratch params: tuning seeds only, the candidate alone, its budget."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from imbalance.tools import tune

ROOT = Path(__file__).resolve().parents[1]


def test_scratch_params_hold_the_tuning_seeds_the_pair_and_the_candidate_only():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    p = tune.scratch_params(raw, [100, 101], ("cat", "dog"), "strong_ema_tta_b6k")
    assert p.seeds == [100, 101] and not set(p.seeds) & set(raw["seeds"])
    assert (p.classes.negative, p.classes.positive) == ("cat", "dog")
    assert list(p.all_remedies) == ["strong_ema_tta_b6k"]
    assert (p.train.stopping, p.train.max_steps) == ("budget", 6000)
    assert p.train.threads == raw["train"]["threads"] == 2  # the pinned value
    reference = tune.scratch_params(raw, [100], None, "oversample_augment")
    assert reference.train.stopping == raw["train"]["stopping"]  # the study's protocol
    assert raw == yaml.safe_load((ROOT / "params.yaml").read_text())  # not edited


def test_a_reported_seed_is_refused_before_anything_runs(tmp_path: Path):
    args = ["oversample_augment", "--seeds", "0", "--work", str(tmp_path / "w")]
    result = subprocess.run(
        [sys.executable, "-m", "imbalance.tools.tune", *args, "--out", str(tmp_path / "o.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "error: --seeds [0] must be tuning seeds [100, 101, 102]" in result.stderr
    assert not (tmp_path / "w").exists() and not (tmp_path / "o.json").exists()
