"""Shared fixtures: tiny CIFAR-like data in every format fetch reads, a local HTTP server,
and throwaway git + DVC copies of the project.

Nothing here touches the network (the server binds 127.0.0.1) or the real data set, and
everything is deterministic (seeded images, fixed archive timestamps), so a fixture built
twice gives byte-identical files and the same SHA-256.

Factories are fixtures that return a function (pytest's "factory as fixture" pattern): a
test asks for ``make_image_folder`` and calls it with the sizes it needs. Synthetic images
are learnable on purpose: every class has its own mean colour (airplane bluish,
automobile reddish, others derived from the name) under per-pixel noise, so a few steps
of the real model on tiny data already separate the classes.

- ``make_python_archive(path, n_per_class_train, n_per_class_test, classes=CIFAR10_CLASSES)``
  builds a fake ``cifar-10-python.tar.gz`` in the official format (real member names,
  python-2 pickles with byte-string keys) and returns a :class:`FakeArchive` (its path,
  SHA-256 and the arrays fetch must decode from it). ``members=`` replaces or drops
  members, for damaged or hostile variants.
- ``make_image_folder(root, n_per_class_train, n_per_class_test, classes, fmt="png")``
  writes ``root/train/<class>/NNNN.png`` and ``root/test/<class>/...``;
  ``make_image_tar_gz`` / ``make_image_zip`` pack such a tree (under a top folder).
- ``http_server`` serves a directory on 127.0.0.1 (random port); ``truncate(name, n)``
  makes it send only the first ``n`` bytes of a file while announcing its full length.
- ``tiny_project`` is a git + DVC repository holding a copy of the project (dvc.yaml,
  params.yaml, blocks.yaml, stages/, imbalance/, .dvc/plots) with params rewritten to tiny data (see
  :data:`TINY_PARAMS`) and ``data.source`` pointing at a tiny image-folder .tar.gz; its
  ``dvc(...)`` and ``stage(...)`` helpers run commands inside it with this virtualenv's
  ``bin`` first on PATH.

The ``slow`` marker follows one rule (``./dev.sh test --fast`` leaves these out): a test is
slow when it trains a model, runs DVC (``dvc`` init/repro/exp/queue/..., as a command or
in-process) or starts a server or a pipeline of subprocesses (the warm-start server, a
training stage, the parallel runner on a project). Tests using a fixture that does so are
marked here (:data:`SLOW_FIXTURES`), whatever their module; anything else that does so
marks itself, and an unmarked test that does it fails (:func:`_forbid_slow_work`). A skip
whose reason is not in :data:`EXPECTED_SKIPS` fails the run: no test stops running unseen.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import itertools
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tarfile
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
if str(PROJECT_ROOT) not in sys.path:  # `pytest` finds the package as `python -m pytest` does
    sys.path.insert(0, str(PROJECT_ROOT))

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
TINY_CLASSES = ("airplane", "automobile", "bird")

# The offline JPEG copy of CIFAR-10 (see ../shared/data/README.md); tests using it skip
# when it is absent.
SHARED_ARCHIVE = PROJECT_ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
SHARED_ARCHIVE_SHA256 = "6c9b930289b4e49b2ec38c4eec6d8f11a272ce9d803b1c98018fbcc8682241ce"
SHARED_ARCHIVE_ABSENT = f"{SHARED_ARCHIVE} (offline CIFAR-10 copy) is absent"

# What `tiny_project` changes in a copy of params.yaml (dotted keys). Keys whose section
# is absent from params.yaml are skipped, so the fixture survives schema changes.
TINY_PARAMS: dict[str, Any] = {
    "seeds": [0, 1],
    "split.n_majority": 20,
    "split.n_minority": 6,
    "split.val_fraction": 0.25,  # holds out 5 of 20 and 2 of 6 per class
    "train.max_steps": 4,  # 2 checks of 2 steps (the natural sampler's epoch here)
    "train.check_every": 2,
    "train.batch_size": 16,
    "runtime.warm_idle_s": 10,  # every tiny project has its own warm server: short-lived
}
TINY_TRAIN, TINY_TEST = 30, 10  # images per class in the tiny_project source


def with_catalogue(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` params with every remedy of catalogue.yaml added (the tests cover all
    declared remedies, not only the default study's)."""
    catalogue = yaml.safe_load((PROJECT_ROOT / "catalogue.yaml").read_text())
    for section in ("remedies", "retrain"):
        raw[section] = {**raw[section], **catalogue[section]}
    return raw


