"""What every remedy uses: the shared helpers, the component base, the defaults and the
composition (:class:`Remedy`, :class:`Retrain`).

A remedy is a named composition declared in params.yaml (``remedies:`` from scratch,
``retrain:`` from another remedy's model). Every key of a remedy is one component kind, and
the kind's class is both its params schema and its behaviour: there is no second copy of
the fields or their defaults. The training loop (:mod:`imbalance.training.train`) asks the
:class:`Remedy` for its files, starting model, training data, loss, callbacks and
finishing step, and never looks at the remedy's name.

One module per kind (imbalanced-learn keeps one module per method), listed in
:data:`KINDS`: a kind's module is imported only when a remedy sets its key, so a remedy's
training stage loads, and depends on, exactly the modules its composition uses plus this
one (``resolve@<remedy>`` writes their list, see :mod:`imbalance.training.resolve`). A key
a remedy leaves out means the kind's do-nothing default, which is behaviour of this
module: the natural sampler, crossentropy, the imbalanced training set (classes below),
and no weights, augmentation, mixup, output bias, weight decay, SAM, averaging,
test-time flip or post-hoc shift (``None`` fields, skipped by the composition).

Kinds (the params.yaml key, then its module): ``train_set`` (here), ``sampler``
(:mod:`.sampler`), ``weights`` (:mod:`.weights`), ``loss`` (:mod:`.loss`), ``augment``
(:mod:`.augment`), ``mixup`` (:mod:`.mixup`), ``output_bias_init`` (:mod:`.output_bias`),
``weight_decay`` (:mod:`.weight_decay`), ``sam`` (:mod:`.sam`), ``average``
(:mod:`.average`), ``tta`` (:mod:`.tta`); retrain only: ``start`` and ``trainable``
(:mod:`.retrain`), ``posthoc_tau`` (:mod:`.posthoc`).

A kind with variants is a discriminated union on ``kind`` (``loss: {kind: focal, gamma:
2.0}``); one verb per kind (``Sampler.index_batches``, ``Weights.class_weights``,
``Loss.keras_loss``, ...) is what every variant implements. Each kind module exports
``FIELDS``: its params.yaml keys and their types. Adding a kind is one module, its entry
in :data:`KINDS`, one ``None`` field of :class:`Remedy` and its one call in the
:class:`Remedy` method where it acts; tests/test_components.py runs one contract over
every variant of every kind, found through :data:`KINDS`.

"Class prior" means the class frequencies of the remedy's training-set file (not of what
a sampler draws): that is the distribution the test set's imbalance is measured against.

TensorFlow is imported inside the methods that need it, so that validating params stays
TensorFlow-free and fast, and the input checks (numpy only) fail before the ~4 s
TensorFlow import.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    SerializeAsAny,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from imbalance.training.model import OUTPUT_LAYER

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

    from imbalance.layout import Layout
    from imbalance.params import Model, Train

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


# --------------------------------------------------------------------------- model hooks
def set_output_bias(model: keras.Model, bias: np.ndarray) -> None:
    kernel, _ = model.get_layer(OUTPUT_LAYER).get_weights()
    model.get_layer(OUTPUT_LAYER).set_weights([kernel, bias.astype(np.float32)])


def positive_scores(model: keras.Model, x: np.ndarray, batch_size: int) -> np.ndarray:
    """Positive-class probabilities, float32, in input order, in large batches."""
    if len(x) == 0:
        return np.zeros(0, np.float32)
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0)[:, 1], np.float32)


# --------------------------------------------------------------------------- kinds
#: Every params.yaml key of a scratch remedy and the module (of this package) of its kind.
KINDS: dict[str, str] = {
    "train_set": "base",
    "sampler": "sampler",
    "weights": "weights",
    "loss": "loss",
    "augment": "augment",
    "mixup": "mixup",
    "output_bias_init": "output_bias",
    "weight_decay": "weight_decay",
    "sam": "sam",
    "average": "average",
    "tta": "tta",
    "budget": "budget",
}
#: The keys only a retrain remedy has.
RETRAIN_KINDS: dict[str, str] = {
    "start": "retrain",
    "trainable": "retrain",
    "posthoc_tau": "posthoc",
}

FIELDS = {"train_set": TrainingSet}


def kind_module(key: str) -> Any:
    """The module of the kind of params.yaml key ``key``, imported on first use."""
    module = {**KINDS, **RETRAIN_KINDS}[key]
    return importlib.import_module(f"{__package__}.{module}")


@cache
def _adapter(key: str) -> TypeAdapter[Any]:
    return TypeAdapter(kind_module(key).FIELDS[key])


def _validate(kinds: Mapping[str, str], required: tuple[str, ...], data: Any) -> Any:
    """Each key of ``data`` validated by its kind's type, imported only now.

    Errors keep pydantic's shape (a location under the remedy), so that
    :mod:`imbalance.params` reports them as it reports every other param.
    """
    if not isinstance(data, dict):
        return data  # pydantic's own "not a mapping" error
    values: dict[str, Any] = {}
    errors: list[Any] = []
    for key, value in data.items():
        if value is None and key in kinds:  # = not set (what model_dump writes for it)
            continue
        if key not in kinds:
            errors.append({"type": "extra_forbidden", "loc": (key,), "input": value})
            continue
        try:
            values[key] = _adapter(key).validate_python(value)
        except ValidationError as err:
            for e in err.errors():
                detail = {"type": e["type"], "loc": (key, *e["loc"]), "input": e["input"]}
                if "ctx" in e:
                    detail["ctx"] = e["ctx"]
                errors.append(detail)
    errors += [{"type": "missing", "loc": (k,), "input": data} for k in required if k not in values]
    if errors:
        raise ValidationError.from_exception_data("Remedy", errors)
    return values


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

    The kinds whose default lives here are fields with that default; every other kind is
    ``None`` unless the remedy sets it (its module is then imported, see :data:`KINDS`).
    The training loop asks, in this order: :meth:`check` (before TensorFlow),
    :meth:`initial_model`, :meth:`train_data`, :meth:`keras_loss` (when :attr:`trains`),
    :meth:`finish`.
    """

    #: Whether the model is written under models/retrained (else models/scratch).
    retrained: ClassVar[bool] = False
    kinds: ClassVar[dict[str, str]] = KINDS
    required: ClassVar[tuple[str, ...]] = ()

    train_set: TrainingSet = TrainingSet()
    # SerializeAsAny: dump the variant's own fields (oversample), not the base class's
    sampler: SerializeAsAny[Sampler] = NaturalSampler()
    loss: SerializeAsAny[Loss] = CrossentropyLoss()
    # None = not used (the kind's module is not even imported); else the validated kind
    weights: Any = None
    augment: Any = None
    mixup: Any = None
    output_bias_init: Any = None
    weight_decay: Any = None
    sam: Any = None
    average: Any = None
    tta: Any = None
    budget: Any = None

    @model_validator(mode="before")
    @classmethod
    def _components(cls, data: Any) -> Any:
        return _validate(cls.kinds, cls.required, data)

    @property
    def warmup_epochs(self) -> int:
        """Sampler epochs trained unweighted before class weights switch on (DRW)."""
        return self.weights.warmup_epochs if self.weights is not None else 0

    def warmup_steps(self, counts: np.ndarray, batch_size: int) -> int:
        """Optimizer steps of DRW's plain-loss phase: ``from_epoch`` sampler epochs."""
        return self.warmup_epochs * self.sampler.steps_per_epoch(counts, batch_size)

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
        if self.output_bias_init is not None:
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
        if self.mixup is not None:
            ds = self.mixup.apply(ds, gather, y, batch_size, s_mixup)
        if self.augment is not None:
            ds = self.augment.apply(ds, s_augment)
        ds = ds.prefetch(tf.data.AUTOTUNE)
        counts = class_counts(y)
        switch = self.min_checks(counts, batch_size, check_every)
        callbacks: list[keras.callbacks.Callback] = []
        if self.weights is not None:
            ds, callbacks = self.weights.attach(ds, counts, switch)
        steps_per_epoch = self.sampler.steps_per_epoch(counts, batch_size)
        return TrainData(ds, steps_per_epoch, callbacks, min_checks=switch)

    def keras_loss(self, prior: np.ndarray) -> Callable[[Any, Any], Any]:
        return self.loss.keras_loss(prior)

    def train_config(self, cfg: Train) -> Train:
        """The ``train`` section this remedy trains under: the study's, or its own
        stopping rule and budget (:mod:`.budget`)."""
        return self.budget.train_config(cfg) if self.budget is not None else cfg

    def optimizer_options(self) -> dict[str, Any]:
        """Keyword arguments of the Keras optimizer (weight decay, weight averaging)."""
        options: dict[str, Any] = {}
        for kind in (self.weight_decay, self.average):
            if kind is not None:
                options.update(kind.optimizer_options())
        return options

    def fit_callbacks(self, check_every: int) -> list[keras.callbacks.Callback]:
        """Callbacks that must run before early stopping (it stores what they swap in)."""
        return self.average.callbacks(check_every) if self.average is not None else []

    def training_model(self, model: keras.Model) -> keras.Model:
        """The model ``fit`` trains: ``model`` or a subclass sharing its layers (SAM)."""
        return self.sam.training_model(model) if self.sam is not None else model

    def predict_positive(self, model: keras.Model, x: np.ndarray, batch_size: int) -> np.ndarray:
        """The scores written to the predictions file (test-time flip averaging or not)."""
        if self.tta is not None:
            return self.tta.predict_positive(model, x, batch_size)
        return positive_scores(model, x, batch_size)

    def finish(self, model: keras.Model, prior: np.ndarray) -> None:
        """After training: post-hoc adjustments that the saved model must carry."""


class Retrain(Remedy):
    """A remedy that starts from another remedy's model (same seed) and retrains some
    layers, or none (``retrain.<name>`` in params.yaml). ``start`` is required, so every
    retrain remedy uses :mod:`.retrain`; ``trainable`` defaults to ``[last]`` there."""

    retrained: ClassVar[bool] = True
    kinds: ClassVar[dict[str, str]] = {**KINDS, **RETRAIN_KINDS}
    required: ClassVar[tuple[str, ...]] = ("start",)

    start: Any = None
    trainable: Any = None
    posthoc_tau: Any = None

    @model_validator(mode="after")
    def _default_trainable(self) -> Retrain:
        if self.trainable is None:  # the start's module (.retrain) holds the default
            object.__setattr__(self, "trainable", kind_module("trainable").Trainable())
        return self

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
        if self.posthoc_tau is not None:
            self.posthoc_tau.apply(model, prior)
