"""A warm start for the training stages: fork them from a process that imported TensorFlow.

Why: DVC runs every stage as a fresh process, and a training stage spent ~3 s importing
TensorFlow and Keras and ~0.8 s tearing them down again — for a study of 7 to 80 short
trainings the largest overhead the benchmark (``bench/``) found. On Linux, the first
training stage starts a background *server* (``python -m imbalance.runtime.warm``) that imports
them once and waits. Every training stage process (the *client*) checks its arguments and
params, then hands the server its arguments, environment, working directory and
stdin/stdout/stderr; the server forks a *child* that runs the stage exactly as
``python -m stages.train`` would, and relays its exit status back to the client, which
exits with it. DVC sees an ordinary command.

Why a fork per stage and not one long-lived worker: the server imports modules but runs
no TensorFlow op, so every child sets up thread pools, seeds and op determinism from
scratch like a cold process, and inherits no state from earlier stages — the outputs are
byte-identical to a cold run (tests/test_warm.py).

Lifecycle and failures:

- one server per (Python, project directory, its source code, TensorFlow-relevant
  environment variables, installed distributions): the key hashes them, so an edited
  source file, another venv or a ``pip install`` gets a fresh server and the stale one
  idles out;
- it exits after ``runtime.warm_idle_s`` seconds without a job (0 = never used);
- SIGINT / SIGTERM / SIGHUP of the client are forwarded to the child (the usual
  ``error: interrupted`` line and status 130); if the client is killed outright, the
  server kills the child, so a killed DVC run leaves no training behind;
- anything that goes wrong before the server has accepted the job (not Linux, the server
  cannot start, a socket error, a server exiting just then) runs the stage in the
  client's own process instead, after one line on stderr.

Quiet on every path: TensorFlow's import-time C++ log goes to the server's log file
(``<socket>.log``) when the server imports it, and is held back by
:func:`preload_quietly` when a stage imports it itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import json
import os
import re
import runpy
import selectors
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
#: Environment variables read when TensorFlow / Keras are imported: part of the key.
IMPORT_ENV = ("TF_", "KERAS_", "XLA_", "OMP_", "MKL_", "KMP_", "CUDA_", "LD_", "PYTHON")
#: Seconds a client waits for a new server's imports before running the stage itself.
START_TIMEOUT_S = 120.0
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: Directory entries on ``sys.path`` that record an installation (what importlib.metadata
#: reads distributions from) or change imports at start-up (``.pth``): part of the key.
INSTALL_MARKS = (".dist-info", ".egg-info", ".egg-link", ".pth")
#: A line absl writes (TensorFlow's C++ log): severity, date, time, thread, file:line].
_NATIVE_LOG = re.compile(rb"([IWEF])\d{4} [\d:.]+ +\d+ [^ \]]+:\d+\] ")
#: absl's note that it is not initialised yet: printed whatever the log level.
_ABSL_BANNER = b"WARNING: All log messages before absl::InitializeLog() is called are written"

_serving = False  # True inside a forked child: the stage runs here


def key() -> str:
    """What a server's imported modules depend on; a different key needs another server.

    Computed by every training stage before it can delegate, so it must stay cheap
    (~1-2 ms): file contents for the project's own few dozen sources, but only directory
    names and times for the installed packages (:func:`installed`).
    """
    h = hashlib.sha256()
    for part in (sys.executable, sys.version, str(PROJECT)):
        h.update(part.encode() + b"\0")
    for path in sorted([*PROJECT.glob("imbalance/**/*.py"), *PROJECT.glob("stages/*.py")]):
        h.update(str(path.relative_to(PROJECT)).encode() + b"\0" + path.read_bytes() + b"\0")
    for name in sorted(os.environ):
        if name.startswith(IMPORT_ENV):
            h.update(f"{name}={os.environ[name]}\0".encode())
    for line in installed():
        h.update(line.encode() + b"\0")
    return h.hexdigest()[:24]


def installed() -> Iterator[str]:
    """A fingerprint of the installed distributions: what ``pip install`` changes.

    Why: a server that imported TensorFlow 2.21 keeps serving 2.21 after ``pip install
    tensorflow==2.20`` unless the key moves. Reading every distribution's version through
    ``importlib.metadata`` costs ~100 ms (it parses ~140 METADATA files); the names and
    modification times of the ``*.dist-info`` (and ``.egg-info``, ``.egg-link``, ``.pth``)
    entries on ``sys.path`` say the same for ~1 ms: pip writes a new ``<name>-<version>
    .dist-info`` directory for every install, upgrade and reinstall, and removes the old
    one. ``sys.path[0]`` (the stage's working directory) is left out; the project's own
    code is hashed by content in :func:`key`. Files edited by hand inside an installed
    package are not seen.
    """
    for entry in sys.path[0 if sys.flags.safe_path else 1 :]:
        try:
            with os.scandir(entry or ".") as it:
                marks = sorted(
                    f"{e.name} {e.stat().st_mtime_ns}" for e in it if e.name.endswith(INSTALL_MARKS)
                )
        except NotADirectoryError:  # a zip archive: its time stands for its contents
            marks = [f"{os.stat(entry).st_mtime_ns}"]
        except OSError:  # missing or unreadable: nothing is imported from it
            marks = ["-"]
        yield entry
        yield from marks


def socket_path(k: str) -> Path:
    """In a directory only this user can enter (the socket is handed file descriptors
    and the environment), short (AF_UNIX paths are capped near 108 bytes)."""
    private = Path(tempfile.gettempdir()) / f"imbalance-warm-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        private.mkdir(mode=0o700)
    st = os.lstat(private)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise OSError(f"{private} is not a private directory of this user")
    return private / f"{k}.sock"


# --------------------------------------------------------------------------- client
def delegate(module: str, idle_s: int, preload: tuple[str, ...] = ()) -> None:
    """Run the stage ``module`` in a warm child and exit with its status.

    ``preload``: the project modules the stage will import, which a server imports ahead
    (named by the caller, so that this module imports no layer above it).

    Returns (so the caller runs the stage itself) when the warm start is off, not
    available, or the server did not accept the job; then nothing of the stage has run,
    but what it imports is imported (:func:`preload_quietly`), so that TensorFlow's
    import-time log stays out of the stage's stderr on this path too.
    """
    if _serving:
        return
    _preloads[:] = preload
    if idle_s > 0 and sys.platform == "linux":
        status = None
        try:
            conn = _connect_or_start(socket_path(key()), idle_s)
            status = _run_remote(conn, module)
        except OSError as err:
            print(f"note: no warm TensorFlow process ({err}); training here", file=sys.stderr)
        if status is not None:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
    preload_quietly()


def _try_connect(path: Path) -> socket.socket | None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        s.connect(str(path))
    except OSError:
        s.close()
        return None
    return s


def _connect_or_start(path: Path, idle_s: int) -> socket.socket:
    """Connect to the server for this key, starting it (once, under a lock) if needed."""
    conn = _try_connect(path)
    if conn is not None:
        return conn
    lock_fd = os.open(f"{path}.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        conn = _try_connect(path)
        if conn is not None:
            return conn
        path.unlink(missing_ok=True)  # a server that died without cleaning up
        log = os.open(f"{path}.log", os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        try:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "imbalance.runtime.warm",
                    str(path),
                    str(idle_s),
                    *list(_preloads),
                ],
                cwd=PROJECT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # not in the client's process group: no Ctrl-C
            )
        finally:
            os.close(log)
        deadline = time.monotonic() + START_TIMEOUT_S
        while (conn := _try_connect(path)) is None:
            if proc.poll() is not None:
                raise OSError(f"the server exited with status {proc.returncode}, see {path}.log")
            if time.monotonic() > deadline:
                proc.kill()
                raise OSError(f"the server did not start within {START_TIMEOUT_S:.0f} s")
            time.sleep(0.02)
        return conn
    finally:
        os.close(lock_fd)


def _run_remote(conn: socket.socket, module: str) -> int | None:
    """Send the job; return the child's exit status, or None if it was never started."""
    from imbalance.runtime import profile

    fds = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:  # closed: the child gets /dev/null there
            fds.append(os.open(os.devnull, os.O_RDWR))
    request = {
        "module": module,
        "argv": sys.argv[1:],
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "t0": profile.process_start_unix(),
    }
    with conn:
        socket.send_fds(conn, [json.dumps(request).encode()], fds)
        if conn.recv(64) != b"RUN":
            return None  # the server was exiting; nothing ran
        # From here on the stage runs in the child: no fallback, whatever happens.
        for sig in FORWARDED:
            signal.signal(sig, lambda n, _frame: _send_quietly(conn, f"SIG {n}".encode()))
        try:
            reply = conn.recv(64)  # "EXIT <status>", or nothing if the server died
        except OSError:
            reply = b""
        if reply.startswith(b"EXIT "):
            return int(reply[5:])
        print(
            "error: the warm TensorFlow process died during the stage; run it again, or "
            "set runtime.warm_idle_s: 0 to train without it",
            file=sys.stderr,
        )
        return 1


# --------------------------------------------------------------------------- imports
#: Project modules a stage imports, named by the stage (:func:`delegate`), set in the server
#: from its command line.
_preloads: list[str] = []


def _preload() -> None:
    """Import (never run) what a training stage imports."""
    # A stage sets its own level before it gets here; this is for a server started by
    # hand. 3: TensorFlow's ERROR lines on a first op are notes (oneDNN falling back to
    # Eigen, an unknown NodeDef attribute); a real failure raises in Python.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # Importing them ahead of the training code is this module's whole purpose, hence the
    # exception to the rule that only imbalance/training imports them.
    import dvclive.keras  # noqa: F401, TID251
    import keras  # noqa: F401, TID251
    import sklearn.utils.class_weight  # noqa: F401
    import tensorflow  # noqa: F401, TID251

    # Not the stage module itself: runpy runs it fresh as __main__ in every child.
    for module in _preloads:
        importlib.import_module(module)


def preload_quietly() -> None:
    """:func:`_preload` in a stage process, keeping TensorFlow's import-time log off stderr.

    Why: TensorFlow 2.21 logs through absl, which writes every line it gets before
    ``absl::InitializeLog()`` whatever ``TF_CPP_MIN_LOG_LEVEL`` says — on import, twice
    (two copies of absl), its "before absl::InitializeLog()" notice and an INFO line
    about oneDNN. The warm server takes them into its log file; a stage that trains in
    its own process would print them. So file descriptor 2 goes to a temporary file
    for the import, and what was written there is then passed on minus the native log
    lines below ``TF_CPP_MIN_LOG_LEVEL`` (:func:`native_log_filter`): Python's own
    output of that moment, a warning or a traceback, still arrives, in order.
    """
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    with contextlib.ExitStack() as stack:
        try:
            captured = stack.enter_context(tempfile.TemporaryFile())
            saved = os.dup(2)
        except OSError:  # no temporary file or no stderr: rather some noise than no stage
            _preload()
            return
        stack.callback(os.close, saved)
        os.dup2(captured.fileno(), 2)
        try:
            _preload()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            captured.seek(0)
            _write_all(2, native_log_filter(captured.read(), _min_log_level()))


def _min_log_level() -> int:
    """``TF_CPP_MIN_LOG_LEVEL`` as TensorFlow reads it: 0 (all) to 3 (no ERROR), else 0."""
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def native_log_filter(data: bytes, level: int) -> bytes:
    """``data`` without the absl log lines of a severity below ``level`` (I=0, W=1, E=2;
    FATAL lines always stay) and, from level 1, without absl's not-initialised notice.

    Line by line: an unprefixed continuation of a dropped multi-line message stays —
    rather show a stray line than swallow one that is Python's.
    """
    kept = []
    for line in data.splitlines(keepends=True):
        match = _NATIVE_LOG.match(line)
        if match and "IWEF".index(match[1].decode()) < min(level, 3):
            continue
        if level >= 1 and line.startswith(_ABSL_BANNER):
            continue
        kept.append(line)
    return b"".join(kept)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


# --------------------------------------------------------------------------- server
def serve(path: Path, idle_s: float, preload: list[str] | None = None) -> None:
    _preloads[:] = preload or []
    """Accept jobs, fork a child per job, relay exit statuses; exit when idle."""
    _preload()
    os.chdir("/")  # hold no project directory (tests kill by working directory)
    wake_r, wake_w = os.pipe()
    for fd in (wake_r, wake_w):
        os.set_blocking(fd, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    old_umask = os.umask(0o077)
    try:
        listener.bind(str(path))
    finally:
        os.umask(old_umask)
    listener.listen(16)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, "accept")
    sel.register(wake_r, selectors.EVENT_READ, "child")
    jobs: dict[int, socket.socket | None] = {}  # child pid -> client (None: client gone)
    idle_since = time.monotonic()

    while jobs or time.monotonic() - idle_since < idle_s:
        for item, _ in sel.select(timeout=1.0):
            if item.data == "accept":
                conn, _addr = listener.accept()
                pid = _start_job(conn, listener, sel, wake_r, wake_w)
                if pid is not None:
                    jobs[pid] = conn
                    sel.register(conn, selectors.EVENT_READ, pid)
            elif item.data == "child":
                _drain(wake_r)
                for pid, code in _reap():
                    conn = jobs.pop(pid, None)
                    if conn is not None:
                        sel.unregister(conn)
                        _send_quietly(conn, f"EXIT {code}".encode())
                        conn.close()
                if not jobs:
                    idle_since = time.monotonic()
            else:
                pid, conn = item.data, item.fileobj
                try:
                    message = conn.recv(64)
                except OSError:
                    message = b""
                if message.startswith(b"SIG "):
                    _kill(pid, int(message[4:]))
                elif not message:  # the client is gone: so is the point of the job
                    _kill(pid, signal.SIGKILL)
                    sel.unregister(conn)
                    conn.close()
                    jobs[pid] = None  # reaped when the kill lands
    # Idle: stop taking jobs first; a client caught in between gets no "RUN" and trains
    # in its own process.
    path.unlink(missing_ok=True)
    listener.close()


def _drain(fd: int) -> None:
    """Empty the signal wake-up pipe (its bytes only say "a signal came")."""
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def _reap() -> list[tuple[int, int]]:
    done = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return done
        if pid == 0:
            return done
        code = os.waitstatus_to_exitcode(status)
        done.append((pid, code if code >= 0 else 128 - code))


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _send_quietly(conn: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the client may be gone
        conn.send(data)


def _start_job(
    conn: socket.socket, listener: socket.socket, sel: selectors.BaseSelector, *wake: int
) -> int | None:
    """Receive one request and fork its child; None if the request was unusable."""
    fds: list[int] = []
    try:
        data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 20, 3)
        request = json.loads(data)
        if len(fds) != 3:
            raise ValueError(f"expected 3 file descriptors, got {len(fds)}")
    except (OSError, ValueError) as err:
        print(f"bad request: {err}", file=sys.stderr, flush=True)
        for fd in fds:
            os.close(fd)
        conn.close()
        return None
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for sock in [listener, *(key.fileobj for key in sel.get_map().values())]:
                if isinstance(sock, socket.socket):
                    sock.close()
            conn.close()
            for fd in wake:
                os.close(fd)
            code = _child(request, fds)
        except BaseException:  # report anything, then leave without clean-up
            traceback.print_exc()
        finally:
            os._exit(code)
    for fd in fds:
        os.close(fd)
    _send_quietly(conn, b"RUN")
    return pid


def _child(request: dict, fds: list[int]) -> int:
    """Become the stage process the client would have been; return its exit status."""
    global _serving
    _serving = True
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    sys.stdout.reconfigure(line_buffering=os.isatty(1))
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["-m", *request["argv"]]

    from imbalance.runtime import profile

    profile.set_origin(float(request["t0"]))
    code: int = 0
    try:
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    except SystemExit as done:
        if isinstance(done.code, int):
            code = done.code
        elif done.code is not None:
            print(done.code, file=sys.stderr)
            code = 1
    except BaseException:  # what an uncaught exception does in a process
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    return code


if __name__ == "__main__":
    # Through the imported module, not this ``__main__`` copy: the children's stage code
    # imports ``imbalance.runtime.warm`` and must see *its* ``_serving`` flag set.
    from imbalance.runtime import warm

    warm.serve(Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3:])
