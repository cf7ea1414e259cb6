"""The fetch stage: every source kind, verification, safe extraction, and the bad-input battery.

Library behaviour is tested in-process on tiny data; every error path also runs the real
stage (``python -m stages.fetch`` in a tiny project) and checks what a user sees: exit
status 2, exactly one ``error:`` line naming the problem, and no new file anywhere. No
test needs the network (downloads come from a server on 127.0.0.1) or TensorFlow.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import shutil
import socket
import stat
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    TINY_CLASSES,
    LocalHTTPServer,
    TinyProject,
    build_image_folder,
    build_python_archive,
    encode_image,
    pack_tar_gz,
    pack_zip,
    py2_pickle,
    sha256_of,
    synthetic_images,
    tree_dirs,
    tree_files,
    write_tar_gz,
    write_zip,
)

from imbalance.cli import UserError
from imbalance.data import cifar_archive, extract, fetch, image_folder
from imbalance.layout import Layout

CAP = 10**9
TINY3 = TINY_CLASSES  # airplane, automobile, bird


# ----------------------------------------------------------------------------- helpers


def stage_error(project: TinyProject, *fragments: str) -> str:
    """Run the fetch stage, expecting a clean failure; return its one error line."""
    before = project.paths()
    result = project.stage("fetch")
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert project.paths() == before, "the failed stage left files behind"
    assert not (project.root / "data" / "raw").exists()
    return errors[0]


def tiny_tree(tmp_path: Path, name: str = "tree", classes: tuple[str, ...] = TINY3) -> Path:
    return build_image_folder(tmp_path / name, 4, 2, classes)


# ----------------------------------------------------------------------------- download


def test_download_verifies_decodes_and_shows_progress(
    tmp_path: Path, http_server: LocalHTTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = build_python_archive(tmp_path / "cifar-10-python.tar.gz", 3, 2)
    url = http_server.add("cifar-10-python.tar.gz", archive.path)

    got = fetch.fetch(url, archive.sha256, CAP)

    assert got.kind == cifar_archive.KIND and got.verified and got.sha256 == archive.sha256
    assert got.data.class_names == archive.class_names
    np.testing.assert_array_equal(got.data.x_train, archive.x_train)
    np.testing.assert_array_equal(got.data.y_train, archive.y_train)
    np.testing.assert_array_equal(got.data.x_test, archive.x_test)
    np.testing.assert_array_equal(got.data.y_test, archive.y_test)
    assert got.data.x_train.dtype == np.uint8 and got.data.y_train.dtype == np.int64
    assert got.data.x_train.shape == (30, 32, 32, 3)
    err = capsys.readouterr().err
    assert "download cifar-10-python.tar.gz" in err and "100%" in err
    assert http_server.requests == ["cifar-10-python.tar.gz"]


def test_python_archive_keeps_its_own_class_order(tmp_path: Path) -> None:
    """Labels index batches.meta's names, which need not be sorted."""
    archive = build_python_archive(
        tmp_path / "a.tar.gz", 2, 1, classes=("truck", "airplane", "cat")
    )
    got = fetch.fetch(str(archive.path), archive.sha256, CAP)
    assert got.data.class_names == ("truck", "airplane", "cat")
    np.testing.assert_array_equal(got.data.y_train, archive.y_train)
    # channel-major planes became H×W×C: a truck image has truck's mean colour
    first_truck = got.data.x_train[got.data.y_train == 0][0]
    np.testing.assert_array_equal(first_truck, archive.x_train[archive.y_train == 0][0])


