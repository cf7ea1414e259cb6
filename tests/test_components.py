"""One contract for every variant of every remedy component kind.

imbalanced-learn runs one shared check suite over every sampler; this is that suite for
the components of :mod:`imbalance.training.components`. The kinds and their variants are
found from the registry of kinds (``Retrain.kinds``: every params.yaml key and the module
of its kind, whose ``FIELDS`` give the key's type), never from a hand list, so a new
variant or kind is checked as soon as it exists. Each variant is built twice where that
differs: with its default params, and with every param set to its first documented
example (``Field(examples=[...])``). Each must

- validate from its params and round-trip them (``model_dump`` → validate gives an equal
  object, through YAML too), in every form params.yaml may write it;
- compose into a remedy, whose pipeline, loss and a model step work on tiny arrays;
- touch only what its ``touches`` declares, measured against the same composition with
  that kind at its default; and change something when it is not the default.

Fast on purpose: 24 tiny images, a 4-filter model, two eager steps per variant.
"""

from __future__ import annotations

import subprocess
import sys
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from imbalance import params
from imbalance.cli import UserError
from imbalance.layout import Layout
from imbalance.training.components import (
    Component,
    Remedy,
    Retrain,
    Start,
    class_prior,
)
from imbalance.training.components.base import kind_module
from imbalance.training.model import OUTPUT_LAYER, build_model

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from imbalance.training.outputs import save_model  # noqa: E402  (TensorFlow at run time)

ROOT = Path(__file__).resolve().parents[1]
SMALL = params.Model(filters=[4, 4, 4], kernel_size=3, dense_units=4)
SEED, BATCH, CHECK_EVERY = 0, 8, 1
#: A check (0-based Keras epoch) at which every deferred effect is on: DRW examples switch
#: at sampler epoch 1 = step 3 (24 images, batch 8) = check 3 (a check every step).
LATE_CHECK = 5
#: The start model of the reference composition for the retrain-only kinds.
REFERENCE_START = "reference"
#: What a component may declare it touches: the facets :func:`facets` measures.
FACETS = frozenset(
    {
        "files",
        "labels",
        "images",
        "shapes",
        "steps_per_epoch",
        "sample_weights",
        "min_checks",
        "loss",
        "initial_weights",
        "initial_bias",
        "trainable",
        "final_weights",
        "final_bias",
        "optimizer",
        "averaging",
        "train_step",
        "predictions",
        "stopping",
    }
)
#: Facets no component may change.
INVARIANT = frozenset({"shapes", "final_weights"})
#: The study's train section the ``stopping`` facet (a remedy's own budget) is measured on.
TRAIN = params.parse(yaml.safe_load((ROOT / "params.yaml").read_text())).train
#: Fixed (y_true, y_pred) pairs the losses are compared on.
Y_TRUE = np.eye(2, dtype=np.float32)[[0, 1, 1, 0]]
Y_PRED = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.05, 0.95]], np.float32)


# --------------------------------------------------------------------------- discovery
def kinds() -> dict[str, tuple[type[Component], ...]]:
    """Every component kind (a field of the composition) and its variant classes."""
    found = {}
    for field in Retrain.kinds:
        annotation = kind_module(field).FIELDS[field]
        if typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        found[field] = tuple(typing.get_args(annotation) or (annotation,))
    return found


def kind_names(cls: type[Component]) -> tuple[str, ...]:
    """The values of a class's ``kind`` Literal: the variants it implements."""
    return typing.get_args(cls.model_fields["kind"].annotation)


def retrain_only(field: str) -> bool:
    return field not in Remedy.kinds


def variants() -> Iterator[Any]:
    """(field, class, kind) for every variant: a union member, or each value of a
    ``kind`` Literal of one class."""
    for field, classes in kinds().items():
        for cls in classes:
            for value in kind_names(cls) if "kind" in cls.model_fields else (None,):
                yield pytest.param(field, cls, value, id=f"{field}-{value or cls.__name__}")


