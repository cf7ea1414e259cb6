"""The one training loop every remedy runs through (``python -m stages.train <remedy> <seed>``).

Order of work, chosen so that bad input costs nothing and leaves nothing:

1. all input checks that need only numpy (params, data files, counts, the starting
   model's zip: :mod:`imbalance.training.inputs`) — before the ~4 s TensorFlow import;
2. TensorFlow setup (thread pools, seeds, op determinism), the starting model (its
   architecture is checked when loaded);
3. ``fit`` for a budget of optimizer steps (``train.max_steps``), validated every
   ``train.check_every`` steps (the Keras epoch, the same for every remedy whatever its
   sampler's epoch length), with early stopping on an imbalance-safe validation metric
   or, under ``train.stopping: budget``, none; curves per check into a temporary dvclive
   directory with the optimizer step as their step, one progress line per check
   (:mod:`imbalance.training.callbacks`);
4. predictions, then the model, predictions and curves written atomically
   (:mod:`imbalance.training.outputs`).

Whatever differs between remedies — files, starting model, batches, loss, callbacks,
finishing step — the loop asks the remedy (:mod:`imbalance.training.components`).
A run records ``steps_trained`` (optimizer steps run), ``best_step`` (the step whose
weights were kept: the best check under early stopping, ``steps_trained`` under the
budget) and ``images_seen`` (training images fed); all three are 0 for a remedy that
trains nothing (post-hoc only). Steps are counts, so the first check is at step
``check_every``.
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
        steps, best_step, best = 0, 0, float("nan")
        if remedy.trains:
            steps, best_step, best = fit(model, remedy, p.train, train, val, seed, live)
        images = remedy.sampler.images_seen(steps, train.counts, p.train.batch_size)
        remedy.finish(model, prior)
        record = {"steps_trained": steps, "best_step": best_step, "images_seen": images}
        live.summary.update(record)
        live.make_summary()

        export = exportable(model, p.model, seed)
        batch = p.train.predict_batch_size
        predictions = {
            "train": remedy.predict_positive(export, train.x, batch),
            "val": remedy.predict_positive(export, val.x, batch),
            "test": remedy.predict_positive(export, test.x, batch),
        }
        save_model(export, model_path)
        files.write_npz(
            predictions_path,
            **predictions,
            **{key: np.int64(value) for key, value in record.items()},
        )
    monitor = p.train.early_stopping.monitor
    best_text = f"best step {best_step} ({monitor} {best:.4f})" if steps else "no training"
    print(
        f"{name} seed {seed}: {steps} steps run, {best_text}, "
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
    """Compile and ``fit`` for at most ``cfg.max_steps`` optimizer steps.

    Keras' epoch is ``cfg.check_every`` steps for every remedy (the sampler datasets are
    infinite), so every remedy is validated, logged and may be stopped after the same
    number of batches; with the sampler's epoch as Keras' epoch, undersampling (2-step
    epochs) was stopped after ~20 steps while oversampling's patience alone spanned 1128
    (8 epochs of 141). Under early stopping,
    ``patience`` steps become ``patience // check_every`` checks and the best check's
    weights are restored; under the budget (``stopping: budget``) no early stopping is
    added and the final weights (or a remedy's averaged ones) are kept, every check still
    validating so that the curves exist.

    Returns (steps trained, step of the kept weights, the monitored metric there).
    """
    import keras
    import tensorflow as tf

    data = remedy.train_data(train.x, train.y, cfg.batch_size, seed, check_every=cfg.check_every)
    val_ds = (
        tf.data.Dataset.from_tensor_slices((val.x, tf.one_hot(val.y, 2)))
        .batch(cfg.predict_batch_size)
        .cache()
        .prefetch(tf.data.AUTOTUNE)
    )
    model = remedy.training_model(model)
    model.compile(
        optimizer=make_optimizer(cfg, remedy.optimizer_options()),
        loss=remedy.keras_loss(class_prior(train.y)),
        metrics=make_metrics(),
    )
    monitor = cfg.early_stopping.monitor
    stopper = None
    if cfg.stopping == "early_stopping":
        stopper = keras.callbacks.EarlyStopping(
            monitor=monitor,
            mode=METRIC_MODE[monitor],
            patience=cfg.early_stopping.patience // cfg.check_every,
            restore_best_weights=True,
            start_from_epoch=data.min_checks,
        )
    sampler, counts, batch = remedy.sampler, train.counts, cfg.batch_size
    history = model.fit(
        data.dataset,
        steps_per_epoch=cfg.check_every,
        epochs=cfg.checks,
        validation_data=val_ds,
        callbacks=[
            *data.callbacks,
            *remedy.fit_callbacks(cfg.check_every),
            *([stopper] if stopper is not None else []),
            live_callback(live, cfg.check_every),
            progress_callback(cfg.max_steps, cfg.check_every),
            throughput_callback(
                lambda steps: sampler.images_seen(steps, counts, batch), cfg.check_every
            ),
        ],
        shuffle=False,  # the sampler shuffles, seeded
        verbose=0,
    )
    steps = len(history.epoch) * cfg.check_every
    if stopper is None:  # the budget: the weights of the last check are kept
        return steps, steps, float(history.history[monitor][-1])
    best = float("nan") if stopper.best is None else float(stopper.best)
    return steps, (stopper.best_epoch + 1) * cfg.check_every, best


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


def make_optimizer(cfg: params.Train, options: dict[str, Any]) -> keras.optimizers.Optimizer:
    """The optimizer ``train.optimizer`` names, with the remedy's options (weight decay,
    weight averaging)."""
    import keras

    kinds = {
        "adam": keras.optimizers.Adam,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
    }
    return kinds[cfg.optimizer](learning_rate=cfg.learning_rate, **options)


def exportable(model: keras.Model, model_params: params.Model, seed: int) -> keras.Model:
    """An uncompiled copy: the saved file holds the architecture and weights only, not
    the remedy's loss closures or optimizer state, so anyone can load it."""
    export = build_model(model_params, seed)
    export.set_weights(model.get_weights())
    return export
