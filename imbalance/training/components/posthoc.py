"""``posthoc_tau`` (retrain only): post-hoc logit adjustment of the saved model."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field

from imbalance.training.components.base import (
    Component,
    set_output_bias,
)
from imbalance.training.model import OUTPUT_LAYER

if TYPE_CHECKING:
    import keras


class PosthocShift(Component):
    """Post-hoc logit adjustment (Menon et al. 2021): subtract τ log π_c from ``last``'s bias.

    The saved model then outputs softmax(z - τ log π), so every prediction file and metric
    downstream carries the adjustment with no special case.
    """

    shorthand = "tau"
    touches = frozenset({"final_bias"})

    tau: float = Field(default=0.0, ge=0.0, examples=[1.0])

    def apply(self, model: keras.Model, prior: np.ndarray) -> None:
        if self.tau > 0:
            _, bias = model.get_layer(OUTPUT_LAYER).get_weights()
            set_output_bias(model, bias - self.tau * np.log(prior))


FIELDS = {"posthoc_tau": PosthocShift}
