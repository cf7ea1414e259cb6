"""Component kind ``budget``: a remedy's own stopping rule and step budget (issue 22).

``train.stopping`` and ``train.max_steps`` are the study's protocol, the same for every
remedy. A remedy designed for the equal-budget protocol (weight averaging kept to the
final step, no early stopping) breaks under early stopping with 5 validation positives:
an EMA with momentum 0.999 checked at step 200 is still mostly its starting weights, and
early stopping may keep it (chance ROC AUC on a cat/dog pair). ``budget: {stopping:
budget, max_steps: 6000}`` gives such a remedy its rule while the other remedies keep the
study's; an unset field keeps the ``train`` section's value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, ValidationError

from imbalance.training.components.base import Component

if TYPE_CHECKING:
    from imbalance.params import Train


class Budget(Component):
    """The remedy's ``stopping`` (early_stopping | budget) and ``max_steps``, overriding
    the ``train`` section's for this remedy only; ``None`` keeps the section's value. The
    verb is :meth:`train_config`; the result is validated like the ``train`` section
    (``max_steps`` a multiple of ``check_every``)."""

    touches: ClassVar[frozenset[str]] = frozenset({"stopping"})

    stopping: Literal["early_stopping", "budget"] | None = Field(default=None, examples=["budget"])
    max_steps: int | None = Field(default=None, gt=0, examples=[200])

    def train_config(self, cfg: Train) -> Train:
        """``cfg`` with this remedy's stopping rule and budget (``cfg`` itself if unset).

        Raises ``ValueError`` naming the ``train`` rule a value breaks, so that params
        validation reports it under the remedy's key.
        """
        update = self.model_dump(exclude_none=True)
        if not update:
            return cfg
        try:
            return type(cfg).model_validate({**cfg.model_dump(), **update})
        except ValidationError as err:
            msg = err.errors()[0]["msg"].removeprefix("Value error, ")
            raise ValueError(msg.replace("train.max_steps", "budget.max_steps")) from None


FIELDS = {"budget": Budget}
