"""The training loop and its stage on tiny synthetic data: outputs, determinism, retraining,
and every bad input (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from conftest import with_catalogue

from imbalance import files, params
from imbalance.cli import UserError, run
from imbalance.training.components import Remedy, class_prior
from imbalance.training.model import OUTPUT_LAYER, build_model
from imbalance.training.outputs import save_model

keras = pytest.importorskip("keras")

from imbalance.training import train  # noqa: E402  (after the skip: needs TensorFlow at run time)
from imbalance.training.callbacks import make_metrics  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUTPUT_DIRS = ("models", "predictions", "training")
#: A line of TensorFlow's C++ log (absl): severity, date, time, thread, file:line].
NATIVE_LOG = re.compile(r"^[IWEF]\d{4} [\d:.]+ +\d+ [^ \]]+:\d+\] ", re.M)
#: train / val sizes (negatives, positives) per file: a few dozen images, seconds per run.
SIZES = {
    "train_imbalanced": (48, 8),
    "val_imbalanced": (12, 4),
    "train_balanced": (32, 32),
    "val_balanced": (8, 8),
    "test": (16, 16),
}


def write_split(path: Path, n_neg: int, n_pos: int, seed: int) -> None:
    """Random images; positives darker on the left half, so there is something to learn."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.r_[np.zeros(n_neg), np.ones(n_pos)]).astype(np.uint8)
    x = rng.integers(0, 256, (len(y), 32, 32, 3), dtype=np.uint8)
    x[y == 1, :, :16] //= 3
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=x, y=y)


def make_project(root: Path, **train_overrides: Any) -> params.Params:
    """params.yaml (the shipped one, shrunk) and seed-0 data files under ``root``."""
    raw = with_catalogue(yaml.safe_load((ROOT / "params.yaml").read_text()))
    raw["seeds"] = [0]
    # threads 0: these tests train in this process, whose TensorFlow thread pools can be
    # sized once only; 0 leaves them as they are (stage tests run in their own processes)
    # 12 steps, a check every 4 (the natural sampler's epoch here: 56 images, batch 16),
    # early stopping after 1 check without improvement; drw switches at step 4 = check 1
    raw["train"].update(
        {
            "max_steps": 12,
            "check_every": 4,
            "batch_size": 16,
            "predict_batch_size": 64,
            "threads": 0,
        }
        | train_overrides
    )
    raw["train"]["early_stopping"]["patience"] = 4
    raw["remedies"]["drw"]["weights"]["from_epoch"] = 1
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    for i, (name, (n_neg, n_pos)) in enumerate(SIZES.items()):
        write_split(root / "data" / "cifar2" / "seed0" / f"{name}.npz", n_neg, n_pos, seed=i)
    return params.parse(raw)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny project; the working directory is its root, as under `dvc repro`."""
    make_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny project with `baseline` and `oversample` trained (start models for retrains)."""
    root = tmp_path_factory.mktemp("trained")
    p = make_project(root)
    old = Path.cwd()
    os.chdir(root)
    try:
        for name in ("baseline", "oversample"):
            train.run(p, name, 0)
    finally:
        os.chdir(old)
    return root


def copy_project(src: Path, dst: Path, monkeypatch: pytest.MonkeyPatch) -> params.Params:
    shutil.copytree(src, dst)
    monkeypatch.chdir(dst)
    return params.load()


def weights_of(path: Path) -> list[np.ndarray]:
    return keras.models.load_model(path, compile=False).get_weights()


def files_under(root: Path) -> dict[str, bytes]:
    return {
        str(f.relative_to(root)): f.read_bytes()
        for d in OUTPUT_DIRS
        if (root / d).exists()
        for f in sorted((root / d).rglob("*"))
        if f.is_file()
    }


