"""``average``: weight averaging, none | ema | swa."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import Field

from imbalance.training.components.base import (
    Component,
    by_kind,
)

if TYPE_CHECKING:
    import keras


class Average(Component):
    """Weights averaged over training; validation checks, early stopping's choice, the
    saved model and its predictions all use the average (the raw weights keep training).

    Averaging smooths the noise of the last steps, which with 50 minority images is
    large: the averaged model is a flatter, better-calibrated point (Izmailov et al.
    2018), and a selection on 5 validation positives is less of a lottery when
    consecutive checks differ less. The verb is :meth:`callbacks` (run before early
    stopping, which stores what they swap in).
    """

    shorthand = "kind"
    touches = frozenset({"optimizer", "averaging"})

    def optimizer_options(self) -> dict[str, Any]:
        return {}

    def callbacks(self, check_every: int) -> list[keras.callbacks.Callback]:
        return []


class NoAverage(Average):
    """The trained weights as they are."""

    kind: Literal["none"] = "none"


class ExponentialAverage(Average):
    """An exponential moving average of the weights, updated every step (Keras'
    optimizer ``use_ema``), swapped in for validation and at the end of every check by
    Keras' ``SwapEMAWeights``. ``momentum`` 0.999 averages over ~1000 steps."""

    kind: Literal["ema"] = "ema"
    momentum: float = Field(default=0.999, gt=0.0, lt=1.0, examples=[0.99])

    def optimizer_options(self) -> dict[str, Any]:
        return {"use_ema": True, "ema_momentum": self.momentum}

    def callbacks(self, check_every: int) -> list[keras.callbacks.Callback]:
        import keras

        return [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)]


class StochasticAverage(Average):
    """Stochastic weight averaging (SWA, Izmailov et al. 2018): the plain mean of the
    weights at every validation check from step ``start`` on."""

    kind: Literal["swa"] = "swa"
    start: int = Field(default=1000, ge=0, examples=[500])

    def callbacks(self, check_every: int) -> list[keras.callbacks.Callback]:
        return [swa_callback(max(0, math.ceil(self.start / check_every) - 1))]


def swa_callback(first_check: int) -> keras.callbacks.Callback:
    """Averages the weights at the end of every check from ``first_check`` (0-based) on.

    Like ``SwapEMAWeights(swap_on_epoch=True)``: the average is in the model for the
    validation pass and from the end of a check to the start of the next, so early
    stopping stores and restores averages, and the model holds the average when ``fit``
    ends; the raw weights are back in place whenever training steps run.
    """
    import keras

    class SWA(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.check, self.n = 0, 0
            self.mean: list[np.ndarray] = []
            self.raw: list[np.ndarray] | None = None

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.check = epoch
            self._restore()

        def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
            if self.raw is not None or self.check < first_check:
                return
            weights = self.model.get_weights()
            self.n += 1
            self.mean = (
                weights
                if self.n == 1
                else [m + (w - m) / self.n for m, w in zip(self.mean, weights, strict=True)]
            )
            self.raw = weights
            self.model.set_weights(self.mean)

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            if self.raw is None:  # no validation pass ran this check
                self.on_test_begin()

        def _restore(self) -> None:
            if self.raw is not None:
                self.model.set_weights(self.raw)
                self.raw = None

    return SWA()


AnyAverage = Annotated[
    NoAverage | ExponentialAverage | StochasticAverage,
    Field(discriminator="kind"),
    by_kind("none"),
]


FIELDS = {"average": AnyAverage}
