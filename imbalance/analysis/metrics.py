"""The study's metrics, each declared once: what computes it, its range, which way is better,
and where it is shown.

Every place that handles a metric reads :data:`REGISTRY`: ``evaluate`` computes each entry
per run (``metrics/runs/seed<s>/<remedy>.json``), ``compare`` takes statistics of it over
seeds and lays out the per-remedy table, the paired tables and the ``dvc metrics`` files,
``runs.value_range`` (and with it the claims) cuts intervals to its range, the bar figure
and the sweep figure draw it, and the pull-request comment compares it across commits.
Adding a metric is one :class:`Metric` entry; showing it somewhere is one more item in its
``shown``.

Keys. A run's metrics file holds each metric by ``name`` twice: ``test.<name>`` at the
fixed threshold (``evaluate.threshold``) and ``tuned_threshold.test.<name>`` at the
threshold tuned on validation. Every other file names them by the one key style
``<at>.<name>`` with ``at`` one of ``test`` / ``tuned`` (statistics.json, the claims, the
PR comment); :func:`key` builds it. The ``dvc metrics`` files use short flat column names
(``bal_acc_tuned``), built by :func:`column` from ``Metric.column``, so that ``dvc metrics
show`` stays narrow.

Undefined stays undefined: a metric that cannot be computed for a run (precision with no
positive prediction, recall with no positive image, ROC AUC with one class) is ``None`` in
the run's file, never a made-up 0; the statistics over seeds use the seeds where it is
defined and say how many those are.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import numpy as np
from sklearn import metrics as skm

#: Which threshold a number is at: ``test`` = the fixed ``evaluate.threshold`` (or none, for
#: a threshold-free metric), ``tuned`` = the threshold chosen on validation.
At = Literal["test", "tuned"]
#: Where a metric can be shown: the per-remedy table of comparison.md, its paired tables
#: (the family of adjusted tests), the ``dvc metrics`` files ``metrics/remedies/*.json``,
#: the bar figure, the imbalance-ratio sweep figure, the pull-request comment.
View = Literal["table", "paired", "dvc_metrics", "bars", "sweep", "pr_comment"]
VIEWS: tuple[View, ...] = ("table", "paired", "dvc_metrics", "bars", "sweep", "pr_comment")
#: The range a metric cannot leave: a rate in [0, 1], a correlation in [-1, 1], or a count
#: of the positive / negative test images in [0, n].
Range = Literal["rate", "signed", "positives", "negatives"]
COUNT_RANGES = ("positives", "negatives")
#: The statistics key of the tuned threshold itself (a number per run, not a metric).
THRESHOLD_KEY = "tuned.value"


@dataclass(frozen=True)
class Metric:
    """One metric. ``shown`` maps a view to {at: position}: the metric appears in that
    view at those thresholds, columns sorted by position (ties: declaration order)."""

    #: Key in the run's metrics file, and the ``<name>`` of ``<at>.<name>``.
    name: str
    #: Short label of tables and figures ("bal. acc."); views add the threshold.
    label: str
    #: The scikit-learn function: ``f(y_true, scores)`` if ``threshold_free``, else
    #: ``f(y_true, decisions)`` with 0/1 decisions at a threshold. May return NaN: undefined.
    compute: Callable[[np.ndarray, np.ndarray], Any]
    range: Range
    better: Literal["higher", "lower"]
    #: True: computed from the scores, the same at every threshold (no ``tuned.`` key).
    threshold_free: bool = False
    #: Undefined unless both classes are present in ``y_true`` (compares the two classes).
    needs_both_classes: bool = False
    #: Flat column name in ``metrics/remedies/*.json``; default ``name``.
    short: str = ""
    shown: Mapping[View, Mapping[At, float]] = field(default_factory=dict)

    @property
    def is_count(self) -> bool:
        return self.range in COUNT_RANGES

    @property
    def ats(self) -> tuple[At, ...]:
        """The thresholds this metric is recorded at across runs."""
        return ("test",) if self.threshold_free else ("test", "tuned")


def _cell(row: int, col: int, y_true: np.ndarray, y_pred: np.ndarray) -> int:
    """One cell of the 2x2 confusion matrix (rows: actual 0/1, columns: predicted 0/1)."""
    return int(skm.confusion_matrix(y_true, y_pred, labels=[0, 1])[row, col])


#: ``zero_division=np.nan``: no positive prediction leaves precision undefined (and no
#: positive image recall), which becomes ``None``, not 0 (issue 23).
UNDEFINED = np.nan

#: Every metric, in the order of the run files' notes and of statistics.json's keys.
REGISTRY: tuple[Metric, ...] = (
    Metric(
        "roc_auc", "ROC AUC", skm.roc_auc_score, "rate", "higher",
        threshold_free=True, needs_both_classes=True,
        shown={
            "table": {"test": 1}, "paired": {"test": 1}, "dvc_metrics": {"test": 1},
            "bars": {"test": 1}, "sweep": {"test": 1}, "pr_comment": {"test": 1},
        },
    ),
    Metric(
        "pr_auc", "PR AUC", skm.average_precision_score, "rate", "higher",
        threshold_free=True, needs_both_classes=True,
        shown={"table": {"test": 2}, "dvc_metrics": {"test": 2}},
    ),
    Metric(
        "precision", "precision", partial(skm.precision_score, zero_division=UNDEFINED),
        "rate", "higher",
        shown={"table": {"test": 3, "tuned": 10}, "dvc_metrics": {"test": 3}, "bars": {"test": 2}},
    ),
    Metric(
        "recall", "recall", partial(skm.recall_score, zero_division=UNDEFINED), "rate", "higher",
        shown={
            "table": {"test": 4, "tuned": 9}, "paired": {"test": 2},
            "dvc_metrics": {"test": 4, "tuned": 6}, "bars": {"test": 3, "tuned": 4},
            "sweep": {"test": 2, "tuned": 3}, "pr_comment": {"test": 2},
        },
    ),
    Metric("f1", "F1", partial(skm.f1_score, zero_division=UNDEFINED), "rate", "higher"),
    Metric(
        "balanced_accuracy", "bal. acc.", skm.balanced_accuracy_score, "rate", "higher",
        needs_both_classes=True, short="bal_acc",
        shown={
            "table": {"test": 5, "tuned": 11}, "paired": {"tuned": 3},
            "dvc_metrics": {"test": 5, "tuned": 7}, "pr_comment": {"tuned": 3},
        },
    ),
    Metric("mcc", "MCC", skm.matthews_corrcoef, "signed", "higher", needs_both_classes=True),
    Metric("accuracy", "accuracy", skm.accuracy_score, "rate", "higher"),
    Metric("tp", "TP", partial(_cell, 1, 1), "positives", "higher"),
    Metric("fp", "FP", partial(_cell, 0, 1), "negatives", "lower", shown={"table": {"test": 7}}),
    Metric("tn", "TN", partial(_cell, 0, 0), "negatives", "higher"),
    Metric("fn", "FN", partial(_cell, 1, 0), "positives", "lower", shown={"table": {"test": 6}}),
)  # fmt: skip
BY_NAME: dict[str, Metric] = {m.name: m for m in REGISTRY}
#: The per-remedy table's one column that is not a metric: the tuned threshold, at position 8.
THRESHOLD_COLUMN_AT = 8


def _check(registry: tuple[Metric, ...]) -> None:
    """A wrong entry fails at import, not in a report hours later."""
    names = [m.name for m in registry]
    if len(set(names)) != len(names):
        raise ValueError(f"metric names repeat: {names}")
    for m in registry:
        for view, ats in m.shown.items():
            if view not in VIEWS:
                raise ValueError(f"metric {m.name}: unknown view {view!r}; one of {VIEWS}")
            if not set(ats) <= set(m.ats):
                raise ValueError(f"metric {m.name}: shown at {sorted(ats)}, recorded at {m.ats}")


_check(REGISTRY)


# ------------------------------------------------------------------------------ keys


def key(at: At, name: str) -> str:
    """``test.recall``, ``tuned.balanced_accuracy``: the one key style outside run files."""
    return f"{at}.{name}"


def split_key(stat_key: str) -> tuple[str, str]:
    """``tuned.recall`` -> (``tuned``, ``recall``)."""
    at, name = stat_key.split(".", 1)
    return at, name


def metric_of(stat_key: str) -> Metric | None:
    """The registry entry of a statistics key; None for :data:`THRESHOLD_KEY`."""
    return BY_NAME.get(split_key(stat_key)[1]) if stat_key != THRESHOLD_KEY else None


def stat_keys() -> tuple[str, ...]:
    """Every key statistics.json describes per remedy: each metric at each of its
    thresholds (the fixed one first, for every metric), then the tuned threshold itself."""
    return (
        *(key("test", m.name) for m in REGISTRY),
        *(key("tuned", m.name) for m in REGISTRY if not m.threshold_free),
        THRESHOLD_KEY,
    )


def lower_is_better(stat_key: str) -> bool:
    metric = metric_of(stat_key)
    return metric is not None and metric.better == "lower"


# ----------------------------------------------------------------------------- views


@dataclass(frozen=True)
class Column:
    """One column of a view: a metric at a threshold (or the tuned threshold itself)."""

    key: str
    at: At
    metric: Metric | None  # None: the tuned threshold

    @property
    def digits(self) -> int:
        """Decimals in the report: a mean count to 1 decimal, anything else to 3."""
        return 1 if self.metric is not None and self.metric.is_count else 3


def columns(view: View) -> tuple[Column, ...]:
    """The view's columns in position order (ties: declaration order)."""
    placed: list[tuple[float, int, Column]] = []
    for i, m in enumerate(REGISTRY):
        for at, position in m.shown.get(view, {}).items():
            placed.append((position, 2 * i + (at == "tuned"), Column(key(at, m.name), at, m)))
    if view == "table":
        placed.append((THRESHOLD_COLUMN_AT, -1, Column(THRESHOLD_KEY, "tuned", None)))
    return tuple(c for _, _, c in sorted(placed, key=lambda p: (p[0], p[1])))


