"""Get CIFAR-10 into ``data/raw``: download or open the source, verify it, decode it.

This module is the fetch stage's own logic: which kind of source ``data.source`` is, and
the files it leaves (``cifar10.npz`` + ``manifest.json``, see :mod:`imbalance.layout`).
How each step is done lives beside it, one module per concern:
:mod:`~imbalance.data.download` (URLs, checksums), :mod:`~imbalance.data.extract`
(archive and directory members, the pickle allow-list),
:mod:`~imbalance.data.cifar_archive` and :mod:`~imbalance.data.image_folder` (the two
kinds of source), :mod:`~imbalance.data.dataset` (the arrays they decode to).

Sources (``data.source``) are told apart by what they are, not by how they are named:

- an ``http(s)://`` URL is downloaded into a private temporary directory, then read
  like a local file; nothing is cached between runs.
- a local file is read by its first bytes: gzip -> a tar stream, ``PK`` -> a zip. The
  member names then decide the kind: ``cifar-10-batches-py/...`` is the official python
  archive; ``train/<class>/`` + ``test/<class>/`` (at the top or under one folder) is an
  image-folder tree.
- a local directory is an image-folder tree.

Verification. A file's SHA-256 is computed before a single byte of it is parsed and
compared with ``data.sha256``. An empty ``data.sha256`` means "not checked": accepted for
image folders (they hold only images, decoded by Pillow) and refused for the python
archive (it holds pickles). The manifest records the SHA-256 actually computed; for a
directory that is a digest of its sorted file names and their SHA-256s.
"""

from __future__ import annotations

import hashlib
import re
import json
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from imbalance import files
from imbalance.cli import UserError
from imbalance.data import cifar_archive, image_folder
from imbalance.data.dataset import Dataset
from imbalance.data.download import downloaded, file_sha256, is_url
from imbalance.data.extract import Member, Parts, archive_members, dir_members, ignored
from imbalance.layout import MANIFEST, RAW_NPZ, Layout
from imbalance.params import Params


@dataclass(frozen=True)
class Fetched:
    """A decoded source plus what the manifest records about where it came from."""

    data: Dataset
    kind: str
    sha256: str
    verified: bool


# ----------------------------------------------------------------------------- the stage


def run_fetch(params: Params, layout: Layout) -> str:
    """The fetch stage: the source ``data.source`` names into ``layout.raw_dir``.

    :func:`fetch` and the modules under it name a location and a checksum as
    ``data.source`` and ``data.sha256`` in their messages (their arguments); here those
    become the params the user actually sets, ``data.sources.<name>.location`` and
    ``...sha256``. Returns the stage's stdout line.
    """
    data = params.data
    _absent_local_source(data.source, data.chosen.location, data.sources)
    try:
        fetched = fetch(data.chosen.location, data.chosen.sha256, data.max_extract_bytes)
    except UserError as err:
        entry = f"data.sources.{data.source}"
        text = re.sub(r"\bdata\.source\b", f"{entry}.location", str(err))
        raise UserError(re.sub(r"\bdata\.sha256\b", f"{entry}.sha256", text)) from None
    return summary(write_raw(layout, fetched, data.chosen.location))


# The entry of data.sources that is the official archive, and the one command that runs the
# study on it from a fresh clone (dev.sh turns `repro -S` into `dvc exp run -S`).
OFFICIAL_SOURCE = "official"
OFFICIAL_COMMAND = f"./dev.sh repro -S data.source={OFFICIAL_SOURCE}"


def _absent_local_source(name: str, location: str, sources: dict[str, Any]) -> None:
    """Stop with the command that works when the chosen source is a local path not here.

    The default source is the development machines' offline copy (``../shared/...``); a
    fresh clone anywhere else has no such file, and the generic "does not exist" message
    left the reader to discover that the official archive is one ``-S`` away.
    """
    if is_url(location) or "://" in location or Path(location).expanduser().exists():
        return
    fix = (
        f"to run on the official CIFAR-10 archive (a 163 MB download) instead: {OFFICIAL_COMMAND}"
        if name != OFFICIAL_SOURCE and OFFICIAL_SOURCE in sources
        else "give an http(s) URL, or the path of an archive or image-folder tree"
    )
    raise UserError(
        f"data.sources.{name}.location: {location} does not exist (relative to the project "
        f"root); {fix}"
    )


