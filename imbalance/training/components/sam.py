"""``sam``: sharpness-aware minimisation's two-pass step."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from imbalance.training.components.base import (
    Component,
)

if TYPE_CHECKING:
    import keras
    import tensorflow as tf


class Sharpness(Component):
    """Sharpness-aware minimisation (SAM, Foret et al. 2021) with radius ``rho``: each
    step takes the gradient at the weights moved by ρ·g/‖g‖ (the worst nearby point to
    first order) and applies it at the unmoved weights.

    Rangwani et al. (NeurIPS 2022) found it lifts the minority classes of CIFAR-10-LT by
    escaping the sharp minima their few images produce. Costs two forward and backward
    passes per step. The model ``fit`` trains is a subclass sharing the CNN's layers
    (only ``train_step`` differs), so the saved model is the plain CNN.
    """

    shorthand = "rho"
    touches = frozenset({"train_step"})

    rho: float = Field(default=0.0, ge=0.0, examples=[0.05])

    def training_model(self, model: keras.Model) -> keras.Model:
        if self.rho == 0:
            return model
        return sam_model(model, self.rho)


def sam_model(model: keras.Model, rho: float) -> keras.Model:
    """``model``'s graph and weights, trained by SAM's two-pass step."""
    import keras
    import tensorflow as tf

    class SAM(keras.Model):
        def train_step(self, data: Any) -> dict[str, Any]:
            x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
            variables = self.trainable_variables

            def loss_and_gradients() -> tuple[tf.Tensor, tf.Tensor, list[tf.Tensor]]:
                with tf.GradientTape() as tape:
                    y_pred = self(x, training=True)
                    loss = self.compute_loss(
                        x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
                    )
                return y_pred, loss, tape.gradient(loss, variables)

            y_pred, loss, gradients = loss_and_gradients()
            scale = rho / (tf.linalg.global_norm(gradients) + 1e-12)
            moves = [g * scale for g in gradients]
            for variable, move in zip(variables, moves, strict=True):
                variable.assign_add(move)
            _, _, sharp = loss_and_gradients()
            for variable, move in zip(variables, moves, strict=True):
                variable.assign_sub(move)
            self.optimizer.apply_gradients(zip(sharp, variables, strict=True))
            for metric in self.metrics:  # Keras' own step updates its loss tracker so
                if metric.name == "loss":
                    metric.update_state(loss, sample_weight=tf.shape(x)[0])
            return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    return SAM(inputs=model.inputs, outputs=model.outputs, name=model.name)


FIELDS = {"sam": Sharpness}
