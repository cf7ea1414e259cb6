"""Run the study on N workers of one machine, through DVC's own experiment queue.

    python -m imbalance.tools.parallel --jobs N [--poll S] [--stall-timeout S] [--dry-run]
    ./dev.sh repro --jobs N                           (the same, after setting up .venv)

Why the queue and not a scheduler of our own: every run (remedy x seed) is already a DVC
stage with a run-cache entry, and DVC's queue already runs experiments side by side in
temporary copies of the project (``.dvc/tmp/exps/tmp*``) that share the project's cache
(``cache.dir`` points at it) and with it the run-cache (``.dvc/cache/runs``). So the
study is split by seed into experiments, DVC runs them, and one ordinary ``dvc repro``
in the workspace assembles the whole study: every stage an experiment finished is
restored from the run-cache ("Stage ... is cached - skipping run"), and only ``split``
(its ``seeds`` param differs from the experiments') and ``compare`` run -- and
``evaluate@*`` while dvc.yaml declares ``metrics/runs/seed<s>`` a plain uncached output,
since DVC keeps no run-cache for such a stage. The commands, in order (each is printed
as it runs):

    dvc queue status                                  the queue must be free of other work
    dvc repro fetch                                   the data, once, in the workspace
    dvc exp run --queue -n study-<time>-seed<k> -S 'seeds=[k]' evaluate     (per seed k)
    dvc queue start --jobs N
    dvc queue status                                  every --poll seconds, until all end
    dvc queue kill <name>                             an orphaned or hung experiment
    dvc queue logs <name>                             for every experiment that failed
    dvc repro                                         when all succeeded: the assembly
    dvc queue remove <names>                          the finished entries of this run

The target ``evaluate`` stops each experiment before ``compare``: a one-seed comparison
is thrown away anyway.

What DVC's queue gets wrong, and what this command does about it (DVC 3.x; issues on
github.com/treeverse/dvc):

- workers sometimes exit while tasks are still queued (#10562): when tasks are queued and
  no worker is left, ``dvc queue start`` is run again (at most ``MAX_RESTARTS`` times
  without progress, then the tasks are reported as never started);
- a task whose worker died stays "Running" for ever (#8461, #8702), while its
  ``dvc exp exec-run`` process may even finish the run: once that process is gone, the
  task is settled with ``dvc queue kill`` and reported as failed (its temporary copy
  under ``.dvc/tmp/exps/`` stays: DVC's cleanup never ran);
- a task with no new log output for ``--stall-timeout`` seconds is reported as hung and
  stopped with ``dvc queue kill`` (SIGINT to the worker's process group); a stage that
  does not end on SIGINT (stopped, stuck in the kernel) is killed with its process tree,
  since ``dvc queue kill --force`` kills only the exec-run process above it. The
  workspace's ``dvc repro fetch`` and assembly get the same stall limit;
- with more than one worker some tasks fail with no log at all (#10673): they are
  reported with what ``dvc queue logs`` says, like any other failure.

A failure is reported with the end of its log and exit status 1, and nothing is
assembled (``dvc repro`` would silently train the missing seeds one after the other). The
same command run again finishes the study: every stage that finished, in any experiment,
is in the run-cache and is not trained again.

Threads: ``train.threads`` is a param (a dependency of every training stage) and is left
alone. The thread count changes the numbers -- TensorFlow splits reductions by its
intra-op pool size, so 1, 2 and 3 threads give different bytes, and on real data
different early-stopping steps -- so per-worker thread counts set behind DVC's back
would put results under a run-cache key that does not describe them. The command only
says when ``jobs x threads`` exceeds the cores.

Bad input (``--jobs 0``, no git commit, untracked files the experiments would not see,
a queue busy with other experiments) is one ``error:`` line and exit status 2, before
anything is queued.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import functools
import os
import re
import select
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from imbalance import params
from imbalance.cli import UserError

if TYPE_CHECKING:
    from dvc_task.proc.manager import ProcessManager
    from dvc_task.proc.process import ProcessInfo

#: Experiment names this command gives (and the only queue entries it ever touches).
NAME = re.compile(r"^study-\d{8}-\d{6}-seed(\d+)$")
#: What each experiment reproduces: everything of its seed up to evaluate, not compare.
TARGETS = ("evaluate",)
#: Times workers are restarted for queued tasks without any task making progress.
MAX_RESTARTS = 3
#: Seconds a "Running" task may outlive its ``dvc exp exec-run`` process (collecting the
#: result takes a few seconds) before it counts as orphaned.
ORPHAN_GRACE_S = 30.0
#: Seconds a process being stopped (a hung experiment, a hung ``dvc repro``) gets to end after
#: SIGINT, before SIGKILL.
KILL_GRACE_S = 30.0
#: Seconds to wait for workers to appear after ``dvc queue start``.
START_GRACE_S = 20.0
#: Lines of a failed experiment's log shown in the report.
LOG_TAIL = 40
#: Consecutive failures of ``dvc queue status`` tolerated (it can trip over its own locks).
STATUS_RETRIES = 5

_WORKERS = re.compile(r"Worker status: (\d+) active, (\d+) idle")
_REV = re.compile(r"^[0-9a-f]{7}$")
_CACHED = re.compile(r"Stage '([^']+)' is cached - skipping run")
#: What an experiment's log opens with, once per output not yet built: not news.
_NOISE = re.compile(r"^WARNING: No file hash info found for '.*'\. It won't be created\.$")
_RAN = re.compile(r"Running stage '([^']+)'")


class _Parser(argparse.ArgumentParser):
    """argparse, but bad arguments are the project's one ``error:`` line and status 2."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message}; usage: {self.format_usage().strip().removeprefix('usage: ')}")


