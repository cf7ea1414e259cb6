"""The warm start (imbalance/tools/warm.py): a training stage forked from a server that has
TensorFlow imported writes what a cold process writes, and faults reach the child."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import live_pids
from test_train import OUTPUT_DIRS, ROOT, edit_params, files_under, make_project, stage_env


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    make_project(root)
    return root


def start_stage(project: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "stages.train", *args],
        cwd=project,
        env=stage_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def servers() -> set[int]:
    return live_pids(lambda argv, cwd: b"imbalance.tools.warm" in argv)


def running_in(project: Path) -> set[int]:
    return live_pids(lambda argv, cwd: cwd == project.resolve())


def long_training(project: Path) -> None:
    """Enough epochs that the stage is still training when the test strikes."""

    def edit(raw: dict) -> None:
        raw["train"]["max_epochs"] = 400
        raw["train"]["early_stopping"]["patience"] = 400

    edit_params(project, edit)


def wait_for_epoch(proc: subprocess.Popen[str], epoch: int) -> None:
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith(f"epoch {epoch}/"):
            return
    raise AssertionError(f"epoch {epoch} never started: {''.join(seen)}{proc.stderr.read()}")


@pytest.mark.slow  # starts or uses a TensorFlow server
def test_warm_stage_writes_the_bytes_of_a_cold_process(project: Path, tmp_path: Path):
    before = servers()
    prof = tmp_path / "profile.jsonl"
    outputs = []
    for idle in (60, 60, 0):  # start a server, reuse it, then no server at all
        edit_params(project, lambda raw, idle=idle: raw.update(runtime={"warm_idle_s": idle}))
        for d in OUTPUT_DIRS:
            shutil.rmtree(project / d, ignore_errors=True)
        done = subprocess.run(
            [sys.executable, "-m", "stages.train", "oversample_augment", "0"],
            cwd=project,
            env=stage_env(IMBALANCE_PROFILE=str(prof)),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert "epoch 1/3" in done.stdout
        assert "Traceback" not in done.stderr and "Warning" not in done.stderr, done.stderr
        outputs.append(files_under(project))
    exits = [json.loads(line) for line in prof.read_text().splitlines()]
    exits = [e for e in exits if e["event"] == "exit"]
    assert [e["warm"] for e in exits] == [True, True, False]
    assert len(servers() - before) <= 1  # the second run reused the first one's server
    assert "models/scratch/seed0/oversample_augment.keras" in outputs[0]
    assert outputs[0] == outputs[1] == outputs[2]


@pytest.mark.slow  # starts or uses a TensorFlow server
def test_killing_the_client_kills_its_training(project: Path):
    long_training(project)
    proc = start_stage(project, "baseline", "0")
    wait_for_epoch(proc, 2)
    assert running_in(project) - {proc.pid}, "no warm child found"
    proc.kill()
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while running_in(project) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running_in(project), "the training outlived its killed stage process"
    assert not (project / "models" / "scratch" / "seed0" / "baseline.keras").exists()
    assert not (project / "predictions" / "seed0" / "baseline.npz").exists()


@pytest.mark.slow  # starts or uses a TensorFlow server
def test_ctrl_c_reaches_the_warm_child(project: Path):
    long_training(project)
    proc = start_stage(project, "baseline", "0")
    wait_for_epoch(proc, 2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("error: interrupted"), err
    assert not (project / "models" / "scratch" / "seed0" / "baseline.keras").exists()
    assert not (project / "predictions" / "seed0" / "baseline.npz").exists()


@pytest.mark.slow  # starts or uses a TensorFlow server
def test_errors_in_the_warm_child_are_one_line_and_exit_2(project: Path):
    """The data checks run in the child: its one-line error and status reach the client."""
    (project / "data" / "cifar2" / "seed0" / "test.npz").write_bytes(b"not an npz")
    before = files_under(project)
    proc = start_stage(project, "baseline", "0")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and "test.npz" in err, err
    assert out == ""
    assert files_under(project) == before


def key_in(project: Path, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", "from imbalance.tools import warm; print(warm.key())"],
        cwd=project,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_the_server_key_follows_code_and_import_environment(tmp_path: Path):
    copy = tmp_path / "copy"
    for name in ("imbalance", "stages"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    first = key_in(copy)
    assert key_in(copy) == first
    assert key_in(copy, PATH=os.environ["PATH"] + ":/nowhere") == first  # not read at import
    assert key_in(copy, TF_ENABLE_ONEDNN_OPTS="0") != first
    with (copy / "imbalance" / "training" / "train.py").open("a") as fh:
        fh.write("\n# edited\n")
    assert key_in(copy) != first
