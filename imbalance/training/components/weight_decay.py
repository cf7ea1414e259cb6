"""``weight_decay``: decoupled weight decay (AdamW)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from imbalance.training.components.base import (
    Component,
)

if TYPE_CHECKING:
    pass


class WeightDecay(Component):
    """Decoupled weight decay (AdamW, Loshchilov & Hutter 2019): each step shrinks every
    weight by ``rate`` × learning rate, apart from the gradient step.

    Keras 3 optimizers take ``weight_decay`` and apply it decoupled, so ``adam`` with a
    rate is AdamW. Alshammari et al. (CVPR 2022) found a tuned weight decay alone beats
    most long-tail methods: it keeps the weights, and the per-class norms of the last
    layer, from growing towards the majority class.
    """

    shorthand = "rate"
    touches = frozenset({"optimizer"})

    rate: float = Field(default=0.0, ge=0.0, examples=[0.05])

    def optimizer_options(self) -> dict[str, Any]:
        return {"weight_decay": self.rate} if self.rate > 0 else {}


FIELDS = {"weight_decay": WeightDecay}