# ----------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class QueueStatus:
    """``dvc queue status`` as data: this command's tasks by name, everyone else's."""

    ours: dict[str, tuple[str, str]]  # name -> (rev, status)
    others: list[tuple[str, str]]  # (the row as printed, status)
    active: int
    idle: int

    @property
    def workers(self) -> int:
        return self.active + self.idle


def parse_queue_status(text: str) -> QueueStatus:
    """Parse the table ``dvc queue status`` prints (Task, Name, Created, Status).

    Columns are split on whitespace: the task is the first word, the status the last one;
    the name (second word) is only trusted when it is one of this command's names, since
    unnamed tasks have none and the creation time has spaces.
    """
    ours: dict[str, tuple[str, str]] = {}
    others: list[tuple[str, str]] = []
    active = idle = 0
    for line in text.splitlines():
        workers = _WORKERS.search(line)
        if workers:
            active, idle = int(workers.group(1)), int(workers.group(2))
            continue
        words = line.split()
        if len(words) < 3 or not _REV.match(words[0]):
            continue
        if NAME.match(words[1]):
            ours[words[1]] = (words[0], words[-1])
        else:
            others.append((" ".join(words), words[-1]))
    return QueueStatus(ours, others, active, idle)


@dataclass(frozen=True)
class Assembly:
    """What the final ``dvc repro`` did: stages restored from the run-cache, stages run."""

    restored: list[str]
    ran: list[str]

    @property
    def trained(self) -> list[str]:
        """Training stages that ran here: the experiments trained them, so the run-cache
        should have had them (a sign that it is not shared, or that a dependency differs
        between the experiments and the workspace)."""
        return [s for s in self.ran if s.split("@")[0] in ("train", "retrain")]


def parse_repro(output: str) -> Assembly:
    return Assembly(_CACHED.findall(output), _RAN.findall(output))


def experiment_names(seeds: Iterable[int], stamp: str) -> dict[int, str]:
    return {seed: f"study-{stamp}-seed{seed}" for seed in seeds}


def cores() -> int:
    """CPUs this process may run on (the affinity mask, which containers narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def oversubscription(jobs: int, threads: int, ncores: int) -> str | None:
    """A note when ``jobs`` trainings of ``threads`` threads each (0 = TensorFlow's
    default, one per core) ask for more threads than there are cores."""
    per_job = threads or ncores
    if jobs * per_job <= ncores:
        return None
    return (
        f"note: {jobs} workers x {per_job} TensorFlow threads each "
        f"(train.threads: {threads}{' = one per core' if not threads else ''}) on {ncores} "
        "cores; the thread count is left alone because it changes the numbers (it is a param "
        "of every training stage), so the workers share the cores"
    )


def tail(text: str, n: int = LOG_TAIL) -> str:
    """The last ``n`` lines of a log, indented, without DVC's start-up warnings."""
    lines = [ln for ln in text.rstrip("\n").splitlines() if not _NOISE.match(ln.strip())]
    cut = lines[-n:]
    head = [f"    ... ({len(lines) - n} lines before)"] if len(lines) > n else []
    return "\n".join(head + [f"    {line}" for line in cut])