def params_of(cls: type[Component], kind: str | None, examples: bool) -> dict[str, Any]:
    """The params of a variant: defaults, or every param at its first example."""
    out: dict[str, Any] = {} if kind is None else {"kind": kind}
    for name, info in cls.model_fields.items():
        if name == "kind":
            continue
        if info.is_required() or (examples and info.examples):
            assert info.examples, f"{cls.__name__}.{name}: give it Field(examples=[...])"
            out[name] = info.examples[0]
    return out


def entry(field: str, value: Any) -> tuple[str, dict[str, Any]]:
    """The params.yaml section and entry of a remedy with ``field: value`` and every other
    kind at its default (a retrain one starting from the reference model)."""
    if not retrain_only(field):
        return "remedies", {field: value}
    spec = {"start": REFERENCE_START}
    spec[field] = value  # the start itself too
    return "retrain", spec


def compose(field: str, value: Any) -> Remedy:
    """The reference composition with ``field`` set to ``value`` (a component or params)."""
    section, spec = entry(field, value)
    return (Retrain if section == "retrain" else Remedy).model_validate(spec)


def reference(field: str) -> Remedy:
    """Every kind at its default (a retrain one starting from the reference model)."""
    return Retrain(start=REFERENCE_START) if retrain_only(field) else Remedy()


def default_of(field: str) -> Component:
    """The kind's default: the composition's own, or (for a kind that is ``None`` when not
    set) what an empty mapping gives."""
    value = getattr(reference(field), field)
    return value if value is not None else getattr(compose(field, {}), field)


# --------------------------------------------------------------------------- the world
@dataclass(frozen=True)
class World:
    """Tiny arrays (18 negatives, 6 positives) and a layout holding start models."""

    x: np.ndarray
    y: np.ndarray
    layout: Layout

    @property
    def prior(self) -> np.ndarray:
        return class_prior(self.y)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    rng = np.random.default_rng(0)
    y = rng.permutation(np.r_[np.zeros(18), np.ones(6)]).astype(np.int64)
    x = rng.random((len(y), 32, 32, 3), dtype=np.float32)
    layout = Layout(tmp_path_factory.mktemp("components"))
    starts = [REFERENCE_START, *Start.model_fields["remedy"].examples]
    for i, name in enumerate(starts, start=1):  # weights unlike the fresh seed-0 model's
        save_model(build_model(SMALL, SEED + i), layout.model(name, SEED))
    return World(x, y, layout)


# --------------------------------------------------------------------------- measuring
def facets(remedy: Remedy, world: World) -> dict[str, Any]:
    """What the training loop gets from ``remedy``, in the words of ``touches``."""
    keras.utils.set_random_seed(SEED)
    out: dict[str, Any] = {"files": remedy.train_set.paths(Path("data"))}
    data = remedy.train_data(world.x, world.y, BATCH, SEED, check_every=CHECK_EVERY)
    out["steps_per_epoch"] = data.steps_per_epoch
    out["min_checks"] = data.min_checks
    phases = []
    for check in (0, LATE_CHECK):
        for callback in data.callbacks:
            callback.on_epoch_begin(check)
        phases.append([tuple(np.asarray(t) for t in batch) for batch in data.dataset.take(2)])
    first = phases[0]
    out["images"] = np.concatenate([b[0] for b in first])
    out["labels"] = np.concatenate([b[1] for b in first])
    out["shapes"] = [(b[0].shape, b[0].dtype, b[1].shape, b[1].dtype) for b in first]
    weighted = len(first[0]) == 3
    out["sample_weights"] = [[b[2] for b in p] for p in phases] if weighted else None
    out["loss"] = np.asarray(remedy.keras_loss(world.prior)(Y_TRUE, Y_PRED))

    model = remedy.initial_model(SMALL, SEED, world.layout, world.prior)
    before = model.get_weights()
    out["initial_bias"] = model.get_layer(OUTPUT_LAYER).bias.numpy()
    out["initial_weights"] = before[:-1]
    out["trainable"] = (remedy.trains, tuple(layer.trainable for layer in model.layers))
    remedy.finish(model, world.prior)
    after = model.get_weights()
    out["final_bias"] = after[-1] - before[-1]
    out["final_weights"] = [a - b for a, b in zip(after[:-1], before[:-1], strict=True)]
    out["optimizer"] = remedy.optimizer_options()
    out["averaging"] = [type(c).__name__ for c in remedy.fit_callbacks(CHECK_EVERY)]
    out["train_step"] = type(remedy.training_model(model)).__name__
    out["predictions"] = remedy.predict_positive(build_model(SMALL, SEED), world.x, BATCH)
    out["stopping"] = remedy.train_config(TRAIN)
    assert set(out) == FACETS
    return out


