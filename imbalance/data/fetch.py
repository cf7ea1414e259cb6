"""Get CIFAR-10 into ``data/raw``: download or open the source, verify it, decode it.

Sources (``data.source``) are told apart by what they are, not by how they are named:

- an ``http(s)://`` URL is downloaded (progress bar on stderr) into a private temporary
  directory that is removed afterwards, hashed while it streams, then read like a local
  file. Nothing is cached between runs, so an interrupted download can never be taken
  for a good one later (DVC caches the decoded ``data/raw`` instead).
- a local file is read by its first bytes: gzip -> a tar stream, ``PK`` -> a zip. The
  member names then decide the kind: ``cifar-10-batches-py/...`` is the official python
  archive; ``train/<class>/`` + ``test/<class>/`` (at the top or under one folder) is an
  image-folder tree.
- a local directory is an image-folder tree.

Verification. A file's SHA-256 is computed before a single byte of it is parsed and
compared with ``data.sha256``. An empty ``data.sha256`` means "not checked": accepted for
image folders (they hold only images, decoded by Pillow) and refused for the python
archive (it holds pickles). Even verified pickles go through an allow-list unpickler that
can build numpy arrays and plain containers and nothing else, so a file whose checksum
was configured to match by mistake still cannot run code. The manifest records the
SHA-256 actually computed; for a directory that is a digest of its sorted file names and
their SHA-256s.

Extraction. Archive members are read into memory from the stream, never written to disk,
so nothing partial is left behind. One member with an absolute path, a ``..`` component,
a link (symbolic or hard), or a device/FIFO type refuses the whole archive, as does a
name that occurs twice. ``data.max_extract_bytes`` caps the bytes the decompressor
actually produces (tar.gz: the whole tar stream; zip: every member's output), counted as
they are read rather than taken from headers, so a decompression bomb stops at the cap.

Images. Only 32x32 8-bit RGB PNG or JPEG files are accepted. An image of any other size
or mode is refused with its file name -- never resized or converted, because silently
resampling part of a data set would change the study. Corrupt images and non-image files
under ``train/`` or ``test/`` are errors naming the file; files whose names start with
``.`` and ``__MACOSX/`` folders (file-manager litter) and files outside ``train/`` and
``test/`` are ignored. Class names are the folder names, sorted; label ``i`` is the
``i``-th name. Images are ordered by side, class, then file name, so a directory, a
.tar.gz and a .zip of the same tree give identical arrays. Decoding ~60,000 JPEGs runs in
a small process pool fed while the archive streams.

The python archive keeps its own labels and class order (``batches.meta``); the training
arrays are ``data_batch_1`` .. ``data_batch_5`` in that order.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import json
import multiprocessing
import os
import pickle
import stat
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from imbalance import files
from imbalance.cli import UserError

RAW_DIR = Path("data/raw")
RAW_NPZ = "cifar10.npz"
MANIFEST = "manifest.json"

KIND_PYTHON = "cifar10-python"
KIND_IMAGES = "image-folder"

OFFICIAL_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
PY_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
PY_MEMBERS = (*TRAIN_BATCHES, TEST_BATCH, META)

SIDES = ("train", "test")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
IMAGE_SIZE = (32, 32)
PIXELS = IMAGE_SIZE[0] * IMAGE_SIZE[1] * 3

READ_CHUNK = 1 << 20
DOWNLOAD_TIMEOUT_S = 60
# Images per decode job and worker processes. Measured on the shared 60,000-JPEG archive
# on 2 cores: serial decode 4.2 s, 2 forked workers 2.7 s (threads do not help: the cost
# is per-image Python overhead in Pillow, not the codec).
DECODE_CHUNK = 2048
DECODE_WORKERS = 2


@dataclass(frozen=True)
class Dataset:
    """Decoded CIFAR-style arrays: images N×32×32×3 uint8, labels int64 into ``class_names``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per class on each side, for the manifest and for error messages."""
        out = {}
        for side, y in (("train", self.y_train), ("test", self.y_test)):
            per_class = np.bincount(y, minlength=len(self.class_names))
            out[side] = {name: int(n) for name, n in zip(self.class_names, per_class, strict=True)}
        return out


@dataclass(frozen=True)
class Fetched:
    """A decoded source plus what the manifest records about where it came from."""

    data: Dataset
    kind: str
    sha256: str
    verified: bool


# ----------------------------------------------------------------------------- entry points


def fetch(source: str, sha256: str, max_extract_bytes: int, *, progress: bool = True) -> Fetched:
    """Read ``source`` (URL, archive file or directory) into arrays, verifying it first."""
    expected = sha256.strip().lower()
    if is_url(source):
        with tempfile.TemporaryDirectory(prefix="imbalance-fetch-") as tmp:
            name = PurePosixPath(urllib.parse.urlsplit(source).path).name or "download"
            path = Path(tmp) / name
            digest = download(source, path, max_extract_bytes, progress=progress)
            return _from_file(path, source, digest, expected, max_extract_bytes)
    scheme = urllib.parse.urlsplit(source).scheme
    if "://" in source and scheme:
        raise UserError(
            f"data.source: unsupported URL scheme {scheme!r} in {source}; give an http(s) URL, "
            "or a local path to an archive or an image-folder directory"
        )
    path = Path(source).expanduser()
    if not path.exists():
        raise UserError(
            f"data.source: {source} does not exist; give an http(s) URL, or the path (relative "
            "to the project root) of the CIFAR-10 python archive or of an image-folder tree "
            "(directory, .tar.gz or .zip)"
        )
    if path.is_dir():
        if expected:
            raise UserError(
                f"data.sha256: set, but data.source {source} is a directory, which has no single "
                "checksum; set data.sha256 to '' (image folders need none) or point data.source "
                "at the archive file"
            )
        return _from_dir(path, source)
    return _from_file(path, source, file_sha256(path), expected, max_extract_bytes)


def write_raw(out_dir: Path, fetched: Fetched, source: str) -> dict[str, Any]:
    """Write ``cifar10.npz`` + ``manifest.json`` as one directory swap (all or nothing)."""
    data = fetched.data
    manifest = {
        "source": source,
        "sha256": fetched.sha256,
        "verified": fetched.verified,
        "kind": fetched.kind,
        "class_names": list(data.class_names),
        "counts": data.counts(),
    }
    with files.atomic_dir(out_dir) as tmp:
        files.write_npz(
            tmp / RAW_NPZ,
            x_train=data.x_train,
            y_train=data.y_train,
            x_test=data.x_test,
            y_test=data.y_test,
            class_names=np.array(data.class_names, dtype=np.str_),
        )
        files.write_json(tmp / MANIFEST, manifest)
    return manifest


def read_manifest(raw_dir: Path = RAW_DIR) -> dict[str, Any]:
    """The manifest of a previous fetch, or one clear line saying how to get it."""
    path = raw_dir / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: missing; run `dvc repro fetch` first") from None
    except (OSError, ValueError) as err:
        raise UserError(
            f"{path}: unreadable ({err}); rebuild it with `dvc repro --force fetch`"
        ) from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("class_names"), list):
        raise UserError(f"{path}: lacks class_names; rebuild it with `dvc repro --force fetch`")
    return manifest


# ----------------------------------------------------------------------------- download


def is_url(source: str) -> bool:
    return urllib.parse.urlsplit(source).scheme in ("http", "https")


def download(url: str, dest: Path, max_bytes: int, *, progress: bool = True) -> str:
    """Stream ``url`` into ``dest`` (a private temp path) and return its SHA-256.

    A body shorter than its Content-Length, a broken connection or a body over
    ``max_bytes`` is an error; the caller's temporary directory then disappears with the
    partial file, so no later run can mistake it for a complete download.
    """
    from tqdm import tqdm  # only downloads need it

    digest = hashlib.sha256()
    received = 0
    expected_length: int | None = None
    request = urllib.request.Request(url, headers={"User-Agent": "imbalance-fetch"})
    try:
        with (
            urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response,
            open(dest, "wb") as out,
        ):
            length = response.headers.get("Content-Length")
            expected_length = int(length) if length and length.isdigit() else None
            if expected_length is not None and expected_length > max_bytes:
                raise _download_too_big(url, max_bytes)
            with tqdm(
                total=expected_length,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=f"download {dest.name}",
                file=sys.stderr,
                disable=not progress,
            ) as bar:
                while chunk := response.read(READ_CHUNK):
                    received += len(chunk)
                    if received > max_bytes:
                        raise _download_too_big(url, max_bytes)
                    digest.update(chunk)
                    out.write(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as err:
        raise UserError(
            f"data.source: downloading {url} failed with HTTP {err.code} {err.reason}; "
            "check the URL"
        ) from None
    except urllib.error.URLError as err:
        raise UserError(
            f"data.source: cannot reach {url} ({err.reason}); check the URL and the network"
        ) from None
    except (http.client.HTTPException, OSError) as err:
        raise UserError(
            f"data.source: the download of {url} broke off after {received} bytes "
            f"({type(err).__name__}: {err}); nothing was kept, run the stage again"
        ) from None
    if expected_length is not None and received != expected_length:
        raise UserError(
            f"data.source: the download of {url} was cut short ({received} of "
            f"{expected_length} bytes); nothing was kept, run the stage again"
        )
    return digest.hexdigest()


def _download_too_big(url: str, max_bytes: int) -> UserError:
    return UserError(
        f"data.max_extract_bytes: {url} sends more than {max_bytes} bytes; check data.source, "
        "or raise data.max_extract_bytes if the larger file is right"
    )


def file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


# ----------------------------------------------------------------------------- archives

Parts = tuple[str, ...]  # a member name split at "/": cheap to hash and compare
Member = tuple[Parts, bytes | None]  # (name parts, bytes; None for a directory)


def _from_file(path: Path, source: str, digest: str, expected: str, cap: int) -> Fetched:
    """Verify a local archive against ``expected``, then sniff and read it."""
    if expected and digest != expected:
        raise UserError(
            f"data.sha256: {source} has SHA-256 {digest}, not the configured {expected}; the "
            "file is damaged, incomplete or not the archive meant (nothing in it was read) -- "
            "check data.source and data.sha256"
        )
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic[:2] == b"\x1f\x8b":
        members: Iterator[Member] = _tar_members(path, source, cap)
    elif magic in (b"PK\x03\x04", b"PK\x05\x06"):
        members = _zip_members(path, source, cap)
    else:
        raise UserError(
            f"data.source: {source} is neither a gzip-compressed tar nor a zip archive (it "
            f"starts with {magic!r}); give the CIFAR-10 python archive (.tar.gz), an "
            "image-folder .tar.gz/.zip, or a directory"
        )
    kind, data = _collect(members, source, verified=bool(expected))
    return Fetched(data=data, kind=kind, sha256=digest, verified=bool(expected))


def _from_dir(root: Path, source: str) -> Fetched:
    tree = hashlib.sha256()

    def hashed(members: Iterable[Member]) -> Iterator[Member]:
        for name, data in members:
            if data is not None:
                tree.update(f"{'/'.join(name)}\0{hashlib.sha256(data).hexdigest()}\n".encode())
            yield name, data

    kind, data = _collect(
        hashed(_dir_members(root, source)), source, verified=False, directory=True
    )
    return Fetched(data=data, kind=kind, sha256=tree.hexdigest(), verified=False)


def _too_big(source: str, cap: int) -> UserError:
    return UserError(
        f"data.max_extract_bytes: {source} unpacks to more than {cap} bytes (a decompression "
        "bomb, or a larger data set than expected); refusing it -- raise "
        "data.max_extract_bytes only if you trust the archive"
    )


def _safe_name(raw: str, source: str) -> Parts | None:
    """A member name as relative path parts, or an error if it could escape the archive.

    Backslashes count as separators too (zips made on Windows), so ``..\\x`` is caught.
    """
    if raw.startswith(("/", "\\")) or (raw[1:2] == ":" and raw[:1].isalpha()):
        raise UserError(
            f"{source}: archive member {raw!r} has an absolute path; refusing the archive "
            "(members must stay inside it) -- re-create it with relative paths"
        )
    parts = tuple(p for p in raw.replace("\\", "/").split("/") if p and p != ".")
    if ".." in parts:
        raise UserError(
            f"{source}: archive member {raw!r} climbs out of the archive with '..'; refusing "
            "the archive -- re-create it with plain relative paths"
        )
    return parts or None


def _link_error(source: str, name: str, what: str, target: str) -> UserError:
    return UserError(
        f"{source}: archive member {name!r} is a {what} (to {target!r}); refusing the archive "
        "(links can point outside it) -- re-create it without links"
    )


def _special_error(source: str, name: str) -> UserError:
    return UserError(
        f"{source}: archive member {name!r} is a device file or FIFO; refusing the archive -- "
        "re-create it with regular files only"
    )


def _duplicate_error(source: str, name: Parts) -> UserError:
    return UserError(
        f"{source}: archive member {'/'.join(name)!r} occurs twice; refusing the ambiguous archive "
        "-- re-create it"
    )


class _CappedReader(io.RawIOBase):
    """Counts the bytes a decompressor actually produces and stops past the cap."""

    def __init__(self, inner: io.BufferedIOBase, cap: int, source: str) -> None:
        self._inner, self._cap, self._source, self.total = inner, cap, source, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._inner.readinto(buffer)
        self.total += n
        if self.total > self._cap:
            raise _too_big(self._source, self._cap)
        return n


def _tar_members(path: Path, source: str, cap: int) -> Iterator[Member]:
    """Stream a .tar.gz member by member (one pass, nothing written to disk)."""
    seen: set[Parts] = set()
    try:
        with open(path, "rb") as raw, gzip.GzipFile(fileobj=raw) as gz:
            capped = _CappedReader(gz, cap, source)
            with tarfile.open(fileobj=capped, mode="r|") as tar:
                for member in tar:
                    name = _safe_name(member.name, source)
                    if member.issym():
                        raise _link_error(source, member.name, "symbolic link", member.linkname)
                    if member.islnk():
                        raise _link_error(source, member.name, "hard link", member.linkname)
                    if member.isdir():
                        if name is not None:
                            yield name, None
                        continue
                    if not member.isfile():
                        raise _special_error(source, member.name)
                    if name is None:
                        continue
                    if name in seen:
                        raise _duplicate_error(source, name)
                    seen.add(name)
                    fh = tar.extractfile(member)
                    yield name, fh.read() if fh is not None else b""
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise UserError(
            f"{source}: not a readable .tar.gz archive ({type(err).__name__}: {err}); it is "
            "truncated or corrupt -- fetch or build it again"
        ) from None


def _zip_members(path: Path, source: str, cap: int) -> Iterator[Member]:
    """Read a zip member by member; sizes from headers are checked, then re-counted."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise UserError(
            f"{source}: not a readable zip archive ({err}); it is truncated or corrupt -- "
            "fetch or build it again"
        ) from None
    with archive:
        infos = archive.infolist()
        if sum(info.file_size for info in infos) > cap:  # cheap early refusal
            raise _too_big(source, cap)
        seen: set[Parts] = set()
        total = 0
        for info in infos:
            name = _safe_name(info.filename, source)
            file_type = stat.S_IFMT(info.external_attr >> 16)
            if file_type == stat.S_IFLNK:
                with archive.open(info) as fh:  # a link's target is its (short) content
                    target = fh.read(200).decode("utf-8", "replace")
                raise _link_error(source, info.filename, "symbolic link", target)
            if file_type not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise _special_error(source, info.filename)
            if info.is_dir():
                if name is not None:
                    yield name, None
                continue
            if name is None:
                continue
            if name in seen:
                raise _duplicate_error(source, name)
            seen.add(name)
            chunks = []
            try:
                with archive.open(info) as fh:
                    while chunk := fh.read(READ_CHUNK):
                        total += len(chunk)
                        if total > cap:
                            raise _too_big(source, cap)
                        chunks.append(chunk)
            except (
                zipfile.BadZipFile,
                zlib.error,
                EOFError,
                NotImplementedError,
                RuntimeError,
            ) as err:
                raise UserError(
                    f"{source}: zip member {info.filename!r} is corrupt, encrypted, or "
                    f"decompresses to other than its declared {info.file_size} bytes ({err}); "
                    "the archive is damaged or hostile -- re-create it"
                ) from None
            yield name, b"".join(chunks)


