"""The study on N workers of one machine through DVC's experiment queue
(imbalance/tools/parallel.py, ``./dev.sh repro --jobs N``).

The slow tests run the real command in a tiny git + DVC project trimmed to 2 seeds x 2
remedies: it gives the bytes a plain ``dvc repro`` gives, with every training stage of the
assembly restored from the run-cache the queue workers filled; a worker killed mid-run, a
stage that fails and a stage that hangs are reported (with their logs) and a second
invocation finishes the study.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, VENV_BIN, TinyProject, live_pids, ok, tool_env
from conftest import TWO_REMEDY_GRID as GRID
from conftest import TWO_REMEDY_TRAIN_STAGES as TRAIN_STAGES

from imbalance.tools import parallel

# ----------------------------------------------------------------------------- fast


STATUS = """\
Task     Name                         Created       Status
1a2b3c4  study-20260101-120000-seed0  09:33 AM      Running
5d6e7f8  study-20260101-120000-seed1  09:33 AM      Queued
0a0b0c0  my-sweep                     Sep 19, 2024  Queued
9f9f9f9                               09:40 AM      Failed
abcdef1  study-20260101-120000-seed2  09:33 AM      Success

Worker status: 1 active, 2 idle
"""


def test_queue_status_is_parsed_into_ours_and_others() -> None:
    status = parallel.parse_queue_status(STATUS)
    assert status.ours == {
        "study-20260101-120000-seed0": ("1a2b3c4", "Running"),
        "study-20260101-120000-seed1": ("5d6e7f8", "Queued"),
        "study-20260101-120000-seed2": ("abcdef1", "Success"),
    }
    assert [state for _, state in status.others] == ["Queued", "Failed"]
    assert (status.active, status.idle, status.workers) == (1, 2, 3)
    empty = parallel.parse_queue_status(
        "No experiment tasks in the queue.\n\nWorker status: 0 active, 0 idle\n"
    )
    assert (empty.ours, empty.others, empty.workers) == ({}, [], 0)


@pytest.mark.slow  # `dvc init` (in-process)
def test_task_records_are_read_through_dvc_tasks_process_manager(tmp_path: Path) -> None:
    """pid, end and log size of a queued task come from the ProcessManager DVC's queue
    keeps, wherever it keeps its records: a record written through dvc-task's own API is
    what parallel reads back."""
    from dvc.repo import Repo
    from dvc_task.proc.process import ProcessInfo

    ok(subprocess.run(["git", "init", "-q"], cwd=tmp_path, capture_output=True, text=True))
    Repo.init(str(tmp_path)).close()
    with Repo(str(tmp_path)) as repo:
        manager = repo.experiments.celery_queue.proc
    rev = "abcdef1234567890abcdef1234567890abcdef12"
    log = tmp_path / "task.out"
    log.write_text("step 2/4\n")
    assert parallel.exec_run_pid(tmp_path, rev[:7]) is None  # no record yet
    assert parallel.log_size(tmp_path, rev[:7]) is None
    os.makedirs(os.path.join(manager.wdir, rev))
    manager[rev] = ProcessInfo(
        pid=os.getpid(), stdin=None, stdout=str(log), stderr=None, returncode=None
    )
    assert parallel.exec_run_pid(tmp_path, rev[:7]) == os.getpid()
    assert parallel.log_size(tmp_path, rev[:7]) == len("step 2/4\n")
    assert parallel.exec_run_alive(tmp_path, rev[:7]) is False  # pytest is not exec-run
    manager[rev] = ProcessInfo(
        pid=os.getpid(), stdin=None, stdout=str(log), stderr=None, returncode=0
    )
    assert parallel.exec_run_pid(tmp_path, rev[:7]) is None  # its end is recorded
    assert parallel.exec_run_alive(tmp_path, rev[:7]) is None


def test_assembly_output_is_parsed() -> None:
    out = (
        "Stage 'fetch' is cached - skipping run, checking out outputs\n"
        "Running stage 'split':\n"
        "Stage 'train@baseline-0' is cached - skipping run, checking out outputs\n"
        "Running stage 'retrain@crt-0':\n"
        "Running stage 'evaluate@0':\n"
        "Running stage 'compare':\n"
    )
    assembly = parallel.parse_repro(out)
    assert assembly.restored == ["fetch", "train@baseline-0"]
    assert assembly.ran == ["split", "retrain@crt-0", "evaluate@0", "compare"]
    assert assembly.trained == ["retrain@crt-0"]


def test_oversubscription_note() -> None:
    assert parallel.oversubscription(jobs=2, threads=1, ncores=2) is None
    assert parallel.oversubscription(jobs=1, threads=0, ncores=4) is None
    note = parallel.oversubscription(jobs=2, threads=0, ncores=2)
    assert note and "2 workers x 2 TensorFlow threads" in note


def test_plan_names_one_experiment_per_seed() -> None:
    names = parallel.experiment_names([0, 3], "20260101-120000")
    assert all(parallel.NAME.match(n) for n in names.values())
    cmds = [" ".join(c) for c in parallel.plan([0, 3], names, 2)]
    # the data once, in the workspace: the experiments restore it from the run-cache
    assert cmds[1] == "repro fetch"
    assert cmds[2] == "exp run --queue -n study-20260101-120000-seed0 -S seeds=[0] evaluate"
    assert cmds[3] == "exp run --queue -n study-20260101-120000-seed3 -S seeds=[3] evaluate"
    assert cmds[4] == "queue start --jobs 2"
    assert "repro" in cmds


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--jobs", "0"], "--jobs must be a positive number of workers, not 0"),
        ([], "the following arguments are required: --jobs"),
        (["--jobs", "two"], "invalid int value"),
    ],
)
def test_bad_arguments_are_one_error_line_and_status_2(args: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "imbalance.tools.parallel", *args],
        cwd=PROJECT_ROOT,
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert proc.stdout == ""


def test_dev_sh_dispatches_on_jobs_only() -> None:
    """`./dev.sh repro --jobs N` is the parallel command; plain `./dev.sh repro` stays
    `dvc repro` (checked on the script's text: running it would run the study)."""
    text = (PROJECT_ROOT / "dev.sh").read_text()
    assert "python -m imbalance.tools.parallel" in text
    assert 'dvc repro "$@"' in text


# ----------------------------------------------------------------------------- slow


def trimmed(project: TinyProject, **extra: object) -> TinyProject:
    """The 2 x 2 grid (and ``extra`` params), committed: queued experiments start from a
    commit."""
    project.set_params({**GRID, **extra})
    ok(project.git("commit", "-qam", "2 seeds x 2 remedies"))
    return project


def copy_of(project: TinyProject, dest: Path) -> TinyProject:
    shutil.copytree(project.root, dest, symlinks=True)
    return TinyProject(dest, project.source)


def run_parallel(project: TinyProject, *args: str) -> subprocess.CompletedProcess[str]:
    """The command with 2 workers, checking the queue every 2 s."""
    command = ["-m", "imbalance.tools.parallel", "--jobs", "2", "--poll", "2", *args]
    return project.run(sys.executable, *command, timeout=900)


def metrics_bytes(project: TinyProject) -> dict[str, bytes]:
    return {
        str(p.relative_to(project.root)): p.read_bytes()
        for p in sorted((project.root / "metrics").rglob("*.json"))
    }


def ours(root: Path) -> set[int]:
    """Live processes of this project: cwd inside it, or its path in their arguments."""
    here, needle = root.resolve(), str(root.resolve()).encode()
    return live_pids(
        lambda argv, cwd: cwd == here or here in cwd.parents or any(needle in a for a in argv)
    )


@pytest.fixture
def project(tiny_project: TinyProject) -> Iterator[TinyProject]:
    """The tiny project; afterwards its queue workers are stopped and every process left in
    it is waited for (idle workers exit after 10 s) and then killed, by its id."""
    yield tiny_project
    tiny_project.dvc("queue", "stop")
    deadline = time.monotonic() + 30
    while ours(tiny_project.root) and time.monotonic() < deadline:
        time.sleep(1)
    for pid in ours(tiny_project.root):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_parallel_study_equals_plain_repro_and_restores_every_training(
    project: TinyProject, tmp_path: Path
) -> None:
    # with a retrain remedy: its dependency on the seed's directory of scratch models must
    # hash the same in the experiments and in the workspace; and with the source given
    # relative to the project root, as the offline copy is (../shared/...): it does not
    # resolve inside a queued experiment's temporary copy, so the data must be fetched in
    # the workspace first
    source = project.params()["data"]["sources"]["tiny"]
    relative = {**source, "location": os.path.relpath(source["location"], project.root)}
    trimmed(
        project,
        retrain={"crt": {"start": "baseline", "sampler": "oversample"}},
        **{"data.sources.tiny": relative},
    )
    reference = copy_of(project, tmp_path / "reference")

    result = run_parallel(project)
    out = ok(result)
    for cmd in (
        "$ dvc repro fetch",
        "$ dvc exp run --queue -n study-",
        "-S 'seeds=[0]' evaluate",
        "-S 'seeds=[1]' evaluate",
        "$ dvc queue start --jobs 2",
        "$ dvc repro",
    ):
        assert cmd in out, out
    assembly = out[out.index("$ dvc repro\n") :]  # not `$ dvc repro fetch`
    restored = set(re.findall(r"Stage '([^']+)' is cached - skipping run", assembly))
    trained = set(re.findall(r"Running stage '((?:re)?train@[^']+)'", assembly))
    assert restored >= TRAIN_STAGES | {"retrain@crt-0", "retrain@crt-1"}, assembly
    assert not trained, assembly
    assert "warning" not in out

    ok(reference.dvc("repro"))
    got, want = metrics_bytes(project), metrics_bytes(reference)
    assert want and got == want
    assert "No experiment tasks in the queue." in ok(project.dvc("queue", "status"))


@pytest.mark.slow
def test_worker_killed_mid_run_is_reported_and_a_second_run_finishes(
    project: TinyProject, tmp_path: Path
) -> None:
    trimmed(project, **{"train.max_steps": 80, "train.early_stopping.patience": 80})
    reference = copy_of(project, tmp_path / "reference")
    exps = project.root.resolve() / ".dvc" / "tmp" / "exps"

    first = subprocess.Popen(
        [sys.executable, "-m", "imbalance.tools.parallel", "--jobs", "2", "--poll", "2"],
        cwd=project.root,
        env=tool_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 300
    training: set[int] = set()
    while not training and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.5)
        training = live_pids(lambda argv, cwd: b"stages.train" in argv and exps in cwd.parents)
    assert training, "no training process of a queue worker appeared"
    time.sleep(2)  # mid-run
    group = os.getpgid(min(training))
    assert group != os.getpgid(0)  # the worker's own group (DVC starts it with setpgid)
    os.killpg(group, signal.SIGKILL)  # the worker, its exec-run and the stage process
    out, _ = first.communicate(timeout=600)
    assert first.returncode == 1, out
    assert "LOST its worker" in out and "failed: its queue worker died" in out, out
    assert "error: 1 of 2 seed(s) failed" in out
    assert "$ dvc repro\n" not in out  # nothing assembled from half a study

    second = run_parallel(project)
    out = ok(second)
    assert "all 2 seed(s) finished" in out
    ok(reference.dvc("repro"))
    got, want = metrics_bytes(project), metrics_bytes(reference)
    assert want and got == want


@pytest.mark.slow
def test_failing_stage_is_reported_with_its_log(project: TinyProject) -> None:
    trimmed(project)
    # valid params, but not a class of the tiny data: split raises in every experiment;
    # left uncommitted on purpose (queued experiments carry the workspace's changes)
    project.set_params({"classes.positive": "frog"})
    result = run_parallel(project)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stderr  # the failure report
    for seed in (0, 1):
        assert re.search(rf"error: seed {seed} \(study-\S+-seed{seed}\) failed", out), out
    assert "its log (`dvc queue logs study-" in out
    assert "error: classes.positive: 'frog' is not a class of the fetched data" in out
    assert "No file hash info found" not in out  # DVC's start-up noise is left out
    assert "error: 2 of 2 seed(s) failed" in out
    assert not (project.root / "metrics" / "remedies").exists()  # nothing assembled


@pytest.mark.slow
def test_hung_fetch_in_the_workspace_is_stopped_and_reported(
    project: TinyProject, tmp_path: Path
) -> None:
    trimmed(project)
    fifo = tmp_path / "never-written.tar.gz"
    os.mkfifo(fifo)  # fetch opens it to check its SHA-256 and waits for a writer for ever
    p = project.params()
    source = {**p["data"]["sources"]["tiny"], "location": str(fifo)}
    project.set_params({"data.sources.tiny": source})
    result = run_parallel(project, "--stall-timeout", "10")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Running stage 'fetch'" in result.stdout  # its output shows where it stopped
    assert "error: `dvc repro fetch` hung: no new output for 10 s" in result.stderr
    assert "$ dvc exp run" not in result.stdout  # nothing queued
    here = project.root.resolve()
    assert not live_pids(
        lambda argv, cwd: (
            b"stages.fetch" in b" ".join(argv) and (cwd == here or here in cwd.parents)
        )
    )


@pytest.mark.slow
def test_hung_experiment_is_stopped_and_reported(project: TinyProject) -> None:
    """A training stage that stops making progress (here: SIGSTOP, which also makes it
    deaf to DVC's SIGINT) is reported with its log, and every process of it is gone."""
    trimmed(project, seeds=[0], **{"train.max_steps": 80, "train.early_stopping.patience": 80})
    exps = project.root.resolve() / ".dvc" / "tmp" / "exps"

    def stage_processes() -> set[int]:
        return live_pids(
            lambda argv, cwd: b"stages.train" in b" ".join(argv) and exps in cwd.parents
        )

    command = [sys.executable, "-m", "imbalance.tools.parallel", "--jobs", "1", "--poll", "2"]
    run = subprocess.Popen(
        [*command, "--stall-timeout", "20"],
        cwd=project.root,
        env=tool_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline, training = time.monotonic() + 300, set()
    while not training and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.5)
        training = stage_processes()
    assert training, "no training process of a queue worker appeared"
    for pid in training:
        os.kill(pid, signal.SIGSTOP)
    out, _ = run.communicate(timeout=600)
    assert run.returncode == 1, out
    assert "seed 0: HUNG" in out and "failed: it hung: no new output for" in out, out
    assert "Running stage 'train@" in out  # the log shows where it stopped
    assert "$ dvc repro\n" not in out  # nothing assembled
    assert not stage_processes()
    here = project.root.resolve()
    assert not live_pids(lambda argv, cwd: b"exec-run" in argv and here in cwd.parents)


@pytest.mark.slow
@pytest.mark.parametrize("problem", ["untracked", "queue", "commit"])
def test_bad_workspace_is_one_error_line_and_status_2(project: TinyProject, problem: str) -> None:
    if problem == "untracked":
        (project.root / "notes.txt").write_text("not added\n")
        message = "untracked files would be missing from the queued experiments"
    elif problem == "queue":
        ok(project.dvc("exp", "run", "--queue", "-S", "split.n_minority=5"))
        message = "the DVC queue holds 1 other experiment(s) queued or running"
    else:
        shutil.rmtree(project.root / ".git")
        ok(project.git("init", "-q"))
        message = "no git commit to start from"
    result = run_parallel(project)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    if problem == "queue":
        assert "Queued" in ok(project.dvc("queue", "status"))  # left as it was
        ok(project.dvc("queue", "remove", "--queued"))


def test_venv_dvc_is_what_the_workers_use() -> None:
    """Queue workers run `dvc` from PATH: the command puts this interpreter's bin first."""
    dvc = parallel.Dvc(PROJECT_ROOT, echo=False)
    assert dvc.env["PATH"].split(os.pathsep)[0] == str(VENV_BIN)