# ----------------------------------------------------------------------------- DVC


class Dvc:
    """Runs ``dvc`` (this interpreter's), printing each command as a user would type it.

    The workers ``dvc queue start`` spawns run ``dvc`` from PATH: this interpreter's bin
    directory goes first, so they use the same DVC (and Python) as this command.
    """

    def __init__(self, root: Path, *, echo: bool = True) -> None:
        self.root = root
        self.echo = echo
        self.env = dict(os.environ)
        bindir = str(Path(sys.executable).parent)
        self.env["PATH"] = os.pathsep.join([bindir, self.env.get("PATH", "")])

    def run(self, *args: str, quiet: bool = False) -> subprocess.CompletedProcess[str]:
        """Run one command to its end; its output is captured through files, not pipes:
        ``dvc queue start`` daemonizes workers that inherit its stdout and stderr, and a
        pipe would stay open (and a reader blocked) for as long as they live."""
        if self.echo and not quiet:
            say(f"$ dvc {shlex.join(args)}")
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            code = subprocess.run(
                [sys.executable, "-m", "dvc", *args],
                cwd=self.root,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                check=False,
            ).returncode
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(args, code, out.read(), err.read())

    def check(self, *args: str, quiet: bool = False) -> str:
        proc = self.run(*args, quiet=quiet)
        if proc.returncode != 0:
            raise DvcFailed(args, proc)
        return proc.stdout

    def stream(self, *args: str, stall_timeout: float = 0) -> tuple[int | None, str]:
        """Run with the output shown as it comes (the fetch, the assembly); returns
        (status, output), the status None when it hung: no new output for
        ``stall_timeout`` seconds (0: never wait-limited), after which it was stopped.

        It runs in a session of its own, so that stopping it stops every process it
        started; an interrupt of this command stops it the same way.
        """
        say(f"$ dvc {shlex.join(args)}")
        proc = subprocess.Popen(
            [sys.executable, "-m", "dvc", *args],
            cwd=self.root,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert proc.stdout is not None
        fd, seen = proc.stdout.fileno(), []
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            while True:
                ready, _, _ = select.select([fd], [], [], stall_timeout or None)
                if not ready:
                    stop_session(proc)
                    return None, "".join(seen)
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                seen.append(decoder.decode(chunk))
                sys.stdout.write(seen[-1])
                sys.stdout.flush()
        except BaseException:
            stop_session(proc)
            raise
        return proc.wait(), "".join(seen)

    def status(self) -> QueueStatus:
        """``dvc queue status``, retried: it fails now and then on its own locks."""
        for attempt in range(STATUS_RETRIES):
            proc = self.run("queue", "status", quiet=True)
            if proc.returncode == 0:
                return parse_queue_status(proc.stdout)
            time.sleep(1 + attempt)
        raise DvcFailed(("queue", "status"), proc)

    def logs(self, name: str) -> str:
        proc = self.run("queue", "logs", name, quiet=True)
        return (proc.stdout + proc.stderr).strip() or "(no output)"


class DvcFailed(Exception):
    def __init__(self, args: Sequence[str], proc: subprocess.CompletedProcess[str]) -> None:
        lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        errors = [ln.removeprefix("ERROR:").strip() for ln in lines if ln.startswith("ERROR")]
        reason = errors[-1] if errors else (lines[-1] if lines else "no output")
        super().__init__(f"`dvc {shlex.join(args)}` failed (status {proc.returncode}): {reason}")


def stop_session(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT to the session ``proc`` leads (DVC's Ctrl-C), then SIGKILL if it lingers."""
    for sig in (signal.SIGINT, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=KILL_GRACE_S)
            return
        except subprocess.TimeoutExpired:
            continue


def say(line: str, *, err: bool = False) -> None:
    """One line of the run's narrative on stdout; failures (``err``) on stderr."""
    print(line, file=sys.stderr if err else sys.stdout, flush=True)


# ----------------------------------------------------------------------------- checks


def git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)


def check_git(root: Path) -> None:
    if git(root, "rev-parse", "--verify", "--quiet", "HEAD").returncode != 0:
        raise UserError(
            "no git commit to start from: queued experiments run on a commit plus the "
            "workspace's changes; commit the project first"
        )


def untracked_inputs(root: Path) -> list[str]:
    """Untracked, not ignored files that no stage writes: queued experiments run on a git
    snapshot of the workspace (``git stash``), which leaves them out, so a stage there
    would miss them (an untracked new module is an ImportError in every experiment).

    Stage outputs (``cache: false`` metrics and plots, which a first run leaves
    untracked), the ``.gitignore`` files DVC writes and ``dvc.lock`` are not inputs.
    """
    listed = git(root, "ls-files", "--others", "--exclude-standard", "-z").stdout
    files = [f for f in listed.split("\0") if f]
    if not files:
        return []
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        outs = {os.path.relpath(out.fs_path, repo.root_dir) for out in repo.index.outs}

    def written(path: str) -> bool:
        if path == "dvc.lock" or Path(path).name == ".gitignore":
            return True
        return any(path == out or path.startswith(out + "/") for out in outs)

    return sorted(f for f in files if not written(f))


def exec_run_alive(root: Path, rev: str) -> bool | None:
    """Is the ``dvc exp exec-run`` process of task ``rev`` (7 hex digits) alive?

    DVC's process manager (dvc-task's ``ProcessManager``) records its ``pid``, and its
    ``returncode`` once its worker saw it end. False only when the process
    is gone and no worker recorded its end: the mark of a task whose worker died. None:
    no record yet (the task is being set up), or an end that a live worker recorded and is
    collecting -- not evidence of anything.
    """
    pid = exec_run_pid(root, rev)
    if pid is None:
        return None
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        if sys.platform.startswith("linux"):
            return False
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    return b"exec-run" in argv and stat != "Z"


def exec_run_pid(root: Path, rev: str) -> int | None:
    """The pid dvc-task recorded for task ``rev``'s exec-run process, unless it recorded
    an end (``returncode``) or nothing yet."""
    info = process_info(root, rev)
    if info is None:
        return None
    pid = info.pid
    return pid if info.returncode is None and isinstance(pid, int) else None


def process_info(root: Path, rev: str) -> ProcessInfo | None:
    """What dvc-task records for task ``rev`` (7 hex digits): pid, returncode and the log
    file (``stdout``), read through its ``ProcessManager`` -- the one DVC's queue keeps
    (``celery_queue.proc``) -- rather than from the files it happens to write them to.
    None while the task has no record (being set up) or its record is being written."""
    manager = _process_manager(root)
    for name in sorted(manager):
        if name.startswith(rev):
            try:
                return manager.get(name)
            except (OSError, ValueError, TypeError):  # a record half written
                return None
    return None


@functools.cache
def _process_manager(root: Path) -> ProcessManager:
    """DVC's queue's process manager for project ``root`` (where it keeps its records is
    DVC's business: asked once, from the repository's queue)."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return repo.experiments.celery_queue.proc


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (Linux ``/proc``; elsewhere none are found)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, []))
    return found


def kill_all(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def log_size(root: Path, rev: str) -> int | None:
    """Bytes of task ``rev``'s log so far (what ``dvc queue logs`` prints), if it has one:
    the ``stdout`` file dvc-task's record names."""
    info = process_info(root, rev)
    if info is None or not info.stdout:
        return None
    try:
        return Path(info.stdout).stat().st_size
    except OSError:
        return None


def check_queue(dvc: Dvc) -> None:
    """The queue must hold nothing else that ``dvc queue start`` would run or that
    occupies its workers; this command's own leftovers are cleared or settled."""
    status = dvc.status()
    busy = [row for row, state in status.others if state in ("Queued", "Running")]
    if busy:
        shown = "; ".join(busy[:5]) + (f"; and {len(busy) - 5} more" if len(busy) > 5 else "")
        raise UserError(
            f"the DVC queue holds {len(busy)} other experiment(s) queued or running ({shown}); "
            "`dvc queue start` would run them too: let them finish (`dvc queue status`) or "
            "remove them (`dvc queue remove --queued`, `dvc queue kill <name>`)"
        )
    alive = [
        name
        for name, (rev, state) in status.ours.items()
        if state == "Running" and exec_run_alive(dvc.root, rev) is not False
    ]
    if alive:
        raise UserError(
            f"experiments of an earlier run are still running: {', '.join(sorted(alive))}; "
            "wait for them (`dvc queue status`) or stop them "
            f"(`dvc queue kill {' '.join(sorted(alive))}`), then run this again"
        )
    dead = sorted(name for name, (_, state) in status.ours.items() if state == "Running")
    if dead:
        say(f"settling experiments of an earlier run whose worker died: {', '.join(dead)}")
        dvc.run("queue", "kill", *dead)
    stale = sorted(status.ours)
    if stale:
        dvc.run("queue", "remove", *stale)


# ----------------------------------------------------------------------------- the run


@dataclass
class Task:
    """One queued experiment (one seed) as this command follows it."""

    seed: int
    name: str
    rev: str = ""
    state: str = "Queued"
    verdict: str | None = None  # None while pending; "ok" or why it failed
    queued: float = field(default_factory=time.monotonic)
    log_bytes: int | None = None
    log_changed: float = field(default_factory=time.monotonic)
    dead_since: float | None = None
    missing: int = 0  # consecutive polls the queue did not list it

    @property
    def done(self) -> bool:
        return self.verdict is not None


def _elapsed(since: float) -> str:
    s = int(time.monotonic() - since)
    return f", {s // 60}m{s % 60:02d}s after queueing"


def watch(dvc: Dvc, tasks: list[Task], jobs: int, poll: float, stall_timeout: float) -> None:
    """Follow the tasks until every one has a verdict, working around the queue's
    failure modes (see the module docstring)."""
    restarts, started_at, no_workers = 0, time.monotonic(), 0
    while not all(t.done for t in tasks):
        time.sleep(poll)
        status = dvc.status()
        now = time.monotonic()
        progressed = False
        for task in (t for t in tasks if not t.done):
            if task.name not in status.ours:
                task.missing += 1  # twice in a row: one listing may catch the queue mid-move
                if task.missing >= 2:
                    task.verdict = "it vanished from the queue (removed by someone else?)"
                continue
            task.missing = 0
            task.rev, state = status.ours[task.name]
            if state != task.state:
                progressed = True
                task.state = state
                if state == "Running":
                    task.log_changed = now
                    say(f"seed {task.seed}: running ({task.name})")
            if state == "Success":
                task.verdict = "ok"
                say(f"seed {task.seed}: finished{_elapsed(task.queued)}")
            elif state == "Failed":
                task.verdict = "DVC reports it failed"
                say(f"seed {task.seed}: FAILED{_elapsed(task.queued)}")
            elif state == "Running":
                _check_running(dvc, task, now, stall_timeout)
        waiting = [t for t in tasks if not t.done and t.state == "Queued"]
        no_workers = no_workers + 1 if waiting and status.workers == 0 else 0
        if progressed:
            restarts = 0
        if no_workers >= 2 and now - started_at > START_GRACE_S:
            if restarts >= MAX_RESTARTS:
                for task in waiting:
                    task.verdict = (
                        f"it never started: DVC's queue workers exited {restarts + 1} times "
                        "with it still queued (DVC issue #10562)"
                    )
                    dvc.run("queue", "remove", task.name)
                continue
            say(f"no queue worker left for {len(waiting)} queued experiment(s); starting again")
            dvc.check("queue", "start", "--jobs", str(jobs))
            restarts, started_at, no_workers = restarts + 1, now, 0


def _check_running(dvc: Dvc, task: Task, now: float, stall_timeout: float) -> None:
    """A running task is orphaned when its exec-run process is gone, hung when its log
    stops growing; both are stopped, settled with ``dvc queue kill`` and failed."""
    alive = exec_run_alive(dvc.root, task.rev)
    if alive is False:
        task.dead_since = task.dead_since or now
        if now - task.dead_since >= ORPHAN_GRACE_S:
            task.verdict = (
                "its queue worker died, so DVC never recorded how it ended (the stages it "
                "finished are in the run-cache)"
            )
            say(f"seed {task.seed}: LOST its worker{_elapsed(task.queued)}")
            dvc.run("queue", "kill", task.name)
        return
    task.dead_since = None
    size = log_size(dvc.root, task.rev)
    if size != task.log_bytes:
        task.log_bytes, task.log_changed = size, now
    elif stall_timeout and now - task.log_changed >= stall_timeout:
        task.verdict = f"it hung: no new output for {int(now - task.log_changed)} s"
        say(f"seed {task.seed}: HUNG{_elapsed(task.queued)}; stopping it")
        pid = exec_run_pid(dvc.root, task.rev)
        dvc.run("queue", "kill", task.name)
        if not _ended(dvc.root, task.rev, KILL_GRACE_S) and pid is not None:
            # exec-run ignores SIGINT while its stage runs, and a stage that is stopped or
            # stuck in the kernel does not take it: the stage's processes are killed, which
            # lets exec-run record the failure; DVC's --force kills exec-run alone
            kill_all(descendants(pid))
            if not _ended(dvc.root, task.rev, KILL_GRACE_S):
                dvc.run("queue", "kill", "--force", task.name)


def _ended(root: Path, rev: str, within: float) -> bool:
    deadline = time.monotonic() + within
    while exec_run_alive(root, rev):
        if time.monotonic() >= deadline:
            return False
        time.sleep(1)
    return True


def stop(dvc: Dvc, tasks: list[Task]) -> None:
    """On Ctrl-C / SIGTERM: stop this run's experiments, leave nothing queued."""
    try:
        status = dvc.status()
    except DvcFailed:
        return
    running = [t.name for t in tasks if status.ours.get(t.name, ("", ""))[1] == "Running"]
    queued = [t.name for t in tasks if status.ours.get(t.name, ("", ""))[1] == "Queued"]
    if queued:
        dvc.run("queue", "remove", *queued)
    if running:
        dvc.run("queue", "kill", *running)


def report(dvc: Dvc, failed: list[Task], total: int) -> None:
    """Every failed experiment with the end of its log, then what to do, on stderr."""
    for task in failed:
        say(f"error: seed {task.seed} ({task.name}) failed: {task.verdict}", err=True)
        say(f"  its log (`dvc queue logs {task.name}`), last lines:", err=True)
        say(tail(dvc.logs(task.name)), err=True)
    say(
        f"error: {len(failed)} of {total} seed(s) failed; fix the cause and run the same "
        "command again: every stage that finished is in the run-cache and is not trained again",
        err=True,
    )


def streamed_failure(command: str, code: int | None, stall_timeout: float) -> str:
    """The error line for a ``dvc`` command run in the workspace that failed or hung."""
    if code is None:
        return (
            f"error: `dvc {command}` hung: no new output for {stall_timeout:g} s, so it was "
            "stopped; its output is above (raise --stall-timeout if it was only slow)"
        )
    return f"error: `dvc {command}` failed (status {code}); see its output above"


def plan(seeds: Sequence[int], names: dict[int, str], jobs: int) -> list[list[str]]:
    """The DVC commands of a run, in order (for ``--dry-run`` and the docs)."""
    queue = [
        ["exp", "run", "--queue", "-n", names[s], "-S", f"seeds=[{s}]", *TARGETS] for s in seeds
    ]
    return [
        ["queue", "status"],
        ["repro", "fetch"],
        *queue,
        ["queue", "start", "--jobs", str(jobs)],
        ["queue", "status"],
        ["repro"],
        ["queue", "remove", *names.values()],
    ]


def main(argv: list[str] | None = None) -> int:
    """Check, queue, run, watch, then report or assemble; the exit status.

    0: the study is assembled; 1: an experiment (or the assembly) failed, reported; 2: bad
    input, nothing queued (raised as UserError); 130: interrupted, this run's experiments
    stopped.
    """
    parser = _Parser(
        prog="python -m imbalance.tools.parallel",
        description="Run the study's seeds as DVC experiments on N queue workers, then "
        "assemble it with `dvc repro` from the shared run-cache.",
    )
    parser.add_argument("--jobs", "-j", type=int, required=True, help="queue workers")
    parser.add_argument("--poll", type=float, default=10.0, help="seconds between checks")
    parser.add_argument(
        "--stall-timeout",
        type=float,
        default=1800.0,
        help="seconds without new log output before a running experiment counts as hung (0: never)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the DVC commands only")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        raise UserError(f"--jobs must be a positive number of workers, not {args.jobs}")
    if args.poll <= 0 or args.stall_timeout < 0:
        raise UserError("--poll must be positive and --stall-timeout not negative")

    root = Path.cwd()
    p = params.load()
    seeds = list(p.seeds)
    jobs = min(args.jobs, len(seeds))
    names = experiment_names(seeds, time.strftime("%Y%m%d-%H%M%S"))
    if args.dry_run:
        for cmd in plan(seeds, names, jobs):
            say(f"dvc {shlex.join(cmd)}")
        return 0

    check_git(root)
    missing = untracked_inputs(root)
    if missing:
        shown = ", ".join(missing[:8]) + (
            f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        )
        raise UserError(
            f"untracked files would be missing from the queued experiments (they run on a git "
            f"snapshot of the workspace): {shown}; `git add` them or list them in .gitignore"
        )
    dvc = Dvc(root)
    try:
        check_queue(dvc)
    except DvcFailed as err:  # e.g. not a DVC project
        raise UserError(str(err)) from None
    if jobs < args.jobs:
        say(f"note: {len(seeds)} seed(s), so {jobs} worker(s), not {args.jobs}")
    note = oversubscription(jobs, p.train.threads, cores())
    if note:
        say(note)

    tasks = [Task(seed, names[seed]) for seed in seeds]
    _sigterm_as_interrupt()
    try:
        # The data is fetched once, here, and the experiments restore it from the
        # run-cache: a queued experiment runs in a temporary copy under .dvc/tmp/exps/,
        # where a source path relative to the project root (../shared/...) does not
        # resolve, and N workers would each fetch and extract the archive.
        code, _ = dvc.stream("repro", "fetch", stall_timeout=args.stall_timeout)
        if code != 0:
            say(streamed_failure("repro fetch", code, args.stall_timeout), err=True)
            return 1
        for cmd in plan(seeds, names, jobs)[2 : 2 + len(seeds)]:
            dvc.check(*cmd)
        dvc.check("queue", "start", "--jobs", str(jobs))
        watch(dvc, tasks, jobs, args.poll, args.stall_timeout)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop
        stop(dvc, tasks)
        print("error: interrupted; this run's experiments were stopped", file=sys.stderr)
        return 130
    except DvcFailed as err:
        stop(dvc, tasks)
        say(f"error: {err}; this run's experiments were stopped", err=True)
        return 1

    failed = [t for t in tasks if t.verdict != "ok"]
    if failed:
        report(dvc, failed, len(tasks))
        done = [t.name for t in tasks if t.verdict == "ok"]
        if done:
            dvc.run("queue", "remove", *done)
        return 1

    say(f"all {len(tasks)} seed(s) finished; assembling the study in the workspace")
    code, output = dvc.stream("repro", stall_timeout=args.stall_timeout)
    assembly = parse_repro(output)
    dvc.run("queue", "remove", *names.values())
    if code != 0:
        say(streamed_failure("repro", code, args.stall_timeout), err=True)
        return 1
    say(
        f"assembled: {len(assembly.restored)} stage(s) restored from the run-cache, "
        f"{len(assembly.ran)} run here ({', '.join(assembly.ran) or 'none'})"
    )
    if assembly.trained:
        say(
            f"warning: {len(assembly.trained)} run stage(s) were not in the run-cache and ran "
            f"here instead of in the experiments: {', '.join(assembly.trained)}"
        )
    return 0


def _sigterm_as_interrupt() -> None:
    """SIGTERM stops the run like Ctrl-C: this run's experiments are stopped too."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _entry() -> None:
    from imbalance.cli import run

    def body() -> None:
        code = main()
        if code:
            sys.exit(code)

    run(body)


if __name__ == "__main__":
    _entry()
