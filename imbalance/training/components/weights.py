"""Class weights, optionally deferred (DRW): ``weights: none | balanced | effective_number``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import Field

from imbalance.training.components.base import (
    Component,
    by_kind,
)

if TYPE_CHECKING:
    import keras
    import tensorflow as tf


class Weights(Component):
    """Per-sample class weights, switched on after ``warmup_epochs`` sampler epochs (0 =
    from the start); the verb is :meth:`class_weights`.

    Weights are per-sample weights added as the last step of the dataset, looked up in a
    ``tf.Variable`` that a callback sets at the start of every validation check (Keras
    epoch): ones before the switch check, the class weights from it on (deferred
    re-weighting, DRW, Cao et al. 2019). The switch can only happen at a check boundary,
    so :meth:`Remedy.min_checks` converts ``from_epoch`` to the first check at or after
    its step. The lookup runs after ``prefetch`` so that no batch prepared during the
    previous check carries stale weights. This is what ``fit(class_weight=...)`` does
    internally (Keras maps the class weight to a sample weight per batch, and the loss
    averages over the batch size), so one mechanism serves every sampler and DRW; only
    the training loss is weighted, the validation loss is not.
    """

    shorthand = "kind"
    touches = frozenset({"sample_weights", "min_checks"})

    @property
    def warmup_epochs(self) -> int:
        """Sampler epochs trained unweighted before the weights switch on."""
        return 0

    def class_weights(self, counts: np.ndarray) -> np.ndarray | None:
        """Weight per class [w_negative, w_positive], or None for no weighting."""
        raise NotImplementedError

    def attach(
        self, ds: tf.data.Dataset, counts: np.ndarray, switch: int
    ) -> tuple[tf.data.Dataset, list[keras.callbacks.Callback]]:
        """Add the per-sample weight to each (x, y_onehot) batch; return the callbacks.

        ``switch`` is the 0-based index of the first check (Keras epoch) trained weighted.
        """
        w = self.class_weights(np.asarray(counts, dtype=np.float64))
        if w is None:
            return ds, []
        import keras
        import tensorflow as tf

        active = w.astype(np.float32)
        ones = np.ones(2, np.float32)
        current = tf.Variable(active if switch == 0 else ones, trainable=False)

        def add_weight(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
            return x, y, tf.reduce_sum(y * current, axis=-1)

        def on_epoch_begin(check: int, logs: dict[str, Any] | None = None) -> None:
            current.assign(active if check >= switch else ones)

        callback = keras.callbacks.LambdaCallback(on_epoch_begin=on_epoch_begin)
        # tf.data would otherwise inject a prefetch after this map and hand out batches
        # weighted before the switch.
        options = tf.data.Options()
        options.experimental_optimization.inject_prefetch = False
        return ds.map(add_weight).with_options(options), [callback]


class NoWeights(Weights):
    """Every sample weighs 1: the dataset is left as it is."""

    kind: Literal["none"] = "none"

    def class_weights(self, counts: np.ndarray) -> np.ndarray | None:
        return None


class ClassWeights(Weights):
    """Class weights from ``from_epoch`` on: 0 = from the start, > 0 = deferred (DRW).

    ``from_epoch`` counts the sampler's epochs, as the DRW paper does (its warm-up is a
    number of passes over the data), not validation checks. Early stopping starts
    monitoring at the switch too: a DRW model picked from before the switch would be the
    baseline under another name.
    """

    from_epoch: int = Field(default=0, ge=0, examples=[1])

    @property
    def warmup_epochs(self) -> int:
        return self.from_epoch


class BalancedWeights(ClassWeights):
    """scikit-learn's ``compute_class_weight("balanced")`` = N / (2 n_c)."""

    kind: Literal["balanced"] = "balanced"

    def class_weights(self, counts: np.ndarray) -> np.ndarray | None:
        from sklearn.utils.class_weight import compute_class_weight

        y = np.repeat([0, 1], np.asarray(counts).astype(np.int64))
        return compute_class_weight("balanced", classes=np.array([0, 1]), y=y)


class EffectiveNumberWeights(ClassWeights):
    """Cui et al. 2019: w_c ∝ (1 - β) / (1 - β^n_c), normalised so that Σ_c w_c n_c = N.

    The same normalisation as ``balanced`` (the mean per-sample weight is 1, so the loss
    scale and the learning rate mean the same as without weights); β → 1 gives
    ``balanced``, β → 0 no weighting.
    """

    kind: Literal["effective_number"] = "effective_number"
    beta: float = Field(default=0.999, gt=0.0, lt=1.0, examples=[0.99])

    def class_weights(self, counts: np.ndarray) -> np.ndarray | None:
        counts = np.asarray(counts, dtype=np.float64)
        effective = (1.0 - self.beta**counts) / (1.0 - self.beta)
        w = 1.0 / effective
        return w * counts.sum() / float((w * counts).sum())


AnyWeights = Annotated[
    NoWeights | BalancedWeights | EffectiveNumberWeights,
    Field(discriminator="kind"),
    by_kind("none"),
]

FIELDS = {"weights": AnyWeights}
