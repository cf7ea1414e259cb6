"""The one training loop every remedy runs through (``python -m stages.train <remedy> <seed>``).

Order of work, chosen so that bad input costs nothing and leaves nothing:

1. all input checks that need only numpy (params, data files, counts, the starting
   model's zip) — before the ~4 s TensorFlow import;
2. TensorFlow setup (thread pools, seeds, op determinism), the starting model (its
   architecture is checked when loaded);
3. ``fit`` with early stopping on an imbalance-safe validation metric, per-epoch curves
   into a temporary dvclive directory, one progress line per epoch;
4. predictions, then the model, predictions and curves written atomically.

Epoch numbers in progress lines, ``epochs_run`` and ``best_epoch`` are 1-based;
``epochs_run = best_epoch = 0`` means nothing was trained (a post-hoc-only remedy).
"""

from __future__ import annotations

import json
import os
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imbalance import files, params
from imbalance.cli import UserError
from imbalance.training.components import Remedy, class_counts, class_prior

if TYPE_CHECKING:
    import keras

IMAGE_SHAPE = (32, 32, 3)
#: A fixed zip timestamp (the earliest zip can store) for byte-deterministic model files.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
METRIC_MODE = {"val_auc": "max", "val_pr_auc": "max", "val_loss": "min"}


@dataclass(frozen=True)
class Images:
    """One data file, images already float32 in [0, 1] (converted once, here)."""

    path: Path
    x: np.ndarray
    y: np.ndarray

    @property
    def counts(self) -> np.ndarray:
        return class_counts(self.y)


@dataclass(frozen=True)
class Layout:
    """Where a run reads and writes: outputs under ``root``, data under ``data_root``.

    The stage uses the project root for both; tests use a temporary root, and the
    benchmark's plain-Keras reference reads the project's data but writes elsewhere.
    """

    root: Path = Path(".")
    data_root: Path | None = None  # default: <root>/data/cifar2

    def data_dir(self, seed: int) -> Path:
        base = self.data_root if self.data_root is not None else self.root / "data" / "cifar2"
        return base / f"seed{seed}"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def predictions(self, name: str, seed: int) -> Path:
        return self.root / "predictions" / f"seed{seed}" / f"{name}.npz"

    def training_dir(self, name: str, seed: int) -> Path:
        return self.root / "training" / name / f"seed{seed}"


def load_images(path: Path, seed: int) -> Images:
    """Load ``x`` (uint8 N×32×32×3) and ``y`` (0/1), refusing anything else in one line."""
    arrays = files.load_npz(path, ("x", "y"))
    x, y = arrays["x"], arrays["y"]
    fix = f"rebuild it with `dvc repro --force split` (seed {seed})"
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != IMAGE_SHAPE:
        raise UserError(
            f"{path}: x is {x.dtype} {'x'.join(map(str, x.shape))}, expected uint8 Nx32x32x3; {fix}"
        )
    if y.ndim != 1 or len(y) != len(x):
        raise UserError(f"{path}: y has shape {y.shape}, expected ({len(x)},); {fix}")
    if len(y) and not np.isin(y, (0, 1)).all():
        raise UserError(f"{path}: y holds labels other than 0 and 1; {fix}")
    return Images(path, x.astype(np.float32) / np.float32(255.0), y.astype(np.int64))


