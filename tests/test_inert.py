"""The inert modules are inert, and dependencies point downwards.

A module a stage loads but does not list in its dvc.yaml ``deps`` must not be able to
change an output: tests/test_pipeline.py allows exactly the modules of its ``INERT``, and
this file proves each one byte for byte (the stage's outputs with and without it), and
checks the direction of imports between the layers (ARCHITECTURE.md, "The packages are
the layers").
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_pipeline import INERT
from test_train import OUTPUT_DIRS, ROOT, edit_params, files_under, make_project, stage_env


def test_the_runtime_package_holds_only_the_inert_modules() -> None:
    files = {p.relative_to(ROOT).as_posix() for p in (ROOT / "imbalance/runtime").glob("*.py")}
    assert files == set(INERT)
    init = ast.parse((ROOT / "imbalance/runtime/__init__.py").read_text()).body
    assert [type(n) for n in init] == [ast.Expr]  # a docstring, no code
    assert all(callable(globals().get(test)) for test in INERT.values())


@pytest.mark.slow  # trains three times and starts a TensorFlow server
def test_inert_modules_leave_outputs_byte_identical(tmp_path: Path) -> None:
    """warm.py: a warm (forked) run vs a cold one; profile.py: IMBALANCE_PROFILE set vs not.
    The remedy uses weight averaging and test-time flips, so callbacks and prediction run."""
    root = tmp_path / "project"
    root.mkdir()
    make_project(root)
    profile = tmp_path / "profile.jsonl"
    runs = {"cold": (0, {}), "warm": (60, {}), "profiled": (0, {"IMBALANCE_PROFILE": str(profile)})}
    outputs = {}
    for name, (idle, env) in runs.items():
        edit_params(root, lambda raw, idle=idle: raw.update(runtime={"warm_idle_s": idle}))
        for d in OUTPUT_DIRS:
            shutil.rmtree(root / d, ignore_errors=True)
        done = subprocess.run(
            [sys.executable, "-m", "stages.train", "strong_sam_ema_tta", "0"],
            cwd=root,
            env=stage_env(**env),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        outputs[name] = files_under(root)
    assert "models/scratch/seed0/strong_sam_ema_tta.keras" in outputs["cold"]
    assert profile.read_text().strip()  # profiling did run
    assert outputs["warm"] == outputs["cold"]
    assert outputs["profiled"] == outputs["cold"]


# ------------------------------------------------------------------ direction
#: Which project packages each layer may import (ARCHITECTURE.md): core modules and the
#: inert runtime below everything, tools and stages on top.
CORE = {
    "imbalance",
    "imbalance.blocks",
    "imbalance.cli",
    "imbalance.files",
    "imbalance.layout",
    "imbalance.params",
    "imbalance.threshold",
}
MAY_IMPORT = {
    "imbalance.runtime": set(),
    "core": {"imbalance.runtime", "imbalance.training.components"},  # params: lazily
    "imbalance.data": {"core", "imbalance.runtime"},
    "imbalance.training": {"core", "imbalance.runtime"},
    "imbalance.analysis": {"core", "imbalance.runtime", "imbalance.training.components"},
    # the resolve stage's logic: what every stage reads, a training's by its real imports
    "imbalance.resolution": {"core", "imbalance.training"},
}


def layer(module: str) -> str:
    if any(module == c or module.startswith(f"{c}.") for c in CORE - {"imbalance"}):
        return "core"
    if module == "imbalance":
        return "core"
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "imbalance" else parts[0]


def imports(path: Path) -> set[str]:
    """Every project module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m.split(".")[0] == "imbalance"}


def test_dependencies_point_downwards() -> None:
    """No layer imports one above it: nothing but tools and stages imports imbalance.tools,
    core and runtime import no layer that computes, data/training/analysis not each other
    (analysis reads a composition's components, the one declared exception)."""
    wrong = []
    for path in sorted((ROOT / "imbalance").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        own = layer(module)
        if own == "imbalance.tools":
            continue
        allowed = {own, *MAY_IMPORT[own]}
        for target in imports(path):
            ok = layer(target) in allowed or any(
                target == a or target.startswith(f"{a}.") for a in allowed
            )
            if not ok:
                wrong.append(f"{module} imports {target}")
    for path in sorted((ROOT / "stages").glob("*.py")):
        wrong += [f"stages/{path.name} imports {t}" for t in imports(path) if "tools" in t]
    assert not wrong, wrong
