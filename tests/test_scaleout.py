"""Scale-out the DVC way, for real on one machine.

Two clones of the project share a Git remote (a bare repository) and a DVC remote (a
local directory). Each runs half of the seed grid as an experiment and pushes it with its
run-cache; a third clone pulls both and reproduces the full grid: every training run is
restored from the shared run-cache instead of trained again, and the aggregation sees
the runs of both halves.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import TinyProject, ok

pytestmark = pytest.mark.slow


def clone(origin: Path, dest: Path, source: Path) -> TinyProject:
    project = TinyProject(dest.parent, source)
    ok(project.run("git", "clone", "-q", str(origin), dest.name))
    return TinyProject(dest, source)


def test_two_clones_split_the_grid_and_a_third_aggregates_all_runs(
    tiny_project: TinyProject, tmp_path: Path
) -> None:
    lead = tiny_project
    p = lead.params()
    p["seeds"] = [0, 1]
    p["remedies"] = {"baseline": {}, "class_weight": {"weights": {"kind": "balanced"}}}
    p["retrain"] = {}
    p["compare"]["also_against"] = []
    p["compare"]["reference"] = "baseline"
    import yaml

    (lead.root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    storage = tmp_path / "dvc-storage"
    ok(lead.dvc("remote", "add", "-d", "shared", str(storage)))
    ok(lead.git("add", "-A"))
    ok(lead.git("commit", "-qm", "study on two seeds, shared DVC remote"))
    origin = tmp_path / "origin.git"
    ok(lead.run("git", "clone", "-q", "--bare", str(lead.root), str(origin)))

    for seed in (0, 1):
        worker = clone(origin, tmp_path / f"worker{seed}", lead.source)
        ok(worker.dvc("exp", "run", "-n", f"half-{seed}", "-S", f"seeds=[{seed}]"))
        ok(worker.dvc("exp", "push", "--run-cache", "origin", f"half-{seed}"))

    collector = clone(origin, tmp_path / "collector", lead.source)
    ok(collector.dvc("exp", "pull", "--run-cache", "origin", "half-0", "half-1"))
    listed = ok(collector.dvc("exp", "list", "--name-only"))
    assert {"half-0", "half-1"} <= set(listed.split())

    result = collector.dvc("repro")
    ok(result)
    trained = set(re.findall(r"Running stage '((?:re)?train@[^']+)'", result.stdout))
    restored = set(re.findall(r"Stage '([^']+)' is cached - skipping run", result.stdout))
    grid = {f"train@{r}-{s}" for r in ("baseline", "class_weight") for s in (0, 1)}
    assert trained == set(), f"re-trained instead of restoring: {trained}"
    assert grid <= restored

    rows = collector.root / "metrics" / "remedies"
    for remedy in ("baseline", "class_weight"):
        assert json.loads((rows / f"{remedy}.json").read_text())["n_seeds"] == 2
    for seed in (0, 1):
        assert (collector.root / "metrics" / "runs" / f"seed{seed}" / "baseline.json").is_file()
    shutil.rmtree(storage)
