"""Atomic output files.

Every file a stage writes goes to a temporary name in the same directory and is renamed
into place (``os.replace`` is atomic on POSIX), so a killed or failed stage never leaves
a half-written model, array or metrics file that a later run could take for a good one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

# mkstemp/mkdtemp create owner-only entries; outputs get the usual umask-based modes.
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it into place on success.

    ``suffix`` keeps the extension for writers that insist on one (Keras wants
    ``.keras``, ``np.savez`` appends ``.npz``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Sorted keys and a fixed layout, so equal results give byte-identical files."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_npz(path: str | os.PathLike[str], **arrays: np.ndarray) -> None:
    """Uncompressed npz: loading is a memcpy, and the bytes depend only on the arrays."""
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def write_with(
    path: str | os.PathLike[str], writer: Callable[[Path], None], suffix: str = ""
) -> None:
    """Atomic write through a library's own ``save(path)`` (Keras models, figures)."""
    with atomic_path(path, suffix=suffix) as tmp:
        writer(tmp)


@contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Build a whole output directory beside ``path`` and swap it in on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_UMASK)
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_npz(path: str | os.PathLike[str], keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Load arrays, failing with one clear line if the file is missing or malformed."""
    from imbalance.cli import UserError

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: missing; run `dvc repro` to (re)build it")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise UserError(
                    f"{path}: lacks arrays {missing}; rebuild it with `dvc repro --force`"
                )
            return {k: data[k] for k in keys}
    except UserError:
        raise
    except Exception as err:  # zipfile/numpy raise many types for a damaged file
        raise UserError(
            f"{path}: unreadable ({type(err).__name__}); rebuild it with `dvc repro --force`"
        ) from None