# The two-remedy, two-seed grid the parallel and multi-machine tests run: small enough to
# train in seconds, large enough that the seeds are separate experiments / jobs.
TWO_REMEDY_GRID: dict[str, Any] = {
    "seeds": [0, 1],
    "remedies": {"baseline": {}, "class_weight": {"weights": {"kind": "balanced"}}},
    "retrain": {},
    "compare.reference": "baseline",
    "compare.also_against": [],
}
TWO_REMEDY_TRAIN_STAGES = {f"train@{r}-{s}" for r in ("baseline", "class_weight") for s in (0, 1)}

# ----------------------------------------------------------------------------- slow rule

#: Fixtures (``module::name``) that train, run DVC or start a pipeline; every test using
#: one (directly or through another fixture) is marked slow.
SLOW_FIXTURES = {
    "conftest::_tiny_template": "git + `dvc init` of a project copy (tiny_project)",
    "test_results_current::_synthetic_template": "`dvc repro` of a synthetic project",
    "test_results_current::project_copy": "`dvc init` of a project copy",
    "test_report::repo": "`dvc repro` of two commits",
    "test_train::trained": "trains two models",
}

#: Skips the suite expects, by reason prefix; any other skip fails the run.
EXPECTED_SKIPS = {
    # the real-data check; a synthetic archive of the same layout covers the logic
    # everywhere (tests/test_split.py)
    SHARED_ARCHIVE_ABSENT: "CI has no copy of CIFAR-10",
}

_SLOW_MODULES = ("dvc", "imbalance.tools.warm", "stages.train")


def _slow_command(args: Any) -> str | None:
    """What is slow about a command line (dvc, a training stage or the warm server), or
    None. The parallel runner is not listed: it runs nothing without a DVC project, and
    the tests that give it one use ``tiny_project``."""
    argv = [os.fspath(a) for a in args] if isinstance(args, list | tuple) else [str(args)]
    if not argv:
        return None
    if Path(argv[0]).name == "dvc":
        return "runs dvc"
    for flag, module in itertools.pairwise(argv):
        if flag == "-m" and module in _SLOW_MODULES:
            return f"runs python -m {module}"
    return None


_current: dict[str, pytest.Item | None] = {"item": None}


def _is_slow(item: pytest.Item | None) -> bool:
    return item is None or item.get_closest_marker("slow") is not None


def _forbid_slow_work() -> None:
    """Make subprocesses, Keras ``fit`` and DVC's ``reproduce`` fail in an unmarked test:
    the slow rule is checked, not trusted. Patched once per session; the test running
    (its setup included, so module and session fixtures count) is looked up per call."""

    def refuse(what: str) -> None:
        item = _current["item"]
        if not _is_slow(item):
            raise RuntimeError(
                f"{item.nodeid} {what} but is not marked slow: mark it "  # type: ignore[union-attr]
                "`@pytest.mark.slow`, or list its fixture in conftest.SLOW_FIXTURES"
            )

    original = subprocess.Popen._execute_child  # type: ignore[attr-defined]
    if getattr(original, "_slow_rule", False):
        return

    def execute_child(self: subprocess.Popen[Any], args: Any, *rest: Any, **kw: Any) -> Any:
        what = _slow_command(args)
        if what:
            refuse(what)
        return original(self, args, *rest, **kw)

    execute_child._slow_rule = True  # type: ignore[attr-defined]
    subprocess.Popen._execute_child = execute_child  # type: ignore[attr-defined]


