"""Evaluation: metrics against hand-worked values, the validation-only threshold, plot data.

Everything runs on hand-made labels and probabilities (no model, no TensorFlow); the last
test renders the project's real ``plots:`` declaration with ``dvc plots show`` in a
temporary repository.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from imbalance.analysis import evaluate as ev
from imbalance.analysis.metrics import REGISTRY
from imbalance.cli import UserError
from imbalance.layout import Layout
from imbalance.params import Params, parse

ROOT = Path(__file__).resolve().parents[1]

# 6 negatives, 4 positives. At 0.5: negatives 0.6 and 0.7 are false positives, positive
# 0.35 is a false negative -> TP 3, FP 2, TN 4, FN 1 (worked out in the test below).
Y = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
P = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.35, 0.55, 0.8, 0.9])


def make_params(**overrides: Any) -> Params:
    """The project's params.yaml with test overrides (class names deliberately not CIFAR's)."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["seeds"] = [0]
    raw["classes"] = {"negative": "cat", "positive": "dog"}
    raw["remedies"] = {"baseline": {}, "balanced": {"train_set": "balanced"}}
    raw["retrain"] = {}
    raw["compare"]["also_against"] = []
    raw["compare"]["reference"] = "baseline"
    for key, value in overrides.items():
        raw[key] = value
    return parse(raw)


