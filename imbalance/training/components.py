"""Remedy components: one pydantic class per component kind, composed by :class:`Remedy`.

A remedy is a named composition declared in params.yaml (``remedies:`` from scratch,
``retrain:`` from another remedy's model). Every key of a remedy is one component, and
the component's class is both its params schema (validated by :mod:`imbalance.params`
when any stage starts) and its behaviour (used by the training loop): there is no second
copy of the fields or their defaults. The training loop (:mod:`imbalance.training.train`)
asks the :class:`Remedy` for its files, starting model, training data, loss, callbacks and
finishing step, and never looks at the remedy's name.

Component kinds (the params.yaml key, then the class or the variants of a kind):

- ``train_set`` — :class:`TrainingSet`: which split files (``train_<kind>.npz`` /
  ``val_<kind>.npz``);
- ``sampler`` — :class:`Sampler`: the order and class mix of training images
  (``tf.data``) and ``steps_per_epoch``: natural | oversample | undersample;
- ``weights`` — :class:`Weights`: per-sample class weights, optionally deferred (DRW):
  none | balanced | effective_number;
- ``loss`` — :class:`Loss`: crossentropy | focal | logit_adjusted;
- ``augment`` — :class:`Augment`: random flips, translations, colour jitter, erasing and
  RandAugment inside ``tf.data``;
- ``mixup`` — :class:`Mixup`: Balanced-MixUp of each batch with a class-balanced one;
- ``output_bias_init`` — :class:`OutputBias`: initial bias of ``last`` from the class prior;
- ``weight_decay`` — :class:`WeightDecay`: decoupled weight decay (AdamW);
- ``sam`` — :class:`Sharpness`: sharpness-aware minimisation's two-pass step;
- ``average`` — :class:`Average`: weight averaging: none | ema | swa;
- ``tta`` — :class:`FlipTTA`: scores averaged over the image and its mirror;
- ``start``, ``trainable`` (retrain only) — :class:`Start`, :class:`Trainable`: the
  starting model and which of its layers keep training;
- ``posthoc_tau`` (retrain only) — :class:`PosthocShift`: post-hoc logit adjustment of the
  saved model.

A kind with variants is a discriminated union on ``kind`` (``loss: {kind: focal, gamma:
2.0}``); one verb per kind (``Sampler.index_batches``, ``Weights.class_weights``,
``Loss.keras_loss``, ...) is what every variant implements, in the style of
imbalanced-learn's one ``fit_resample`` per sampler. tests/test_components.py runs one
contract over every variant of every kind, found from the field types of
:class:`Retrain`. Adding a variant is one class here and its name in the kind's union;
adding a kind is one class, one field of :class:`Remedy` and its one call in the
:class:`Remedy` method where it acts.

"Class prior" means the class frequencies of the remedy's training-set file (not of what
a sampler draws): that is the distribution the test set's imbalance is measured against.

TensorFlow is imported inside the methods that need it, so that validating params (every
stage does, fetch and compare included) stays TensorFlow-free and fast, and the input
checks (numpy only) fail before the ~4 s TensorFlow import.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from imbalance.cli import UserError
from imbalance.training.model import LAYER_NAMES, OUTPUT_LAYER

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

    from imbalance.layout import Layout
    from imbalance.params import Model

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


# --------------------------------------------------------------------------- the base
class Spec(BaseModel):
    """Params as params.yaml holds them: unknown keys are errors (a misspelt key would
    otherwise be silently ignored), no type coercion, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Component(Spec):
    """One component of a remedy: its params (the fields) and its behaviour (the methods).

    ``shorthand`` names the param a bare YAML value stands for, so that a component that
    needs one param is written as that value (``sampler: oversample``, ``posthoc_tau:
    1.0``, ``output_bias_init: true``) and the mapping form works too.

    ``touches`` names what of a training run the component may change, in the words
    tests/test_components.py measures against the same remedy without it: ``files``
    (the data files), ``labels``, ``images`` and ``steps_per_epoch`` (of the training
    batches), ``sample_weights``, ``min_checks`` (before early stopping may pick a model),
    ``loss``, ``initial_weights`` and ``initial_bias`` (of the model training starts from;
    the bias is ``last``'s), ``trainable`` (which layers train), ``optimizer`` (its
    options), ``train_step`` (the model ``fit`` trains), ``averaging`` (callbacks that
    swap averaged weights in), ``final_bias`` (what the finishing step does to ``last``'s
    bias) and ``predictions`` (how a model's scores are computed). Nothing may change a
    batch's shapes.
    """

    shorthand: ClassVar[str | None] = None
    touches: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _bare_value(cls, data: Any) -> Any:
        if cls.shorthand is not None and not isinstance(data, dict | BaseModel):
            return {cls.shorthand: data}
        return data


def by_kind(default: str) -> BeforeValidator:
    """The YAML forms of a kind with variants, turned into the mapping the union reads.

    A bare name stands for that variant with its default params (``sampler: oversample``,
    ``loss: focal``); a mapping without ``kind`` for the do-nothing variant ``default``
    (``weights: {}``), as before the kinds had variants.
    """

    def named(data: Any) -> Any:
        if isinstance(data, str):
            return {"kind": data}
        if isinstance(data, dict) and "kind" not in data:
            return {"kind": default, **data}
        return data

    return BeforeValidator(named)


