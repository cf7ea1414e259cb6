"""``augment``: random image transformations of the training batches."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from imbalance.training.components.base import (
    Component,
    sub_seeds,
)

if TYPE_CHECKING:
    import keras
    import tensorflow as tf


class Augment(Component):
    """Random image transformations of the training batches (Keras preprocessing layers).

    Geometry: horizontal flips and translations (fraction of the image size); colour
    jitter: brightness and contrast (``RandomColorJitter``, factors as Keras reads them);
    random erasing (Zhong et al. 2020, the "Cutout" family: ``RandomErasing`` blanks a
    random rectangle with noise; ``erase`` is the probability per image); and RandAugment
    (Cubuk et al. 2020) with ``rand_augment`` random operations per image at magnitude
    ``rand_augment_magnitude`` (0-1). With 50 minority images, what the network sees of
    them is what augmentation makes of them: Shwartz-Ziv et al. (NeurIPS 2023) find its
    effect amplified under imbalance.

    Applied to whole batches inside ``tf.data``, after the sampler, so augmentation
    composes with any sampler (an oversampled positive is a new variant each time it is
    drawn). Each layer has its own seed from the run seed (appended in a fixed order, so
    adding a transformation does not shift the others' streams); the map runs
    sequentially because the layers' seed state advances per call, and a parallel map
    could hand the states to batches in a varying order. Translations use
    nearest-neighbour sampling: whole-pixel shifts as in the usual pad-and-crop CIFAR
    augmentation, no blur, and 1.5x cheaper than bilinear (the map shares 2 cores with
    training).
    """

    touches = frozenset({"images"})

    flip: bool = Field(default=False, examples=[True])
    translate: float = Field(default=0.0, ge=0.0, lt=0.5, examples=[0.1])
    brightness: float = Field(default=0.0, ge=0.0, le=1.0, examples=[0.2])
    contrast: float = Field(default=0.0, ge=0.0, le=1.0, examples=[0.2])
    erase: float = Field(default=0.0, ge=0.0, le=1.0, examples=[0.5])
    rand_augment: int = Field(default=0, ge=0, le=8, examples=[2])
    rand_augment_magnitude: float = Field(default=0.2, gt=0.0, le=1.0, examples=[0.3])

    @property
    def enabled(self) -> bool:
        return bool(
            self.flip
            or self.translate > 0
            or self.brightness > 0
            or self.contrast > 0
            or self.erase > 0
            or self.rand_augment > 0
        )

    def layers(self, seed: int) -> list[keras.layers.Layer]:
        """The preprocessing layers, in the order they are applied."""
        import keras

        s_flip, s_move, s_colour, s_erase, s_rand = sub_seeds(seed, 5)
        unit = (0.0, 1.0)  # images are float32 in [0, 1]
        layers: list[keras.layers.Layer] = []
        if self.flip:
            layers.append(keras.layers.RandomFlip("horizontal", seed=s_flip))
        if self.translate > 0:
            t = self.translate
            layers.append(
                keras.layers.RandomTranslation(
                    t, t, fill_mode="reflect", interpolation="nearest", seed=s_move
                )
            )
        if self.brightness > 0 or self.contrast > 0:
            layers.append(
                keras.layers.RandomColorJitter(
                    value_range=unit,
                    brightness_factor=self.brightness or None,
                    contrast_factor=self.contrast or None,
                    seed=s_colour,
                )
            )
        if self.rand_augment > 0:
            layers.append(
                keras.layers.RandAugment(
                    value_range=unit,
                    num_ops=self.rand_augment,
                    factor=self.rand_augment_magnitude,
                    seed=s_rand,
                )
            )
        if self.erase > 0:
            layers.append(
                keras.layers.RandomErasing(
                    factor=(self.erase, self.erase), value_range=unit, seed=s_erase
                )
            )
        return layers

    def apply(self, ds: tf.data.Dataset, seed: int) -> tf.data.Dataset:
        """Augment the images of (x, y) batches; labels and shapes are unchanged."""
        if not self.enabled:
            return ds
        layers = self.layers(seed)

        def augment(x: Any, y: Any) -> tuple[Any, Any]:
            for layer in layers:
                x = layer(x, training=True)
            return x, y

        return ds.map(augment)


FIELDS = {"augment": Augment}