def check_inputs(
    p: params.Params, remedy: Remedy, seed: int, layout: Layout
) -> tuple[Images, Images, Images]:
    """Every check that needs no TensorFlow; returns (train, val, test)."""
    data_dir = layout.data_dir(seed)
    train_path, val_path = remedy.training_set.paths(data_dir)
    train = load_images(train_path, seed)
    val = load_images(val_path, seed)
    test = load_images(data_dir / "test.npz", seed)
    n_neg, n_pos = (int(c) for c in train.counts)
    if n_pos == 0 or n_neg == 0:
        missing = "positive" if n_pos == 0 else "negative"
        raise UserError(
            f"{train_path}: the training set of remedy {remedy.name!r} holds no {missing} "
            f"images ({n_neg} negatives, {n_pos} positives); check the `split` params and "
            "rebuild with `dvc repro split`"
        )
    if min(val.counts) == 0:
        raise UserError(
            f"{val_path}: the validation set needs both classes for the early-stopping "
            f"metric (has {int(val.counts[0])} negatives, {int(val.counts[1])} positives); "
            "raise split.val_fraction or split.n_minority"
        )
    if p.train.batch_size > len(train.y):
        raise UserError(
            f"params.yaml: train.batch_size is {p.train.batch_size} but {train_path} holds "
            f"only {len(train.y)} images; lower train.batch_size"
        )
    warmup = remedy.min_epochs
    if warmup >= p.train.max_epochs:
        raise UserError(
            f"params.yaml: remedy {remedy.name!r} re-weights from epoch {warmup + 1} but "
            f"train.max_epochs is {p.train.max_epochs}; raise train.max_epochs or lower "
            "weights.from_epoch"
        )
    if remedy.start is not None:
        remedy.start.check_file(remedy.start.path(layout.models_dir, seed), seed)
    return train, val, test