def label(col: Column, view: View) -> str:
    """A column's title in ``view``; every view states the threshold in its own words."""
    if col.metric is None:
        return "tuned t"
    m, tuned = col.metric, col.at == "tuned"
    if view in ("table", "paired"):
        return f"{m.label} @t" if tuned else m.label
    if view == "bars":
        return f"{m.label} @ tuned t" if tuned else m.label
    if view == "dvc_metrics":
        return f"{m.short or m.name}_tuned" if tuned else m.short or m.name
    if view == "sweep":
        if tuned:
            return f"test {m.label} at the validation-tuned threshold"
        return f"test {m.label}" + ("" if m.threshold_free else " at the fixed threshold")
    if view == "pr_comment":
        if tuned:
            return f"{m.label} @tuned t"
        return f"test {m.label}" + ("" if m.threshold_free else " @0.5")
    raise ValueError(f"unknown view {view!r}")


# -------------------------------------------------------------------------- compute


def compute(metric: Metric, y_true: np.ndarray, scores: np.ndarray, decisions: np.ndarray) -> Any:
    """One metric of one split: an int for a count, a float, or ``None`` when undefined."""
    if metric.needs_both_classes and len(np.unique(y_true)) < 2:
        return None
    value = metric.compute(y_true, scores if metric.threshold_free else decisions)
    if metric.is_count:
        return int(value)
    value = float(value)
    return None if math.isnan(value) else value