# --------------------------------------------------------------------------- train set
class TrainingSet(Component):
    """Which split the remedy trains and early-stops on (its val set keeps the same mix)."""

    shorthand = "kind"
    touches = frozenset({"files"})

    kind: Literal["imbalanced", "balanced"] = "imbalanced"

    def paths(self, data_dir: Path) -> tuple[Path, Path]:
        return data_dir / f"train_{self.kind}.npz", data_dir / f"val_{self.kind}.npz"


# --------------------------------------------------------------------------- sampler
class Sampler(Component):
    """Order and class mix of the training batches; the verb is :meth:`index_batches`.

    The pipeline shuffles and samples *indices*, then gathers whole batches from the
    in-memory image tensor: one gather per batch instead of per-image slicing, which keeps
    the input pipeline far faster than this small model.
    """

    shorthand = "kind"
    touches = frozenset({"labels", "images", "steps_per_epoch"})

    def steps_per_epoch(self, counts: np.ndarray, batch_size: int) -> int:
        """The sampler's own pass length (its "epoch"): the unit DRW's ``from_epoch``
        counts in. Training budgets count optimizer steps instead (``train.max_steps``),
        because this length differs by a factor of 70 between the samplers."""
        raise NotImplementedError

    def images_seen(self, steps: int, counts: np.ndarray, batch_size: int) -> int:
        """Training images fed in the first ``steps`` optimizer steps, exactly: every
        batch is full (the class-balanced samplers draw from infinite streams)."""
        return steps * batch_size

    def index_batches(self, y: np.ndarray, batch_size: int, seed: int) -> tf.data.Dataset:
        """Infinite dataset of int64 index batches into the training set."""
        raise NotImplementedError


class NaturalSampler(Sampler):
    """Every image once per epoch, reshuffled each epoch."""

    kind: Literal["natural"] = "natural"

    def steps_per_epoch(self, counts: np.ndarray, batch_size: int) -> int:
        n_neg, n_pos = (int(c) for c in counts)
        return math.ceil((n_neg + n_pos) / batch_size)

    def images_seen(self, steps: int, counts: np.ndarray, batch_size: int) -> int:
        """Every image once per pass: the last batch of each pass is short (the index
        dataset is batched before it is repeated), so whole passes count their images
        and only the steps of an unfinished pass are full batches."""
        per_pass = self.steps_per_epoch(counts, batch_size)
        passes, rest = divmod(steps, per_pass)
        return passes * int(np.sum(counts)) + rest * batch_size

    def index_batches(self, y: np.ndarray, batch_size: int, seed: int) -> tf.data.Dataset:
        import tensorflow as tf

        s_all = sub_seeds(seed, 4)[0]  # the class-balanced samplers draw the other three
        n = len(y)
        # batch before repeat: an epoch (ceil(n / batch) steps) is exactly one pass.
        return (
            tf.data.Dataset.range(n)
            .shuffle(n, seed=s_all, reshuffle_each_iteration=True)
            .batch(batch_size)
            .repeat()
        )


class ClassBalancedSampler(Sampler):
    """Each draw takes the next image of a repeated, shuffled negative or positive stream
    with probability 0.5 / 0.5 (TensorFlow's imbalanced-data tutorial's
    ``sample_from_datasets``, with a faster coin, see below).

    Over- and undersampling differ in the negatives the stream draws from: all of them,
    or a random subset as large as the positives (:meth:`negatives`).
    """

    def negatives(self, idx: np.ndarray, n_positives: int, seed: int) -> np.ndarray:
        """Indices of the negatives the negative stream repeats."""
        return idx

    def index_batches(self, y: np.ndarray, batch_size: int, seed: int) -> tf.data.Dataset:
        import tensorflow as tf

        _, s_neg, s_pos, s_mix, s_keep = sub_seeds(seed, 5)

        def stream(idx: np.ndarray, s: int) -> tf.data.Dataset:
            ds = tf.data.Dataset.from_tensor_slices(idx.astype(np.int64))
            return ds.shuffle(len(idx), seed=s, reshuffle_each_iteration=True).repeat()

        positives = np.flatnonzero(y == 1)
        neg = stream(self.negatives(np.flatnonzero(y == 0), len(positives), s_keep), s_neg)
        pos = stream(positives, s_pos)
        # = sample_from_datasets([neg, pos], weights=[0.5, 0.5], seed=...): a fair coin per
        # draw picks the stream. Drawn 1024 coins per call rather than one: the stock
        # selector runs a TF function per image, which made the pipeline cost ~25 % of
        # training throughput on 2 cores (37k vs 600k indices/s).
        coins = tf.data.Dataset.random(seed=s_mix).batch(1024).map(lambda r: r % 2).unbatch()
        return tf.data.Dataset.choose_from_datasets([neg, pos], coins).batch(batch_size)


class Oversampler(ClassBalancedSampler):
    """Class-balanced batches; an epoch sees every negative about once."""

    kind: Literal["oversample"] = "oversample"

    def steps_per_epoch(self, counts: np.ndarray, batch_size: int) -> int:
        return math.ceil(2 * int(counts[0]) / batch_size)