def same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.shape(a) == np.shape(b) and np.array_equal(a, b)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(u, v) for u, v in zip(a, b, strict=True))
    return a == b


# --------------------------------------------------------------------------- the contract
def test_every_field_of_the_composition_is_a_component_kind():
    assert kinds(), "no component kinds found"
    for field, classes in kinds().items():
        for cls in classes:
            assert issubclass(cls, Component), (field, cls)
            assert cls.__doc__, f"{cls.__name__}: say what it does and why"
            assert cls.touches <= FACETS, (cls.__name__, cls.touches - FACETS)
            assert cls.touches.isdisjoint(INVARIANT), cls.__name__
        names = [name for c in classes if "kind" in c.model_fields for name in kind_names(c)]
        assert len(names) == len(set(names)), (field, names)  # a kind name is one variant


@pytest.mark.slow  # trains a model per variant
@pytest.mark.parametrize(("field", "cls", "kind"), list(variants()))
def test_variant_contract(field: str, cls: type[Component], kind: str | None, world: World):
    instances = {}
    for examples in (False, True):
        spec = params_of(cls, kind, examples)
        component = cls.model_validate(spec)
        instances[repr(component)] = (spec, component)
    base = reference(field)
    base_facets = facets(base, world)
    for spec, component in instances.values():
        # builds from its params, in every form params.yaml may write it
        assert type(component) is cls and component.touches == cls.touches
        remedy = compose(field, spec)
        assert getattr(remedy, field) == component
        if cls.shorthand is not None and set(spec) <= {cls.shorthand}:
            bare = spec.get(cls.shorthand, getattr(component, cls.shorthand))
            assert getattr(compose(field, bare), field) == component, bare
        # round-trips its params: Python, and YAML as params.yaml holds it
        assert cls.model_validate(component.model_dump()) == component
        assert type(remedy).model_validate(remedy.model_dump()) == remedy
        as_yaml = yaml.safe_load(yaml.safe_dump(remedy.model_dump(mode="json")))
        assert type(remedy).model_validate(as_yaml) == remedy

        # touches only what it says, and something when it is not the default
        measured = facets(remedy, world)
        changed = {f for f in FACETS if not same(measured[f], base_facets[f])}
        assert changed <= cls.touches, (component, changed - cls.touches)
        assert not any(np.any(d) for d in measured["final_weights"])  # finish: the bias only
        for x_shape, x_dtype, y_shape, y_dtype in measured["shapes"]:
            assert x_shape[1:] == (32, 32, 3) and y_shape == (x_shape[0], 2)
            assert x_dtype == y_dtype == np.float32
        if component != default_of(field):
            assert changed, f"{component!r} changes nothing it declares ({cls.touches})"

        check_batches(remedy, world)
        check_model_step(remedy, world)


