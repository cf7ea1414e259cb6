"""What a training run reads, loaded and checked before TensorFlow is imported.

Every check here needs numpy only, so bad input costs a fraction of a second, not the
~4 s TensorFlow import, and fails with one line before any output is touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imbalance import files, params
from imbalance.cli import UserError
from imbalance.layout import Layout
from imbalance.training.components import Remedy, class_counts

IMAGE_SHAPE = (32, 32, 3)


@dataclass(frozen=True)
class Images:
    """One data file, images already float32 in [0, 1] (converted once, here)."""

    path: Path
    x: np.ndarray
    y: np.ndarray

    @property
    def counts(self) -> np.ndarray:
        return class_counts(self.y)

    def subset(self, indices: np.ndarray) -> Images:
        """The images at ``indices`` (a cross-validation fold), in that order."""
        return Images(self.path, self.x[indices], self.y[indices])


def load_images(path: Path, seed: int) -> Images:
    """Load ``x`` (uint8 N×32×32×3) and ``y`` (0/1), refusing anything else in one line."""
    arrays = files.load_npz(path, ("x", "y"))
    x, y = arrays["x"], arrays["y"]
    fix = f"rebuild it with `dvc repro --force split` (seed {seed})"
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != IMAGE_SHAPE:
        raise UserError(
            f"{path}: x is {x.dtype} {'x'.join(map(str, x.shape))}, expected uint8 Nx32x32x3; {fix}"
        )
    if y.ndim != 1 or len(y) != len(x):
        raise UserError(f"{path}: y has shape {y.shape}, expected ({len(x)},); {fix}")
    if len(y) and not np.isin(y, (0, 1)).all():
        raise UserError(f"{path}: y holds labels other than 0 and 1; {fix}")
    return Images(path, x.astype(np.float32) / np.float32(255.0), y.astype(np.int64))


def load_inputs(
    p: params.Params, name: str, remedy: Remedy, seed: int, layout: Layout
) -> tuple[Images, Images, Images]:
    """Every check that needs no TensorFlow; returns (train, val, test)."""
    data_dir = layout.data_dir(seed)
    train_path, val_path = remedy.train_set.paths(data_dir)
    train = load_images(train_path, seed)
    val = load_images(val_path, seed)
    test = load_images(data_dir / "test.npz", seed)
    n_neg, n_pos = (int(c) for c in train.counts)
    if n_pos == 0 or n_neg == 0:
        missing = "positive" if n_pos == 0 else "negative"
        raise UserError(
            f"{train_path}: the training set of remedy {name!r} holds no {missing} "
            f"images ({n_neg} negatives, {n_pos} positives); check the `split` params and "
            "rebuild with `dvc repro split`"
        )
    if min(val.counts) == 0:
        raise UserError(
            f"{val_path}: the validation set needs both classes for the early-stopping "
            f"metric (has {int(val.counts[0])} negatives, {int(val.counts[1])} positives); "
            "raise split.val_fraction or split.n_minority"
        )
    if p.train.batch_size > len(train.y):
        raise UserError(
            f"params.yaml: train.batch_size is {p.train.batch_size} but {train_path} holds "
            f"only {len(train.y)} images; lower train.batch_size"
        )
    check_every, batch = p.train.check_every, p.train.batch_size
    switch = remedy.min_checks(train.counts, batch, check_every) * check_every
    max_steps = remedy.train_config(p.train).max_steps  # the remedy's own budget if it has one
    if remedy.trains and switch >= max_steps:
        raise UserError(
            f"params.yaml: remedy {name!r} re-weights from step {switch} "
            f"(weights.from_epoch {remedy.warmup_epochs} x "
            f"{remedy.sampler.steps_per_epoch(train.counts, batch)} steps per sampler epoch, "
            f"at a multiple of train.check_every {check_every}) but it trains "
            f"{max_steps} steps at most; raise train.max_steps (or the remedy's "
            "budget.max_steps) or lower weights.from_epoch"
        )
    remedy.check(layout, seed)
    return train, val, test
