"""The warm start (imbalance/runtime/warm.py): a training stage forked from a server that has
TensorFlow imported writes what a cold process writes, and faults reach the child."""

from __future__ import annotations

import functools
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

from imbalance.runtime import warm


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


def servers(project: Path | None = None) -> set[int]:
    """Warm servers alive now; of ``project`` only, when given (a server runs in its
    project's root), so servers of other projects on the machine are not counted."""
    root = project.resolve() if project is not None else None
    return live_pids(lambda argv, cwd: b"imbalance.runtime.warm" in argv and root in (None, cwd))


def running_in(project: Path) -> set[int]:
    return live_pids(lambda argv, cwd: cwd == project.resolve())


def long_training(project: Path) -> None:
    """Enough steps that the stage is still training when the test strikes."""

    def edit(raw: dict) -> None:
        raw["train"]["max_steps"] = 1600
        raw["train"]["early_stopping"]["patience"] = 1600

    edit_params(project, edit)


def wait_for_step(proc: subprocess.Popen[str], step: int) -> None:
    """Until the progress line of the check at optimizer step ``step``."""
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith(f"step {step}/"):
            return
    raise AssertionError(f"step {step} never checked: {''.join(seen)}{proc.stderr.read()}")


@pytest.mark.slow  # starts or uses a TensorFlow server
def test_warm_stage_writes_the_bytes_of_a_cold_process(project: Path, tmp_path: Path):
    before = servers(project)
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
        assert "step 4/12" in done.stdout
        assert "Traceback" not in done.stderr and "Warning" not in done.stderr, done.stderr
        outputs.append(files_under(project))
    exits = [json.loads(line) for line in prof.read_text().splitlines()]
    exits = [e for e in exits if e["event"] == "exit"]
    assert [e["warm"] for e in exits] == [True, True, False]
    assert len(servers(project) - before) <= 1  # the second run reused the first one's server
    assert "models/scratch/seed0/oversample_augment.keras" in outputs[0]
    assert outputs[0] == outputs[1] == outputs[2]