def fetch(source: str, sha256: str, max_extract_bytes: int, *, progress: bool = True) -> Fetched:
    """Read ``source`` (URL, archive file or directory) into arrays, verifying it first."""
    expected = sha256.strip().lower()
    if is_url(source):
        with downloaded(source, max_extract_bytes, progress=progress) as (path, digest):
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


def write_raw(layout: Layout, fetched: Fetched, source: str) -> dict[str, Any]:
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
    with files.atomic_dir(layout.raw_dir) as tmp:
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


def read_manifest(layout: Layout) -> dict[str, Any]:
    """The manifest of a previous fetch, or one clear line saying how to get it."""
    path = layout.manifest
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


def summary(manifest: dict[str, Any]) -> str:
    """One line for the stage's stdout."""
    counts: dict[str, dict[str, int]] = manifest["counts"]
    n = {side: sum(per_class.values()) for side, per_class in counts.items()}
    return (
        f"fetch: {manifest['kind']} {manifest['source']} (sha256 {manifest['sha256'][:12]}, "
        f"{'verified' if manifest['verified'] else 'not checked'}): {n['train']} train + "
        f"{n['test']} test images, {len(manifest['class_names'])} classes"
    )


# ----------------------------------------------------------------------------- source kinds


def _from_file(path: Path, source: str, digest: str, expected: str, cap: int) -> Fetched:
    """Verify a local archive against ``expected``, then sniff and read it."""
    if expected and digest != expected:
        raise UserError(
            f"data.sha256: {source} has SHA-256 {digest}, not the configured {expected}; the "
            "file is damaged, incomplete or not the archive meant (nothing in it was read) -- "
            "check data.source and data.sha256"
        )
    members = archive_members(path, source, cap)
    kind, data = _collect(members, source, verified=bool(expected))
    return Fetched(data=data, kind=kind, sha256=digest, verified=bool(expected))


def _from_dir(root: Path, source: str) -> Fetched:
    tree = hashlib.sha256()

    def hashed(members: Iterable[Member]) -> Iterator[Member]:
        for name, data in members:
            if data is not None:
                tree.update(f"{'/'.join(name)}\0{hashlib.sha256(data).hexdigest()}\n".encode())
            yield name, data

    kind, data = _collect(hashed(dir_members(root, source)), source, verified=False, directory=True)
    return Fetched(data=data, kind=kind, sha256=tree.hexdigest(), verified=False)


class _Reader(Protocol):
    """What a source kind's reader offers (see cifar_archive and image_folder)."""

    kind: str

    def add(self, parts: Parts, data: bytes | None) -> None: ...
    def finish(self) -> Dataset: ...
    def close(self) -> None: ...


def _reader_for(parts: Parts, source: str, *, verified: bool, directory: bool) -> _Reader | None:
    """The reader a member name calls for, or None if the name tells nothing yet."""
    if cifar_archive.is_member(parts):
        return cifar_archive.ArchiveReader(source, verified=verified, directory=directory)
    root = image_folder.tree_root(parts)
    return image_folder.FolderReader(source, root) if root is not None else None


def _collect(
    members: Iterable[Member], source: str, *, verified: bool, directory: bool = False
) -> tuple[str, Dataset]:
    """Decide the source's kind from the first telling member name, then read it all."""
    reader: _Reader | None = None
    try:
        for parts, data in members:
            if ignored(parts):
                continue
            if reader is None:
                reader = _reader_for(parts, source, verified=verified, directory=directory)
            if reader is not None:
                reader.add(parts, data)
        if reader is None:
            raise UserError(
                f"{source}: neither the CIFAR-10 python archive ({cifar_archive.PY_DIR}/...) nor "
                "an image folder (train/<class>/ and test/<class>/, at the top or under one "
                "folder); check data.source"
            )
        return reader.kind, reader.finish()
    finally:
        if reader is not None:
            reader.close()