def _dir_members(root: Path, source: str) -> Iterator[Member]:
    """Walk a directory tree in sorted order, only as deep as the layout can go."""
    max_depth = 3  # <top>/<side>/<class>; deeper folders are reported, not read
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        rel = Path(dirpath).relative_to(root)
        depth = len(rel.parts)
        dirnames[:] = sorted(d for d in dirnames if not _ignored((d,)))
        for d in dirnames:
            yield (*rel.parts, d), None
        if depth >= max_depth:
            dirnames[:] = []
        for f in sorted(filenames):
            try:
                data = (Path(dirpath) / f).read_bytes()
            except OSError as err:
                raise UserError(f"{source}: cannot read {rel / f} ({err.strerror})") from None
            yield (*rel.parts, f), data


# ----------------------------------------------------------------------------- collecting


def _ignored(parts: tuple[str, ...]) -> bool:
    """File-manager litter (.DS_Store, ._x, __MACOSX/) that zips made on a Mac carry."""
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _tree_root(parts: tuple[str, ...]) -> tuple[str, ...] | None:
    """The folder holding train/ and test/ for a member: the top, or one folder down."""
    for depth in (0, 1):
        if len(parts) > depth and parts[depth] in SIDES:
            return parts[:depth]
    return None


def _collect(
    members: Iterable[Member], source: str, *, verified: bool, directory: bool = False
) -> tuple[str, Dataset]:
    """Route a member stream to the python-archive or the image-folder reader."""
    collector = _Collector(source, verified, directory=directory)
    try:
        for name, data in members:
            collector.add(name, data)
        return collector.finish()
    finally:
        collector.close()


