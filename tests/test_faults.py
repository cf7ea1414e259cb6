"""Faults mid-run lose nothing: SIGKILL during training, two repros at once.

Each test runs the real pipeline in a tiny git + DVC project, trimmed to one remedy and
one seed with enough optimizer steps that a stage is still training when the test strikes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import VENV_BIN, TinyProject, live_pids, tool_env

pytestmark = pytest.mark.slow

TRIM = {
    "seeds": [0],
    "remedies": {"baseline": {}},
    "retrain": {},
    "compare.reference": "baseline",
    "compare.also_against": [],
    "train.max_steps": 80,  # 40 checks of 2 steps in the tiny project
    "train.early_stopping.patience": 80,
}


def trimmed(project: TinyProject) -> TinyProject:
    project.set_params(TRIM)
    return project


def stage_pids(module: str, cwd: Path) -> set[int]:
    """PIDs of `python -m <module>` processes running in ``cwd`` (this test's project)."""
    here, name = cwd.resolve(), module.encode()
    return live_pids(lambda argv, where: b"-m" in argv and name in argv and where == here)


def start_repro(project: TinyProject) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(VENV_BIN / "dvc"), "repro"],
        cwd=project.root,
        env=tool_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float = 180) -> list[str]:
    """Read the process's output until a line containing ``needle`` appears."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return seen
    raise AssertionError(f"{needle!r} never appeared:\n{''.join(seen)[-3000:]}")


def metrics_bytes(project: TinyProject) -> dict[str, bytes]:
    return {
        str(p.relative_to(project.root)): p.read_bytes()
        for p in sorted((project.root / "metrics").rglob("*.json"))
    }


def test_sigkill_mid_training_then_repro_equals_uninterrupted_run(
    tiny_project: TinyProject, tmp_path: Path
) -> None:
    project = trimmed(tiny_project)
    reference = TinyProject(tmp_path / "reference", project.source)
    import shutil

    shutil.copytree(project.root, reference.root, symlinks=True)

    proc = start_repro(project)
    wait_for_line(proc, "step 6/")  # the stage is training: checks 1-3 are done
    pids = stage_pids("stages.train", project.root)
    assert pids, "no training process found to kill"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert not (project.root / "models" / "scratch" / "seed0" / "baseline.keras").exists()
    assert not (project.root / "predictions" / "seed0" / "baseline.npz").exists()

    resumed = project.dvc("repro")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    uninterrupted = reference.dvc("repro")
    assert uninterrupted.returncode == 0, uninterrupted.stdout + uninterrupted.stderr
    got, want = metrics_bytes(project), metrics_bytes(reference)
    assert want and got == want


def test_second_concurrent_repro_is_refused_and_first_completes(tiny_project: TinyProject) -> None:
    project = trimmed(tiny_project)
    first = start_repro(project)
    wait_for_line(first, "Running stage 'train@baseline-0'")
    second = project.dvc("repro")
    assert second.returncode != 0
    assert "lock" in (second.stdout + second.stderr).lower()
    out, _ = first.communicate(timeout=300)
    assert first.returncode == 0, out[-3000:]
    assert (project.root / "metrics" / "remedies" / "baseline.json").is_file()