def setup_tensorflow(threads: int, seed: int) -> None:
    """Thread pools (must precede the first op), seeds everywhere, deterministic ops."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    threading = tf.config.threading
    if threads > 0 and threading.get_intra_op_parallelism_threads() != threads:
        threading.set_intra_op_parallelism_threads(threads)
        threading.set_inter_op_parallelism_threads(threads)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def make_optimizer(train: params.Train) -> keras.optimizers.Optimizer:
    import keras

    kinds = {
        "adam": keras.optimizers.Adam,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
    }
    return kinds[train.optimizer](learning_rate=train.learning_rate)


def make_metrics() -> list[keras.metrics.Metric]:
    """Accuracy and threshold-free metrics of the positive class (logged as val_auc, ...).

    ``AUC(multi_label=True, label_weights=[0, 1])`` computes the AUC of each softmax
    column and keeps only the positive column's: the ROC AUC of "automobile" — a plain
    ``AUC()`` would pool both columns into one curve.
    """
    import keras
    import tensorflow as tf

    class AUC(keras.metrics.AUC):
        """Keras reads every metric's result eagerly at the end of each epoch and
        validation pass; the AUC's ~30 eager ops cost ~3 ms each time, which dominated
        the 2-step epochs of undersampling. Compiled, the same ops run as one graph."""

        @tf.function
        def result(self) -> tf.Tensor:
            return super().result()

    positive = {"multi_label": True, "num_labels": 2, "label_weights": [0.0, 1.0]}
    return [
        keras.metrics.CategoricalAccuracy(name="accuracy"),
        AUC(curve="ROC", name="auc", **positive),
        AUC(curve="PR", name="pr_auc", **positive),
    ]


def live_callback(live: Any) -> keras.callbacks.Callback:
    """dvclive's Keras callback, keeping Keras' metric names and leaving git alone.

    ARCHITECTURE.md names the curves ``loss``, ``val_auc``, ... (``plots/metrics/*.tsv``);
    the stock callback would rename them ``train/loss``, ``eval/auc``. ``Live.end()``
    would, under ``dvc exp run``, ``git add`` the live directory — here a temporary
    directory that is renamed into place afterwards — so the summary is written instead.
    """
    from dvclive.keras import DVCLiveCallback

    class Callback(DVCLiveCallback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            for metric, value in (logs or {}).items():
                self.live.log_metric(metric, float(value))
            self.live.next_step()

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            self.live.make_summary()

    return Callback(live=live)


def throughput_callback(images_per_epoch: int) -> keras.callbacks.Callback:
    """Training throughput for the benchmark (``IMBALANCE_PROFILE``, see tools/profile.py).

    Marks ``first_step`` when the first batch starts (imports, data loading and graph
    building are behind it) and, at the end, ``train_throughput``: images per second of
    the training phase of every epoch but the first (which includes tracing), validation
    excluded — comparable with the plain-``fit`` limit — and, as ``epoch_images_per_s``,
    the same with each epoch's validation pass included. No-ops without the variable.
    """
    import keras

    from imbalance.tools import profile

    class Throughput(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.train_s: list[float] = []
            self.epoch_s: list[float] = []
            self.begin = 0.0
            self.val: float | None = None

        def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            if not self.epoch_s and batch == 0:
                profile.mark("first_step")

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.begin, self.val = time.perf_counter(), None

        def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
            self.val = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            now = time.perf_counter()
            self.train_s.append((self.val or now) - self.begin)
            self.epoch_s.append(now - self.begin)

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            if len(self.train_s) < 2:
                return
            n = images_per_epoch * (len(self.train_s) - 1)
            profile.mark(
                "train_throughput",
                images_per_s=round(n / sum(self.train_s[1:]), 1),
                epoch_images_per_s=round(n / sum(self.epoch_s[1:]), 1),
                epochs=len(self.train_s),
            )

    return Throughput()


def progress_callback(max_epochs: int, out: Any = None) -> keras.callbacks.Callback:
    """Exactly one line per epoch on stdout, flushed, so a long stage visibly moves."""
    import keras

    out = out or sys.stdout
    start = time.perf_counter()

    def line(epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        print(
            f"epoch {epoch + 1}/{max_epochs}  loss {logs.get('loss', float('nan')):.4f}  "
            f"val_auc {logs.get('val_auc', float('nan')):.4f}  "
            f"{time.perf_counter() - start:.1f}s",
            file=out,
            flush=True,
        )

    return keras.callbacks.LambdaCallback(on_epoch_end=line)


def predict_positive(model: keras.Model, x: np.ndarray, batch_size: int) -> np.ndarray:
    """Positive-class probabilities, float32, in input order, in large batches."""
    if len(x) == 0:
        return np.zeros(0, np.float32)
    probs = model.predict(x, batch_size=batch_size, verbose=0)
    return np.asarray(probs[:, 1], dtype=np.float32)


def save_model(model: keras.Model, path: Path) -> None:
    """Save atomically, with byte-identical files for identical weights.

    Keras stamps ``date_saved`` into metadata.json, the current time into every zip entry
    and memory addresses (``shared_object_id``) into config.json; all are replaced by
    constants, so a re-run that reproduces the model rewrites the same bytes and DVC
    invalidates nothing downstream.
    """

    def write(tmp: Path) -> None:
        model.save(tmp)
        with zipfile.ZipFile(tmp) as zf:
            entries = [(info.filename, zf.read(info)) for info in zf.infolist()]
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in sorted(entries):
                if name == "metadata.json":
                    data = _fixed_metadata(data)
                elif name == "config.json":
                    data = _fixed_config(data)
                info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, data)

    files.write_with(path, write, suffix=".keras")


def _fixed_metadata(data: bytes) -> bytes:
    meta = json.loads(data)
    meta["date_saved"] = "1980-01-01@00:00:00"
    return json.dumps(meta, sort_keys=True).encode()


def _fixed_config(data: bytes) -> bytes:
    """Renumber ``shared_object_id`` (Python ``id()``s) 0, 1, ... in order of appearance.

    The ids only tie together references to one shared object inside this file, so any
    consistent renumbering loads the same model.
    """
    ids: dict[int, int] = {}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: ids.setdefault(v, len(ids)) if k == "shared_object_id" else walk(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return json.dumps(walk(json.loads(data))).encode()


def fit(
    model: keras.Model,
    remedy: Remedy,
    p: params.Params,
    train: Images,
    val: Images,
    seed: int,
    live: Any,
) -> tuple[int, int, float]:
    """Compile and ``fit`` with early stopping.

    Returns (epochs_run, best_epoch, best value of the monitored metric), epochs 1-based.
    """
    import keras
    import tensorflow as tf

    cfg = p.train
    prior = class_prior(train.y)
    data = remedy.train_data(train.x, train.y, cfg.batch_size, seed)
    val_ds = (
        tf.data.Dataset.from_tensor_slices((val.x, tf.one_hot(val.y, 2)))
        .batch(cfg.predict_batch_size)
        .cache()
        .prefetch(tf.data.AUTOTUNE)
    )
    model.compile(
        optimizer=make_optimizer(cfg),
        loss=remedy.keras_loss(prior),
        metrics=make_metrics(),
    )
    monitor = cfg.early_stopping.monitor
    stopper = keras.callbacks.EarlyStopping(
        monitor=monitor,
        mode=METRIC_MODE[monitor],
        patience=cfg.early_stopping.patience,
        restore_best_weights=True,
        start_from_epoch=remedy.min_epochs,
    )
    per_epoch = remedy.sampler.images_per_epoch(train.counts, cfg.batch_size)
    history = model.fit(
        data.dataset,
        steps_per_epoch=data.steps_per_epoch,
        epochs=cfg.max_epochs,
        validation_data=val_ds,
        callbacks=[
            *data.callbacks,
            stopper,
            live_callback(live),
            progress_callback(cfg.max_epochs),
            throughput_callback(per_epoch),
        ],
        shuffle=False,  # the sampler shuffles, seeded
        verbose=0,
    )
    best = float("nan") if stopper.best is None else float(stopper.best)
    return len(history.epoch), stopper.best_epoch + 1, best


def remove_stale_temporaries(*outputs: Path) -> None:
    """Delete what a killed earlier run of this stage left beside its outputs.

    :mod:`imbalance.files` writes ``.<name>.<random>.tmp*`` next to each output and renames
    it into place; a SIGKILL skips the clean-up. Left alone, such files would sit in
    ``models/scratch/seed<s>/`` and ``training/`` — directories other stages depend on —
    and change their hashes. Only this stage writes these names, and DVC never runs it
    twice at once, so removing them is safe.
    """
    import shutil

    for out in outputs:
        if not out.parent.is_dir():
            continue
        for stale in out.parent.glob(f".{out.name}.*"):
            if ".tmp" in stale.name or stale.name == f".{out.name}.old":
                if stale.is_dir() and not stale.is_symlink():
                    shutil.rmtree(stale, ignore_errors=True)
                else:
                    stale.unlink(missing_ok=True)


def run(p: params.Params, name: str, seed: int, layout: Layout | None = None) -> None:
    """Train (or adjust) remedy ``name`` for ``seed``; write model, predictions, curves."""
    layout = layout or Layout()
    started = time.perf_counter()
    remedy = Remedy.from_params(name, p.remedy(name))
    train, val, test = check_inputs(p, remedy, seed, layout)

    model_path = remedy.model_path(layout.models_dir, seed)
    predictions_path = layout.predictions(name, seed)
    live_path = layout.training_dir(name, seed)
    remove_stale_temporaries(model_path, predictions_path, live_path)

    setup_tensorflow(p.train.threads, seed)
    from dvclive import Live

    prior = class_prior(train.y)
    model = remedy.initial_model(p.model, seed, layout.models_dir, prior)
    with files.atomic_dir(live_path) as live_dir:
        live = Live(str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None)
        epochs_run, best_epoch, best = 0, 0, float("nan")
        if remedy.trains:
            epochs_run, best_epoch, best = fit(model, remedy, p, train, val, seed, live)
        remedy.finish(model, prior)
        live.summary.update({"epochs_run": epochs_run, "best_epoch": best_epoch})
        live.make_summary()

        # An uncompiled copy: the saved file holds the architecture and weights only, not
        # the remedy's loss closures or optimizer state, so anyone can load it.
        from imbalance.training.model import build_model

        export = build_model(p.model, seed)
        export.set_weights(model.get_weights())
        batch = p.train.predict_batch_size
        predictions = {
            "train": predict_positive(export, train.x, batch),
            "val": predict_positive(export, val.x, batch),
            "test": predict_positive(export, test.x, batch),
        }
        save_model(export, model_path)
        files.write_npz(
            predictions_path,
            **predictions,
            epochs_run=np.int64(epochs_run),
            best_epoch=np.int64(best_epoch),
        )
    monitor = p.train.early_stopping.monitor
    best_text = f"best epoch {best_epoch} ({monitor} {best:.4f})" if epochs_run else "no training"
    print(
        f"{name} seed {seed}: {epochs_run} epochs run, {best_text}, "
        f"{time.perf_counter() - started:.1f}s wall",
        flush=True,
    )