def test_metrics_equal_hand_worked_values() -> None:
    m = ev.split_metrics(Y, P, 0.5)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (3, 2, 4, 1)
    assert m["precision"] == pytest.approx(3 / 5)
    assert m["recall"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(2 * 0.6 * 0.75 / 1.35, abs=1e-6)
    assert m["accuracy"] == pytest.approx(7 / 10)
    assert m["balanced_accuracy"] == pytest.approx((3 / 4 + 4 / 6) / 2, abs=1e-6)
    assert m["mcc"] == pytest.approx((3 * 4 - 2 * 1) / math.sqrt(5 * 4 * 6 * 5), abs=1e-6)
    # ROC AUC: positive/negative pairs ranked right: 0.35 beats 3, 0.55 beats 4, 0.8 and
    # 0.9 beat all 6 -> 19 of 24
    assert m["roc_auc"] == pytest.approx(19 / 24, abs=1e-6)
    # average precision: precision at each positive, ranked: 1/1, 2/2, 3/5, 4/7
    assert m["pr_auc"] == pytest.approx((1 + 1 + 3 / 5 + 4 / 7) / 4, abs=1e-6)


def test_threshold_is_inclusive_like_roc_curve() -> None:
    """A probability equal to the threshold is predicted positive (roc_curve's convention)."""
    assert ev.split_metrics(np.array([0, 1]), np.array([0.2, 0.5]), 0.5)["tp"] == 1


def test_never_predicting_positive_leaves_precision_undefined_without_warning() -> None:
    """Precision is TP / (TP + FP) = 0 / 0 with no positive prediction: undefined, so null
    (an average over seeds must not take it for 0); recall 0 / 4 and F1 = 2TP / (2TP + FP +
    FN) = 0 / 4 are defined and 0; MCC's zero denominator is scikit-learn's documented 0."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning would fail the test
        m = ev.split_metrics(Y, np.full(Y.shape, 0.2), 0.5)
    assert m["precision"] is None
    assert m["recall"] == 0.0
    assert m["f1"] == 0.0
    assert m["mcc"] == 0.0
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (0, 0, 6, 4)
    assert m["balanced_accuracy"] == pytest.approx(0.5)
    assert m["roc_auc"] == pytest.approx(0.5)  # constant scores rank nothing


def test_one_class_only_gives_null_with_a_note() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = ev.split_metrics(np.zeros(4, int), np.array([0.1, 0.6, 0.2, 0.3]), 0.5)
    assert m["roc_auc"] is None
    assert m["pr_auc"] is None
    assert m["note"] == (
        "only class 0 present in y_true: roc_auc, pr_auc, balanced_accuracy and mcc are undefined"
    )
    assert (m["fp"], m["tn"]) == (1, 3)
    # TP 0 of FP 1 predicted positives: precision 0/1 = 0; no positive image: recall 0/0
    assert m["precision"] == 0.0 and m["recall"] is None


def test_choose_threshold_by_hand() -> None:
    # balanced accuracy per cut: >=0.9: (0.5+1)/2 = .75, >=0.6: (.5+2/3)/2, >=0.5: (1+2/3)/2
    # = .833 (best), >=0.3: (1+1/3)/2; the boundary goes midway to the next score: 0.4
    y, p = np.array([0, 0, 0, 1, 1]), np.array([0.1, 0.3, 0.6, 0.5, 0.9])
    t, score = ev.choose_threshold(y, p, "balanced_accuracy")
    assert t == pytest.approx(0.4)
    assert score == pytest.approx(5 / 6)
    # F1 per cut: >=0.9: .667, >=0.6: .5, >=0.5: 2*(2/3)*1/(5/3) = .8 (best), >=0.3: .667
    t, score = ev.choose_threshold(y, p, "f1")
    assert t == pytest.approx(0.4)
    assert score == pytest.approx(0.8)


def test_choose_threshold_needs_both_classes() -> None:
    with pytest.raises(UserError, match="one class"):
        ev.choose_threshold(np.zeros(3, int), np.array([0.1, 0.2, 0.3]), "f1")


def test_tuned_threshold_depends_on_validation_only() -> None:
    """Changing the test labels (or scores) never moves the tuned threshold."""
    rng = np.random.default_rng(0)
    params = make_params()
    y_val = np.r_[np.zeros(40, int), np.ones(8, int)]
    labels = {
        "train": np.r_[np.zeros(50, int), np.ones(10, int)],
        "val": y_val,
        "test": np.r_[np.zeros(30, int), np.ones(30, int)],
    }
    preds = {
        "train": rng.random(60),
        "val": np.clip(0.3 * y_val + rng.random(48) * 0.7, 0, 1),
        "test": rng.random(60),
        "steps_trained": np.int64(500),
        "best_step": np.int64(300),
        "images_seen": np.int64(32000),
    }
    first = ev.evaluate_remedy(params, labels, preds)
    flipped = ev.evaluate_remedy(params, {**labels, "test": 1 - labels["test"]}, preds)
    rescored = ev.evaluate_remedy(params, labels, {**preds, "test": rng.random(60)})
    assert first["tuned_threshold"]["value"] == flipped["tuned_threshold"]["value"]
    assert first["tuned_threshold"]["value"] == rescored["tuned_threshold"]["value"]
    assert first["tuned_threshold"]["test"] != flipped["tuned_threshold"]["test"]
    assert first["tuned_threshold"]["chosen_on"] == "validation"
    changed_val = ev.evaluate_remedy(params, {**labels, "val": y_val[::-1]}, preds)
    assert changed_val["tuned_threshold"]["value"] != first["tuned_threshold"]["value"]


def test_study_protocol_is_named_and_flagged() -> None:
    raw_split = {"n_majority": 20, "n_minority": 4, "val_fraction": 0.1, "validation": "test"}
    params = make_params(split=raw_split)
    assert ev.validation_protocol(params).startswith("test: early-stopped on the test set")
    holdout = make_params()
    assert ev.validation_protocol(holdout).startswith("holdout: ")
    kfold = make_params(split={**raw_split, "validation": "kfold", "folds": 4})
    assert ev.validation_protocol(kfold).startswith("kfold: training length and the tuned ")
    assert "4-fold" in ev.validation_protocol(kfold)


def test_curves_are_cut_rounded_and_json_safe() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 5000)
    p = np.clip(0.2 * y + rng.random(5000) * 0.8, 0, 1)
    roc = ev.roc_rows(y, p, 50)
    pr = ev.pr_rows(y, p, 50)
    assert len(roc) <= 50 and len(pr) <= 50
    assert roc[0] == {"fpr": 0.0, "tpr": 0.0, "threshold": 1.0}  # +inf clipped for JSON
    assert roc[-1]["fpr"] == 1.0 and roc[-1]["tpr"] == 1.0
    assert pr[0]["recall"] == 0.0 and pr[-1]["recall"] == 1.0  # rising recall
    for row in roc + pr:
        assert all(v == round(v, 6) for v in row.values())
    json.dumps(roc + pr, allow_nan=False)  # no inf / NaN anywhere


def test_confusion_rows_are_counts_with_class_names() -> None:
    rows = ev.confusion_rows(Y, P, 0.5, ("cat", "dog"))
    table = {(r["actual"], r["predicted"]): r["count"] for r in rows}
    assert table == {("cat", "cat"): 4, ("cat", "dog"): 2, ("dog", "cat"): 1, ("dog", "dog"): 3}


# ---------------------------------------------------------------- the stage, end to end


def write_seed(root: Path, params: Params, seed: int, rng: np.random.Generator) -> None:
    """Fake data/cifar2/seed<s> labels and predictions/seed<s> files (labels only: ``y``)."""
    data = root / "data" / "cifar2" / f"seed{seed}"
    data.mkdir(parents=True, exist_ok=True)
    sizes = {
        "train_balanced": (60, 60),
        "val_balanced": (12, 12),
        "train_imbalanced": (60, 6),
        "val_imbalanced": (12, 3),
        "test": (40, 40),
    }
    labels = {}
    for name, (n0, n1) in sizes.items():
        y = np.r_[np.zeros(n0, np.uint8), np.ones(n1, np.uint8)]
        rng.shuffle(y)
        labels[name] = y
        np.savez(data / f"{name}.npz", y=y)
    pred = root / "predictions" / f"seed{seed}"
    pred.mkdir(parents=True, exist_ok=True)
    for i, (remedy, spec) in enumerate(params.all_remedies.items()):
        kind = spec.train_set.kind
        out = {}
        for split, name in (("train", f"train_{kind}"), ("val", f"val_{kind}"), ("test", "test")):
            y = labels[name].astype(float)
            logit = rng.normal(0, 1, y.size) + (1 + i) * (2 * y - 1) - 1.5
            out[split] = (1 / (1 + np.exp(-logit))).astype(np.float32)
        record = {"steps_trained": 900, "best_step": 400, "images_seen": 900 * 64 - 5}
        np.savez(pred / f"{remedy}.npz", **out, **{k: np.int64(v) for k, v in record.items()})


def test_evaluate_seed_writes_deterministic_files(tmp_path: Path) -> None:
    params = make_params()
    write_seed(tmp_path, params, 0, np.random.default_rng(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ev.evaluate_seed(params, 0, Layout(tmp_path))
    metrics = tmp_path / "metrics" / "runs" / "seed0"
    plots = tmp_path / "plots" / "runs" / "seed0"
    assert sorted(p.name for p in metrics.iterdir()) == ["balanced.json", "baseline.json"]
    assert sorted(p.name for p in plots.iterdir()) == [
        "confusion.json",
        "precision_recall.json",
        "roc.json",
    ]
    run = json.loads((metrics / "baseline.json").read_text())
    assert set(run) == {
        "test",
        "train",
        "threshold",
        "validation_protocol",
        "tuned_threshold",
        "steps_trained",
        "best_step",
        "images_seen",
    }
    assert set(run["test"]) == {m.name for m in REGISTRY}
    assert run["train"]["tp"] + run["train"]["fn"] == 6  # the imbalanced training set
    balanced = json.loads((metrics / "balanced.json").read_text())
    assert balanced["train"]["tp"] + balanced["train"]["fn"] == 60  # the balanced one
    assert (run["steps_trained"], run["best_step"], run["images_seen"]) == (900, 400, 57595)
    roc = json.loads((plots / "roc.json").read_text())["roc"]
    assert {(r["remedy"], r["split"]) for r in roc} == {
        (m, s) for m in ("baseline", "balanced") for s in ("train", "test")
    }
    confusion = json.loads((plots / "confusion.json").read_text())["confusion"]
    assert {r["actual"] for r in confusion} == {"cat", "dog"}
    before = {p: p.read_bytes() for p in [*metrics.iterdir(), *plots.iterdir()]}
    ev.evaluate_seed(params, 0, Layout(tmp_path))
    assert {p: p.read_bytes() for p in before} == before  # byte-identical


def test_stale_predictions_are_a_clear_error(tmp_path: Path) -> None:
    params = make_params()
    write_seed(tmp_path, params, 0, np.random.default_rng(4))
    path = tmp_path / "predictions" / "seed0" / "baseline.npz"
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["test"] = arrays["test"][:-1]
    np.savez(path, **arrays)
    with pytest.raises(UserError, match="stale"):
        ev.evaluate_seed(params, 0, Layout(tmp_path))


def _plots_section() -> dict[str, Any]:
    return {"plots": yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]}


@pytest.mark.slow  # runs dvc
def test_dvc_plots_show_renders_the_declared_plots(tmp_path: Path) -> None:
    """The project's own ``plots:`` + templates, over files written by evaluate/compare."""
    from imbalance.analysis.compare import training_rows

    repo = tmp_path / "repo"
    repo.mkdir()
    params = make_params()
    write_seed(repo, params, 0, np.random.default_rng(5))
    ev.evaluate_seed(params, 0, Layout(repo))
    curves = {"baseline": {"val_auc": (np.arange(1, 4), np.array([0.6, 0.7, 0.72]))}}
    (repo / "plots" / "comparison").mkdir(parents=True)
    for kind in ("roc", "precision_recall", "confusion"):  # compare's git-tracked copies
        src = repo / "plots" / "runs" / f"seed{params.seeds[0]}" / f"{kind}.json"
        shutil.copy(src, repo / "plots" / "comparison" / f"{kind}.json")
    (repo / "plots" / "comparison" / "training.json").write_text(
        json.dumps({"training": training_rows(curves)})
    )
    (repo / "figures" / "comparison").mkdir(parents=True)
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 16  # dvc only copies image bytes
    (repo / "figures" / "comparison" / "roc_test.png").write_bytes(png)
    (repo / "params.yaml").write_text(yaml.safe_dump(params.model_dump(), sort_keys=False))
    (repo / "dvc.yaml").write_text(yaml.safe_dump(_plots_section(), sort_keys=False))
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    run = {"cwd": repo, "capture_output": True, "text": True, "check": True, "env": env}
    subprocess.run(["git", "init", "-q"], **run)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], **run)
    shutil.copytree(ROOT / ".dvc" / "plots", repo / ".dvc" / "plots")
    shown = subprocess.run([sys.executable, "-m", "dvc", "plots", "show", "--json"], **run)
    out = json.loads(shown.stdout)
    assert "errors" not in out, out.get("errors")
    kinds = {name: [item["type"] for item in items] for name, items in out["data"].items()}
    for kind in ("roc", "precision_recall", "confusion"):
        assert kinds[f"plots/comparison/{kind}.json"] == ["vega"]
    assert kinds["plots/comparison/training.json"] == ["vega"]
    assert kinds["figures/comparison/roc_test.png"] == ["image"]
    roc = out["data"]["plots/comparison/roc.json"][0]["content"]
    assert roc["facet"]["field"] == "remedy"  # the custom template, filled
    assert {row["split"] for row in roc["data"]["values"]} == {"train", "test"}
    assert "dog" in roc["title"]["text"]  # class names come from params
