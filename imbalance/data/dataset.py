"""The arrays every kind of source decodes to, and the one image shape they all share.

Each source kind has its own reader (:mod:`imbalance.data.cifar_archive`,
:mod:`imbalance.data.image_folder`) and :mod:`imbalance.data.fetch` picks one and writes
its result to ``data/raw``. The result type lives here, below all of them, so the readers
and fetch share it without importing one another.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IMAGE_SIZE = (32, 32)
PIXELS = IMAGE_SIZE[0] * IMAGE_SIZE[1] * 3


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
