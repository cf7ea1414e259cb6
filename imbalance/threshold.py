"""The tuned decision threshold: one rule for the evaluate stage and ``./dev.sh predict``.

A core module (below training and analysis, ARCHITECTURE.md) because both layers apply
it: evaluate tunes each run's threshold on its validation predictions, and predict must
use the very same threshold for a user's own images without importing the analysis layer.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from imbalance.cli import UserError


def choose_threshold(y_val: np.ndarray, p_val: np.ndarray, objective: str) -> tuple[float, float]:
    """The threshold maximising ``objective`` on the validation set; returns (t, score).

    Only validation labels and scores enter, so the test set cannot leak into the choice.
    Candidates are the distinct validation scores (the curves of scikit-learn with every
    point kept); the returned threshold is the midpoint between the winning score and the
    next lower one, so the decision boundary lies between validation samples instead of
    on one of them (the same validation decisions, less sensitive to a test score that
    lands exactly on a validation score). Ties go to the highest threshold.
    """
    y_val = np.asarray(y_val).astype(np.int8)
    p_val = np.asarray(p_val, dtype=np.float64)
    if len(np.unique(y_val)) < 2:
        raise UserError(
            "the validation set holds one class only, so no threshold can be chosen on it; "
            "raise split.val_fraction or split.n_minority"
        )
    if objective == "balanced_accuracy":
        fpr, tpr, thr = skm.roc_curve(y_val, p_val, drop_intermediate=False)
        scores = (tpr + 1.0 - fpr) / 2.0
    elif objective == "f1":
        precision, recall, thr = skm.precision_recall_curve(y_val, p_val, drop_intermediate=False)
        precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
        denom = precision + recall
        scores = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
        order = np.argsort(-thr, kind="stable")  # decreasing thresholds, like roc_curve
        thr, scores = thr[order], scores[order]
    else:
        raise UserError(f"evaluate.threshold_objective: unknown objective {objective!r}")
    finite = np.isfinite(thr)  # roc_curve's first threshold is +inf (nothing positive)
    thr, scores = thr[finite], scores[finite]
    best = int(np.argmax(scores))  # first maximum = highest threshold among ties
    distinct = np.unique(p_val)[::-1]  # decreasing
    below = distinct[distinct < thr[best]]
    t = float((thr[best] + below[0]) / 2.0) if below.size else float(thr[best])
    return t, float(scores[best])
