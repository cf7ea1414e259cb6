"""The components that regularise training do what their papers say, measured.

Weight averaging (EMA, SWA), test-time flip averaging, the augmentation layers, Balanced-
MixUp, decoupled weight decay and SAM's step: each checked against the formula it
implements on a tiny model, in seconds. tests/test_components.py checks the contract every
component shares (params, touches, composition); this file checks the arithmetic.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from imbalance import params
from imbalance.training.components import (
    Augment,
    ExponentialAverage,
    FlipTTA,
    Mixup,
    Remedy,
    Sharpness,
    StochasticAverage,
    WeightDecay,
)

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from imbalance.training.model import build_model  # noqa: E402

SMALL = params.Model(filters=[4, 4, 4], kernel_size=3, dense_units=4)
RNG = np.random.default_rng(0)
X = RNG.random((32, 32, 32, 3), dtype=np.float32)
Y = np.eye(2, dtype=np.float32)[RNG.permutation(np.r_[np.zeros(24), np.ones(8)]).astype(int)]


def fresh_model(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return build_model(SMALL, seed)


class Recorder(keras.callbacks.Callback):
    """The raw weights after every training step, and the model's at every check end."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[list[np.ndarray]] = []
        self.checks: list[list[np.ndarray]] = []

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.steps.append(self.model.get_weights())

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.checks.append(self.model.get_weights())


def fit(
    model: keras.Model, callbacks: list[Any], options: dict[str, Any], epochs: int, steps: int
) -> keras.callbacks.History:
    model.compile(optimizer=keras.optimizers.SGD(0.1, **options), loss="categorical_crossentropy")
    data = tf.data.Dataset.from_tensor_slices((X, Y)).batch(8).repeat()
    return model.fit(
        data,
        steps_per_epoch=steps,
        epochs=epochs,
        validation_data=(X, Y),
        callbacks=callbacks,
        shuffle=False,
        verbose=0,
    )


def assert_weights_close(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # trains a model
def test_ema_weights_are_the_running_average_of_the_step_weights():
    average = ExponentialAverage(momentum=0.9)
    model = fresh_model()
    recorder = Recorder()  # after the swap callback: records the raw weights it trains
    fit(model, [*average.callbacks(4), recorder], average.optimizer_options(), 3, 4)
    ema = recorder.steps[0]  # Keras starts the average at the first step's weights
    for weights in recorder.steps[1:]:
        ema = [0.9 * e + 0.1 * w for e, w in zip(ema, weights, strict=True)]
    assert_weights_close(model.get_weights(), ema)
    assert not np.allclose(model.get_weights()[0], recorder.steps[-1][0])


@pytest.mark.slow  # trains a model
def test_swa_weights_are_the_plain_mean_of_the_check_weights_from_its_start():
    model = fresh_model()
    recorder = Recorder()  # before SWA: sees the raw weights at every check end
    swa = StochasticAverage(start=8).callbacks(check_every=4)  # from the 2nd check on
    history = fit(model, [recorder, *swa], {}, 4, 4)
    mean = [np.mean(ws, axis=0) for ws in zip(*recorder.checks[1:], strict=True)]
    assert_weights_close(model.get_weights(), mean)
    # validation scored the average: the last check's val_loss is the mean model's
    want = model.evaluate(X, Y, verbose=0)
    assert history.history["val_loss"][-1] == pytest.approx(want, rel=1e-5)


@pytest.mark.slow  # trains a model
def test_swa_before_its_start_leaves_the_weights_alone():
    model = fresh_model()
    recorder = Recorder()
    fit(model, [recorder, *StochasticAverage(start=100).callbacks(4)], {}, 2, 4)
    assert_weights_close(model.get_weights(), recorder.steps[-1])


def test_tta_scores_the_mean_of_the_image_and_its_mirror():
    model = fresh_model()
    plain = FlipTTA(flip=False).predict_positive(model, X, 16)
    mirrored = FlipTTA(flip=False).predict_positive(model, X[:, :, ::-1], 16)
    both = FlipTTA(flip=True).predict_positive(model, X, 16)
    assert not np.allclose(plain, mirrored)  # the views differ, so the test can fail
    np.testing.assert_allclose(both, (plain + mirrored) / 2, rtol=1e-6)
    assert both.dtype == np.float32 and both.shape == (len(X),)
    assert FlipTTA(flip=True).predict_positive(model, X[:0], 16).shape == (0,)


@pytest.mark.parametrize(
    "spec",
    [
        {"brightness": 0.3},
        {"contrast": 0.3},
        {"erase": 1.0},
        {"rand_augment": 2, "rand_augment_magnitude": 0.3},
        {"flip": True, "translate": 0.1, "brightness": 0.2, "contrast": 0.2, "erase": 0.5},
    ],
)
def test_augmentations_keep_labels_and_shapes_and_repeat_for_a_seed(spec: dict[str, Any]):
    augment = Augment.model_validate(spec)
    batches = tf.data.Dataset.from_tensor_slices((X, Y)).batch(16)

    def run(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(np.asarray(x), np.asarray(y)) for x, y in augment.apply(batches, seed)]

    first, again, other = run(0), run(0), run(1)
    for (x, y), (x0, y0) in zip(first, [(X[:16], Y[:16]), (X[16:], Y[16:])], strict=True):
        assert x.shape == x0.shape and x.dtype == np.float32
        np.testing.assert_array_equal(y, y0)
        assert not np.array_equal(x, x0)  # it did change the images
        assert x.min() >= 0.0 and x.max() <= 1.0
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, other, strict=True))