class _Collector:
    """Decides the source's kind from the first telling member name, then reads it."""

    def __init__(self, source: str, verified: bool, *, directory: bool = False) -> None:
        self.source = source
        self.verified = verified
        self.directory = directory
        self.kind: str | None = None
        self.prefix: tuple[str, ...] = ()
        self.batches: dict[str, Any] = {}
        self.keys: list[tuple[str, str, str]] = []  # (side, class, file) in decode order
        self.class_dirs: dict[str, set[str]] = {side: set() for side in SIDES}
        self.decoder = _Decoder(source)

    def close(self) -> None:
        self.decoder.close()

    def add(self, parts: Parts, data: bytes | None) -> None:
        if _ignored(parts):
            return
        if self.kind is None:
            self._decide(parts)
        if self.kind == KIND_PYTHON:
            self._add_python(parts, data)
        elif self.kind == KIND_IMAGES:
            self._add_image(parts, data)

    def _decide(self, parts: tuple[str, ...]) -> None:
        if parts[0] == PY_DIR:
            if self.directory:
                raise UserError(
                    f"data.source: {self.source} holds an unpacked CIFAR-10 python archive "
                    f"({PY_DIR}/), whose pickles are only read from the verified archive file; "
                    "point data.source at cifar-10-python.tar.gz (checked against data.sha256)"
                )
            if not self.verified:
                raise UserError(
                    f"data.sha256: empty, but {self.source} is the CIFAR-10 python archive, "
                    "whose pickles are only loaded from a verified file; set data.sha256 to "
                    f"the archive's published SHA-256 (the official one is {OFFICIAL_SHA256})"
                )
            self.kind = KIND_PYTHON
            return
        root = _tree_root(parts)
        if root is not None:
            self.kind, self.prefix = KIND_IMAGES, root

    # -- python archive

    def _add_python(self, parts: tuple[str, ...], data: bytes | None) -> None:
        if data is None or len(parts) != 2 or parts[0] != PY_DIR or parts[1] not in PY_MEMBERS:
            return  # readme.html, directory entries
        where = f"{self.source}: {PY_DIR}/{parts[1]}"
        obj = load_pickle(data, where)
        self.batches[parts[1]] = (
            _parse_meta(obj, where) if parts[1] == META else _parse_batch(obj, where)
        )

    def _finish_python(self) -> Dataset:
        missing = [f"{PY_DIR}/{m}" for m in PY_MEMBERS if m not in self.batches]
        if missing:
            raise UserError(
                f"{self.source}: not a complete CIFAR-10 python archive: missing "
                f"{', '.join(missing)}; fetch it again"
            )
        names: tuple[str, ...] = self.batches[META]
        x_train = np.concatenate([self.batches[b][0] for b in TRAIN_BATCHES])
        y_train = np.concatenate([self.batches[b][1] for b in TRAIN_BATCHES])
        x_test, y_test = self.batches[TEST_BATCH]
        for member, y in (("data_batch_*", y_train), (TEST_BATCH, y_test)):
            if y.size and (y.min() < 0 or y.max() >= len(names)):
                raise UserError(
                    f"{self.source}: {PY_DIR}/{member}: labels outside 0..{len(names) - 1} (the "
                    f"{len(names)} label_names of {META}); this is not the official archive"
                )
        return Dataset(x_train, y_train, np.ascontiguousarray(x_test), y_test, names)

    # -- image folders

    def _add_image(self, parts: Parts, data: bytes | None) -> None:
        root = _tree_root(parts)
        if root is None:
            return  # a README or the top folder itself: not part of the tree
        if root != self.prefix:
            raise UserError(
                f"{self.source}: holds two image trees ({'/'.join(self.prefix) or '.'}/ and "
                f"{'/'.join(root) or '.'}/); keep a single train/ + test/ tree"
            )
        rel = parts[len(root) :]
        side = rel[0]
        name = "/".join(parts)
        where = f"{self.source}: {name}"
        layout = "an image folder holds train/<class>/<image> and test/<class>/<image>"
        if len(rel) == 1:
            if data is not None:
                raise UserError(f"{where}: a file where the {side}/ folder belongs; {layout}")
            return
        if len(rel) == 2:
            if data is not None:
                raise UserError(f"{where}: a file outside any class folder; {layout}")
            self.class_dirs[side].add(rel[1])
            return
        if len(rel) > 3 or data is None:
            raise UserError(f"{where}: a folder nested inside a class folder; {layout}")
        if os.path.splitext(rel[2])[1].lower() not in IMAGE_SUFFIXES:
            raise UserError(
                f"{where}: not an image file (only .png, .jpg and .jpeg belong under {side}/"
                f"<class>/); remove it"
            )
        self.class_dirs[side].add(rel[1])
        self.keys.append((side, rel[1], rel[2]))
        self.decoder.add(name, data)

    def _finish_images(self) -> Dataset:
        top = "/".join(self.prefix)
        where = f"{self.source}: {top + '/' if top else ''}"
        if not self.class_dirs["train"]:
            raise UserError(f"{where}train/ has no class folders; it needs train/<class>/<image>")
        if not self.class_dirs["test"]:
            raise UserError(
                f"{where}test/ is missing (the image folder has train/ only); add "
                "test/<class>/<image> for every class"
            )
        for side, other in (("train", "test"), ("test", "train")):
            lacking = sorted(self.class_dirs[other] - self.class_dirs[side])
            if lacking:
                shown = ", ".join(f"{side}/{c}/" for c in lacking)
                raise UserError(
                    f"{where}class folder(s) {shown} missing (present under {other}/); every "
                    "class needs both train/<class>/ and test/<class>/"
                )
        names = tuple(sorted(self.class_dirs["train"]))
        if len(names) < 2:
            raise UserError(f"{where}holds one class ({names[0]}); it needs at least two")
        found = {(side, cls) for side, cls, _ in self.keys}
        for side in SIDES:
            for cls in names:
                if (side, cls) not in found:
                    raise UserError(f"{where}{side}/{cls}/ holds no images; add some or remove it")
        # Scatter each decoded chunk straight to its sorted place: no full-size temporary.
        index = {cls: i for i, cls in enumerate(names)}
        labels = np.array([index[cls] for _, cls, _ in self.keys], dtype=np.int64)
        is_test = np.array([side == "test" for side, _, _ in self.keys])
        position = np.empty(len(self.keys), dtype=np.int64)
        out = {}
        for side, mask in (("train", ~is_test), ("test", is_test)):
            order = sorted(np.flatnonzero(mask).tolist(), key=self.keys.__getitem__)
            position[order] = np.arange(len(order))
            out[f"x_{side}"] = np.empty((len(order), *IMAGE_SIZE, 3), np.uint8)
            out[f"y_{side}"] = labels[order]
        start = 0
        for chunk in self.decoder.finish():
            rows = slice(start, start + len(chunk))
            for side, mask in (("train", ~is_test[rows]), ("test", is_test[rows])):
                out[f"x_{side}"][position[rows][mask]] = chunk[mask]
            start += len(chunk)
        return Dataset(class_names=names, **out)

    def finish(self) -> tuple[str, Dataset]:
        if self.kind == KIND_PYTHON:
            return self.kind, self._finish_python()
        if self.kind == KIND_IMAGES:
            return self.kind, self._finish_images()
        raise UserError(
            f"{self.source}: neither the CIFAR-10 python archive ({PY_DIR}/...) nor an image "
            "folder (train/<class>/ and test/<class>/, at the top or under one folder); check "
            "data.source"
        )