def _guard_in_process(name: str, owner: Any, attribute: str, what: str) -> None:
    """Wrap ``owner.attribute`` (once) so an unmarked test calling it fails."""
    original = getattr(owner, attribute)
    if getattr(original, "_slow_rule", False):
        return

    @functools.wraps(original)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        item = _current["item"]
        if not _is_slow(item):
            raise RuntimeError(
                f"{item.nodeid} {what} ({name}) but is not marked slow: mark it "  # type: ignore[union-attr]
                "`@pytest.mark.slow`, or list its fixture in conftest.SLOW_FIXTURES"
            )
        return original(*args, **kwargs)

    guarded._slow_rule = True  # type: ignore[attr-defined]
    setattr(owner, attribute, guarded)


def pytest_configure(config: pytest.Config) -> None:
    _forbid_slow_work()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark slow every test that uses a fixture of :data:`SLOW_FIXTURES`."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        for name in item.fixturenames:  # the closure: fixtures of fixtures too
            for fixturedef in info.name2fixturedefs.get(name, ()):
                func = getattr(fixturedef, "func", None)
                module = getattr(func, "__module__", "").rsplit(".", 1)[-1]
                if f"{module}::{name}" in SLOW_FIXTURES:
                    item.add_marker(pytest.mark.slow)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    _current["item"] = item
    # libraries the test module imported (Keras, DVC) are guarded once they are loaded
    if "keras" in sys.modules:
        keras = sys.modules["keras"]
        _guard_in_process("keras.Model.fit", keras.Model, "fit", "trains a model")
    if "dvc.repo" in sys.modules:
        repo = sys.modules["dvc.repo"].Repo
        _guard_in_process("dvc Repo.reproduce", repo, "reproduce", "runs dvc")
    try:
        return (yield)
    finally:
        _current["item"] = None


_unexpected_skips: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect skips whose reason is not in :data:`EXPECTED_SKIPS`."""
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    if not any(reason.startswith(expected) for expected in EXPECTED_SKIPS):
        _unexpected_skips.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run on an unexpected skip (``-ra`` lists every skip with its reason)."""
    if _unexpected_skips and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _unexpected_skips:
        terminalreporter.section("unexpected skips (not in conftest.EXPECTED_SKIPS): failing")
        for line in _unexpected_skips:
            terminalreporter.line(line)


# ----------------------------------------------------------------------------- images

_COLOURS = {"airplane": (70, 110, 170), "automobile": (190, 70, 60)}


def class_colour(name: str) -> np.ndarray:
    """A class's mean RGB colour: fixed for the two study classes, derived from the name else."""
    if name in _COLOURS:
        return np.array(_COLOURS[name], dtype=np.float64)
    h = zlib.crc32(name.encode())
    return np.array([40 + h % 176, 40 + (h >> 8) % 176, 40 + (h >> 16) % 176], dtype=np.float64)


def synthetic_images(n: int, name: str, *, side: str = "train", seed: int = 0) -> np.ndarray:
    """``n`` deterministic 32×32 RGB uint8 images of class ``name`` (colour + noise)."""
    rng = np.random.default_rng([seed, zlib.crc32(side.encode()), zlib.crc32(name.encode())])
    noise = rng.normal(0.0, 40.0, size=(n, 32, 32, 3))
    brightness = rng.normal(0.0, 15.0, size=(n, 1, 1, 1))
    return np.clip(class_colour(name) + noise + brightness, 0, 255).astype(np.uint8)


def encode_image(pixels: np.ndarray, fmt: str = "png") -> bytes:
    """PNG or JPEG bytes of one H×W×3 (or H×W) uint8 array."""
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG" if fmt in ("jpg", "jpeg") else fmt.upper())
    return out.getvalue()


# ----------------------------------------------------------------------------- python archive


class _Py2Pickler(pickle._Pickler):  # type: ignore[name-defined]  # the pure-python pickler
    """Writes pickles the way Python 2's cPickle (protocol 2) wrote CIFAR-10's.

    Python 2 ``str`` (bytes and text alike) is a BINSTRING opcode, which Python 3 loads
    as ``bytes`` with ``encoding="bytes"``; numpy's ``_reconstruct`` lives in
    ``numpy.core.multiarray``, as it did then. Python 3's own protocol 2 would write
    bytes through ``_codecs.encode`` instead, which the real archive never contains.
    """

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def save_py2_str(self, obj: bytes | str) -> None:
        data = obj if isinstance(obj, bytes) else obj.encode("latin-1")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str

    def save_global(self, obj: Any, name: str | None = None) -> None:
        name = name or obj.__qualname__
        module = pickle.whichmodule(obj, name)
        module = {"numpy._core.multiarray": "numpy.core.multiarray"}.get(module, module)
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())
        self.memoize(obj)