def test_erasing_blanks_a_patch_of_a_tenth_of_the_image_on_average():
    x = tf.fill((256, 32, 32, 3), 0.5)
    (layer,) = Augment(erase=1.0).layers(0)
    changed = np.abs(np.asarray(layer(x, training=True)) - 0.5).max(axis=-1) > 1e-6
    area = changed.sum(axis=(1, 2)) / (32 * 32)
    assert (area > 0).all() and 0.05 < np.median(area) < 0.3


def test_balanced_mixup_mixes_each_batch_with_a_class_balanced_one():
    y = np.r_[np.zeros(60), np.ones(4)].astype(np.int64)
    x = np.repeat(y.astype(np.float32)[:, None, None, None], 1, axis=0) * np.ones(
        (1, 32, 32, 3), np.float32
    )
    x_t, y_t = tf.constant(x), tf.one_hot(y, 2)

    def gather(idx: Any) -> tuple[Any, Any]:
        return tf.gather(x_t, idx), tf.gather(y_t, idx)

    remedy = Remedy()  # the natural sampler: the instance-based stream
    plain = remedy.sampler.index_batches(y, 32, 0).map(gather)
    mixed = Mixup(alpha=0.2).apply(plain, gather, y, 32, 0)
    positives, lambdas = [], []
    for (xm, ym), (xp, yp) in zip(mixed.take(20), plain.take(20), strict=True):
        xm, ym, xp, yp = (np.asarray(t) for t in (xm, ym, xp, yp))
        np.testing.assert_allclose(ym.sum(axis=1), 1.0, rtol=1e-6)
        # an image is 0 (negative) or 1 (positive) everywhere: its value is its label mix
        np.testing.assert_allclose(xm[:, 0, 0, 0], ym[:, 1], atol=1e-6)
        positives.append(ym[:, 1].mean())
        instance = yp[:, 1]
        balanced_share = ym[:, 1] - instance  # = (1 - λ)(y_balanced - y_instance)
        nonzero = np.abs(balanced_share) > 1e-6
        if nonzero.any():
            lambdas.append(1 - np.median(np.abs(balanced_share[nonzero])))
    # 4 of 64 images are positive; mixed towards class-balanced batches, ~half are
    assert np.mean(positives) > 0.3
    assert all(0.0 <= lam <= 1.0 for lam in lambdas) and np.mean(lambdas) < 0.5
    assert Mixup(alpha=0.0).apply(plain, gather, y, 32, 0) is plain


def test_weight_decay_shrinks_every_weight_by_rate_times_learning_rate():
    model = fresh_model()
    before = model.get_weights()
    rate, lr = 0.05, 0.1
    optimizer = keras.optimizers.SGD(lr, **WeightDecay(rate=rate).optimizer_options())
    optimizer.apply_gradients(
        [(tf.zeros_like(v), v) for v in model.trainable_variables]  # no gradient: decay only
    )
    assert_weights_close(model.get_weights(), [w * (1 - rate * lr) for w in before])
    assert WeightDecay().optimizer_options() == {}


def test_sam_steps_with_the_gradient_taken_at_the_perturbed_weights():
    rho, lr = 0.05, 0.1
    model = fresh_model()
    loss_fn = keras.losses.CategoricalCrossentropy()
    x, y = X[:8], Y[:8]
    variables = model.trainable_variables
    start = [v.numpy() for v in variables]

    def gradients() -> list[np.ndarray]:
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        return [g.numpy() for g in tape.gradient(loss, variables)]

    g = gradients()
    norm = np.sqrt(sum(float((gi**2).sum()) for gi in g))
    for v, w, gi in zip(variables, start, g, strict=True):
        v.assign(w + rho * gi / norm)
    sharp = gradients()
    expected = [w - lr * gs for w, gs in zip(start, sharp, strict=True)]
    plain = [w - lr * gi for w, gi in zip(start, g, strict=True)]
    for v, w in zip(variables, start, strict=True):
        v.assign(w)

    trained = Sharpness(rho=rho).training_model(model)
    trained.compile(optimizer=keras.optimizers.SGD(lr), loss=loss_fn)
    logs = trained.train_on_batch(x, y, return_dict=True)
    assert_weights_close(model.get_weights(), expected)  # shares the CNN's variables
    assert not np.allclose(expected[0], plain[0])  # SAM's step is not the plain one
    assert np.isfinite(logs["loss"])
    assert Sharpness().training_model(model) is model