# ----------------------------------------------------------------------------- pickles


def _allowed_globals() -> dict[tuple[str, str], Any]:
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,  # how CIFAR's pickles name it
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }


class AllowListUnpickler(pickle.Unpickler):
    """Builds numpy arrays and plain containers only; any other global is refused.

    ``find_class`` is the only way a pickle reaches code (callables for REDUCE, classes for
    objects); dicts, lists, tuples, bytes, str, numbers need none. The four globals allowed
    are what a pickled numpy array needs: ``_reconstruct`` and ``ndarray`` build an empty
    array, ``dtype`` its element type; ``ndarray.__setstate__`` then copies the raw bytes.
    Python-2 pickles (like CIFAR's) are loaded with ``encoding="bytes"``: their ``str``
    become ``bytes``, which is what numpy's own py2 compatibility expects.
    """

    def __init__(self, file: io.BytesIO, where: str) -> None:
        super().__init__(file, encoding="bytes")
        self._where = where
        self._allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UserError(
                f"{self._where}: the pickle asks for {module}.{name}, which the allow-list "
                "refuses (only numpy arrays and plain containers load); this is not the "
                "official CIFAR-10 archive -- do not use it"
            ) from None


def load_pickle(data: bytes, where: str) -> Any:
    """Unpickle verified bytes through :class:`AllowListUnpickler`; one line on any problem."""
    try:
        return AllowListUnpickler(io.BytesIO(data), where).load()
    except UserError:
        raise
    except Exception as err:  # pickle and numpy raise many types for damaged input
        raise UserError(
            f"{where}: not a readable pickle ({type(err).__name__}: {err}); the archive is "
            "damaged or not the official one -- fetch it again"
        ) from None


