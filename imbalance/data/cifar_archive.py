"""The official CIFAR-10 python archive (``cifar-10-python.tar.gz``): batches and meta.

The archive holds Python-2 pickles under ``cifar-10-batches-py/``, so it is the one
source kind that could run code: its pickles are only loaded from an archive file whose
SHA-256 matched ``data.sha256`` (an empty ``data.sha256`` or an unpacked copy in a
directory is refused), and even then only through the allow-list unpickler of
:mod:`imbalance.data.extract`. Every batch is then checked for the exact shapes and
types of the official one.

The python archive keeps its own labels and class order (``batches.meta``); the training
arrays are ``data_batch_1`` .. ``data_batch_5`` in that order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from imbalance.cli import UserError
from imbalance.data.dataset import IMAGE_SIZE, PIXELS, Dataset
from imbalance.data.extract import Parts, load_pickle

KIND = "cifar10-python"  # the manifest's ``kind``

OFFICIAL_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
PY_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
PY_MEMBERS = (*TRAIN_BATCHES, TEST_BATCH, META)


def is_member(parts: Parts) -> bool:
    """Whether a member name tells that the source is the python archive."""
    return parts[0] == PY_DIR


class ArchiveReader:
    """Collects the batches of a python archive member by member, then joins them.

    Refuses to start unless the bytes come from a verified archive file: this is where
    the rule "pickles only from a checked file" is enforced.
    """

    kind = KIND

    def __init__(self, source: str, *, verified: bool, directory: bool) -> None:
        if directory:
            raise UserError(
                f"data.source: {source} holds an unpacked CIFAR-10 python archive "
                f"({PY_DIR}/), whose pickles are only read from the verified archive file; "
                "point data.source at cifar-10-python.tar.gz (checked against data.sha256)"
            )
        if not verified:
            raise UserError(
                f"data.sha256: empty, but {source} is the CIFAR-10 python archive, "
                "whose pickles are only loaded from a verified file; set data.sha256 to "
                f"the archive's published SHA-256 (the official one is {OFFICIAL_SHA256})"
            )
        self.source = source
        self.batches: dict[str, Any] = {}

    def add(self, parts: Parts, data: bytes | None) -> None:
        if data is None or len(parts) != 2 or parts[0] != PY_DIR or parts[1] not in PY_MEMBERS:
            return  # readme.html, directory entries
        where = f"{self.source}: {PY_DIR}/{parts[1]}"
        obj = load_pickle(data, where)
        self.batches[parts[1]] = (
            parse_meta(obj, where) if parts[1] == META else parse_batch(obj, where)
        )

    def finish(self) -> Dataset:
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

    def close(self) -> None:
        """Nothing to release (the image reader's pool needs this; the interface is shared)."""


def _get(obj: dict[Any, Any], key: str) -> Any:
    return obj[key.encode()] if key.encode() in obj else obj.get(key)


def parse_batch(obj: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
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


def parse_meta(obj: Any, where: str) -> tuple[str, ...]:
    """``batches.meta`` -> the class names, in label order."""
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
