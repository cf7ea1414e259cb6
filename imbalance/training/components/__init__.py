"""Remedy components: one module per component kind, composed by :class:`Remedy`.

Importing this package loads only :mod:`.base` (the composition, the defaults and the
shared helpers); a kind's module is loaded when a remedy sets its key, so that a training
stage loads exactly the modules its remedy uses (see :mod:`.base`). The kinds' classes are
still importable from here (``from imbalance.training.components import FocalLoss``):
the name is looked up in the kind modules on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from imbalance.training.components.base import (
    EPSILON,
    KINDS,
    RETRAIN_KINDS,
    Component,
    CrossentropyLoss,
    Loss,
    NaturalSampler,
    Remedy,
    Retrain,
    Sampler,
    Spec,
    TrainData,
    TrainingSet,
    class_counts,
    class_prior,
    set_output_bias,
    sub_seeds,
)

__all__ = [
    "EPSILON",
    "KINDS",
    "RETRAIN_KINDS",
    "Component",
    "CrossentropyLoss",
    "Loss",
    "NaturalSampler",
    "Remedy",
    "Retrain",
    "Sampler",
    "Spec",
    "TrainData",
    "TrainingSet",
    "class_counts",
    "class_prior",
    "set_output_bias",
    "sub_seeds",
]


def __getattr__(name: str) -> Any:
    """A kind's class or helper (``FocalLoss``, ``sam_model``), from its module."""
    for module in dict.fromkeys([*KINDS.values(), *RETRAIN_KINDS.values()]):
        found = getattr(importlib.import_module(f"{__name__}.{module}"), name, None)
        if found is not None:
            return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