def py2_pickle(obj: Any) -> bytes:
    """``obj`` pickled like the official CIFAR-10 batches (see :class:`_Py2Pickler`)."""
    out = io.BytesIO()
    _Py2Pickler(out, protocol=2).dump(obj)
    return out.getvalue()


@dataclass(frozen=True)
class FakeArchive:
    """A fake official archive and the arrays fetch must decode from it."""

    path: Path
    sha256: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _images_and_labels(
    n_per_class: int, classes: tuple[str, ...], side: str, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([synthetic_images(n_per_class, c, side=side, seed=seed) for c in classes])
    y = np.repeat(np.arange(len(classes), dtype=np.int64), n_per_class)
    order = np.random.default_rng([seed, 7]).permutation(len(y))  # CIFAR batches are mixed
    return x[order], y[order]


def build_python_archive(
    path: Path,
    n_per_class_train: int,
    n_per_class_test: int,
    classes: tuple[str, ...] = CIFAR10_CLASSES,
    *,
    seed: int = 0,
    members: dict[str, Any] | None = None,
) -> FakeArchive:
    """Write a tiny ``cifar-10-python.tar.gz`` in the official layout and format.

    Members: ``cifar-10-batches-py/`` (directory), ``data_batch_1`` .. ``data_batch_5``
    (the training images split in five), ``test_batch``, ``batches.meta``,
    ``readme.html``. Each batch is a py2 pickle of ``{b"batch_label", b"labels",
    b"data" (N×3072 uint8, channel-major R, G, B planes), b"filenames"}``.

    ``members`` maps a member's base name to a replacement: ``bytes`` are stored as they
    are, ``None`` drops the member, anything else is py2-pickled. The returned arrays
    describe the unmodified archive.
    """
    path = Path(path)
    classes = tuple(classes)
    x_train, y_train = _images_and_labels(n_per_class_train, classes, "train", seed)
    x_test, y_test = _images_and_labels(n_per_class_test, classes, "test", seed)

    def batch(label: str, x: np.ndarray, y: np.ndarray, first: int) -> dict[bytes, Any]:
        return {
            b"batch_label": label.encode(),
            b"labels": [int(v) for v in y],
            b"data": np.ascontiguousarray(x.transpose(0, 3, 1, 2).reshape(len(x), 3072)),
            b"filenames": [f"image_{first + i:05d}.png".encode() for i in range(len(x))],
        }

    content: dict[str, Any] = {}
    starts = np.linspace(0, len(y_train), 6).astype(int)
    for i in range(5):
        a, b = starts[i], starts[i + 1]
        content[f"data_batch_{i + 1}"] = batch(
            f"training batch {i + 1} of 5", x_train[a:b], y_train[a:b], a
        )
    content["test_batch"] = batch("testing batch 1 of 1", x_test, y_test, 0)
    content["batches.meta"] = {
        b"num_cases_per_batch": max(1, int(starts[1])),
        b"label_names": [c.encode() for c in classes],
        b"num_vis": 3072,
    }
    content["readme.html"] = b"<meta HTTP-EQUIV='REFRESH' content='0; url=...'>\n"
    content.update(members or {})

    files = {}
    for name, value in content.items():
        if value is None:
            continue
        files[f"cifar-10-batches-py/{name}"] = (
            value if isinstance(value, bytes) else py2_pickle(value)
        )
    write_tar_gz(path, files, dirs=["cifar-10-batches-py"])
    return FakeArchive(path, sha256_of(path), x_train, y_train, x_test, y_test, classes)


# ----------------------------------------------------------------------------- archives


def write_tar_gz(
    path: Path,
    files: dict[str, bytes],
    *,
    dirs: list[str] | tuple[str, ...] = (),
    extra: Callable[[tarfile.TarFile], None] | None = None,
) -> Path:
    """A deterministic .tar.gz (mtime 0, root-owned) of ``files`` (name -> bytes).

    ``extra(tar)`` may add hand-made members (links, devices, hostile names) at the end.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar,
    ):
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        if extra is not None:
            extra(tar)
    return path


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    """A deterministic zip (fixed timestamps, deflated) of ``files`` (name -> bytes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return path


def tree_files(root: Path, top: str | None = None) -> dict[str, bytes]:
    """Every file under ``root`` as {relative posix name (under ``top/``): bytes}, sorted."""
    root = Path(root)
    prefix = f"{top}/" if top else ""
    return {
        prefix + p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def tree_dirs(root: Path, top: str | None = None) -> list[str]:
    root = Path(root)
    dirs = [top] if top else []
    prefix = f"{top}/" if top else ""
    return dirs + [
        prefix + p.relative_to(root).as_posix() for p in sorted(root.rglob("*")) if p.is_dir()
    ]


def build_image_folder(
    root: Path,
    n_per_class_train: int,
    n_per_class_test: int,
    classes: tuple[str, ...] = TINY_CLASSES,
    fmt: str = "png",
    *,
    seed: int = 0,
) -> Path:
    """Write ``root/{train,test}/<class>/NNNN.<fmt>`` (32×32 RGB, learnable colours)."""
    root = Path(root)
    for side, n in (("train", n_per_class_train), ("test", n_per_class_test)):
        for cls in classes:
            folder = root / side / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i, pixels in enumerate(synthetic_images(n, cls, side=side, seed=seed)):
                (folder / f"{i:04d}.{fmt}").write_bytes(encode_image(pixels, fmt))
    return root


def pack_tar_gz(src: Path, dest: Path, *, top: str | None = "cifar-tiny") -> Path:
    """Pack an image-folder tree as a deterministic .tar.gz (under ``top/`` if given)."""
    return write_tar_gz(dest, tree_files(src, top), dirs=tree_dirs(src, top))


def pack_zip(src: Path, dest: Path, *, top: str | None = "cifar-tiny") -> Path:
    """Pack an image-folder tree as a deterministic .zip (under ``top/`` if given)."""
    return write_zip(dest, tree_files(src, top))


@pytest.fixture
def make_python_archive() -> Callable[..., FakeArchive]:
    """``make_python_archive(path, n_train, n_test, classes=CIFAR10_CLASSES, members=...)``."""
    return build_python_archive


@pytest.fixture
def make_image_folder() -> Callable[..., Path]:
    """``make_image_folder(root, n_train, n_test, classes=TINY_CLASSES, fmt="png")`` -> root."""
    return build_image_folder


def _packed_folder_factory(
    tmp_path_factory: pytest.TempPathFactory, pack: Callable[..., Path]
) -> Callable[..., Path]:
    """A factory building a tiny image folder and packing it with ``pack``."""

    def make(
        dest: Path,
        n_per_class_train: int,
        n_per_class_test: int,
        classes: tuple[str, ...] = TINY_CLASSES,
        fmt: str = "png",
        *,
        top: str | None = "cifar-tiny",
    ) -> Path:
        tree = build_image_folder(
            tmp_path_factory.mktemp("tree"), n_per_class_train, n_per_class_test, classes, fmt
        )
        return pack(tree, dest, top=top)

    return make


@pytest.fixture
def make_image_tar_gz(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``make_image_tar_gz(dest, n_train, n_test, classes=..., fmt="png", top="cifar-tiny")``."""
    return _packed_folder_factory(tmp_path_factory, pack_tar_gz)


@pytest.fixture
def make_image_zip(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``make_image_zip(dest, n_train, n_test, classes=..., fmt="png", top="cifar-tiny")``."""
    return _packed_folder_factory(tmp_path_factory, pack_zip)


# ----------------------------------------------------------------------------- HTTP server


class LocalHTTPServer:
    """A static file server on 127.0.0.1 for download tests (no network involved).

    Put files in :attr:`root` (or use :meth:`add`); :attr:`requests` lists the paths
    asked for, in order.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.requests: list[str] = []
        self._truncated: dict[str, int] = {}
        handler = functools.partial(_Handler, directory=str(self.root), server_state=self)
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def add(self, name: str, content: bytes | Path) -> str:
        """Serve ``content`` (bytes, or a file to copy) as ``name``; returns its URL."""
        data = content if isinstance(content, bytes) else Path(content).read_bytes()
        (self.root / name).parent.mkdir(parents=True, exist_ok=True)
        (self.root / name).write_bytes(data)
        return self.url(name)

    def truncate(self, name: str, nbytes: int) -> None:
        """Send only the first ``nbytes`` of ``name`` (announcing the full size), then hang up."""
        self._truncated[name] = nbytes

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class _Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args: Any, server_state: LocalHTTPServer, **kwargs: Any) -> None:
        self.state = server_state
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        name = self.path.lstrip("/")
        self.state.requests.append(name)
        cut = self.state._truncated.get(name)
        if cut is None:
            super().do_GET()
            return
        data = (self.state.root / name).read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[:cut])
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass


@pytest.fixture
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHTTPServer]:
    """A :class:`LocalHTTPServer` serving a fresh temporary directory."""
    server = LocalHTTPServer(tmp_path_factory.mktemp("served"))
    try:
        yield server
    finally:
        server.close()


# ----------------------------------------------------------------------------- tiny project


def set_dotted(mapping: dict[str, Any], key: str, value: Any) -> None:
    """``set_dotted(p, "split.n_minority", 3)``: set a nested key (sections must exist)."""
    *parents, last = key.split(".")
    node = mapping
    for part in parents:
        node = node[part]
    node[last] = value


def tool_env() -> dict[str, str]:
    """Environment for commands in a tiny project: this venv's bin first on PATH, no
    analytics, a git identity for commits (dvc exp), no stray bytecode in the copy."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        DVC_NO_ANALYTICS="1",
        PYTHONDONTWRITEBYTECODE="1",
        GIT_AUTHOR_NAME="tests",
        GIT_AUTHOR_EMAIL="tests@example.invalid",
        GIT_COMMITTER_NAME="tests",
        GIT_COMMITTER_EMAIL="tests@example.invalid",
    )
    env.pop("IMBALANCE_PROFILE", None)
    return env


def live_pids(predicate: Callable[[list[bytes], Path], bool]) -> set[int]:
    """PIDs of live (not zombie) processes whose (argv, cwd) satisfy ``predicate``; tests
    that kill or wait for processes must pick only their own (other pipelines may run)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            cwd = (entry / "cwd").resolve()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and predicate(argv, cwd):
            found.add(int(entry.name))
    return found


@dataclass
class TinyProject:
    """A git + DVC repository holding a copy of the project, set up for tiny data.

    ``source`` is the tiny image-folder archive ``data.source`` points at (shared by all
    tiny projects of a session: do not modify it). Class names: :data:`TINY_CLASSES`,
    :data:`TINY_TRAIN` training and :data:`TINY_TEST` test images per class.
    """

    root: Path
    source: Path

    def run(self, *cmd: str | Path, timeout: float = 1500) -> subprocess.CompletedProcess[str]:
        """Run a command in the project (never raises on failure: check ``returncode``).

        The limit is for a hung command, not a speed target: a tiny study of every declared
        remedy (params.yaml + catalogue.yaml, ~60 stages) took over 600 s on a loaded
        2-core machine."""
        return subprocess.run(
            [str(c) for c in cmd],
            cwd=self.root,
            env=tool_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def dvc(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``dvc <args>`` in the project, with this venv's dvc and python."""
        return self.run(VENV_BIN / "dvc", *args)

    def git(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("git", *args)

    def stage(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``python -m stages.<name> <args>`` in the project, as DVC would run it."""
        return self.run(sys.executable, "-m", f"stages.{name}", *args)

    def params(self) -> dict[str, Any]:
        return yaml.safe_load((self.root / "params.yaml").read_text())

    def set_params(self, updates: dict[str, Any]) -> None:
        """Change params.yaml: ``{"split.n_minority": 3, "data.sources.tiny.sha256": ""}``."""
        p = self.params()
        for key, value in updates.items():
            set_dotted(p, key, value)
        (self.root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))

    def files(self) -> set[str]:
        """Every file outside .git/ and .dvc/ (relative paths), to spot new outputs."""
        return {p for p in self.paths() if not p.endswith("/")}

    def paths(self) -> set[str]:
        """:meth:`files` plus every directory (with a trailing ``/``): an empty temp
        directory left behind shows up here."""
        found = set()
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel = Path(dirpath).relative_to(self.root)
            if rel == Path("."):
                dirnames[:] = [d for d in dirnames if d not in (".git", ".dvc")]
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            found.update(f"{(rel / d).as_posix()}/" for d in dirnames)
            found.update((rel / f).as_posix() for f in filenames)
        return found


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """Assert a command in a tiny project succeeded; return its stdout."""
    assert result.returncode == 0, (
        f"{result.args}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result.stdout


def _copy_project(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in (
        "dvc.yaml",
        "params.yaml",
        "blocks.yaml",
        ".gitignore",
        ".dvcignore",
        "pyproject.toml",
    ):
        if (PROJECT_ROOT / name).exists():
            shutil.copy2(PROJECT_ROOT / name, dest / name)
    for name in ("stages", "imbalance"):
        shutil.copytree(PROJECT_ROOT / name, dest / name, ignore=ignore)
    (dest / "blocks.yaml").write_text(blocks_yaml_without_blocks())


def blocks_yaml_without_blocks() -> str:
    """The committed blocks.yaml (settings, comments) with no block: the study's seed
    blocks (seeds 5-14 of the real study) are its results, not a test project's input."""
    head, _, _ = (PROJECT_ROOT / "blocks.yaml").read_text().rpartition("\nsequential_blocks:")
    return head + "\nsequential_blocks: {}\n"


def _check(result: subprocess.CompletedProcess[str]) -> None:
    if result.returncode != 0:
        raise RuntimeError(f"{result.args} failed:\n{result.stdout}\n{result.stderr}")


@pytest.fixture(scope="session")
def _tiny_template(tmp_path_factory: pytest.TempPathFactory) -> TinyProject:
    """Built once per session (git init, dvc init, commit); each test gets a copy."""
    base = tmp_path_factory.mktemp("tiny")
    tree = build_image_folder(base / "tree", TINY_TRAIN, TINY_TEST, TINY_CLASSES, "png")
    source = pack_tar_gz(tree, base / "sources" / "cifar-tiny.tar.gz", top="cifar-tiny")
    root = base / "project"
    root.mkdir()
    _copy_project(root)
    project = TinyProject(root, source)
    updates = {
        "data.sources.tiny": {"location": str(source), "sha256": sha256_of(source)},
        "data.source": "tiny",
    }
    # every declared remedy (the catalogue's too), and a remedy's own budget cut to the
    # tiny run's
    current = with_catalogue(project.params())
    updates |= {"remedies": current["remedies"], "retrain": current["retrain"]}
    for name, spec in current["remedies"].items():
        if isinstance(spec, dict) and "max_steps" in spec.get("budget", {}):
            updates[f"remedies.{name}.budget.max_steps"] = TINY_PARAMS["train.max_steps"]
    for key, value in TINY_PARAMS.items():
        section = key.split(".")[0]
        if "." not in key or (section in current and key.split(".", 1)[1] in current[section]):
            updates[key] = value
    project.set_params(updates)
    _check(project.git("init", "-q"))
    _check(project.dvc("init", "-q"))
    if (PROJECT_ROOT / ".dvc" / "plots").is_dir():  # custom plot templates dvc.yaml uses
        shutil.copytree(PROJECT_ROOT / ".dvc" / "plots", root / ".dvc" / "plots")
    _check(project.git("add", "-A"))
    _check(project.git("commit", "-q", "-m", "tiny project"))
    return project


@pytest.fixture
def tiny_project(_tiny_template: TinyProject, tmp_path: Path) -> TinyProject:
    """A fresh copy of the tiny git + DVC project for this test (see :class:`TinyProject`)."""
    root = tmp_path / "project"
    shutil.copytree(_tiny_template.root, root, symlinks=True)
    return TinyProject(root, _tiny_template.source)