class Undersampler(ClassBalancedSampler):
    """Random undersampling (imbalanced-learn's ``RandomUnderSampler``): a seeded random
    subset of as many negatives as there are positives, drawn once per run; the other
    negatives are never seen. Batches are class-balanced; an epoch sees every kept image
    about once (2 steps for 45 + 45 images): step budgets give it as many steps as any
    other remedy, over 90 distinct images."""

    kind: Literal["undersample"] = "undersample"

    def negatives(self, idx: np.ndarray, n_positives: int, seed: int) -> np.ndarray:
        keep = min(n_positives, len(idx))
        return np.sort(np.random.default_rng(seed).choice(idx, size=keep, replace=False))

    def steps_per_epoch(self, counts: np.ndarray, batch_size: int) -> int:
        return math.ceil(2 * int(counts[1]) / batch_size)


AnySampler = Annotated[
    NaturalSampler | Oversampler | Undersampler,
    Field(discriminator="kind"),
    by_kind("natural"),
]


# --------------------------------------------------------------------------- weights
class Weights(Component):
    """Per-sample class weights, switched on after ``warmup_epochs`` sampler epochs (0 =
    from the start); the verb is :meth:`class_weights`.

    Weights are per-sample weights added as the last step of the dataset, looked up in a
    ``tf.Variable`` that a callback sets at the start of every validation check (Keras
    epoch): ones before the switch check, the class weights from it on (deferred
    re-weighting, DRW, Cao et al. 2019). The switch can only happen at a check boundary,
    so :meth:`Remedy.min_checks` converts ``from_epoch`` to the first check at or after
    its step. The lookup runs after ``prefetch`` so that no batch prepared during the
    previous check carries stale weights. This is what ``fit(class_weight=...)`` does
    internally (Keras maps the class weight to a sample weight per batch, and the loss
    averages over the batch size), so one mechanism serves every sampler and DRW; only
    the training loss is weighted, the validation loss is not.
    """

    shorthand = "kind"
    touches = frozenset({"sample_weights", "min_checks"})

    @property
    def warmup_epochs(self) -> int:
        """Sampler epochs trained unweighted before the weights switch on."""
        return 0

    def class_weights(self, counts: np.ndarray) -> np.ndarray | None:
        """Weight per class [w_negative, w_positive], or None for no weighting."""
        raise NotImplementedError

    def attach(
        self, ds: tf.data.Dataset, counts: np.ndarray, switch: int
    ) -> tuple[tf.data.Dataset, list[keras.callbacks.Callback]]:
        """Add the per-sample weight to each (x, y_onehot) batch; return the callbacks.

        ``switch`` is the 0-based index of the first check (Keras epoch) trained weighted.
        """
        w = self.class_weights(np.asarray(counts, dtype=np.float64))
        if w is None:
            return ds, []
        import keras
        import tensorflow as tf

        active = w.astype(np.float32)
        ones = np.ones(2, np.float32)
        current = tf.Variable(active if switch == 0 else ones, trainable=False)

        def add_weight(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
            return x, y, tf.reduce_sum(y * current, axis=-1)

        def on_epoch_begin(check: int, logs: dict[str, Any] | None = None) -> None:
            current.assign(active if check >= switch else ones)

        callback = keras.callbacks.LambdaCallback(on_epoch_begin=on_epoch_begin)
        # tf.data would otherwise inject a prefetch after this map and hand out batches
        # weighted before the switch.
        options = tf.data.Options()
        options.experimental_optimization.inject_prefetch = False
        return ds.map(add_weight).with_options(options), [callback]


class NoWeights(Weights):
    """Every sample weighs 1: the dataset is left as it is."""

    kind: Literal["none"] = "none"

    def class_weights(self, counts: np.ndarray) -> np.ndarray | None:
        return None


class ClassWeights(Weights):
    """Class weights from ``from_epoch`` on: 0 = from the start, > 0 = deferred (DRW).

    ``from_epoch`` counts the sampler's epochs, as the DRW paper does (its warm-up is a
    number of passes over the data), not validation checks. Early stopping starts
    monitoring at the switch too: a DRW model picked from before the switch would be the
    baseline under another name.
    """

    from_epoch: int = Field(default=0, ge=0, examples=[1])

    @property
    def warmup_epochs(self) -> int:
        return self.from_epoch


class BalancedWeights(ClassWeights):
    """scikit-learn's ``compute_class_weight("balanced")`` = N / (2 n_c)."""

    kind: Literal["balanced"] = "balanced"

    def class_weights(self, counts: np.ndarray) -> np.ndarray | None:
        from sklearn.utils.class_weight import compute_class_weight

        y = np.repeat([0, 1], np.asarray(counts).astype(np.int64))
        return compute_class_weight("balanced", classes=np.array([0, 1]), y=y)


class EffectiveNumberWeights(ClassWeights):
    """Cui et al. 2019: w_c ∝ (1 - β) / (1 - β^n_c), normalised so that Σ_c w_c n_c = N.

    The same normalisation as ``balanced`` (the mean per-sample weight is 1, so the loss
    scale and the learning rate mean the same as without weights); β → 1 gives
    ``balanced``, β → 0 no weighting.
    """

    kind: Literal["effective_number"] = "effective_number"
    beta: float = Field(default=0.999, gt=0.0, lt=1.0, examples=[0.99])

    def class_weights(self, counts: np.ndarray) -> np.ndarray | None:
        counts = np.asarray(counts, dtype=np.float64)
        effective = (1.0 - self.beta**counts) / (1.0 - self.beta)
        w = 1.0 / effective
        return w * counts.sum() / float((w * counts).sum())


AnyWeights = Annotated[
    NoWeights | BalancedWeights | EffectiveNumberWeights,
    Field(discriminator="kind"),
    by_kind("none"),
]


# --------------------------------------------------------------------------- loss
class Loss(Component):
    """The training loss on the model's softmax probabilities (one-hot targets); the verb
    is :meth:`keras_loss`: per-sample values, Keras applies sample weights and the mean."""

    shorthand = "kind"
    touches = frozenset({"loss"})

    def keras_loss(self, prior: np.ndarray) -> Callable[[Any, Any], Any]:
        raise NotImplementedError


class CrossentropyLoss(Loss):
    """-log p of the true class."""

    kind: Literal["crossentropy"] = "crossentropy"

    def keras_loss(self, prior: np.ndarray) -> Callable[[Any, Any], Any]:
        import keras

        return keras.losses.CategoricalCrossentropy(name="crossentropy")


class FocalLoss(Loss):
    """Lin et al. 2017: -α_t (1 - p_t)^γ log p_t with α_t = alpha for the positive class
    and 1 - alpha for the negative one."""

    kind: Literal["focal"] = "focal"
    gamma: float = Field(default=2.0, ge=0.0, examples=[1.0])
    alpha: float = Field(default=0.25, gt=0.0, lt=1.0, examples=[0.5])

    def keras_loss(self, prior: np.ndarray) -> Callable[[Any, Any], Any]:
        import tensorflow as tf

        alpha = tf.constant([1.0 - self.alpha, self.alpha], tf.float32)
        gamma = float(self.gamma)

        def focal(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
            p = tf.clip_by_value(y_pred, EPSILON, 1.0 - EPSILON)
            p_t = tf.reduce_sum(y_true * p, axis=-1)
            alpha_t = tf.reduce_sum(y_true * alpha, axis=-1)
            return -alpha_t * tf.pow(1.0 - p_t, gamma) * tf.math.log(p_t)

        return focal


class LogitAdjustedLoss(Loss):
    """Menon et al. 2021: softmax crossentropy on z + τ log π.

    The model outputs p = softmax(z), and log p = z - logsumexp(z) differs from z by a
    per-sample constant, which softmax ignores, so softmax(log p + τ log π) =
    softmax(z + τ log π): the loss is computed from the probabilities exactly.
    """

    kind: Literal["logit_adjusted"] = "logit_adjusted"
    tau: float = Field(default=1.0, ge=0.0, examples=[2.0])

    def keras_loss(self, prior: np.ndarray) -> Callable[[Any, Any], Any]:
        import tensorflow as tf

        shift = tf.constant(self.tau * np.log(prior), tf.float32)

        def logit_adjusted(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
            z = tf.math.log(tf.clip_by_value(y_pred, EPSILON, 1.0)) + shift
            return tf.reduce_logsumexp(z, axis=-1) - tf.reduce_sum(y_true * z, axis=-1)

        return logit_adjusted


AnyLoss = Annotated[
    CrossentropyLoss | FocalLoss | LogitAdjustedLoss,
    Field(discriminator="kind"),
    by_kind("crossentropy"),
]


# --------------------------------------------------------------------------- augment
class Augment(Component):
    """Random image transformations of the training batches (Keras preprocessing layers).

    Geometry: horizontal flips and translations (fraction of the image size); colour
    jitter: brightness and contrast (``RandomColorJitter``, factors as Keras reads them);
    random erasing (Zhong et al. 2020, the "Cutout" family: ``RandomErasing`` blanks a
    random rectangle with noise; ``erase`` is the probability per image); and RandAugment
    (Cubuk et al. 2020) with ``rand_augment`` random operations per image at magnitude
    ``rand_augment_magnitude`` (0-1). With 50 minority images, what the network sees of
    them is what augmentation makes of them: Shwartz-Ziv et al. (NeurIPS 2023) find its
    effect amplified under imbalance.

    Applied to whole batches inside ``tf.data``, after the sampler, so augmentation
    composes with any sampler (an oversampled positive is a new variant each time it is
    drawn). Each layer has its own seed from the run seed (appended in a fixed order, so
    adding a transformation does not shift the others' streams); the map runs
    sequentially because the layers' seed state advances per call, and a parallel map
    could hand the states to batches in a varying order. Translations use
    nearest-neighbour sampling: whole-pixel shifts as in the usual pad-and-crop CIFAR
    augmentation, no blur, and 1.5x cheaper than bilinear (the map shares 2 cores with
    training).
    """

    touches = frozenset({"images"})

    flip: bool = Field(default=False, examples=[True])
    translate: float = Field(default=0.0, ge=0.0, lt=0.5, examples=[0.1])
    brightness: float = Field(default=0.0, ge=0.0, le=1.0, examples=[0.2])
    contrast: float = Field(default=0.0, ge=0.0, le=1.0, examples=[0.2])
    erase: float = Field(default=0.0, ge=0.0, le=1.0, examples=[0.5])
    rand_augment: int = Field(default=0, ge=0, le=8, examples=[2])
    rand_augment_magnitude: float = Field(default=0.2, gt=0.0, le=1.0, examples=[0.3])

    @property
    def enabled(self) -> bool:
        return bool(
            self.flip
            or self.translate > 0
            or self.brightness > 0
            or self.contrast > 0
            or self.erase > 0
            or self.rand_augment > 0
        )

    def layers(self, seed: int) -> list[keras.layers.Layer]:
        """The preprocessing layers, in the order they are applied."""
        import keras

        s_flip, s_move, s_colour, s_erase, s_rand = sub_seeds(seed, 5)
        unit = (0.0, 1.0)  # images are float32 in [0, 1]
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
        if self.brightness > 0 or self.contrast > 0:
            layers.append(
                keras.layers.RandomColorJitter(
                    value_range=unit,
                    brightness_factor=self.brightness or None,
                    contrast_factor=self.contrast or None,
                    seed=s_colour,
                )
            )
        if self.rand_augment > 0:
            layers.append(
                keras.layers.RandAugment(
                    value_range=unit,
                    num_ops=self.rand_augment,
                    factor=self.rand_augment_magnitude,
                    seed=s_rand,
                )
            )
        if self.erase > 0:
            layers.append(
                keras.layers.RandomErasing(
                    factor=(self.erase, self.erase), value_range=unit, seed=s_erase
                )
            )
        return layers

    def apply(self, ds: tf.data.Dataset, seed: int) -> tf.data.Dataset:
        """Augment the images of (x, y) batches; labels and shapes are unchanged."""
        if not self.enabled:
            return ds
        layers = self.layers(seed)

        def augment(x: Any, y: Any) -> tuple[Any, Any]:
            for layer in layers:
                x = layer(x, training=True)
            return x, y

        return ds.map(augment)


class Mixup(Component):
    """Balanced-MixUp (Galdran et al., MICCAI 2021): every training batch becomes
    λ·(the sampler's batch) + (1 − λ)·(a class-balanced batch), images and one-hot labels
    alike, with λ ~ Beta(α, 1) drawn per batch.

    The class-balanced batch is drawn like oversampling's (a fair coin per image between
    the shuffled class streams); with the natural sampler this is the paper's mix of
    instance-based and class-based sampling, which regularises the 50 minority images
    without repeating them verbatim. Small α keeps λ near 0 (mostly the balanced batch),
    the paper's best setting being α = 0.1-0.2. λ = U^(1/α), the inverse CDF of
    Beta(α, 1), from a seeded uniform stream. Mixed before augmentation.
    """

    shorthand = "alpha"
    touches = frozenset({"images", "labels"})

    alpha: float = Field(default=0.0, ge=0.0, examples=[0.2])

    def apply(
        self,
        ds: tf.data.Dataset,
        gather: Callable[[Any], tuple[Any, Any]],
        y: np.ndarray,
        batch_size: int,
        seed: int,
    ) -> tf.data.Dataset:
        """Mix each (x, y) batch of ``ds`` with a class-balanced batch of the same rows."""
        if self.alpha == 0:
            return ds
        import tensorflow as tf

        s_balanced, s_lambda = sub_seeds(seed, 2)
        balanced = Oversampler().index_batches(y, batch_size, s_balanced).map(gather)
        inverse_alpha = 1.0 / self.alpha

        def to_lambda(r: tf.Tensor) -> tf.Tensor:
            u = tf.cast(r % (1 << 24), tf.float32) / float(1 << 24)
            return tf.pow(u, inverse_alpha)

        lambdas = tf.data.Dataset.random(seed=s_lambda).map(to_lambda)

        def mix(a: Any, b: Any, lam: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            (xa, ya), (xb, yb) = a, b
            n = tf.shape(xa)[0]  # the natural sampler's last batch of a pass is short
            return lam * xa + (1 - lam) * xb[:n], lam * ya + (1 - lam) * yb[:n]

        return tf.data.Dataset.zip(ds, balanced, lambdas).map(mix)


# --------------------------------------------------------------------------- optimisation
class WeightDecay(Component):
    """Decoupled weight decay (AdamW, Loshchilov & Hutter 2019): each step shrinks every
    weight by ``rate`` × learning rate, apart from the gradient step.

    Keras 3 optimizers take ``weight_decay`` and apply it decoupled, so ``adam`` with a
    rate is AdamW. Alshammari et al. (CVPR 2022) found a tuned weight decay alone beats
    most long-tail methods: it keeps the weights, and the per-class norms of the last
    layer, from growing towards the majority class.
    """

    shorthand = "rate"
    touches = frozenset({"optimizer"})

    rate: float = Field(default=0.0, ge=0.0, examples=[0.05])

    def optimizer_options(self) -> dict[str, Any]:
        return {"weight_decay": self.rate} if self.rate > 0 else {}


class Sharpness(Component):
    """Sharpness-aware minimisation (SAM, Foret et al. 2021) with radius ``rho``: each
    step takes the gradient at the weights moved by ρ·g/‖g‖ (the worst nearby point to
    first order) and applies it at the unmoved weights.

    Rangwani et al. (NeurIPS 2022) found it lifts the minority classes of CIFAR-10-LT by
    escaping the sharp minima their few images produce. Costs two forward and backward
    passes per step. The model ``fit`` trains is a subclass sharing the CNN's layers
    (only ``train_step`` differs), so the saved model is the plain CNN.
    """

    shorthand = "rho"
    touches = frozenset({"train_step"})

    rho: float = Field(default=0.0, ge=0.0, examples=[0.05])

    def training_model(self, model: keras.Model) -> keras.Model:
        if self.rho == 0:
            return model
        return sam_model(model, self.rho)


def sam_model(model: keras.Model, rho: float) -> keras.Model:
    """``model``'s graph and weights, trained by SAM's two-pass step."""
    import keras
    import tensorflow as tf

    class SAM(keras.Model):
        def train_step(self, data: Any) -> dict[str, Any]:
            x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
            variables = self.trainable_variables

            def loss_and_gradients() -> tuple[tf.Tensor, tf.Tensor, list[tf.Tensor]]:
                with tf.GradientTape() as tape:
                    y_pred = self(x, training=True)
                    loss = self.compute_loss(
                        x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
                    )
                return y_pred, loss, tape.gradient(loss, variables)

            y_pred, loss, gradients = loss_and_gradients()
            scale = rho / (tf.linalg.global_norm(gradients) + 1e-12)
            moves = [g * scale for g in gradients]
            for variable, move in zip(variables, moves, strict=True):
                variable.assign_add(move)
            _, _, sharp = loss_and_gradients()
            for variable, move in zip(variables, moves, strict=True):
                variable.assign_sub(move)
            self.optimizer.apply_gradients(zip(sharp, variables, strict=True))
            for metric in self.metrics:  # Keras' own step updates its loss tracker so
                if metric.name == "loss":
                    metric.update_state(loss, sample_weight=tf.shape(x)[0])
            return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    return SAM(inputs=model.inputs, outputs=model.outputs, name=model.name)


# --------------------------------------------------------------------------- averaging
class Average(Component):
    """Weights averaged over training; validation checks, early stopping's choice, the
    saved model and its predictions all use the average (the raw weights keep training).

    Averaging smooths the noise of the last steps, which with 50 minority images is
    large: the averaged model is a flatter, better-calibrated point (Izmailov et al.
    2018), and a selection on 5 validation positives is less of a lottery when
    consecutive checks differ less. The verb is :meth:`callbacks` (run before early
    stopping, which stores what they swap in).
    """

    shorthand = "kind"
    touches = frozenset({"optimizer", "averaging"})

    def optimizer_options(self) -> dict[str, Any]:
        return {}

    def callbacks(self, check_every: int) -> list[keras.callbacks.Callback]:
        return []


class NoAverage(Average):
    """The trained weights as they are."""

    kind: Literal["none"] = "none"


class ExponentialAverage(Average):
    """An exponential moving average of the weights, updated every step (Keras'
    optimizer ``use_ema``), swapped in for validation and at the end of every check by
    Keras' ``SwapEMAWeights``. ``momentum`` 0.999 averages over ~1000 steps."""

    kind: Literal["ema"] = "ema"
    momentum: float = Field(default=0.999, gt=0.0, lt=1.0, examples=[0.99])

    def optimizer_options(self) -> dict[str, Any]:
        return {"use_ema": True, "ema_momentum": self.momentum}

    def callbacks(self, check_every: int) -> list[keras.callbacks.Callback]:
        import keras

        return [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)]


class StochasticAverage(Average):
    """Stochastic weight averaging (SWA, Izmailov et al. 2018): the plain mean of the
    weights at every validation check from step ``start`` on."""

    kind: Literal["swa"] = "swa"
    start: int = Field(default=1000, ge=0, examples=[500])

    def callbacks(self, check_every: int) -> list[keras.callbacks.Callback]:
        return [swa_callback(max(0, math.ceil(self.start / check_every) - 1))]


def swa_callback(first_check: int) -> keras.callbacks.Callback:
    """Averages the weights at the end of every check from ``first_check`` (0-based) on.

    Like ``SwapEMAWeights(swap_on_epoch=True)``: the average is in the model for the
    validation pass and from the end of a check to the start of the next, so early
    stopping stores and restores averages, and the model holds the average when ``fit``
    ends; the raw weights are back in place whenever training steps run.
    """
    import keras

    class SWA(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.check, self.n = 0, 0
            self.mean: list[np.ndarray] = []
            self.raw: list[np.ndarray] | None = None

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.check = epoch
            self._restore()

        def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
            if self.raw is not None or self.check < first_check:
                return
            weights = self.model.get_weights()
            self.n += 1
            self.mean = (
                weights
                if self.n == 1
                else [m + (w - m) / self.n for m, w in zip(self.mean, weights, strict=True)]
            )
            self.raw = weights
            self.model.set_weights(self.mean)

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            if self.raw is None:  # no validation pass ran this check
                self.on_test_begin()

        def _restore(self) -> None:
            if self.raw is not None:
                self.model.set_weights(self.raw)
                self.raw = None

    return SWA()


AnyAverage = Annotated[
    NoAverage | ExponentialAverage | StochasticAverage,
    Field(discriminator="kind"),
    by_kind("none"),
]


# --------------------------------------------------------------------------- predictions
class FlipTTA(Component):
    """Test-time augmentation: every score is the mean of the positive-class probability
    of the image and of its horizontal mirror (a car facing left is still a car).

    Predictions stay one number per image, so evaluation is unchanged; the validation
    checks during training score the plain image.
    """

    shorthand = "flip"
    touches = frozenset({"predictions"})

    flip: bool = Field(default=False, examples=[True])

    def predict_positive(self, model: keras.Model, x: np.ndarray, batch_size: int) -> np.ndarray:
        """Positive-class probabilities, float32, in input order, in large batches."""
        if len(x) == 0:
            return np.zeros(0, np.float32)
        score = model.predict(x, batch_size=batch_size, verbose=0)[:, 1]
        if self.flip:
            mirrored = model.predict(x[:, :, ::-1], batch_size=batch_size, verbose=0)[:, 1]
            score = (score + mirrored) / 2
        return np.asarray(score, dtype=np.float32)


# --------------------------------------------------------------------------- model hooks
def set_output_bias(model: keras.Model, bias: np.ndarray) -> None:
    kernel, _ = model.get_layer(OUTPUT_LAYER).get_weights()
    model.get_layer(OUTPUT_LAYER).set_weights([kernel, bias.astype(np.float32)])


class OutputBias(Component):
    """Initial bias of ``last`` = log π_c, so the untrained model predicts the prior.

    TensorFlow's imbalanced-data tutorial: with softmax outputs, b_c = log π_c gives
    softmax(b) = π, so the first epochs do not spend their steps learning the prior.
    """

    shorthand = "enabled"
    touches = frozenset({"initial_bias"})

    enabled: bool = Field(default=False, examples=[True])

    def apply(self, model: keras.Model, prior: np.ndarray) -> None:
        if self.enabled:
            set_output_bias(model, np.log(prior))


class PosthocShift(Component):
    """Post-hoc logit adjustment (Menon et al. 2021): subtract τ log π_c from ``last``'s bias.

    The saved model then outputs softmax(z - τ log π), so every prediction file and metric
    downstream carries the adjustment with no special case.
    """

    shorthand = "tau"
    touches = frozenset({"final_bias"})

    tau: float = Field(default=0.0, ge=0.0, examples=[1.0])

    def apply(self, model: keras.Model, prior: np.ndarray) -> None:
        if self.tau > 0:
            _, bias = model.get_layer(OUTPUT_LAYER).get_weights()
            set_output_bias(model, bias - self.tau * np.log(prior))


# --------------------------------------------------------------------------- start
class Start(Component):
    """A retrain remedy's starting model: another remedy's model of the same seed.

    Its weights are copied into a model freshly built from ``model`` params, so a file
    from another architecture is refused, not silently used.
    """

    shorthand = "remedy"
    touches = frozenset({"initial_weights", "initial_bias"})

    remedy: str = Field(min_length=1, examples=["baseline"])

    def path(self, layout: Layout, seed: int) -> Path:
        return layout.model(self.remedy, seed)

    def check_file(self, layout: Layout, seed: int) -> None:
        """Cheap checks before TensorFlow is imported: present, and a complete zip."""
        path = self.path(layout, seed)
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

    def load(self, layout: Layout, model_params: Model, seed: int) -> keras.Model:
        import keras

        from imbalance.training.model import build_model

        path = self.path(layout, seed)
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


#: A layer name of the CNN (:data:`imbalance.training.model.LAYER_NAMES`).
LayerName = Literal[LAYER_NAMES]  # type: ignore[valid-type]


class Trainable(Component):
    """The layers of the starting model that keep training; every other layer is frozen
    (two-phase training, cRT). ``[]``: nothing trains (a post-hoc-only remedy)."""

    shorthand = "layers"
    touches = frozenset({"trainable"})

    layers: tuple[LayerName, ...] = Field(
        default=(OUTPUT_LAYER,), strict=False, examples=[("dense", OUTPUT_LAYER)]
    )

    @property
    def trains(self) -> bool:
        return bool(self.layers)

    def apply(self, model: keras.Model) -> None:
        for layer in model.layers:
            layer.trainable = layer.name in self.layers


# --------------------------------------------------------------------------- remedy
@dataclass(frozen=True)
class TrainData:
    """What ``fit`` needs from the remedy: an infinite dataset, hooks, and the check from
    which early stopping may pick a model.

    ``steps_per_epoch`` is the sampler's pass length (what DRW's ``from_epoch`` counts),
    not ``fit``'s epoch: that is ``train.check_every`` steps for every remedy.
    ``min_checks`` is the 0-based index of the first check early stopping watches (the
    first check trained with DRW's weights; 0 without a warm-up).
    """

    dataset: tf.data.Dataset
    steps_per_epoch: int
    callbacks: list[keras.callbacks.Callback]
    min_checks: int = 0


class Remedy(Spec):
    """One remedy trained from scratch: a composition of components, each with a
    do-nothing default (``remedies.<name>`` in params.yaml).

    The training loop asks it, in this order: :meth:`check` (before TensorFlow),
    :meth:`initial_model`, :meth:`train_data`, :meth:`keras_loss` (when :attr:`trains`),
    :meth:`finish`.
    """

    #: Whether the model is written under models/retrained (else models/scratch).
    retrained: ClassVar[bool] = False

    train_set: TrainingSet = TrainingSet()
    sampler: AnySampler = NaturalSampler()
    weights: AnyWeights = NoWeights()
    loss: AnyLoss = CrossentropyLoss()
    augment: Augment = Augment()
    mixup: Mixup = Mixup()
    output_bias_init: OutputBias = OutputBias()
    weight_decay: WeightDecay = WeightDecay()
    sam: Sharpness = Sharpness()
    average: AnyAverage = NoAverage()
    tta: FlipTTA = FlipTTA()

    def warmup_steps(self, counts: np.ndarray, batch_size: int) -> int:
        """Optimizer steps of DRW's plain-loss phase: ``from_epoch`` sampler epochs."""
        return self.weights.warmup_epochs * self.sampler.steps_per_epoch(counts, batch_size)

    def min_checks(self, counts: np.ndarray, batch_size: int, check_every: int) -> int:
        """Checks before early stopping may pick a model, = the 0-based index of the
        first check trained with DRW's weights: they switch on at the first check
        boundary (a multiple of ``check_every`` steps) at or after :meth:`warmup_steps`.

        The one conversion of the sampler-epoch warm-up into checks: the weights'
        callback, early stopping and the input check (:mod:`imbalance.training.inputs`)
        all use it.
        """
        return math.ceil(self.warmup_steps(counts, batch_size) / check_every)

    @property
    def trains(self) -> bool:
        """False for a remedy that only adjusts its starting model."""
        return True

    def check(self, layout: Layout, seed: int) -> None:
        """Checks of what the remedy reads besides the data files, before TensorFlow."""

    def initial_model(
        self, model_params: Model, seed: int, layout: Layout, prior: np.ndarray
    ) -> keras.Model:
        """The model training starts from, its output bias set if the remedy asks."""
        model = self._starting_model(model_params, seed, layout)
        self.output_bias_init.apply(model, prior)
        return model

    def _starting_model(self, model_params: Model, seed: int, layout: Layout) -> keras.Model:
        """A fresh model with the seeded initial weights."""
        from imbalance.training.model import build_model

        return build_model(model_params, seed)

    def train_data(
        self, x: Any, y: np.ndarray, batch_size: int, seed: int, *, check_every: int
    ) -> TrainData:
        """The training pipeline: sampler → gather batch → mixup → augment → prefetch →
        weights.

        ``x`` is the float32 [0, 1] image tensor, already in memory (converted once).
        ``check_every`` is the Keras epoch (optimizer steps per validation check), which
        places DRW's switch (:meth:`min_checks`).
        """
        import tensorflow as tf

        s_sampler, s_augment, s_mixup = sub_seeds(seed, 3)
        x_t = tf.convert_to_tensor(x, tf.float32)
        y_t = tf.one_hot(tf.convert_to_tensor(y, tf.int64), 2)

        def gather(idx: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return tf.gather(x_t, idx), tf.gather(y_t, idx)

        ds = self.sampler.index_batches(y, batch_size, s_sampler).map(gather)
        ds = self.mixup.apply(ds, gather, y, batch_size, s_mixup)
        ds = self.augment.apply(ds, s_augment).prefetch(tf.data.AUTOTUNE)
        counts = class_counts(y)
        switch = self.min_checks(counts, batch_size, check_every)
        ds, callbacks = self.weights.attach(ds, counts, switch)
        steps_per_epoch = self.sampler.steps_per_epoch(counts, batch_size)
        return TrainData(ds, steps_per_epoch, callbacks, min_checks=switch)

    def keras_loss(self, prior: np.ndarray) -> Callable[[Any, Any], Any]:
        return self.loss.keras_loss(prior)

    def optimizer_options(self) -> dict[str, Any]:
        """Keyword arguments of the Keras optimizer (weight decay, weight averaging)."""
        return {**self.weight_decay.optimizer_options(), **self.average.optimizer_options()}

    def fit_callbacks(self, check_every: int) -> list[keras.callbacks.Callback]:
        """Callbacks that must run before early stopping (it stores what they swap in)."""
        return self.average.callbacks(check_every)

    def training_model(self, model: keras.Model) -> keras.Model:
        """The model ``fit`` trains: ``model`` or a subclass sharing its layers (SAM)."""
        return self.sam.training_model(model)

    def predict_positive(self, model: keras.Model, x: np.ndarray, batch_size: int) -> np.ndarray:
        """The scores written to the predictions file (test-time flip averaging or not)."""
        return self.tta.predict_positive(model, x, batch_size)

    def finish(self, model: keras.Model, prior: np.ndarray) -> None:
        """After training: post-hoc adjustments that the saved model must carry."""


class Retrain(Remedy):
    """A remedy that starts from another remedy's model (same seed) and retrains some
    layers, or none (``retrain.<name>`` in params.yaml)."""

    retrained: ClassVar[bool] = True

    start: Start
    trainable: Trainable = Trainable()
    posthoc_tau: PosthocShift = PosthocShift()

    @property
    def trains(self) -> bool:
        return self.trainable.trains

    def check(self, layout: Layout, seed: int) -> None:
        self.start.check_file(layout, seed)

    def _starting_model(self, model_params: Model, seed: int, layout: Layout) -> keras.Model:
        """The start remedy's model, every layer not in ``trainable`` frozen."""
        model = self.start.load(layout, model_params, seed)
        self.trainable.apply(model)
        return model

    def finish(self, model: keras.Model, prior: np.ndarray) -> None:
        self.posthoc_tau.apply(model, prior)
