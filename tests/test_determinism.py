"""The compare stage's files are the same bytes in two separate processes.

Two calls in one process cannot show determinism: anything cached at module level (a
seeded resample matrix, a generator created at import) is shared between them, so an
unseeded generator would pass. Here ``python -m stages.compare`` runs twice, each in a
fresh interpreter on its own copy of the same inputs, and every file it writes must match
byte for byte. It reads only the stage's output files, so it holds whatever method
computes the intervals.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import tool_env
from test_compare import _write_seed

from imbalance.params import parse

ROOT = Path(__file__).resolve().parents[1]
#: Everything compare writes (dvc.yaml's compare outs).
OUTPUTS = ("metrics/remedies", "metrics/statistics.json", "metrics/comparison.md")
OUTPUT_DIRS = ("figures/comparison", "plots/comparison")


def _inputs(root: Path) -> None:
    """params.yaml, fake predictions and evaluated runs of three seeds, the data manifest."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["seeds"] = [0, 1, 2]
    raw["classes"] = {"negative": "cat", "positive": "dog"}
    raw["remedies"] = {
        "balanced": {"train_set": "balanced"},
        "baseline": {},
        "class_weight": {"weights": {"kind": "balanced"}},
        "oversample": {"sampler": "oversample"},
    }
    raw["retrain"] = {"two_phase_oversample": {"start": "oversample"}}
    raw["compare"].update({"reference": "baseline", "also_against": []})
    if "bootstrap" in raw["compare"]:  # fewer resamples: the same code path, less time
        raw["compare"]["bootstrap"] = 500
    root.mkdir(parents=True)
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    params = parse(raw)
    for seed in params.seeds:
        _write_seed(root, params, seed)
    (root / "data" / "raw").mkdir(parents=True)
    (root / "data" / "raw" / "manifest.json").write_text(
        '{"source": "/x/imgs.tar.gz", "sha256": "' + "ab" * 32 + '", "kind": "image-folder"}'
    )


def _written(root: Path) -> dict[str, bytes]:
    files = {}
    for name in (*OUTPUTS, *OUTPUT_DIRS):
        path = root / name
        found = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        files.update({p.relative_to(root).as_posix(): p.read_bytes() for p in found})
    return files


def test_compare_outputs_are_identical_across_processes(tmp_path: Path) -> None:
    _inputs(tmp_path / "inputs")
    outputs = []
    for run in ("first", "second"):
        root = tmp_path / run
        shutil.copytree(tmp_path / "inputs", root)
        env = {**tool_env(), "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "random"}
        proc = subprocess.run(
            [sys.executable, "-m", "stages.compare"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-4000:]
        outputs.append(_written(root))
    first, second = outputs
    assert "metrics/statistics.json" in first and "metrics/comparison.md" in first
    assert any(name.startswith("metrics/remedies/") for name in first)
    assert any(name.endswith(".png") for name in first)
    assert sorted(first) == sorted(second)
    differ = [name for name in first if first[name] != second[name]]
    assert not differ, f"not byte-identical across processes: {differ}"