# --------------------------------------------------------------------------- outputs
@pytest.mark.slow  # trains a model
def test_run_writes_model_predictions_and_curves(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    p = params.load()
    monkeypatch.setenv("IMBALANCE_PROFILE", str(project / "profile.jsonl"))
    train.run(p, "baseline", 0)
    model = keras.models.load_model(project / "models/scratch/seed0/baseline.keras")
    assert model.layers[-1].name == "last" and model.count_params() == 15_458
    with np.load(project / "predictions/seed0/baseline.npz") as pred:
        for key, (n_neg, n_pos) in {
            "train": SIZES["train_imbalanced"],
            "val": SIZES["val_imbalanced"],
            "test": SIZES["test"],
        }.items():
            assert pred[key].dtype == np.float32 and pred[key].shape == (n_neg + n_pos,)
            assert ((pred[key] >= 0) & (pred[key] <= 1)).all()
        steps, best_step = int(pred["steps_trained"]), int(pred["best_step"])
        images = int(pred["images_seen"])
    # predictions are the saved model's positive-class probabilities, in file order
    x = np.load(project / "data/cifar2/seed0/test.npz")["x"].astype("f4") / 255
    with np.load(project / "predictions/seed0/baseline.npz") as pred:
        np.testing.assert_allclose(pred["test"], model.predict(x, verbose=0)[:, 1], atol=1e-6)
    assert 4 <= best_step <= steps <= 12 and steps % 4 == best_step % 4 == 0
    assert images == 56 * steps // 4  # the natural sampler: one pass (56 images) per 4 steps
    checks = steps // 4
    curves = project / "training/baseline/seed0/plots/metrics"
    for name in ("loss", "accuracy", "val_loss", "val_auc", "val_pr_auc"):
        rows = (curves / f"{name}.tsv").read_text().splitlines()
        assert rows[0] == f"step\t{name}" and len(rows) == 1 + checks
        # the optimizer step of each check, the x axis every remedy shares
        assert [int(row.split("\t")[0]) for row in rows[1:]] == list(range(4, steps + 1, 4))
    summary = json.loads((project / "training/baseline/seed0/metrics.json").read_text())
    assert (summary["steps_trained"], summary["best_step"]) == (steps, best_step)
    assert summary["images_seen"] == images and summary["step"] == steps
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == checks + 1  # one line per check, one summary
    assert lines[0].startswith("step 4/12  loss ") and "val_auc" in lines[0]
    assert lines[-1].startswith(f"baseline seed 0: {steps} steps run, best step {best_step} (")
    # the benchmark's profile events (imbalance.runtime.profile)
    events = [json.loads(line) for line in (project / "profile.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events][:1] == ["first_step"]
    if checks > 1:
        (rate,) = [e for e in events if e["event"] == "train_throughput"]
        assert rate["images_per_s"] > 0 and (rate["checks"], rate["steps"]) == (checks, steps)


def test_val_auc_is_the_positive_class_roc_auc():
    """The early-stopping metric: ROC AUC of the positive column, not of both pooled."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    p1 = np.clip(0.3 * y + rng.random(400) * 0.7, 0, 1).astype("f4")
    probs = np.stack([1 - p1, p1], axis=1)
    auc = make_metrics()[1]
    auc.update_state(np.eye(2, dtype="f4")[y], probs)
    assert float(auc.result()) == pytest.approx(roc_auc_score(y, p1), abs=5e-3)


@pytest.mark.slow  # trains a model
def test_two_runs_give_byte_identical_outputs(project: Path):
    p = params.load()
    train.run(p, "oversample_augment", 0)
    first = files_under(project)
    for d in OUTPUT_DIRS:
        shutil.rmtree(project / d)
    train.run(p, "oversample_augment", 0)
    second = files_under(project)
    assert sorted(first) == sorted(second)
    assert "models/scratch/seed0/oversample_augment.keras" in first
    for name in first:
        assert first[name] == second[name], name  # .keras, predictions, curves


@pytest.mark.slow
def test_stage_reruns_are_byte_identical_across_processes(project: Path):
    """The DVC case: a fresh process re-running a stage writes the same bytes; and the
    stage is quiet: progress on stdout, none of TensorFlow's C++ log on stderr."""
    edit_params(project, lambda raw: raw["train"].update(threads=1))  # the thread knob too
    outputs = []
    for _ in range(2):
        done = run_stage("oversample_augment", "0", cwd=project)
        assert done.returncode == 0, done.stderr
        assert not NATIVE_LOG.search(done.stderr), done.stderr
        assert done.stdout.splitlines()[-1].startswith("oversample_augment seed 0: ")
        outputs.append(files_under(project))
    assert outputs[0] == outputs[1]


@pytest.mark.slow  # trains a model
def test_deferred_reweighting_runs_with_early_stopping_after_the_switch(project: Path):
    train.run(params.load(), "drw", 0)  # from_epoch 1 = step 4 = check 1 here
    with np.load(project / "predictions/seed0/drw.npz") as pred:
        assert int(pred["best_step"]) >= 8  # never a model from the plain phase (steps 1-4)


@pytest.mark.slow  # trains a model
@pytest.mark.parametrize("stopping", ["budget", "early_stopping"])
def test_samplers_get_the_same_checks_and_patience_in_steps(
    project: Path, monkeypatch: pytest.MonkeyPatch, stopping: str
):
    """Undersampling's epoch is 1 step here (8 + 8 images, batch 16), oversampling's 6:
    counted in steps, both are validated at the same steps, early stopping waits the same
    number of steps for both, and the budget trains both exactly ``max_steps`` with no
    early stopping at all, keeping the last check's weights."""

    def shrink(raw: dict[str, Any]) -> None:
        raw["train"].update(max_steps=8, stopping=stopping)
        raw["train"]["early_stopping"]["patience"] = 8

    edit_params(project, shrink)
    made: list[dict[str, Any]] = []

    class Spy(keras.callbacks.EarlyStopping):
        def __init__(self, **kwargs: Any) -> None:
            made.append(kwargs)
            super().__init__(**kwargs)

    monkeypatch.setattr(keras.callbacks, "EarlyStopping", Spy)
    p = params.load()
    checked, scores = {}, {}
    for name in ("undersample", "oversample"):
        train.run(p, name, 0)
        with np.load(project / f"predictions/seed0/{name}.npz") as pred:
            steps, best, images = (
                int(pred[k]) for k in ("steps_trained", "best_step", "images_seen")
            )
            scores[name] = pred["test"]
        assert images == steps * 16  # class-balanced batches are always full
        tsv = project / f"training/{name}/seed0/plots/metrics/val_auc.tsv"
        checked[name] = [int(row.split("\t")[0]) for row in tsv.read_text().splitlines()[1:]]
        assert checked[name] == list(range(4, steps + 1, 4))  # a check every 4 steps
        if stopping == "budget":
            assert steps == best == 8  # exactly max_steps, the final weights kept
    if stopping == "budget":
        assert made == []  # no early stopping callback was even built
        assert checked["undersample"] == checked["oversample"] == [4, 8]
    else:  # 8 steps of patience = 2 checks for both samplers, watched from the start
        assert [(k["patience"], k["start_from_epoch"]) for k in made] == [(2, 0), (2, 0)]
    # undersampling keeps 8 of the 20 negatives: other batches, other scores
    assert not np.array_equal(scores["undersample"], scores["oversample"])


@pytest.mark.slow
def test_a_remedy_budget_trains_its_own_steps_without_early_stopping(
    project: Path, monkeypatch: pytest.MonkeyPatch
):
    """Under the study's early stopping, a remedy with ``budget: {stopping: budget,
    max_steps: 8}`` trains exactly 8 steps and keeps its last check, with no early-stopping
    callback built, while a remedy without it in the same params still gets early stopping
    (12 steps at most here)."""

    def add(raw: dict[str, Any]) -> None:
        raw["remedies"]["own_budget"] = {
            "sampler": "oversample",
            "budget": {"stopping": "budget", "max_steps": 8},
        }

    edit_params(project, add)
    made: list[dict[str, Any]] = []

    class Spy(keras.callbacks.EarlyStopping):
        def __init__(self, **kwargs: Any) -> None:
            made.append(kwargs)
            super().__init__(**kwargs)

    monkeypatch.setattr(keras.callbacks, "EarlyStopping", Spy)
    p = params.load()
    assert p.train.stopping == "early_stopping" and p.train.max_steps == 12
    train.run(p, "own_budget", 0)
    assert made == []
    with np.load(project / "predictions/seed0/own_budget.npz") as pred:
        assert int(pred["steps_trained"]) == int(pred["best_step"]) == 8
    tsv = project / "training/own_budget/seed0/plots/metrics/val_auc.tsv"
    assert [int(r.split("\t")[0]) for r in tsv.read_text().splitlines()[1:]] == [4, 8]
    train.run(p, "oversample", 0)
    assert len(made) == 1 and made[0]["patience"] == 1  # 4 steps = 1 check


# --------------------------------------------------------------------------- retraining
@pytest.mark.slow  # trains a model
def test_kfold_scores_every_training_image_out_of_fold_then_refits(
    project: Path, monkeypatch: pytest.MonkeyPatch
):
    """``split.validation: kfold``: k fits on disjoint stratified folds, each validated on
    the fold it did not train on and scoring it; the saved val predictions are those
    out-of-fold scores; then one refit on everything for the folds' mean best step, with
    no validation; the record counts all k + 1 fits."""
    edit_params(project, lambda raw: raw["split"].update(validation="kfold", folds=2))
    data = project / "data/cifar2/seed0"
    shutil.copy(data / "train_imbalanced.npz", data / "val_imbalanced.npz")  # as split writes
    fits: list[dict[str, Any]] = []
    real_fit = train.fit

    def spy(model, remedy, cfg, part, held, seed, live):
        result = real_fit(model, remedy, cfg, part, held, seed, live)
        fits.append(
            {"model": model, "cfg": cfg, "part": part, "held": held, "live": live, "result": result}
        )
        return result

    monkeypatch.setattr(train, "fit", spy)
    p = params.load()
    train.run(p, "baseline", 0)

    x, y = (np.load(data / "train_imbalanced.npz")[k] for k in ("x", "y"))
    *folds, refit = fits
    assert len(folds) == 2
    held = [set(map(bytes, f["held"].x)) for f in folds]
    assert held[0].isdisjoint(held[1]) and len(held[0]) + len(held[1]) == len(y)
    with np.load(project / "predictions/seed0/baseline.npz") as pred:
        val = pred["val"]
        record = {k: int(pred[k]) for k in ("steps_trained", "best_step", "images_seen")}
    images = x.astype("f4") / 255
    for fold in folds:
        part, fold_held = fold["part"], fold["held"]
        assert set(map(bytes, part.x)).isdisjoint(map(bytes, fold_held.x))
        assert len(part.y) + len(fold_held.y) == len(y)
        assert fold_held.y.sum() == y.sum() // 2  # stratified: 8 positives, 4 per fold
        assert fold["cfg"].stopping == "early_stopping" and fold["live"] is None
        # the saved val score of each held-out image is its fold model's
        rows = [int(np.flatnonzero((images == img).all(axis=(1, 2, 3)))[0]) for img in fold_held.x]
        expected = fold["model"].predict(fold_held.x, verbose=0)[:, 1]
        np.testing.assert_allclose(val[rows], expected, atol=1e-6)
    mean_best = np.mean([f["result"].best_step for f in folds])
    length = 4 * max(1, round(mean_best / 4))
    assert refit["held"] is None and len(refit["part"].y) == len(y)
    assert refit["cfg"].stopping == "budget" and refit["cfg"].max_steps == length
    assert refit["result"].steps == length and refit["live"] is not None
    assert record == {
        "steps_trained": sum(f["result"].steps for f in fits),
        "best_step": length,
        "images_seen": sum(f["result"].images for f in fits),
    }
    curves = project / "training/baseline/seed0/plots/metrics"
    assert (curves / "loss.tsv").exists() and not (curves / "val_auc.tsv").exists()


@pytest.mark.parametrize(
    ("remedy", "start"), [("two_phase_oversample", "oversample"), ("crt", "baseline")]
)
def test_retrain_changes_only_last(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, remedy: str, start: str
):
    p = copy_project(trained, tmp_path / "p", monkeypatch)
    train.run(p, remedy, 0)
    before = build_model(p.model, 0)
    before.set_weights(weights_of(Path(f"models/scratch/seed0/{start}.keras")))
    after = build_model(p.model, 0)
    after.set_weights(weights_of(Path(f"models/retrained/seed0/{remedy}.keras")))
    for a, b in zip(before.layers, after.layers, strict=True):
        same = all(
            np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights(), strict=True)
        )
        assert same == (a.name != OUTPUT_LAYER), a.name


def test_posthoc_adjustment_changes_only_the_last_bias(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    p = copy_project(trained, tmp_path / "p", monkeypatch)
    train.run(p, "posthoc_logit_adjusted", 0)
    tau = p.remedy("posthoc_logit_adjusted").posthoc_tau.tau
    y = np.load("data/cifar2/seed0/train_imbalanced.npz")["y"]
    *same_before, bias_before = weights_of(Path("models/scratch/seed0/baseline.keras"))
    *same_after, bias_after = weights_of(
        Path("models/retrained/seed0/posthoc_logit_adjusted.keras")
    )
    assert all(np.array_equal(a, b) for a, b in zip(same_before, same_after, strict=True))
    expected = (bias_before - tau * np.log(class_prior(y))).astype(np.float32)
    np.testing.assert_array_equal(bias_after, expected)
    with np.load("predictions/seed0/posthoc_logit_adjusted.npz") as pred:
        record = [int(pred[k]) for k in ("steps_trained", "best_step", "images_seen")]
        assert record == [0, 0, 0]  # nothing trained
    with (
        np.load("predictions/seed0/baseline.npz") as base,
        np.load("predictions/seed0/posthoc_logit_adjusted.npz") as adj,
    ):
        assert (adj["test"] > base["test"]).all()  # the minority prior is lifted


# --------------------------------------------------------------------------- bad input
def stage_env(**extra: str) -> dict[str, str]:
    """Environment of ``python -m stages.train`` run in a tiny project outside the repo;
    TensorFlow's log level is left to the stage, as under ``dvc repro``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **extra}
    if "TF_CPP_MIN_LOG_LEVEL" not in extra:
        env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return env


def run_stage(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stages.train", *args],
        cwd=cwd,
        env=stage_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def edit_params(root: Path, edit: Any) -> None:
    raw = yaml.safe_load((root / "params.yaml").read_text())
    edit(raw)
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def drop(root: Path) -> None:
    (root / "data/cifar2/seed0/train_imbalanced.npz").unlink()


def wrong_shape(root: Path) -> None:
    np.savez(
        root / "data/cifar2/seed0/train_imbalanced.npz",
        x=np.zeros((56, 16, 16, 3), "u1"),
        y=np.zeros(56, "u1"),
    )


def wrong_dtype(root: Path) -> None:
    np.savez(
        root / "data/cifar2/seed0/val_imbalanced.npz",
        x=np.zeros((16, 32, 32, 3), "f4"),
        y=np.zeros(16, "u1"),
    )


def bad_labels(root: Path) -> None:
    y = np.zeros(32, "u1")
    y[0] = 7
    np.savez(root / "data/cifar2/seed0/test.npz", x=np.zeros((32, 32, 32, 3), "u1"), y=y)


def not_npz(root: Path) -> None:
    (root / "data/cifar2/seed0/train_imbalanced.npz").write_bytes(b"not a zip")


def no_positives(root: Path) -> None:
    write_split(root / "data/cifar2/seed0/train_imbalanced.npz", 48, 0, seed=0)


def val_no_positives(root: Path) -> None:
    write_split(root / "data/cifar2/seed0/val_imbalanced.npz", 12, 0, seed=0)


def big_batch(root: Path) -> None:
    edit_params(root, lambda raw: raw["train"].update(batch_size=57))


def unknown_layer(root: Path) -> None:
    edit_params(root, lambda raw: raw["retrain"]["crt"].update(trainable=["last", "conv9"]))


def drw_too_late(root: Path) -> None:
    edit_params(root, lambda raw: raw["remedies"]["drw"]["weights"].update(from_epoch=3))


def patience_between_checks(root: Path) -> None:
    edit_params(root, lambda raw: raw["train"]["early_stopping"].update(patience=6))


def budget_between_checks(root: Path) -> None:
    edit_params(root, lambda raw: raw["train"].update(max_steps=2))


def save_start(root: Path, model_params: params.Model) -> Path:
    path = root / "models/scratch/seed0/baseline.keras"
    save_model(build_model(model_params, 0), path)
    return path


def truncated_start(root: Path) -> None:
    path = save_start(root, params.load(root / "params.yaml").model)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def garbage_start(root: Path) -> None:
    path = root / "models/scratch/seed0/baseline.keras"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04" + b"\0" * 100)


def other_architecture(root: Path) -> None:
    save_start(root, params.Model(filters=[8, 16, 16], kernel_size=3, dense_units=32))


BAD_INPUTS = [
    # pytest.param(break the project, stage args, words the error line must contain)
    pytest.param(
        drop,
        ("baseline", "0"),
        ["train_imbalanced.npz", "missing", "dvc repro"],
        id="missing data file",
    ),
    pytest.param(
        not_npz, ("baseline", "0"), ["train_imbalanced.npz", "unreadable"], id="not an npz"
    ),
    pytest.param(
        wrong_shape,
        ("baseline", "0"),
        ["train_imbalanced.npz", "16x16x3", "rebuild"],
        id="wrong image shape",
    ),
    pytest.param(
        wrong_dtype,
        ("baseline", "0"),
        ["val_imbalanced.npz", "float32", "uint8"],
        id="wrong image dtype",
    ),
    pytest.param(
        bad_labels, ("baseline", "0"), ["test.npz", "labels", "rebuild"], id="labels not 0/1"
    ),
    pytest.param(
        no_positives,
        ("class_weight", "0"),
        ["train_imbalanced.npz", "no positive", "split"],
        id="no positives",
    ),
    pytest.param(
        val_no_positives,
        ("baseline", "0"),
        ["val_imbalanced.npz", "both classes"],
        id="val without positives",
    ),
    pytest.param(
        big_batch,
        ("baseline", "0"),
        ["train.batch_size is 57", "only 56", "lower"],
        id="batch above training set",
    ),
    pytest.param(
        None, ("nosuch", "0"), ["unknown remedy 'nosuch'", "declare it"], id="unknown remedy"
    ),
    pytest.param(None, ("baseline", "3"), ["seed 3", "seeds"], id="seed not declared"),
    pytest.param(None, ("baseline", "x"), ["seed 'x'", "usage"], id="seed not a number"),
    pytest.param(None, ("baseline",), ["usage"], id="wrong argument count"),
    pytest.param(
        unknown_layer,
        ("crt", "0"),
        ["retrain.crt.trainable", "conv9"],
        id="unknown trainable layer",
    ),
    pytest.param(
        drw_too_late,
        ("drw", "0"),
        ["from step 12", "weights.from_epoch 3 x 4 steps", "it trains 12 steps at most"],
        id="drw switch at the last step",
    ),
    pytest.param(
        patience_between_checks,
        ("baseline", "0"),
        ["train.early_stopping.patience is 6", "multiple of train.check_every (4)", "4 or 8"],
        id="patience not a multiple of check_every",
    ),
    pytest.param(
        budget_between_checks,
        ("baseline", "0"),
        ["train.max_steps is 2", "multiple of train.check_every (4)", "e.g. 4"],
        id="max_steps not a multiple of check_every",
    ),
    pytest.param(
        None,
        ("crt", "0"),
        ["baseline.keras", "missing", "train@baseline-0"],
        id="missing start model",
    ),
    pytest.param(
        truncated_start,
        ("crt", "0"),
        ["baseline.keras", "truncated", "--force"],
        id="truncated start model",
    ),
    pytest.param(
        garbage_start,
        ("crt", "0"),
        ["baseline.keras", "train@baseline-0"],
        id="damaged start model",
    ),
    pytest.param(
        other_architecture,
        ("crt", "0"),
        ["baseline.keras", "architecture", "conv0/kernel is 3x3x3x8", "3x3x3x16"],
        id="start model of another architecture",
    ),
]


@pytest.mark.parametrize(("breaker", "args", "words"), BAD_INPUTS)
def test_bad_input_one_line_exit_2_nothing_written(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    breaker: Any,
    args: tuple[str, ...],
    words: list[str],
):
    from stages import train as stage

    if breaker is not None:
        breaker(project)
    before = files_under(project)
    with pytest.raises(SystemExit) as exit_info:
        run(lambda: stage.main(list(args)))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    for word in words:
        assert word in err, (word, err)
    assert files_under(project) == before  # no new, changed or half-written output
    assert not [f for d in OUTPUT_DIRS for f in (project / d).rglob(".*")]  # no temp files


@pytest.mark.slow  # starts a training stage
@pytest.mark.parametrize(
    "args", [("nosuch", "0"), ("baseline", "0")], ids=["unknown remedy", "missing data"]
)
def test_stage_process_exits_2_with_one_line(project: Path, args: tuple[str, ...]):
    """The real entry point: exit status 2, one stderr line (no TensorFlow import needed)."""
    if args[0] == "baseline":
        drop(project)
    done = run_stage(*args, cwd=project)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
    assert done.stdout == ""
    assert not any((project / d).exists() for d in OUTPUT_DIRS)


@pytest.mark.slow  # trains a model
def test_failure_mid_training_leaves_no_output(project: Path, monkeypatch: pytest.MonkeyPatch):
    """Atomic outputs: a failure after training started leaves nothing, not even temp files;
    temporaries a SIGKILLed earlier run left behind are cleared by the next run."""
    stale = [
        project / "models/scratch/seed0/.baseline.keras.k1ll3d.tmp.keras",
        project / "predictions/seed0/.baseline.npz.k1ll3d.tmp.npz",
        project / "training/baseline/.seed0.k1ll3d.tmp/plots/metrics/loss.tsv",
    ]
    other = project / "models/scratch/seed0/.oversample.keras.running.tmp.keras"
    for path in [*stale, other]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    p = params.load()
    train.run(p, "baseline", 0)
    assert not any(path.exists() for path in stale)
    assert not (project / "training/baseline/.seed0.k1ll3d.tmp").exists()
    assert other.exists()  # another stage's file is not this stage's business
    other.unlink()
    before = files_under(project)

    def explode(*args: Any, **kwargs: Any) -> None:
        raise UserError("simulated failure mid-run")

    monkeypatch.setattr(Remedy, "predict_positive", explode)  # every remedy scores through it
    with pytest.raises(UserError):
        train.run(p, "baseline", 0)
    assert files_under(project) == before
    assert not [f for d in OUTPUT_DIRS for f in (project / d).rglob(".*")]


def test_io_atomic_model_write_keeps_the_old_file_on_failure(tmp_path: Path):
    path = tmp_path / "m.keras"
    path.write_bytes(b"old")

    def fail(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise RuntimeError

    with pytest.raises(RuntimeError):
        files.write_with(path, fail, suffix=".keras")
    assert path.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [path]