def test_stage_downloads_into_data_raw(
    tiny_project: TinyProject, http_server: LocalHTTPServer, tmp_path: Path
) -> None:
    archive = build_python_archive(tmp_path / "cifar-10-python.tar.gz", 2, 1)
    url = http_server.add("cifar-10-python.tar.gz", archive.path)
    tiny_project.set_params(
        {"data.sources.tiny.location": url, "data.sources.tiny.sha256": archive.sha256}
    )

    result = tiny_project.stage("fetch")

    assert result.returncode == 0, result.stderr
    assert "100%" in result.stderr  # the progress bar reaches stderr
    raw = tiny_project.root / "data" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == ["cifar10.npz", "manifest.json"]
    manifest = json.loads((raw / "manifest.json").read_text())
    assert manifest == {
        "source": url,
        "sha256": archive.sha256,
        "verified": True,
        "kind": "cifar10-python",
        "class_names": list(archive.class_names),
        "counts": {
            "train": dict.fromkeys(archive.class_names, 2),
            "test": dict.fromkeys(archive.class_names, 1),
        },
    }
    with np.load(raw / "cifar10.npz", allow_pickle=False) as npz:
        assert npz["class_names"].dtype.kind == "U"
        assert list(npz["class_names"]) == list(archive.class_names)
        np.testing.assert_array_equal(npz["x_train"], archive.x_train)
        assert npz["y_train"].dtype == np.int64


def test_wrong_checksum_from_url_leaves_nothing(
    tiny_project: TinyProject, http_server: LocalHTTPServer, tmp_path: Path
) -> None:
    archive = build_python_archive(tmp_path / "cifar-10-python.tar.gz", 2, 1)
    url = http_server.add("cifar-10-python.tar.gz", archive.path)
    tiny_project.set_params(
        {"data.sources.tiny.location": url, "data.sources.tiny.sha256": "0" * 64}
    )
    stage_error(tiny_project, "data.sources.tiny.sha256:", archive.sha256, "nothing in it was read")


def test_a_source_name_that_is_not_an_entry_is_one_line(tiny_project: TinyProject) -> None:
    tiny_project.set_params({"data.source": "offical"})
    stage_error(tiny_project, "data.source is 'offical'", "choose one of", "'tiny'")