def _get(obj: dict[Any, Any], key: str) -> Any:
    return obj[key.encode()] if key.encode() in obj else obj.get(key)


def _parse_batch(obj: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    """A CIFAR batch dict -> (N×32×32×3 uint8 images, int64 labels)."""
    if not isinstance(obj, dict):
        raise UserError(
            f"{where}: holds a {type(obj).__name__}, not the CIFAR-10 batch dict (keys b'data', "
            "b'labels'); this is not the official archive"
        )
    data, labels = _get(obj, "data"), _get(obj, "labels")
    if data is None or labels is None:
        keys = ", ".join(sorted(repr(k) for k in obj))
        raise UserError(
            f"{where}: the batch dict lacks b'data' or b'labels' (it has {keys or 'no keys'}); "
            "this is not the official archive"
        )
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != PIXELS
    ):
        got = (
            f"a {data.dtype} array of shape {data.shape}"
            if isinstance(data, np.ndarray)
            else f"a {type(data).__name__}"
        )
        raise UserError(
            f"{where}: b'data' is {got}, expected an N×{PIXELS} uint8 array (32×32 RGB, "
            "channel-major); this is not the official archive"
        )
    try:
        y = np.asarray(labels)
    except ValueError:
        y = np.asarray([None])
    if y.ndim != 1 or y.shape[0] != data.shape[0] or y.dtype.kind not in "iu":
        raise UserError(
            f"{where}: b'labels' is not a list of {data.shape[0]} integers (one per image); "
            "this is not the official archive"
        )
    x = data.reshape(-1, 3, *IMAGE_SIZE).transpose(0, 2, 3, 1)
    return x, y.astype(np.int64)


