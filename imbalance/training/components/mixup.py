"""``mixup``: Balanced-MixUp of each batch with a class-balanced one."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field

from imbalance.training.components.base import (
    Component,
    sub_seeds,
)
from imbalance.training.components.sampler import Oversampler

if TYPE_CHECKING:
    import tensorflow as tf


class Mixup(Component):
    """Balanced-MixUp (Galdran et al., MICCAI 2021): every training batch becomes
    λ·(the sampler's batch) + (1 − λ)·(a class-balanced batch), images and one-hot labels
    alike, with λ ~ Beta(α, 1) drawn per batch.

    The class-balanced batch is drawn like oversampling's (a fair coin per image between
    the shuffled class streams); with the natural sampler this is the paper's mix of
    instance-based and class-based sampling, which regularises the 50 minority images
    without repeating them verbatim. Small α keeps λ near 0 (mostly the balanced batch),
    the paper's best setting being α = 0.1-0.2. λ = U^(1/α), the inverse CDF of
    Beta(α, 1), from a seeded uniform stream. Mixed before augmentation.
    """

    shorthand = "alpha"
    touches = frozenset({"images", "labels"})

    alpha: float = Field(default=0.0, ge=0.0, examples=[0.2])

    def apply(
        self,
        ds: tf.data.Dataset,
        gather: Callable[[Any], tuple[Any, Any]],
        y: np.ndarray,
        batch_size: int,
        seed: int,
    ) -> tf.data.Dataset:
        """Mix each (x, y) batch of ``ds`` with a class-balanced batch of the same rows."""
        if self.alpha == 0:
            return ds
        import tensorflow as tf

        s_balanced, s_lambda = sub_seeds(seed, 2)
        balanced = Oversampler().index_batches(y, batch_size, s_balanced).map(gather)
        inverse_alpha = 1.0 / self.alpha

        def to_lambda(r: tf.Tensor) -> tf.Tensor:
            u = tf.cast(r % (1 << 24), tf.float32) / float(1 << 24)
            return tf.pow(u, inverse_alpha)

        lambdas = tf.data.Dataset.random(seed=s_lambda).map(to_lambda)

        def mix(a: Any, b: Any, lam: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            (xa, ya), (xb, yb) = a, b
            n = tf.shape(xa)[0]  # the natural sampler's last batch of a pass is short
            return lam * xa + (1 - lam) * xb[:n], lam * ya + (1 - lam) * yb[:n]

        return tf.data.Dataset.zip(ds, balanced, lambdas).map(mix)


FIELDS = {"mixup": Mixup}
