"""``output_bias_init``: the initial bias of ``last`` from the class prior."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field

from imbalance.training.components.base import (
    Component,
    set_output_bias,
)

if TYPE_CHECKING:
    import keras


class OutputBias(Component):
    """Initial bias of ``last`` = log π_c, so the untrained model predicts the prior.

    TensorFlow's imbalanced-data tutorial: with softmax outputs, b_c = log π_c gives
    softmax(b) = π, so the first epochs do not spend their steps learning the prior.
    """

    shorthand = "enabled"
    touches = frozenset({"initial_bias"})

    enabled: bool = Field(default=False, examples=[True])

    def apply(self, model: keras.Model, prior: np.ndarray) -> None:
        if self.enabled:
            set_output_bias(model, np.log(prior))


FIELDS = {"output_bias_init": OutputBias}
