"""Remedy components: one small object per component kind, composed by :class:`Remedy`.

A remedy is a named composition declared in params.yaml (``remedies:`` from scratch,
``retrain:`` from another remedy's model). :meth:`Remedy.from_params` turns the spec into
component objects; the one training loop (:mod:`imbalance.training.train`) asks the remedy for its
files, starting model, training dataset, loss and callbacks, and never looks at the
remedy's name. A new remedy is a params entry plus, at most, one new component here.

Component kinds and what each contributes:

- :class:`TrainingSet` — which split files (``train_<kind>.npz`` / ``val_<kind>.npz``);
- :class:`Sampler` — the order and class mix of training images (``tf.data``), and
  ``steps_per_epoch``;
- :class:`Weights` — per-sample class weights, optionally deferred (DRW);
- :class:`Loss` — crossentropy, focal, logit-adjusted;
- :class:`Augment` — random flips / translations inside ``tf.data``;
- :class:`OutputBias` — initial bias of ``last`` from the class prior;
- :class:`Start` — (retrain) the starting model and which layers train;
- :class:`PosthocShift` — (retrain) post-hoc logit adjustment of the saved model.

"Class prior" means the class frequencies of the remedy's training-set file (not of what
a sampler draws): that is the distribution the test set's imbalance is measured against.

TensorFlow is imported inside the methods that need it, so that the input checks (numpy
only) fail fast, before the ~4 s TensorFlow import.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imbalance import params
from imbalance.cli import UserError
from imbalance.training.model import LAYER_NAMES, OUTPUT_LAYER, build_model

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

#: Clip probabilities away from 0 and 1 before a log (Keras' own epsilon).
EPSILON = 1e-7


def class_counts(y: np.ndarray) -> np.ndarray:
    """[n_negatives, n_positives] of 0/1 labels."""
    return np.bincount(np.asarray(y, dtype=np.int64), minlength=2)[:2]


def class_prior(y: np.ndarray) -> np.ndarray:
    """Class frequencies π_c of the training-set file (float64, sums to 1)."""
    counts = class_counts(y).astype(np.float64)
    return counts / counts.sum()


def sub_seeds(seed: int, n: int) -> list[int]:
    """``n`` independent seeds derived from the run seed.

    Every random stream (each shuffle, the sampler, each augmentation layer) gets its own
    seed, so changing one stream (e.g. adding augmentation) does not shift the others.
    """
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(n)]


# --------------------------------------------------------------------------- train set
@dataclass(frozen=True)
class TrainingSet:
    """Which split the remedy trains and early-stops on (its val set keeps the same mix)."""

    kind: str  # imbalanced | balanced

    def paths(self, data_dir: Path) -> tuple[Path, Path]:
        return data_dir / f"train_{self.kind}.npz", data_dir / f"val_{self.kind}.npz"


# --------------------------------------------------------------------------- sampler
@dataclass(frozen=True)
class Sampler:
    """Order and class mix of the training batches.

    ``natural``: every image once per epoch, reshuffled each epoch. ``oversample`` /
    ``undersample``: each draw takes the next image of a repeated, shuffled negative or
    positive stream with probability 0.5 / 0.5 (TensorFlow's imbalanced-data tutorial's
    ``sample_from_datasets``, with a faster coin, see below); they differ
    only in the epoch length (every negative, resp. every positive, seen about once per
    epoch). The streams are infinite and Keras keeps one iterator across epochs, so
    undersampling still visits every negative over the run.

    The pipeline shuffles and samples *indices*, then gathers whole batches from the
    in-memory image tensor: one gather per batch instead of per-image slicing, which keeps
    the input pipeline far faster than this small model.
    """

    kind: str  # natural | oversample | undersample

    def steps_per_epoch(self, counts: np.ndarray, batch_size: int) -> int:
        n_neg, n_pos = (int(c) for c in counts)
        if self.kind == "oversample":
            return math.ceil(2 * n_neg / batch_size)
        if self.kind == "undersample":
            return math.ceil(2 * n_pos / batch_size)
        return math.ceil((n_neg + n_pos) / batch_size)

    def images_per_epoch(self, counts: np.ndarray, batch_size: int) -> int:
        """Images trained per epoch (the natural sampler's last batch of a pass is short)."""
        if self.kind == "natural":
            return int(np.sum(counts))
        return self.steps_per_epoch(counts, batch_size) * batch_size

    def index_batches(self, y: np.ndarray, batch_size: int, seed: int) -> tf.data.Dataset:
        """Infinite dataset of int64 index batches into the training set."""
        import tensorflow as tf

        s_all, s_neg, s_pos, s_mix = sub_seeds(seed, 4)
        if self.kind == "natural":
            n = len(y)
            # batch before repeat: an epoch (ceil(n / batch) steps) is exactly one pass.
            return (
                tf.data.Dataset.range(n)
                .shuffle(n, seed=s_all, reshuffle_each_iteration=True)
                .batch(batch_size)
                .repeat()
            )

        def stream(idx: np.ndarray, s: int) -> tf.data.Dataset:
            ds = tf.data.Dataset.from_tensor_slices(idx.astype(np.int64))
            return ds.shuffle(len(idx), seed=s, reshuffle_each_iteration=True).repeat()

        neg = stream(np.flatnonzero(y == 0), s_neg)
        pos = stream(np.flatnonzero(y == 1), s_pos)
        # = sample_from_datasets([neg, pos], weights=[0.5, 0.5], seed=...): a fair coin per
        # draw picks the stream. Drawn 1024 coins per call rather than one: the stock
        # selector runs a TF function per image, which made the pipeline cost ~25 % of
        # training throughput on 2 cores (37k vs 600k indices/s).
        coins = tf.data.Dataset.random(seed=s_mix).batch(1024).map(lambda r: r % 2).unbatch()
        return tf.data.Dataset.choose_from_datasets([neg, pos], coins).batch(batch_size)


# --------------------------------------------------------------------------- weights
@dataclass(frozen=True)
class Weights:
    """Per-sample class weights, switched on at ``from_epoch`` (0 = from the start).

    ``balanced``: scikit-learn's ``compute_class_weight("balanced")`` = N / (2 n_c).
    ``effective_number`` (Cui et al. 2019): w_c ∝ (1 - β) / (1 - β^n_c), normalised so
    that Σ_c w_c n_c = N, the same normalisation as ``balanced`` (the mean per-sample
    weight is 1, so the loss scale and the learning rate mean the same as without
    weights); β → 1 gives ``balanced``, β → 0 no weighting.

    Weights are per-sample weights added as the last step of the dataset, looked up in a
    ``tf.Variable`` that a callback sets at the start of every epoch: ones before
    ``from_epoch``, the class weights from it on (deferred re-weighting, DRW, Cao et al.
    2019). The lookup runs after ``prefetch`` so that no batch prepared during the
    previous epoch carries stale weights. This is what ``fit(class_weight=...)`` does
    internally (Keras maps the class weight to a sample weight per batch, and the loss
    averages over the batch size), so one mechanism serves every sampler and DRW; only
    the training loss is weighted, the validation loss is not.
    """

    kind: str = "none"  # none | balanced | effective_number
    beta: float = 0.999
    from_epoch: int = 0

    def class_weights(self, counts: np.ndarray) -> np.ndarray | None:
        """Weight per class [w_negative, w_positive], or None for no weighting."""
        counts = np.asarray(counts, dtype=np.float64)
        if self.kind == "none":
            return None
        if self.kind == "balanced":
            from sklearn.utils.class_weight import compute_class_weight

            y = np.repeat([0, 1], counts.astype(np.int64))
            return compute_class_weight("balanced", classes=np.array([0, 1]), y=y)
        effective = (1.0 - self.beta**counts) / (1.0 - self.beta)
        w = 1.0 / effective
        return w * counts.sum() / float((w * counts).sum())

    def attach(
        self, ds: tf.data.Dataset, counts: np.ndarray
    ) -> tuple[tf.data.Dataset, list[keras.callbacks.Callback]]:
        """Add the per-sample weight to each (x, y_onehot) batch; return the callbacks."""
        w = self.class_weights(counts)
        if w is None:
            return ds, []
        import keras
        import tensorflow as tf

        active = w.astype(np.float32)
        ones = np.ones(2, np.float32)
        current = tf.Variable(active if self.from_epoch == 0 else ones, trainable=False)

        def add_weight(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
            return x, y, tf.reduce_sum(y * current, axis=-1)

        def on_epoch_begin(epoch: int, logs: dict[str, Any] | None = None) -> None:
            current.assign(active if epoch >= self.from_epoch else ones)

        callback = keras.callbacks.LambdaCallback(on_epoch_begin=on_epoch_begin)
        # tf.data would otherwise inject a prefetch after this map and hand out batches
        # weighted before the switch.
        options = tf.data.Options()
        options.experimental_optimization.inject_prefetch = False
        return ds.map(add_weight).with_options(options), [callback]


# --------------------------------------------------------------------------- loss
@dataclass(frozen=True)
class Loss:
    """The training loss on the model's softmax probabilities (one-hot targets).

    ``focal`` (Lin et al. 2017): -α_t (1 - p_t)^γ log p_t with α_t = alpha for the
    positive class and 1 - alpha for the negative one. ``logit_adjusted`` (Menon et al.
    2021): softmax crossentropy on z + τ log π. The model outputs p = softmax(z), and
    log p = z - logsumexp(z) differs from z by a per-sample constant, which softmax
    ignores, so softmax(log p + τ log π) = softmax(z + τ log π): the loss is computed
    from the probabilities exactly.
    """

    kind: str = "crossentropy"  # crossentropy | focal | logit_adjusted
    gamma: float = 2.0
    alpha: float = 0.25
    tau: float = 1.0

    def keras_loss(self, prior: np.ndarray) -> Callable[[Any, Any], Any]:
        """A Keras loss: per-sample values; Keras applies sample weights and the mean."""
        import keras
        import tensorflow as tf

        if self.kind == "crossentropy":
            return keras.losses.CategoricalCrossentropy(name="crossentropy")
        if self.kind == "focal":
            alpha = tf.constant([1.0 - self.alpha, self.alpha], tf.float32)
            gamma = float(self.gamma)

            def focal(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
                p = tf.clip_by_value(y_pred, EPSILON, 1.0 - EPSILON)
                p_t = tf.reduce_sum(y_true * p, axis=-1)
                alpha_t = tf.reduce_sum(y_true * alpha, axis=-1)
                return -alpha_t * tf.pow(1.0 - p_t, gamma) * tf.math.log(p_t)

            return focal
        shift = tf.constant(self.tau * np.log(prior), tf.float32)

        def logit_adjusted(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
            z = tf.math.log(tf.clip_by_value(y_pred, EPSILON, 1.0)) + shift
            return tf.reduce_logsumexp(z, axis=-1) - tf.reduce_sum(y_true * z, axis=-1)

        return logit_adjusted


# --------------------------------------------------------------------------- augment
@dataclass(frozen=True)
class Augment:
    """Random horizontal flips and translations (fraction of the image size).

    Keras preprocessing layers applied to whole batches inside ``tf.data``, after the
    sampler, so augmentation composes with any sampler (an oversampled positive is a
    new variant each time it is drawn). Each layer has its own seed from the run seed;
    the map runs sequentially because the layers' seed state advances per call, and a
    parallel map could hand the states to batches in a varying order. Translations use
    nearest-neighbour sampling: whole-pixel shifts as in the usual pad-and-crop CIFAR
    augmentation, no blur, and 1.5× cheaper than bilinear (the map shares 2 cores with
    training).
    """

    flip: bool = False
    translate: float = 0.0

    @property
    def enabled(self) -> bool:
        return self.flip or self.translate > 0

    def apply(self, ds: tf.data.Dataset, seed: int) -> tf.data.Dataset:
        """Augment the images of (x, y) batches; labels and shapes are unchanged."""
        if not self.enabled:
            return ds
        import keras

        s_flip, s_move = sub_seeds(seed, 2)
        layers: list[keras.layers.Layer] = []
        if self.flip:
            layers.append(keras.layers.RandomFlip("horizontal", seed=s_flip))
        if self.translate > 0:
            t = self.translate
            layers.append(
                keras.layers.RandomTranslation(
                    t, t, fill_mode="reflect", interpolation="nearest", seed=s_move
                )
            )

        def augment(x: Any, y: Any) -> tuple[Any, Any]:
            for layer in layers:
                x = layer(x, training=True)
            return x, y

        return ds.map(augment)


# --------------------------------------------------------------------------- model hooks
def set_output_bias(model: keras.Model, bias: np.ndarray) -> None:
    kernel, _ = model.get_layer(OUTPUT_LAYER).get_weights()
    model.get_layer(OUTPUT_LAYER).set_weights([kernel, bias.astype(np.float32)])


@dataclass(frozen=True)
class OutputBias:
    """Initial bias of ``last`` = log π_c, so the untrained model predicts the prior.

    TensorFlow's imbalanced-data tutorial: with softmax outputs, b_c = log π_c gives
    softmax(b) = π, so the first epochs do not spend their steps learning the prior.
    """

    enabled: bool = False

    def apply(self, model: keras.Model, prior: np.ndarray) -> None:
        if self.enabled:
            set_output_bias(model, np.log(prior))


@dataclass(frozen=True)
class PosthocShift:
    """Post-hoc logit adjustment (Menon et al. 2021): subtract τ log π_c from ``last``'s bias.

    The saved model then outputs softmax(z - τ log π), so every prediction file and metric
    downstream carries the adjustment with no special case.
    """

    tau: float = 0.0

    def apply(self, model: keras.Model, prior: np.ndarray) -> None:
        if self.tau > 0:
            _, bias = model.get_layer(OUTPUT_LAYER).get_weights()
            set_output_bias(model, bias - self.tau * np.log(prior))


# --------------------------------------------------------------------------- start
@dataclass(frozen=True)
class Start:
    """A retrain remedy's starting model and the layers that keep training.

    The starting model is another remedy's model of the same seed; every layer not in
    ``trainable`` is frozen (two-phase training, cRT). Its weights are copied into a
    model freshly built from ``model`` params, so a file from another architecture is
    refused, not silently used.
    """

    remedy: str
    trainable: tuple[str, ...] = (OUTPUT_LAYER,)

    def path(self, models_dir: Path, seed: int) -> Path:
        return models_dir / "scratch" / f"seed{seed}" / f"{self.remedy}.keras"

    def check_params(self, name: str) -> None:
        unknown = [layer for layer in self.trainable if layer not in LAYER_NAMES]
        if unknown:
            raise UserError(
                f"params.yaml: retrain.{name}.trainable names unknown layers {unknown}; "
                f"choose from {list(LAYER_NAMES)}"
            )

    def check_file(self, path: Path, seed: int) -> None:
        """Cheap checks before TensorFlow is imported: present, and a complete zip."""
        rebuild = f"`dvc repro train@{self.remedy}-{seed}`"
        if not path.is_file():
            raise UserError(f"{path}: starting model missing; build it first with {rebuild}")
        try:
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
        except (zipfile.BadZipFile, OSError):
            bad = "archive"
        if bad is not None:
            raise UserError(
                f"{path}: starting model is truncated or damaged; rebuild it with "
                f"`dvc repro --force train@{self.remedy}-{seed}`"
            )

    def load(self, path: Path, model_params: params.Model, seed: int) -> keras.Model:
        import keras

        rebuild = f"`dvc repro --force train@{self.remedy}-{seed}`"
        try:
            saved = keras.models.load_model(path, compile=False, safe_mode=True)
        except Exception as err:  # Keras raises many types for a damaged file
            raise UserError(
                f"{path}: not a loadable Keras model ({type(err).__name__}); rebuild it "
                f"with {rebuild}"
            ) from None
        model = build_model(model_params, seed)
        want = [(w.path, tuple(w.shape)) for w in model.weights]
        got = [(w.path, tuple(w.shape)) for w in saved.weights]
        if want != got:
            raise UserError(
                f"{path}: starting model has another architecture than the `model` params "
                f"({_first_difference(got, want)}); rebuild it with {rebuild}"
            )
        model.set_weights(saved.get_weights())
        for layer in model.layers:
            layer.trainable = layer.name in self.trainable
        return model


def _first_difference(
    got: list[tuple[str, tuple[int, ...]]], want: list[tuple[str, tuple[int, ...]]]
) -> str:
    """'conv0/kernel is 3x3x3x8, params give 3x3x3x16': the first weight that differs."""
    for (g_name, g_shape), (w_name, w_shape) in zip(got, want, strict=False):
        if (g_name, g_shape) != (w_name, w_shape):
            shape = "x".join(map(str, g_shape))
            return f"{g_name} is {shape}, params give {w_name} {'x'.join(map(str, w_shape))}"
    return f"{len(got)} weight arrays, params give {len(want)}"


# --------------------------------------------------------------------------- remedy
@dataclass(frozen=True)
class TrainData:
    """What ``fit`` needs from the remedy: an infinite dataset, its epoch length, hooks."""

    dataset: tf.data.Dataset
    steps_per_epoch: int
    callbacks: list[keras.callbacks.Callback]


@dataclass(frozen=True)
class Remedy:
    """A remedy as the training loop sees it: components, built from a params spec."""

    name: str
    training_set: TrainingSet
    sampler: Sampler
    weights: Weights
    loss: Loss
    augment: Augment
    output_bias: OutputBias
    start: Start | None = None
    posthoc: PosthocShift = PosthocShift()

    @classmethod
    def from_params(cls, name: str, spec: params.Remedy) -> Remedy:
        start = None
        posthoc = PosthocShift()
        if isinstance(spec, params.Retrain):
            start = Start(spec.start, tuple(spec.trainable))
            start.check_params(name)
            posthoc = PosthocShift(spec.posthoc_tau)
        return cls(
            name=name,
            training_set=TrainingSet(spec.train_set),
            sampler=Sampler(spec.sampler),
            weights=Weights(spec.weights.kind, spec.weights.beta, spec.weights.from_epoch),
            loss=Loss(spec.loss.kind, spec.loss.gamma, spec.loss.alpha, spec.loss.tau),
            augment=Augment(spec.augment.flip, spec.augment.translate),
            output_bias=OutputBias(spec.output_bias_init),
            start=start,
            posthoc=posthoc,
        )

    @property
    def min_epochs(self) -> int:
        """Epochs before early stopping may pick a model: DRW's plain-loss phase.

        A deferred re-weighting remedy whose model came from before the weights switch on
        would be the baseline under another name, so early stopping starts monitoring at
        ``from_epoch``.
        """
        return self.weights.from_epoch if self.weights.kind != "none" else 0

    @property
    def trains(self) -> bool:
        """False for a retrain remedy with ``trainable: []`` (post-hoc only)."""
        return self.start is None or bool(self.start.trainable)

    def model_path(self, models_dir: Path, seed: int) -> Path:
        group = "scratch" if self.start is None else "retrained"
        return models_dir / group / f"seed{seed}" / f"{self.name}.keras"

    def initial_model(
        self, model_params: params.Model, seed: int, models_dir: Path, prior: np.ndarray
    ) -> keras.Model:
        """Seeded fresh model, or the starting model with non-trainable layers frozen."""
        if self.start is None:
            model = build_model(model_params, seed)
        else:
            model = self.start.load(self.start.path(models_dir, seed), model_params, seed)
        self.output_bias.apply(model, prior)
        return model

    def train_data(self, x: Any, y: np.ndarray, batch_size: int, seed: int) -> TrainData:
        """The training pipeline: sampler → gather batch → augment → prefetch → weights.

        ``x`` is the float32 [0, 1] image tensor, already in memory (converted once).
        """
        import tensorflow as tf

        s_sampler, s_augment = sub_seeds(seed, 2)
        x_t = tf.convert_to_tensor(x, tf.float32)
        y_t = tf.one_hot(tf.convert_to_tensor(y, tf.int64), 2)

        def gather(idx: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return tf.gather(x_t, idx), tf.gather(y_t, idx)

        ds = self.sampler.index_batches(y, batch_size, s_sampler).map(gather)
        ds = self.augment.apply(ds, s_augment).prefetch(tf.data.AUTOTUNE)
        counts = class_counts(y)
        ds, callbacks = self.weights.attach(ds, counts)
        return TrainData(ds, self.sampler.steps_per_epoch(counts, batch_size), callbacks)

    def keras_loss(self, prior: np.ndarray) -> Callable[[Any, Any], Any]:
        return self.loss.keras_loss(prior)

    def finish(self, model: keras.Model, prior: np.ndarray) -> None:
        """After training: post-hoc adjustments that the saved model must carry."""
        self.posthoc.apply(model, prior)
