"""The one training loop every remedy runs through (``python -m stages.train <remedy> <seed>``).

Order of work, chosen so that bad input costs nothing and leaves nothing:

1. all input checks that need only numpy (params, data files, counts, the starting
   model's zip: :mod:`imbalance.training.inputs`) — before the ~4 s TensorFlow import;
2. TensorFlow setup (thread pools, seeds, op determinism), the starting model (its
   architecture is checked when loaded);
3. ``fit`` with early stopping on an imbalance-safe validation metric, per-epoch curves
   into a temporary dvclive directory, one progress line per epoch
   (:mod:`imbalance.training.callbacks`);
4. predictions, then the model, predictions and curves written atomically
   (:mod:`imbalance.training.outputs`).

Whatever differs between remedies — files, starting model, batches, loss, callbacks,
finishing step — the loop asks the remedy (:mod:`imbalance.training.components`).
Epoch numbers in progress lines, ``epochs_run`` and ``best_epoch`` are 1-based;
``epochs_run = best_epoch = 0`` means nothing was trained (a post-hoc-only remedy).
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from imbalance import files, params
from imbalance.layout import Layout
from imbalance.training.callbacks import (
    live_callback,
    make_metrics,
    progress_callback,
    throughput_callback,
)
from imbalance.training.components import Remedy, class_prior
from imbalance.training.inputs import Images, load_inputs
from imbalance.training.model import build_model
from imbalance.training.outputs import remove_stale_temporaries, save_model

if TYPE_CHECKING:
    import keras

METRIC_MODE = {"val_auc": "max", "val_pr_auc": "max", "val_loss": "min"}


def run(p: params.Params, name: str, seed: int, layout: Layout | None = None) -> None:
    """Train (or adjust) remedy ``name`` for ``seed``; write model, predictions, curves."""
    layout = layout or Layout()
    started = time.perf_counter()
    remedy = p.remedy(name)
    train, val, test = load_inputs(p, name, remedy, seed, layout)

    model_path = layout.model(name, seed, retrained=remedy.retrained)
    predictions_path = layout.predictions(name, seed)
    live_path = layout.training_dir(name, seed)
    remove_stale_temporaries(model_path, predictions_path, live_path)

    setup_tensorflow(p.train.threads, seed)
    from dvclive import Live

    prior = class_prior(train.y)
    model = remedy.initial_model(p.model, seed, layout, prior)
    with files.atomic_dir(live_path) as live_dir:
        live = Live(str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None)
        epochs_run, best_epoch, best = 0, 0, float("nan")
        if remedy.trains:
            epochs_run, best_epoch, best = fit(model, remedy, p.train, train, val, seed, live)
        remedy.finish(model, prior)
        live.summary.update({"epochs_run": epochs_run, "best_epoch": best_epoch})
        live.make_summary()

        export = exportable(model, p.model, seed)
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


def fit(
    model: keras.Model,
    remedy: Remedy,
    cfg: params.Train,
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

    data = remedy.train_data(train.x, train.y, cfg.batch_size, seed)
    val_ds = (
        tf.data.Dataset.from_tensor_slices((val.x, tf.one_hot(val.y, 2)))
        .batch(cfg.predict_batch_size)
        .cache()
        .prefetch(tf.data.AUTOTUNE)
    )
    model.compile(
        optimizer=make_optimizer(cfg),
        loss=remedy.keras_loss(class_prior(train.y)),
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
            throughput_callback(remedy.sampler.images_per_epoch(train.counts, cfg.batch_size)),
        ],
        shuffle=False,  # the sampler shuffles, seeded
        verbose=0,
    )
    best = float("nan") if stopper.best is None else float(stopper.best)
    return len(history.epoch), stopper.best_epoch + 1, best


def setup_tensorflow(threads: int, seed: int) -> None:
    """Thread pools (must precede the first op), seeds everywhere, deterministic ops.

    TensorFlow's C++ log is kept to FATAL (level 3): the ERROR lines it prints on a first
    op are notes (oneDNN falling back to Eigen, an unknown NodeDef attribute); a real
    failure raises in Python.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    threading = tf.config.threading
    if threads > 0 and threading.get_intra_op_parallelism_threads() != threads:
        threading.set_intra_op_parallelism_threads(threads)
        threading.set_inter_op_parallelism_threads(threads)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def make_optimizer(cfg: params.Train) -> keras.optimizers.Optimizer:
    import keras

    kinds = {
        "adam": keras.optimizers.Adam,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
    }
    return kinds[cfg.optimizer](learning_rate=cfg.learning_rate)


def exportable(model: keras.Model, model_params: params.Model, seed: int) -> keras.Model:
    """An uncompiled copy: the saved file holds the architecture and weights only, not
    the remedy's loss closures or optimizer state, so anyone can load it."""
    export = build_model(model_params, seed)
    export.set_weights(model.get_weights())
    return export


def predict_positive(model: keras.Model, x: np.ndarray, batch_size: int) -> np.ndarray:
    """Positive-class probabilities, float32, in input order, in large batches."""
    if len(x) == 0:
        return np.zeros(0, np.float32)
    probs = model.predict(x, batch_size=batch_size, verbose=0)
    return np.asarray(probs[:, 1], dtype=np.float32)
