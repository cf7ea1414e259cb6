"""Read untrusted sources safely: archive and directory members, and allow-listed pickles.

Everything that touches the raw bytes of a source before they are understood is here, so
the rules that keep a hostile or broken source harmless are in one place to audit; what
the members mean is for the source-kind readers to decide.

Extraction. Archive members are read into memory from the stream, never written to disk,
so nothing partial is left behind. One member with an absolute path, a ``..`` component,
a link (symbolic or hard), or a device/FIFO type refuses the whole archive, as does a
name that occurs twice. ``data.max_extract_bytes`` caps the bytes the decompressor
actually produces (tar.gz: the whole tar stream; zip: every member's output), counted as
they are read rather than taken from headers, so a decompression bomb stops at the cap.
A local file is told apart by its first bytes: gzip -> a tar stream, ``PK`` -> a zip.
Files whose names start with ``.`` and ``__MACOSX/`` folders (file-manager litter) are
ignored.

Pickles. Even pickles from a verified file go through an allow-list unpickler that can
build numpy arrays and plain containers and nothing else, so a file whose checksum was
configured to match by mistake still cannot run code.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from imbalance.cli import UserError

Parts = tuple[str, ...]  # a member name split at "/": cheap to hash and compare
Member = tuple[Parts, bytes | None]  # (name parts, bytes; None for a directory)

READ_CHUNK = 1 << 20  # bytes per read of a zip member (the cap is checked per chunk)


# ----------------------------------------------------------------------------- members


def archive_members(path: Path, source: str, cap: int) -> Iterator[Member]:
    """The members of a local archive, by its first bytes: a .tar.gz or a zip."""
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic[:2] == b"\x1f\x8b":
        return tar_members(path, source, cap)
    if magic in (b"PK\x03\x04", b"PK\x05\x06"):
        return zip_members(path, source, cap)
    raise UserError(
        f"data.source: {source} is neither a gzip-compressed tar nor a zip archive (it "
        f"starts with {magic!r}); give the CIFAR-10 python archive (.tar.gz), an "
        "image-folder .tar.gz/.zip, or a directory"
    )


def ignored(parts: tuple[str, ...]) -> bool:
    """File-manager litter (.DS_Store, ._x, __MACOSX/) that zips made on a Mac carry."""
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


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


def tar_members(path: Path, source: str, cap: int) -> Iterator[Member]:
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


def zip_members(path: Path, source: str, cap: int) -> Iterator[Member]:
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


def dir_members(root: Path, source: str) -> Iterator[Member]:
    """Walk a directory tree in sorted order, only as deep as the layout can go."""
    max_depth = 3  # <top>/<side>/<class>; deeper folders are reported, not read
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        rel = Path(dirpath).relative_to(root)
        depth = len(rel.parts)
        dirnames[:] = sorted(d for d in dirnames if not ignored((d,)))
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
