"""``tta``: test-time flip averaging of the scores."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field

from imbalance.training.components.base import (
    Component,
    positive_scores,
)

if TYPE_CHECKING:
    import keras


class FlipTTA(Component):
    """Test-time augmentation: every score is the mean of the positive-class probability
    of the image and of its horizontal mirror (a car facing left is still a car).

    Predictions stay one number per image, so evaluation is unchanged; the validation
    checks during training score the plain image.
    """

    shorthand = "flip"
    touches = frozenset({"predictions"})

    flip: bool = Field(default=False, examples=[True])

    def predict_positive(self, model: keras.Model, x: np.ndarray, batch_size: int) -> np.ndarray:
        """Positive-class probabilities, float32, in input order, in large batches."""
        score = positive_scores(model, x, batch_size)
        if self.flip and len(x):
            mirrored = positive_scores(model, x[:, :, ::-1], batch_size)
            score = (score + mirrored) / 2
        return np.asarray(score, dtype=np.float32)


FIELDS = {"tta": FlipTTA}
