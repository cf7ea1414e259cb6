"""The metric registry (imbalance.analysis.metrics): one entry per metric, read everywhere.

The views are checked against the literal declarations they replaced (copied from the
code before the registry), so the committed outputs keep their keys, columns and order;
the computations against scikit-learn's documented definitions worked by hand.
"""

from __future__ import annotations

import numpy as np
import pytest

from imbalance.analysis import compare, figures, metrics, runs, sweep
from imbalance.analysis.metrics import REGISTRY, Metric
from imbalance.tools import pr_comment


def test_views_keep_the_columns_each_consumer_declared_before() -> None:
    assert compare.KEY_METRICS == (
        ("roc_auc", "test.roc_auc"),
        ("pr_auc", "test.pr_auc"),
        ("precision", "test.precision"),
        ("recall", "test.recall"),
        ("bal_acc", "test.balanced_accuracy"),
        ("recall_tuned", "tuned.recall"),
        ("bal_acc_tuned", "tuned.balanced_accuracy"),
    )
    assert compare.PAIRED == (
        ("test.roc_auc", "ROC AUC"),
        ("test.recall", "recall"),
        ("tuned.balanced_accuracy", "bal. acc. @t"),
    )
    assert compare.TABLE == (
        ("test.roc_auc", "ROC AUC", 3, True),
        ("test.pr_auc", "PR AUC", 3, True),
        ("test.precision", "precision", 3, True),
        ("test.recall", "recall", 3, True),
        ("test.balanced_accuracy", "bal. acc.", 3, True),
        ("test.fn", "FN", 1, True),
        ("test.fp", "FP", 1, True),
        ("tuned.value", "tuned t", 3, False),
        ("tuned.recall", "recall @t", 3, True),
        ("tuned.precision", "precision @t", 3, True),
        ("tuned.balanced_accuracy", "bal. acc. @t", 3, True),
    )
    assert figures.BAR_METRICS == (
        ("test.roc_auc", "ROC AUC"),
        ("test.precision", "precision"),
        ("test.recall", "recall"),
        ("tuned.recall", "recall @ tuned t"),
    )
    assert sweep.SWEEP_METRICS == (
        ("test.roc_auc", "test ROC AUC"),
        ("test.recall", "test recall at the fixed threshold"),
        ("tuned.recall", "test recall at the validation-tuned threshold"),
    )
    assert pr_comment.METRICS == (
        ("test.roc_auc", ("roc_auc",), "test ROC AUC"),
        ("test.recall", ("recall",), "test recall @0.5"),
        ("tuned.balanced_accuracy", ("tuned", "balanced_accuracy"), "bal. acc. @tuned t"),
    )


def test_statistics_keys_have_one_style_and_tuned_only_where_a_threshold_acts() -> None:
    keys = metrics.stat_keys()
    names = [m.name for m in REGISTRY]
    assert keys[: len(names)] == tuple(f"test.{n}" for n in names)
    assert "tuned.roc_auc" not in keys and "tuned.pr_auc" not in keys  # threshold-free
    assert {"tuned.precision", "tuned.fn", "tuned.value"} <= set(keys)
    assert keys == compare.KEYS
    lower = ["test.fp", "test.fn", "tuned.fp", "tuned.fn"]
    assert [k for k in keys if metrics.lower_is_better(k)] == lower


def test_ranges_come_from_the_registry() -> None:
    run = {"test": {"tp": 30, "fn": 20, "tn": 900, "fp": 100}}
    table = {"a": {0: run}}
    assert runs.value_range(table, "test.fn") == (0.0, 50.0)  # positives: tp + fn
    assert runs.value_range(table, "tuned.fp") == (0.0, 1000.0)  # negatives: tn + fp
    assert runs.value_range(table, "test.mcc") == (-1.0, 1.0)
    assert runs.value_range(table, "tuned.recall") == (0.0, 1.0)
    assert runs.value_range(table, "tuned.value") == (0.0, 1.0)


def test_compute_returns_none_for_undefined_and_ints_for_counts() -> None:
    y = np.array([0, 0, 1, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    none = np.zeros(4, dtype=np.int8)  # no positive prediction
    by = metrics.BY_NAME
    assert metrics.compute(by["precision"], y, scores, none) is None  # 0 / 0
    assert metrics.compute(by["recall"], y, scores, none) == 0.0  # 0 / 2
    assert metrics.compute(by["fn"], y, scores, none) == 2
    assert isinstance(metrics.compute(by["fn"], y, scores, none), int)
    assert metrics.compute(by["roc_auc"], y, scores, none) == pytest.approx(3 / 4)  # by hand
    one = np.zeros(4, dtype=np.int8)
    assert metrics.compute(by["roc_auc"], one, scores, none) is None


def test_a_wrong_entry_fails_at_import() -> None:
    def entry(**kw: object) -> Metric:
        base = {"name": "x", "label": "x", "compute": len, "range": "rate", "better": "higher"}
        return Metric(**{**base, **kw})  # type: ignore[arg-type]

    with pytest.raises(ValueError, match="unknown view"):
        metrics._check((entry(shown={"tabel": {"test": 1}}),))
    with pytest.raises(ValueError, match="recorded at"):
        metrics._check((entry(threshold_free=True, shown={"table": {"tuned": 1}}),))
    with pytest.raises(ValueError, match="repeat"):
        metrics._check((entry(), entry()))