def _parse_meta(obj: Any, where: str) -> tuple[str, ...]:
    names = _get(obj, "label_names") if isinstance(obj, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, bytes | str) for n in names):
        raise UserError(
            f"{where}: expected a dict with b'label_names' (a list of class names); this is not "
            "the official archive"
        )
    decoded = tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names)
    if len(decoded) < 2 or len(set(decoded)) != len(decoded) or not all(decoded):
        raise UserError(f"{where}: label_names must be two or more distinct names, got {decoded}")
    return decoded


# ----------------------------------------------------------------------------- images


def decode_images(batch: list[tuple[str, bytes]], source: str) -> np.ndarray:
    """Decode (name, bytes) pairs into an N×32×32×3 uint8 array (runs in a worker)."""
    out = np.empty((len(batch), PIXELS), np.uint8)
    for i, (name, data) in enumerate(batch):
        out[i] = np.frombuffer(decode_image(data, f"{source}: {name}"), np.uint8)
    return out.reshape(-1, *IMAGE_SIZE, 3)


def decode_image(data: bytes, where: str) -> bytes:
    """One 32×32 RGB PNG/JPEG -> its 3072 pixel bytes; anything else is refused by name."""
    from PIL import Image

    try:
        image = Image.open(io.BytesIO(data), formats=("PNG", "JPEG"))
    except Image.DecompressionBombError:
        raise UserError(
            f"{where}: image is far larger than 32×32; fetch accepts only 32×32 RGB images"
        ) from None
    except Exception:  # UnidentifiedImageError, and header parsers raising on garbage
        raise UserError(
            f"{where}: not a readable PNG or JPEG image; replace or remove the file"
        ) from None
    with image:
        if image.size != IMAGE_SIZE:
            w, h = image.size
            raise UserError(
                f"{where}: image is {w}×{h} pixels, but fetch accepts only 32×32 (it refuses "
                "rather than resizes); resize the images to 32×32 or remove the file"
            )
        if image.mode != "RGB":
            raise UserError(
                f"{where}: image mode is {image.mode}, but fetch accepts only 8-bit RGB (it "
                "refuses rather than converts); convert the images to RGB or remove the file"
            )
        try:
            return image.tobytes()
        except Exception as err:  # truncated or damaged codec data: OSError, SyntaxError, ...
            raise UserError(f"{where}: corrupt image ({err}); replace or remove the file") from None


