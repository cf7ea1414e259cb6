"""Predictions -> metrics and plot data, for every remedy of one seed (no TensorFlow).

The training stage already saved each model's positive-class probabilities for its
training set, its validation set and the test set (``predictions/seed<s>/<remedy>.npz``),
so evaluation is pure scikit-learn on arrays: it runs in a second and never loads a model.

What it writes, per seed:

- ``metrics/runs/seed<s>/<remedy>.json``: every metric of the test and training sets at
  the fixed threshold (``evaluate.threshold``, the study's 0.5), plus a second threshold
  chosen on the VALIDATION set (``evaluate.threshold_objective``) and the test metrics at
  it. The study's confusion matrices all use 0.5, which says little about a model whose
  scores are merely shifted; the tuned threshold separates "ranks the minority class
  well" from "is calibrated for it" without ever looking at test labels.
- ``plots/runs/seed<s>/{roc,precision_recall,confusion}.json``: ROC on the training and
  the test set, precision-recall and the confusion matrix on the test set; one file per kind
  holding all remedies (a ``remedy`` field in each row), so the top-level ``plots:`` of dvc.yaml
  names three files per seed whatever remedies params.yaml declares. The custom Vega-Lite
  templates in ``.dvc/plots/`` draw one facet per remedy.

Conventions: label 1 is ``classes.positive``; a sample is predicted positive when its
probability is ``>= threshold`` (the same convention as ``sklearn.metrics.roc_curve``, so
a threshold read off a curve means what the metrics mean). The metrics are those of
:mod:`imbalance.analysis.metrics`; one that is undefined for a run (precision with no
positive prediction, ROC AUC with one class present) is ``null``, never 0 or an exception.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from sklearn import metrics as skm

from imbalance.analysis.metrics import REGISTRY, compute
from imbalance.cli import UserError
from imbalance.files import atomic_dir, load_npz, write_json, write_text
from imbalance.layout import Layout
from imbalance.params import Params
from imbalance.threshold import choose_threshold

#: What the training stage records of its run (predictions file -> metrics file): optimizer
#: steps run, the step of the kept weights, training images fed. Steps, not epochs, so that
#: remedies with different samplers compare (their epochs differ 70-fold).
TRAINING_RECORD = ("steps_trained", "best_step", "images_seen")
#: Which scores the tuned threshold is chosen on, per ``split.validation``.
CHOSEN_ON = {"holdout": "validation", "test": "test", "kfold": "out-of-fold training"}
DIGITS = 6  # rounding of metric values and plot coordinates: readable, still exact enough


def _round(value: float) -> float:
    return round(float(value), DIGITS)


def predict(prob: np.ndarray, threshold: float) -> np.ndarray:
    """0/1 decisions; positive when ``prob >= threshold`` (roc_curve's convention)."""
    return (np.asarray(prob, dtype=np.float64) >= threshold).astype(np.int8)


def split_metrics(y_true: np.ndarray, prob: np.ndarray, threshold: float) -> dict[str, Any]:
    """Every metric of :data:`~imbalance.analysis.metrics.REGISTRY` for one split at ``threshold``.

    Undefined stays undefined: precision with no positive prediction (the study's baseline
    on some seeds), recall with no positive image, and the metrics that compare the two
    classes when ``y_true`` holds one class are ``None`` (JSON ``null``), never a made-up 0
    that an average over seeds would take for a number; the one-class case adds a note.
    Rates are rounded to :data:`DIGITS` decimals, counts are ints.
    """
    y_true = np.asarray(y_true).astype(np.int8)
    prob = np.asarray(prob, dtype=np.float64)
    if y_true.shape != prob.shape:
        raise ValueError(f"{y_true.shape[0]} labels but {prob.shape[0]} predictions")
    y_pred = predict(prob, threshold)
    out: dict[str, Any] = {}
    for metric in REGISTRY:
        value = compute(metric, y_true, prob, y_pred)
        out[metric.name] = value if value is None or metric.is_count else _round(value)
    if len(np.unique(y_true)) < 2:
        *head, last = [m.name for m in REGISTRY if m.needs_both_classes]
        out["note"] = (
            f"only class {int(y_true[0]) if y_true.size else '-'} present in y_true: "
            f"{', '.join(head)} and {last} are undefined"
        )
    return out


def _decimate(n: int, max_points: int) -> np.ndarray:
    """Indices of at most ``max_points`` of ``n`` curve points, first and last kept."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, max_points)).astype(int))


def _clip_threshold(t: float) -> float:
    # roc_curve's first threshold is +inf, not valid JSON; any value above every score
    # means the same thing ("nothing predicted positive"), so it is clipped to 1.
    return _round(min(float(t), 1.0))


def roc_rows(y: np.ndarray, p: np.ndarray, max_points: int) -> list[dict[str, float]]:
    """ROC points (dvclive's ``roc`` row shape) cut to ``max_points``."""
    fpr, tpr, thr = skm.roc_curve(y, p, drop_intermediate=True)
    return [
        {"fpr": _round(fpr[i]), "tpr": _round(tpr[i]), "threshold": _clip_threshold(thr[i])}
        for i in _decimate(len(fpr), max_points)
    ]


def pr_rows(y: np.ndarray, p: np.ndarray, max_points: int) -> list[dict[str, float]]:
    """Precision-recall points (dvclive's ``precision_recall`` row shape), recall rising."""
    precision, recall, thr = skm.precision_recall_curve(y, p, drop_intermediate=True)
    thr = np.append(thr, 1.0)  # the (recall 0, precision 1) end point has no threshold
    # scikit-learn returns recall decreasing; plot order is rising recall
    precision, recall, thr = precision[::-1], recall[::-1], thr[::-1]
    return [
        {
            "precision": _round(precision[i]),
            "recall": _round(recall[i]),
            "threshold": _clip_threshold(thr[i]),
        }
        for i in _decimate(len(recall), max_points)
    ]


def confusion_rows(
    y: np.ndarray, p: np.ndarray, threshold: float, class_names: tuple[str, str]
) -> list[dict[str, Any]]:
    """The 2x2 confusion matrix as four count rows (one per actual/predicted pair).

    dvclive writes one row per image for DVC's ``confusion`` template, which counts rows;
    four rows with a ``count`` (drawn by ``.dvc/plots/confusion_counts.json``) keep the
    git-tracked file a few hundred bytes instead of one row per test image.
    """
    cm = skm.confusion_matrix(y, predict(p, threshold), labels=[0, 1])
    return [
        {
            "actual": class_names[a],
            "predicted": class_names[b],
            "actual_index": a,
            "predicted_index": b,
            "count": int(cm[a, b]),
        }
        for a in (0, 1)
        for b in (0, 1)
    ]


def validation_protocol(params: Params) -> str:
    """One line saying what the validation set was, shown wherever the numbers are."""
    if params.split.validation == "test":
        return (
            "test: early-stopped on the test set (the study's protocol); the validation "
            "files hold the test set, so test metrics and the tuned threshold are optimistic"
        )
    if params.split.validation == "kfold":
        return (
            f"kfold: training length and the tuned threshold from stratified "
            f"{params.split.folds}-fold cross-validation of the training set (every training "
            "image scored out of fold), then a refit on all of it; the test set is used for "
            "the reported metrics only"
        )
    return (
        f"holdout: early stopping and the tuned threshold on a stratified "
        f"{params.split.val_fraction:.0%} hold-out of the training set; the test set is "
        "used for the reported metrics only"
    )


def _train_split(params: Params, remedy: str) -> str:
    return "balanced" if params.train_set(remedy) == "balanced" else "imbalanced"


def _labels(path: Path) -> np.ndarray:
    return load_npz(path, ("y",))["y"]  # load_npz reads only the named arrays


def _check_length(name: str, labels: np.ndarray, prob: np.ndarray, pred_path: Path) -> None:
    if labels.shape[0] != prob.shape[0]:
        raise UserError(
            f"{pred_path}: {prob.shape[0]} {name} predictions but {labels.shape[0]} {name} "
            "labels; the predictions are stale, rebuild them with `dvc repro`"
        )


def evaluate_remedy(
    params: Params,
    labels: dict[str, np.ndarray],
    preds: dict[str, np.ndarray],
) -> dict[str, Any]:
    """The metrics file of one remedy: ``labels`` / ``preds`` keyed train / val / test."""
    threshold = params.evaluate.threshold
    objective = params.evaluate.threshold_objective
    tuned, val_score = choose_threshold(labels["val"], preds["val"], objective)
    return {
        "test": split_metrics(labels["test"], preds["test"], threshold),
        "train": split_metrics(labels["train"], preds["train"], threshold),
        "threshold": threshold,
        "validation_protocol": validation_protocol(params),
        "tuned_threshold": {
            "value": tuned,
            "objective": objective,
            "chosen_on": CHOSEN_ON[params.split.validation],
            "validation_score": _round(val_score),
            "test": split_metrics(labels["test"], preds["test"], tuned),
        },
        **{key: int(preds[key]) for key in TRAINING_RECORD},
    }


def _rows_json(key: str, rows: list[dict[str, Any]]) -> str:
    """``{key: [rows]}`` with one compact row per line: small, and a readable git diff."""
    body = ",\n".join(json.dumps(r, sort_keys=True, separators=(",", ":")) for r in rows)
    return f'{{"{key}": [\n{body}\n]}}\n'


def evaluate_seed(
    params: Params, seed: int, layout: Layout, remedies: list[str] | None = None
) -> None:
    """Evaluate every declared remedy of one seed (or only ``remedies``: a seed block's,
    ``stages/evaluate_block.py``); write metrics and plot data."""
    data_dir = layout.data_dir(seed)
    classes = (params.classes.negative, params.classes.positive)
    max_points = params.evaluate.plot_points
    test_y = _labels(data_dir / "test.npz")
    label_cache: dict[str, np.ndarray] = {}

    results: dict[str, dict[str, Any]] = {}
    roc: list[dict[str, Any]] = []
    pr: list[dict[str, Any]] = []
    confusion: list[dict[str, Any]] = []
    for remedy in params.names if remedies is None else remedies:
        kind = _train_split(params, remedy)
        for split in (f"train_{kind}", f"val_{kind}"):
            if split not in label_cache:
                label_cache[split] = _labels(data_dir / f"{split}.npz")
        labels = {"train": label_cache[f"train_{kind}"], "val": label_cache[f"val_{kind}"]}
        labels["test"] = test_y
        pred_path = layout.predictions(remedy, seed)
        preds = load_npz(pred_path, ("train", "val", "test", *TRAINING_RECORD))
        for name in ("train", "val", "test"):
            _check_length(name, labels[name], preds[name], pred_path)
        results[remedy] = evaluate_remedy(params, labels, preds)
        for split in ("train", "test"):
            y, p = labels[split], preds[split]
            if len(np.unique(y)) < 2:
                continue  # no curve through one class; the metrics file has the note
            base = {"remedy": remedy, "split": split}
            roc += [base | r for r in roc_rows(y, p, max_points)]
            if split == "test":  # the training set's PR curve adds bytes, not insight
                pr += [base | r for r in pr_rows(y, p, max_points)]
        confusion += [
            {"remedy": remedy} | r
            for r in confusion_rows(test_y, preds["test"], params.evaluate.threshold, classes)
        ]

    with (
        atomic_dir(layout.run_metrics_dir(seed)) as m_tmp,
        atomic_dir(layout.run_plots_dir(seed)) as p_tmp,
    ):
        for remedy, result in results.items():
            write_json(m_tmp / f"{remedy}.json", result)
        write_text(p_tmp / "roc.json", _rows_json("roc", roc))
        write_text(p_tmp / "precision_recall.json", _rows_json("precision_recall", pr))
        write_text(p_tmp / "confusion.json", _rows_json("confusion", confusion))
