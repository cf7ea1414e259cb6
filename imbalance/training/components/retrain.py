"""``start`` and ``trainable`` (retrain only): the starting model and the layers that train.

Every retrain remedy names a ``start``, so every retrain stage uses this module.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from imbalance.cli import UserError
from imbalance.training.components.base import (
    Component,
)
from imbalance.training.model import LAYER_NAMES, OUTPUT_LAYER

if TYPE_CHECKING:
    import keras

    from imbalance.layout import Layout
    from imbalance.params import Model


class Start(Component):
    """A retrain remedy's starting model: another remedy's model of the same seed.

    Its weights are copied into a model freshly built from ``model`` params, so a file
    from another architecture is refused, not silently used.
    """

    shorthand = "remedy"
    touches = frozenset({"initial_weights", "initial_bias"})

    remedy: str = Field(min_length=1, examples=["baseline"])

    def path(self, layout: Layout, seed: int) -> Path:
        return layout.model(self.remedy, seed)

    def check_file(self, layout: Layout, seed: int) -> None:
        """Cheap checks before TensorFlow is imported: present, and a complete zip."""
        path = self.path(layout, seed)
        rebuild = f"`dvc repro train@{self.remedy}-{seed}`"
        if not path.is_file():
            raise UserError(f"{path}: starting model missing; build it first with {rebuild}")
        try:
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
        except (zipfile.BadZipFile, OSError):
            bad = "archive"
        if bad is not None:
            raise UserError(
                f"{path}: starting model is truncated or damaged; rebuild it with "
                f"`dvc repro --force train@{self.remedy}-{seed}`"
            )

    def load(self, layout: Layout, model_params: Model, seed: int) -> keras.Model:
        import keras

        from imbalance.training.model import build_model

        path = self.path(layout, seed)
        rebuild = f"`dvc repro --force train@{self.remedy}-{seed}`"
        try:
            saved = keras.models.load_model(path, compile=False, safe_mode=True)
        except Exception as err:  # Keras raises many types for a damaged file
            raise UserError(
                f"{path}: not a loadable Keras model ({type(err).__name__}); rebuild it "
                f"with {rebuild}"
            ) from None
        model = build_model(model_params, seed)
        want = [(w.path, tuple(w.shape)) for w in model.weights]
        got = [(w.path, tuple(w.shape)) for w in saved.weights]
        if want != got:
            raise UserError(
                f"{path}: starting model has another architecture than the `model` params "
                f"({_first_difference(got, want)}); rebuild it with {rebuild}"
            )
        model.set_weights(saved.get_weights())
        return model


def _first_difference(
    got: list[tuple[str, tuple[int, ...]]], want: list[tuple[str, tuple[int, ...]]]
) -> str:
    """'conv0/kernel is 3x3x3x8, params give 3x3x3x16': the first weight that differs."""
    for (g_name, g_shape), (w_name, w_shape) in zip(got, want, strict=False):
        if (g_name, g_shape) != (w_name, w_shape):
            shape = "x".join(map(str, g_shape))
            return f"{g_name} is {shape}, params give {w_name} {'x'.join(map(str, w_shape))}"
    return f"{len(got)} weight arrays, params give {len(want)}"


#: A layer name of the CNN (:data:`imbalance.training.model.LAYER_NAMES`).
LayerName = Literal[LAYER_NAMES]  # type: ignore[valid-type]


class Trainable(Component):
    """The layers of the starting model that keep training; every other layer is frozen
    (two-phase training, cRT). ``[]``: nothing trains (a post-hoc-only remedy)."""

    shorthand = "layers"
    touches = frozenset({"trainable"})

    layers: tuple[LayerName, ...] = Field(
        default=(OUTPUT_LAYER,), strict=False, examples=[("dense", OUTPUT_LAYER)]
    )

    @property
    def trains(self) -> bool:
        return bool(self.layers)

    def apply(self, model: keras.Model) -> None:
        for layer in model.layers:
            layer.trainable = layer.name in self.layers


FIELDS = {"start": Start, "trainable": Trainable}