def test_truncated_download_fails_and_keeps_nothing(
    tiny_project: TinyProject, http_server: LocalHTTPServer, tmp_path: Path
) -> None:
    archive = build_python_archive(tmp_path / "cifar-10-python.tar.gz", 2, 1)
    url = http_server.add("cifar-10-python.tar.gz", archive.path)
    http_server.truncate("cifar-10-python.tar.gz", archive.path.stat().st_size // 2)
    tiny_project.set_params(
        {"data.sources.tiny.location": url, "data.sources.tiny.sha256": archive.sha256}
    )
    stage_error(tiny_project, "data.sources.tiny.location:", "cut short", "nothing was kept")


def test_interrupted_download_leaves_no_file_for_a_later_run(
    tmp_path: Path, http_server: LocalHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The download goes to a private temp dir, removed on failure; no cache is reused."""
    archive = build_python_archive(tmp_path / "cifar-10-python.tar.gz", 2, 1)
    url = http_server.add("cifar-10-python.tar.gz", archive.path)
    http_server.truncate("cifar-10-python.tar.gz", 100)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))
    with pytest.raises(UserError, match="cut short"):
        fetch.fetch(url, archive.sha256, CAP, progress=False)
    assert list(scratch.iterdir()) == []
    http_server._truncated.clear()  # the next run downloads the whole file again
    assert fetch.fetch(url, archive.sha256, CAP, progress=False).sha256 == archive.sha256
    assert http_server.requests == ["cifar-10-python.tar.gz"] * 2


# ----------------------------------------------------------------------------- image folders


def test_image_folder_dir_tar_zip_give_identical_arrays(tmp_path: Path) -> None:
    tree = build_image_folder(tmp_path / "tree", 5, 3, ("cat", "airplane", "bird"))
    tgz = pack_tar_gz(tree, tmp_path / "t.tar.gz", top="cifar-tiny")
    flat_tgz = pack_tar_gz(tree, tmp_path / "flat.tar.gz", top=None)
    zipped = pack_zip(tree, tmp_path / "t.zip", top="cifar-tiny")
    results = [
        fetch.fetch(str(tree), "", CAP),
        fetch.fetch(str(tgz), sha256_of(tgz), CAP),
        fetch.fetch(str(flat_tgz), "", CAP),
        fetch.fetch(str(zipped), "", CAP),
    ]
    first = results[0].data
    assert first.class_names == ("airplane", "bird", "cat")  # folder names, sorted
    assert first.counts() == {
        "train": {"airplane": 5, "bird": 5, "cat": 5},
        "test": {"airplane": 3, "bird": 3, "cat": 3},
    }
    # sorted by class then file name: image 0 of train is airplane/0000.png
    np.testing.assert_array_equal(first.x_train[0], synthetic_images(5, "airplane")[0])
    for other in results[1:]:
        assert other.kind == image_folder.KIND
        for field in ("x_train", "y_train", "x_test", "y_test"):
            np.testing.assert_array_equal(getattr(other.data, field), getattr(first, field))
    assert results[1].verified and results[1].sha256 == sha256_of(tgz)
    assert not results[0].verified and len(results[0].sha256) == 64  # tree digest


def test_jpeg_folder_and_litter_is_ignored(tmp_path: Path) -> None:
    tree = build_image_folder(tmp_path / "tree", 3, 2, ("airplane", "automobile"), fmt="jpg")
    (tree / "README.md").write_text("about this data")
    (tree / "train" / "airplane" / ".DS_Store").write_bytes(b"\0\1")
    (tree / "__MACOSX").mkdir()
    (tree / "__MACOSX" / "._0000.jpg").write_bytes(b"junk")
    got = fetch.fetch(str(tree), "", CAP)
    assert got.data.x_train.shape == (6, 32, 32, 3)
    assert got.data.class_names == ("airplane", "automobile")
    # JPEG is lossy but the class colours survive: airplane is bluer than automobile
    air, car = (got.data.x_train[got.data.y_train == i].mean(axis=(0, 1, 2)) for i in (0, 1))
    assert air[2] > car[2] and car[0] > air[0]


def test_decoding_in_the_process_pool_matches_serial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = build_image_folder(tmp_path / "tree", 7, 3, ("airplane", "automobile"))
    serial = fetch.fetch(str(tree), "", CAP).data
    monkeypatch.setattr(image_folder, "DECODE_CHUNK", 4)  # 20 images -> 5 jobs over 2 workers
    pooled = fetch.fetch(str(tree), "", CAP).data
    np.testing.assert_array_equal(pooled.x_train, serial.x_train)
    np.testing.assert_array_equal(pooled.x_test, serial.x_test)


def test_pool_reports_a_bad_image_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = build_image_folder(tmp_path / "tree", 7, 3, ("airplane", "automobile"))
    (tree / "train" / "automobile" / "0005.png").write_bytes(b"garbage")
    monkeypatch.setattr(image_folder, "DECODE_CHUNK", 4)
    with pytest.raises(UserError, match=r"train/automobile/0005\.png: not a readable PNG"):
        fetch.fetch(str(tree), "", CAP)


def test_write_raw_is_all_or_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = build_image_folder(tmp_path / "tree", 2, 1, ("airplane", "automobile"))
    fetched = fetch.fetch(str(tree), "", CAP)
    layout = Layout(tmp_path)
    out = layout.raw_dir
    fetch.write_raw(layout, fetched, str(tree))
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(fetch.files, "write_json", broken)
    with pytest.raises(OSError, match="disk full"):
        fetch.write_raw(layout, fetched, "changed")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["raw"]  # no temp dirs left


# ----------------------------------------------------------------------------- unpickler


class _Evil:
    """Unpickling this runs a shell command, unless an allow-list stops it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_allow_list_loads_arrays_and_refuses_code(tmp_path: Path) -> None:
    batch = {b"data": np.arange(6, dtype=np.uint8).reshape(2, 3), b"labels": [0, 1]}
    loaded = extract.load_pickle(py2_pickle(batch), "x")
    np.testing.assert_array_equal(loaded[b"data"], batch[b"data"])
    marker = tmp_path / "pwned"
    with pytest.raises(UserError, match=r"asks for (posix|os)\.system"):
        extract.load_pickle(pickle.dumps(_Evil(marker), protocol=2), "x")
    assert not marker.exists()


# ----------------------------------------------------------------------------- hostile archives


def _tree_tar(tmp_path: Path, name: str, extra: Callable[[tarfile.TarFile], None]) -> Path:
    tree = tiny_tree(tmp_path)
    return write_tar_gz(
        tmp_path / name,
        tree_files(tree, "cifar-tiny"),
        dirs=tree_dirs(tree, "cifar-tiny"),
        extra=extra,
    )


def _member(name: str, data: bytes = b"x", **attrs: object) -> Callable[[tarfile.TarFile], None]:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data) if attrs.get("type", tarfile.REGTYPE) == tarfile.REGTYPE else 0
        for key, value in attrs.items():
            setattr(info, key, value)
        tar.addfile(info, io.BytesIO(data) if info.size else None)

    return add


def _zip_with(tmp_path: Path, name: str, extra: list[tuple[zipfile.ZipInfo, bytes]]) -> Path:
    path = write_zip(tmp_path / name, tree_files(tiny_tree(tmp_path), "cifar-tiny"))
    with zipfile.ZipFile(path, "a") as zf:
        for info, data in extra:
            zf.writestr(info, data)
    return path


def _zip_symlink() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("cifar-tiny/train/airplane/link.png")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def _lying_zip(tmp_path: Path) -> Path:
    """A zip whose last member inflates to 3 MB while its headers claim 100 bytes."""
    path = _zip_with(
        tmp_path, "lying.zip", [(zipfile.ZipInfo("cifar-tiny/pad.bin"), b"\0" * 3_000_000)]
    )
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("cifar-tiny/pad.bin")
    data[info.header_offset + 22 : info.header_offset + 26] = (100).to_bytes(4, "little")
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = (100).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    return path


def _gzip_bomb(tmp_path: Path) -> Path:
    return _tree_tar(tmp_path, "bomb.tar.gz", _member("cifar-tiny/pad.bin", b"\0" * 3_000_000))


# Each case: (build(tmp_path, server) -> params to set, fragments the error line must contain)
Case = Callable[[Path, LocalHTTPServer], dict[str, object]]


def _source(path: Path | str, sha256: str = "") -> dict[str, object]:
    return {"data.sources.tiny.location": str(path), "data.sources.tiny.sha256": sha256}


def _archive(tmp_path: Path, members: dict[str, object] | None = None) -> dict[str, object]:
    archive = build_python_archive(tmp_path / "cifar-10-python.tar.gz", 2, 1, members=members)
    return _source(archive.path, archive.sha256)


def _tree_with(change: Callable[[Path], None]) -> Case:
    def build(tmp_path: Path, server: LocalHTTPServer) -> dict[str, object]:
        tree = tiny_tree(tmp_path)
        change(tree)
        return _source(tree)

    return build


def _truncate_file(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/cifar-10-python.tar.gz"


BATTERY: dict[str, tuple[Case, tuple[str, ...]]] = {
    # --- verification and transport
    "wrong-checksum": (
        lambda t, s: {**_archive(t), "data.sources.tiny.sha256": "ab" * 32},
        ("data.sources.tiny.sha256:", "not the configured abab", "nothing in it was read"),
    ),
    "empty-sha256-python-archive": (
        lambda t, s: {**_archive(t), "data.sources.tiny.sha256": ""},
        (
            "data.sources.tiny.sha256: empty, but",
            "CIFAR-10 python archive",
            cifar_archive.OFFICIAL_SHA256,
        ),
    ),
    "truncated-archive": (
        lambda t, s: _source(_truncated(pack_tar_gz(tiny_tree(t), t / "cut.tar.gz"))),
        ("not a readable .tar.gz archive", "truncated or corrupt"),
    ),
    "not-gzip": (
        lambda t, s: _source(_write(t / "cifar-10-python.tar.gz", b"<html>Not Found</html>")),
        ("neither a gzip-compressed tar nor a zip archive", "b'<htm'"),
    ),
    "gzip-but-not-tar": (
        lambda t, s: _source(_write(t / "x.tar.gz", gzip.compress(b"hello, world" * 100))),
        ("not a readable .tar.gz archive",),
    ),
    "missing-source": (lambda t, s: _source(t / "nowhere.tar.gz"), ("does not exist",)),
    "sha256-for-a-directory": (
        lambda t, s: _source(tiny_tree(t), "ab" * 32),
        ("data.sources.tiny.sha256: set, but", "is a directory"),
    ),
    "http-404": (
        lambda t, s: _source(s.url("missing.tar.gz"), "ab" * 32),
        ("HTTP 404",),
    ),
    "connection-refused": (
        lambda t, s: _source(_closed_port_url(), "ab" * 32),
        ("cannot reach",),
    ),
    "download-over-cap": (
        lambda t, s: {
            **_source(s.add("big.tar.gz", b"\x1f\x8b" + bytes(5000)), "ab" * 32),
            "data.max_extract_bytes": 1000,
        },
        ("data.max_extract_bytes:", "sends more than 1000 bytes"),
    ),
    "unsupported-scheme": (
        lambda t, s: _source("ftp://example.invalid/cifar.tar.gz", "ab" * 32),
        ("unsupported URL scheme 'ftp'",),
    ),
    # --- python archive contents (checksum configured to match)
    "malicious-pickle": (
        lambda t, s: _archive(t, {"data_batch_1": pickle.dumps(_Evil(t / "pwned"), protocol=2)}),
        ("data_batch_1: the pickle asks for", "system", "allow-list refuses"),
    ),
    "batch-not-a-dict": (
        lambda t, s: _archive(t, {"data_batch_2": [1, 2, 3]}),
        ("data_batch_2: holds a list, not the CIFAR-10 batch dict",),
    ),
    "batch-wrong-keys": (
        lambda t, s: _archive(t, {"data_batch_2": {b"pixels": b""}}),
        ("lacks b'data' or b'labels'",),
    ),
    "batch-wrong-shape": (
        lambda t, s: _archive(
            t, {"test_batch": {b"data": np.zeros((4, 1024), np.uint8), b"labels": [0] * 4}}
        ),
        ("test_batch: b'data' is a uint8 array of shape (4, 1024)", "N×3072 uint8"),
    ),
    "labels-wrong-length": (
        lambda t, s: _archive(
            t, {"test_batch": {b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1]}}
        ),
        ("b'labels' is not a list of 4 integers",),
    ),
    "labels-out-of-range": (
        lambda t, s: _archive(
            t, {"test_batch": {b"data": np.zeros((1, 3072), np.uint8), b"labels": [42]}}
        ),
        ("labels outside 0..9",),
    ),
    "not-a-pickle": (
        lambda t, s: _archive(t, {"batches.meta": b"this is not a pickle"}),
        ("batches.meta: not a readable pickle",),
    ),
    "missing-member": (
        lambda t, s: _archive(t, {"test_batch": None}),
        ("missing cifar-10-batches-py/test_batch",),
    ),
    # --- unsafe archive members
    "tar-absolute-path": (
        lambda t, s: _source(_tree_tar(t, "abs.tar.gz", _member("/tmp/evil.png"))),
        ("'/tmp/evil.png' has an absolute path",),
    ),
    "tar-dotdot": (
        lambda t, s: _source(_tree_tar(t, "up.tar.gz", _member("cifar-tiny/train/../../evil.png"))),
        ("climbs out of the archive with '..'",),
    ),
    "tar-symlink": (
        lambda t, s: _source(
            _tree_tar(
                t,
                "sym.tar.gz",
                _member(
                    "cifar-tiny/train/airplane/x.png", type=tarfile.SYMTYPE, linkname="/etc/passwd"
                ),
            )
        ),
        ("is a symbolic link (to '/etc/passwd')",),
    ),
    "tar-hardlink": (
        lambda t, s: _source(
            _tree_tar(
                t,
                "hard.tar.gz",
                _member(
                    "cifar-tiny/train/airplane/x.png",
                    type=tarfile.LNKTYPE,
                    linkname="cifar-tiny/train/airplane/0000.png",
                ),
            )
        ),
        ("is a hard link",),
    ),
    "tar-device": (
        lambda t, s: _source(
            _tree_tar(t, "dev.tar.gz", _member("cifar-tiny/null", type=tarfile.CHRTYPE))
        ),
        ("'cifar-tiny/null' is a device file or FIFO",),
    ),
    "tar-duplicate": (
        lambda t, s: _source(
            _tree_tar(t, "dup.tar.gz", _member("cifar-tiny/train/airplane/0000.png", b"\x89PNG"))
        ),
        ("'cifar-tiny/train/airplane/0000.png' occurs twice",),
    ),
    "zip-dotdot": (
        lambda t, s: _source(_zip_with(t, "up.zip", [(zipfile.ZipInfo("../evil.png"), b"x")])),
        ("'../evil.png' climbs out of the archive",),
    ),
    "zip-absolute-path": (
        lambda t, s: _source(_zip_with(t, "abs.zip", [(zipfile.ZipInfo("/etc/evil.png"), b"x")])),
        ("has an absolute path",),
    ),
    "zip-symlink": (
        lambda t, s: _source(_zip_with(t, "sym.zip", [(_zip_symlink(), b"/etc/passwd")])),
        ("is a symbolic link (to '/etc/passwd')",),
    ),
    "zip-bomb": (
        lambda t, s: {
            **_source(
                _zip_with(
                    t, "bomb.zip", [(zipfile.ZipInfo("cifar-tiny/pad.bin"), b"\0" * 3_000_000)]
                )
            ),
            "data.max_extract_bytes": 1_000_000,
        },
        ("data.max_extract_bytes:", "unpacks to more than 1000000 bytes"),
    ),
    "zip-lying-sizes": (
        lambda t, s: _source(_lying_zip(t)),
        ("decompresses to other than its declared 100 bytes",),
    ),
    "gzip-bomb": (
        lambda t, s: {**_source(_gzip_bomb(t)), "data.max_extract_bytes": 1_000_000},
        ("data.max_extract_bytes:", "unpacks to more than 1000000 bytes"),
    ),
    # --- image-folder layout and contents
    "missing-test-side": (
        _tree_with(lambda tree: shutil.rmtree(tree / "test")),
        ("test/ is missing",),
    ),
    "missing-class-folder": (
        _tree_with(lambda tree: shutil.rmtree(tree / "test" / "bird")),
        ("class folder(s) test/bird/ missing (present under train/)",),
    ),
    "empty-class-folder": (
        _tree_with(lambda tree: [p.unlink() for p in (tree / "train" / "bird").iterdir()]),
        ("train/bird/ holds no images",),
    ),
    "one-class-only": (
        _tree_with(
            lambda tree: [
                shutil.rmtree(tree / side / c)
                for side in ("train", "test")
                for c in ("bird", "automobile")
            ]
        ),
        ("holds one class (airplane)",),
    ),
    "class-only-in-train": (
        _tree_with(lambda tree: (tree / "train" / "cat").mkdir()),
        ("class folder(s) test/cat/ missing (present under train/)",),
    ),
    "text-file-among-images": (
        _tree_with(lambda tree: (tree / "train" / "airplane" / "notes.txt").write_text("hi")),
        ("train/airplane/notes.txt: not an image file",),
    ),
    "file-outside-class-folder": (
        _tree_with(lambda tree: (tree / "train" / "stray.png").write_bytes(b"x")),
        ("train/stray.png: a file outside any class folder",),
    ),
    "nested-folder": (
        _tree_with(lambda tree: (tree / "train" / "airplane" / "more").mkdir()),
        ("train/airplane/more: a folder nested inside a class folder",),
    ),
    "corrupt-png": (
        _tree_with(lambda tree: _truncate_file(tree / "train" / "automobile" / "0003.png")),
        ("train/automobile/0003.png: corrupt image",),
    ),
    "corrupt-jpeg": (
        _tree_with(
            lambda tree: (tree / "test" / "bird" / "0001.jpg").write_bytes(
                _cut(encode_image(synthetic_images(1, "bird")[0], "jpg"))
            )
        ),
        ("test/bird/0001.jpg: corrupt image",),
    ),
    "garbage-named-png": (
        _tree_with(lambda tree: (tree / "test" / "bird" / "0000.png").write_bytes(b"GIF89a junk")),
        ("test/bird/0000.png: not a readable PNG or JPEG image",),
    ),
    "wrong-size": (
        _tree_with(
            lambda tree: (tree / "train" / "bird" / "0002.png").write_bytes(
                encode_image(np.zeros((48, 64, 3), np.uint8))
            )
        ),
        ("train/bird/0002.png: image is 64×48 pixels", "only 32×32", "refuses rather than resizes"),
    ),
    "wrong-mode": (
        _tree_with(
            lambda tree: (tree / "train" / "bird" / "0001.png").write_bytes(
                encode_image(np.zeros((32, 32), np.uint8))
            )
        ),
        ("train/bird/0001.png: image mode is L", "only 8-bit RGB", "refuses rather than converts"),
    ),
    "neither-kind": (
        lambda t, s: _source(write_tar_gz(t / "x.tar.gz", {"docs/readme.txt": b"hello"})),
        ("neither the CIFAR-10 python archive", "nor an image folder"),
    ),
}


def _cut(data: bytes) -> bytes:
    """The headers of an image and half of its pixel data."""
    return data[: len(data) - len(data) // 4]


def _truncated(path: Path) -> Path:
    _truncate_file(path)
    return path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", list(BATTERY))
def test_bad_input_gives_one_clear_line_and_no_output(
    case: str, tiny_project: TinyProject, http_server: LocalHTTPServer, tmp_path: Path
) -> None:
    build, fragments = BATTERY[case]
    sources = tmp_path / "sources"
    sources.mkdir()
    tiny_project.set_params(build(sources, http_server))
    line = stage_error(tiny_project, *fragments)
    if case == "malicious-pickle":
        assert not (sources / "pwned").exists(), "the pickle's code ran"
    print(f"[{case}] {line}")


def test_hostile_members_are_refused_in_process_too(tmp_path: Path) -> None:
    """The battery runs the stage; here the library raises before yielding a hostile member."""
    path = _tree_tar(
        tmp_path, "sym.tar.gz", _member("a/x", type=tarfile.SYMTYPE, linkname="../../x")
    )
    with pytest.raises(UserError, match="symbolic link"):
        fetch.fetch(str(path), "", CAP)


def test_fixture_tar_really_holds_the_hostile_names(tmp_path: Path) -> None:
    """Guard against tarfile/zipfile normalising the names the battery relies on."""
    path = _tree_tar(tmp_path, "abs.tar.gz", _member("/tmp/evil.png"))
    with tarfile.open(path) as tar:
        assert "/tmp/evil.png" in tar.getnames()
    up = _zip_with(tmp_path / "z", "up.zip", [(zipfile.ZipInfo("../evil.png"), b"x")])
    with zipfile.ZipFile(up) as zf:
        assert "../evil.png" in zf.namelist()