def check_batches(remedy: Remedy, world: World) -> None:
    """The sampler draws valid indices only; unaugmented and unmixed, every batch row is a
    row of the training set with its own label."""
    idx = np.concatenate(
        [b.numpy() for b in remedy.sampler.index_batches(world.y, BATCH, SEED).take(6)]
    )
    assert idx.dtype == np.int64 and idx.min() >= 0 and idx.max() < len(world.y)
    rows = {world.x[i].tobytes(): world.y[i] for i in range(len(world.y))}
    data = remedy.train_data(world.x, world.y, BATCH, SEED, check_every=CHECK_EVERY)
    for batch in data.dataset.take(3):
        x, y = np.asarray(batch[0]), np.asarray(batch[1])
        np.testing.assert_array_equal(y.sum(axis=1), 1)  # one-hot
        augmented = remedy.augment is not None and remedy.augment.enabled
        mixed = remedy.mixup is not None and remedy.mixup.alpha > 0
        if not augmented and not mixed:
            assert [rows[image.tobytes()] for image in x] == list(np.argmax(y, axis=1))


def check_model_step(remedy: Remedy, world: World) -> None:
    """Two training steps with the remedy's data, loss and callbacks, then its finish."""
    model = remedy.initial_model(SMALL, SEED, world.layout, world.prior)
    frozen = {layer.name: layer.get_weights() for layer in model.layers if not layer.trainable}
    if remedy.trains:
        data = remedy.train_data(world.x, world.y, BATCH, SEED, check_every=CHECK_EVERY)
        trained = remedy.training_model(model)
        trained.compile(
            optimizer=keras.optimizers.SGD(**remedy.optimizer_options()),
            loss=remedy.keras_loss(world.prior),
            run_eagerly=True,
        )
        history = trained.fit(
            data.dataset,
            steps_per_epoch=1,
            epochs=2,
            validation_data=(world.x, np.eye(2, dtype=np.float32)[world.y]),
            callbacks=[*data.callbacks, *remedy.fit_callbacks(CHECK_EVERY)],
            shuffle=False,  # the sampler shuffles
            verbose=0,
        )
        assert np.isfinite(history.history["loss"]).all()
    for name, weights in frozen.items():
        assert all(
            np.array_equal(a, b)
            for a, b in zip(weights, model.get_layer(name).get_weights(), strict=True)
        ), name
    remedy.finish(model, world.prior)
    probs = np.asarray(model(world.x[:4]))
    assert probs.shape == (4, 2) and np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


# --------------------------------------------------------------------------- params.yaml
def shipped() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.mark.parametrize(("field", "cls", "kind"), list(variants()))
def test_unknown_key_is_one_clear_line(field: str, cls: type[Component], kind: str | None):
    raw = shipped()
    spec = {**params_of(cls, kind, examples=True), "no_such_param": 1}
    section, remedy = entry(field, spec)
    raw[section] = {**(raw.get(section) or {}), "x": remedy}
    with pytest.raises(UserError) as err:
        params.parse(raw).remedy("x")
    line = str(err.value)
    assert "\n" not in line
    assert line.startswith(f"params.yaml: {section}.x.{field}.no_such_param: unknown key"), line


@pytest.mark.parametrize("field", list(Remedy.kinds))
def test_an_empty_mapping_is_the_default(field: str):
    """``{}``: the kind's default (where the composition keeps one) or its do-nothing
    variant with every param at its default (where an absent kind is ``None``)."""
    value = getattr(Remedy.model_validate({field: {}}), field)
    default = getattr(Remedy(), field)
    assert value is not None
    assert value == (default if default is not None else type(value)())


def test_an_unknown_kind_names_the_choices():
    raw = shipped()
    raw["remedies"] = {**raw["remedies"], "x": {"loss": {"kind": "focall"}}}
    with pytest.raises(UserError, match=r"^params.yaml: remedies.x.loss: unknown kind 'focall'; "):
        params.parse(raw).remedy("x")


def test_validating_params_imports_no_tensorflow():
    """compare validates every remedy, a training stage its own before TensorFlow is needed:
    neither may pay for importing it."""
    code = (
        "import sys; from pathlib import Path; from imbalance import params; "
        f"params.load(Path({str(ROOT / 'params.yaml')!r})).all_remedies; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