def _pool_context() -> multiprocessing.context.BaseContext:
    """fork on Linux: workers start instantly with everything imported; default elsewhere."""
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


class _Decoder:
    """Decodes images in chunks, in a process pool once there is more than one chunk.

    The pool starts with the first full chunk, so the archive keeps streaming while
    workers decode; small trees (tests) decode in-process and never start a pool.
    Results come back in submission order.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.pending: list[tuple[str, bytes]] = []
        self.results: list[Future[np.ndarray] | np.ndarray] = []
        self.pool: ProcessPoolExecutor | None = None

    def add(self, name: str, data: bytes) -> None:
        self.pending.append((name, data))
        if len(self.pending) >= DECODE_CHUNK:
            self._flush()

    def _flush(self) -> None:
        batch, self.pending = self.pending, []
        if not batch:
            return
        workers = min(DECODE_WORKERS, os.cpu_count() or 1)
        if workers > 1 and self.pool is None:
            self.pool = ProcessPoolExecutor(workers, mp_context=_pool_context())
        if self.pool is not None:
            self.results.append(self.pool.submit(decode_images, batch, self.source))
        else:
            self.results.append(decode_images(batch, self.source))

    def finish(self) -> Iterator[np.ndarray]:
        """The decoded chunks in order, each released once the caller moves on."""
        if self.pool is not None:
            self._flush()
        elif self.pending:
            self.results.append(decode_images(self.pending, self.source))
            self.pending = []
        results, self.results = self.results, []
        results.reverse()
        while results:
            result = results.pop()
            yield result.result() if isinstance(result, Future) else result

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


def summary(manifest: dict[str, Any]) -> str:
    """One line for the stage's stdout."""
    counts: dict[str, dict[str, int]] = manifest["counts"]
    n = {side: sum(per_class.values()) for side, per_class in counts.items()}
    return (
        f"fetch: {manifest['kind']} {manifest['source']} (sha256 {manifest['sha256'][:12]}, "
        f"{'verified' if manifest['verified'] else 'not checked'}): {n['train']} train + "
        f"{n['test']} test images, {len(manifest['class_names'])} classes"
    )
