"""The imbalance-aware losses: ``loss: focal | logit_adjusted``.

Crossentropy, every remedy's default, is in :mod:`.base`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import Field

from imbalance.training.components.base import (
    EPSILON,
    CrossentropyLoss,
    Loss,
    by_kind,
)

if TYPE_CHECKING:
    import tensorflow as tf


class FocalLoss(Loss):
    """Lin et al. 2017: -α_t (1 - p_t)^γ log p_t with α_t = alpha for the positive class
    and 1 - alpha for the negative one."""

    kind: Literal["focal"] = "focal"
    gamma: float = Field(default=2.0, ge=0.0, examples=[1.0])
    alpha: float = Field(default=0.25, gt=0.0, lt=1.0, examples=[0.5])

    def keras_loss(self, prior: np.ndarray) -> Callable[[Any, Any], Any]:
        import tensorflow as tf

        alpha = tf.constant([1.0 - self.alpha, self.alpha], tf.float32)
        gamma = float(self.gamma)

        def focal(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
            p = tf.clip_by_value(y_pred, EPSILON, 1.0 - EPSILON)
            p_t = tf.reduce_sum(y_true * p, axis=-1)
            alpha_t = tf.reduce_sum(y_true * alpha, axis=-1)
            return -alpha_t * tf.pow(1.0 - p_t, gamma) * tf.math.log(p_t)

        return focal


class LogitAdjustedLoss(Loss):
    """Menon et al. 2021: softmax crossentropy on z + τ log π.

    The model outputs p = softmax(z), and log p = z - logsumexp(z) differs from z by a
    per-sample constant, which softmax ignores, so softmax(log p + τ log π) =
    softmax(z + τ log π): the loss is computed from the probabilities exactly.
    """

    kind: Literal["logit_adjusted"] = "logit_adjusted"
    tau: float = Field(default=1.0, ge=0.0, examples=[2.0])

    def keras_loss(self, prior: np.ndarray) -> Callable[[Any, Any], Any]:
        import tensorflow as tf

        shift = tf.constant(self.tau * np.log(prior), tf.float32)

        def logit_adjusted(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
            z = tf.math.log(tf.clip_by_value(y_pred, EPSILON, 1.0)) + shift
            return tf.reduce_logsumexp(z, axis=-1) - tf.reduce_sum(y_true * z, axis=-1)

        return logit_adjusted


AnyLoss = Annotated[
    CrossentropyLoss | FocalLoss | LogitAdjustedLoss,
    Field(discriminator="kind"),
    by_kind("crossentropy"),
]


FIELDS = {"loss": AnyLoss}