@pytest.mark.slow  # starts or uses a TensorFlow server
def test_a_stage_prints_nothing_of_tensorflow_on_any_path(project: Path, tmp_path: Path):
    """Cold, starting a server, warm child: with the default log level, stderr holds no
    line of TensorFlow's C++ log (absl writes its import-time lines whatever
    TF_CPP_MIN_LOG_LEVEL says; the stage keeps them off)."""
    prof = tmp_path / "profile.jsonl"
    env = stage_env(IMBALANCE_PROFILE=str(prof))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the stage's own default, as under `dvc repro`
    # Part of the key (a TF_ variable), so the second run must start a server of its own.
    env["TF_WARM_TEST_NONCE"] = f"{os.getpid()}-{time.time_ns()}"
    for idle in (0, 60, 60):
        edit_params(project, lambda raw, idle=idle: raw.update(runtime={"warm_idle_s": idle}))
        done = subprocess.run(
            [sys.executable, "-m", "stages.train", "baseline", "0"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert "step 4/12" in done.stdout
        assert done.stderr == "", f"warm_idle_s {idle}: {done.stderr}"
    exits = [json.loads(line) for line in prof.read_text().splitlines()]
    assert [e["warm"] for e in exits if e["event"] == "exit"] == [False, True, True]


@pytest.mark.slow  # starts or uses a TensorFlow server
def test_killing_the_client_kills_its_training(project: Path):
    long_training(project)
    proc = start_stage(project, "baseline", "0")
    wait_for_step(proc, 8)
    assert running_in(project) - {proc.pid}, "no warm child found"
    proc.kill()
    proc.wait(timeout=30)
    for pipe in (proc.stdout, proc.stderr):  # not read: the test is about processes
        assert pipe is not None
        pipe.close()
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
    wait_for_step(proc, 8)
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


def copy_code(dest: Path) -> Path:
    """The project's code alone: the key hashes it, and the live tree may change meanwhile."""
    for name in ("imbalance", "stages"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def key_in(project: Path, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", "from imbalance.runtime import warm; print(warm.key())"],
        cwd=project,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_the_server_key_follows_code_and_import_environment(tmp_path: Path):
    copy = copy_code(tmp_path / "copy")
    first = key_in(copy)
    assert key_in(copy) == first
    assert key_in(copy, PATH=os.environ["PATH"] + ":/nowhere") == first  # not read at import
    assert key_in(copy, TF_ENABLE_ONEDNN_OPTS="0") != first
    with (copy / "imbalance" / "training" / "train.py").open("a") as fh:
        fh.write("\n# edited\n")
    assert key_in(copy) != first


def test_the_server_key_follows_installed_versions(tmp_path: Path):
    """A server that imported one TensorFlow must not serve a stage after `pip install` of
    another: a distribution's new version (or a reinstall of the same one) is a new key."""
    copy = copy_code(tmp_path / "copy")
    site = tmp_path / "site"  # a sys.path entry, as site-packages is
    dist = site / "fakeflow-2.21.0.dist-info"
    dist.mkdir(parents=True)
    os.utime(dist, ns=(1_000_000_000, 1_000_000_000))
    first = key_in(copy, PYTHONPATH=str(site))
    assert key_in(copy, PYTHONPATH=str(site)) == first
    upgraded = dist.rename(site / "fakeflow-2.22.0.dist-info")  # what pip leaves
    os.utime(upgraded, ns=(1_000_000_000, 1_000_000_000))
    assert key_in(copy, PYTHONPATH=str(site)) != first
    upgraded.rename(dist)
    assert key_in(copy, PYTHONPATH=str(site)) == first
    os.utime(dist, ns=(2_000_000_000, 2_000_000_000))  # reinstalled: a new directory
    assert key_in(copy, PYTHONPATH=str(site)) != first


#: What TensorFlow 2.21 writes to file descriptor 2 on import and on its first ops.
NATIVE = (
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    b"I0000 00:00:1795943245.417160   10465 port.cc:153] oneDNN custom operations are on.\n"
    b"W1129 09:01:02.000001   10465 foo.cc:12] a warning\n"
    b"E0000 00:00:1795943253.187767   10465 util.cc:131] oneDNN supports DT_BOOL only\n"
    b"F0000 00:00:1795943253.187767   10465 check.cc:1] Check failed: x\n"
)


@pytest.mark.parametrize(
    ("level", "kept"),
    [(0, "BIWEF"), (1, "WEF"), (2, "EF"), (3, "F"), (7, "F"), (-1, "BIWEF")],
)
def test_the_native_log_filter_keeps_what_tf_cpp_min_log_level_keeps(level: int, kept: str):
    data = NATIVE + b"python: a line of our own\n"
    out = warm.native_log_filter(data, level).decode()
    for mark, line in zip("BIWEF", NATIVE.decode().splitlines(keepends=True), strict=True):
        assert (line in out) == (mark in kept), (level, line)
    assert out.endswith("python: a line of our own\n")


PRELOAD = f"""
import os, sys
from imbalance.runtime import warm
def fake_preload():
    os.write(2, {NATIVE!r})
    print("python: during the import", file=sys.stderr)
    if os.environ.get("FAIL"):
        raise RuntimeError("import failed")
warm._preload = fake_preload
print("python: before", file=sys.stderr)
warm.preload_quietly()
print("python: after", file=sys.stderr)
"""


def test_a_quiet_import_passes_python_output_through_in_order(tmp_path: Path):
    """The import-time capture drops absl's lines, nothing of Python's: not a line
    written meanwhile, not the traceback of a failed import."""
    run = functools.partial(
        subprocess.run,
        [sys.executable, "-c", PRELOAD],
        cwd=copy_code(tmp_path / "copy"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    done = run(env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr
    error, fatal = NATIVE.decode().splitlines(keepends=True)[3:]
    assert done.stderr == (
        f"python: before\n{error}{fatal}python: during the import\npython: after\n"
    )
    failed = run(env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "FAIL": "1"})
    assert failed.returncode == 1
    assert failed.stderr.startswith(f"python: before\n{fatal}python: during the import\nTrace")
    assert failed.stderr.rstrip().endswith("RuntimeError: import failed"), failed.stderr
