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

Under ``split.validation: kfold`` step 3 is cross-validated (:func:`cross_validate`):
``split.folds`` stratified folds of the training set are each trained on the others with
early stopping and score the held-out fold, which gives every training image, all 50
positives included, an out-of-fold score (the run's validation predictions, on which the
tuned threshold is chosen) and every fold a best step; the remedy is then refitted on the
whole set for the folds' mean best step, with no early stopping. k + 1 trainings.

Whatever differs between remedies — files, starting model, batches, loss, callbacks,
finishing step — the loop asks the remedy (:mod:`imbalance.training.components`).
A run records ``steps_trained`` (optimizer steps run, the folds' included), ``best_step``
(the step whose weights were kept: the best check under early stopping, ``steps_trained``
under the budget, the refit's length under k-fold) and ``images_seen`` (training images
fed, the folds' included); all three are 0 for a remedy that trains nothing (post-hoc
only). Steps are counts, so the first check is at step
``check_every``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
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
    cfg = remedy.train_config(p.train)  # the study's budget, or the remedy's own
    train, val, test = load_inputs(p, name, remedy, seed, layout)

    model_path = layout.model(name, seed, retrained=remedy.retrained)
    predictions_path = layout.predictions(name, seed)
    live_path = layout.training_dir(name, seed)
    remove_stale_temporaries(model_path, predictions_path, live_path)

    setup_tensorflow(p.train.threads, seed)
    from dvclive import Live

    prior = class_prior(train.y)
    model = remedy.initial_model(p.model, seed, layout, prior)
    batch = cfg.predict_batch_size
    with files.atomic_dir(live_path) as live_dir:
        live = Live(str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None)
        out_of_fold = None
        if not remedy.trains:
            trained = Trained(0, 0, float("nan"), 0)
        elif p.split.validation == "kfold":
            trained, out_of_fold = cross_validate(p, remedy, model, train, seed, layout, live)
        else:
            trained = fit(model, remedy, cfg, train, val, seed, live)
        remedy.finish(model, prior)
        record = {
            "steps_trained": trained.steps,
            "best_step": trained.best_step,
            "images_seen": trained.images,
        }
        live.summary.update(record)
        live.make_summary()

        export = exportable(model, p.model, seed)
        predictions = {
            "train": remedy.predict_positive(export, train.x, batch),
            "val": (
                remedy.predict_positive(export, val.x, batch)
                if out_of_fold is None
                else out_of_fold
            ),
            "test": remedy.predict_positive(export, test.x, batch),
        }
        save_model(export, model_path)
        files.write_npz(
            predictions_path,
            **predictions,
            **{key: np.int64(value) for key, value in record.items()},
        )
    monitor = p.train.early_stopping.monitor
    best_text = (
        f"best step {trained.best_step} ({monitor} {trained.best:.4f})"
        if trained.steps
        else "no training"
    )
    print(
        f"{name} seed {seed}: {trained.steps} steps run, {best_text}, "
        f"{time.perf_counter() - started:.1f}s wall",
        flush=True,
    )


@dataclass(frozen=True)
class Trained:
    """What one run's training came to: optimizer steps run, the step of the kept weights,
    the monitored validation metric there (NaN when nothing validated them) and the
    training images fed."""

    steps: int
    best_step: int
    best: float
    images: int


def cross_validate(
    p: params.Params,
    remedy: Remedy,
    model: keras.Model,
    train: Images,
    seed: int,
    layout: Layout,
    live: Any,
) -> tuple[Trained, np.ndarray]:
    """The k-fold protocol: choose the training length on all the training images, then
    refit ``model`` on all of them for that length.

    Why: a 10 % hold-out of 50 positives is 5 images, and an early-stopping step or a
    threshold chosen on 5 positives is mostly noise (the standard error of an AUC near
    0.93 with 5 positives is ~0.08). Each of the ``split.folds`` stratified folds
    (scikit-learn's ``StratifiedKFold``, shuffled by the seed) is held out once: a fresh
    copy of the starting model trains on the other folds with the run's early stopping,
    validated on the held-out fold, and scores it with its kept weights. The refit trains
    for the folds' mean best step (rounded to a check) with no early stopping, as the
    equal-budget protocol does; ``best`` is the folds' mean monitored metric. Returns
    the refit's record (steps and images summed over all k + 1 trainings) and the
    out-of-fold scores, in training-file order.

    A retrain remedy's folds start from its start remedy's model, which was refitted on
    every fold: its out-of-fold scores are optimistic by what that model has seen.
    """
    from sklearn.model_selection import StratifiedKFold

    cfg = remedy.train_config(p.train)
    splitter = StratifiedKFold(p.split.folds, shuffle=True, random_state=seed)
    out_of_fold = np.zeros(len(train.y), np.float32)
    folds = []
    for k, (fit_idx, held_idx) in enumerate(splitter.split(np.zeros(len(train.y)), train.y)):
        part, held = train.subset(fit_idx), train.subset(held_idx)
        prior = class_prior(part.y)
        fold_model = remedy.initial_model(p.model, seed, layout, prior)
        fold = fit(fold_model, remedy, cfg, part, held, seed, live=None)
        remedy.finish(fold_model, prior)
        export = exportable(fold_model, p.model, seed)
        out_of_fold[held_idx] = remedy.predict_positive(export, held.x, cfg.predict_batch_size)
        print(f"fold {k + 1}/{p.split.folds}: best step {fold.best_step}", flush=True)
        folds.append(fold)
    mean_best = np.mean([f.best_step for f in folds])
    length = cfg.check_every * max(1, round(mean_best / cfg.check_every))
    refit = fit(
        model,
        remedy,
        cfg.model_copy(update={"stopping": "budget", "max_steps": length}),
        train,
        None,
        seed,
        live,
    )
    trained = Trained(
        steps=refit.steps + sum(f.steps for f in folds),
        best_step=refit.steps,
        best=float(np.mean([f.best for f in folds])),
        images=refit.images + sum(f.images for f in folds),
    )
    return trained, out_of_fold


def fit(
    model: keras.Model,
    remedy: Remedy,
    cfg: params.Train,
    train: Images,
    val: Images | None,
    seed: int,
    live: Any,
) -> Trained:
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

    Without ``val`` (a k-fold refit) nothing is validated and ``live`` (None for a fold,
    whose curves are not kept) logs the training metrics only.
    """
    import keras
    import tensorflow as tf

    data = remedy.train_data(train.x, train.y, cfg.batch_size, seed, check_every=cfg.check_every)
    val_ds = None
    if val is not None:
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
            *([live_callback(live, cfg.check_every)] if live is not None else []),
            progress_callback(cfg.max_steps, cfg.check_every),
            throughput_callback(
                lambda steps: sampler.images_seen(steps, counts, batch), cfg.check_every
            ),
        ],
        shuffle=False,  # the sampler shuffles, seeded
        verbose=0,
    )
    steps = len(history.epoch) * cfg.check_every
    images = sampler.images_seen(steps, counts, batch)
    if stopper is None:  # the budget: the weights of the last check are kept
        last = history.history.get(monitor, [float("nan")])[-1]
        return Trained(steps, steps, float(last), images)
    best = float("nan") if stopper.best is None else float(stopper.best)
    return Trained(steps, (stopper.best_epoch + 1) * cfg.check_every, best, images)


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
