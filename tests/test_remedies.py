"""Each remedy component on tiny in-memory data, against formulas computed by hand.

What every variant of every kind must do alike (build from its params, compose, touch only
what it says) is tests/test_components.py; this file checks each one's numbers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import with_catalogue
from sklearn.utils.class_weight import compute_class_weight

from imbalance import params
from imbalance.training.components import (
    Augment,
    BalancedWeights,
    CrossentropyLoss,
    EffectiveNumberWeights,
    FocalLoss,
    LogitAdjustedLoss,
    Loss,
    NaturalSampler,
    NoWeights,
    OutputBias,
    Oversampler,
    PosthocShift,
    Remedy,
    Retrain,
    Sampler,
    Undersampler,
    class_prior,
)
from imbalance.training.model import OUTPUT_LAYER, build_model

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

PARAMS_FILE = Path(__file__).resolve().parents[1] / "params.yaml"
SMALL = params.Model(filters=[4, 4, 4], kernel_size=3, dense_units=4)


def sampler(kind: str) -> Sampler:
    """The sampler params.yaml's ``sampler: <kind>`` gives."""
    return Remedy(sampler=kind).sampler


def labels(n_neg: int, n_pos: int, seed: int = 0) -> np.ndarray:
    y = np.r_[np.zeros(n_neg, np.int64), np.ones(n_pos, np.int64)]
    return np.random.default_rng(seed).permutation(y)


# --------------------------------------------------------------------------- sampler
def test_oversampling_batches_are_half_positives():
    y = labels(500, 10)
    batches = Oversampler().index_batches(y, batch_size=32, seed=0).take(300)
    idx = np.concatenate([b.numpy() for b in batches])
    share = y[idx].mean()
    assert abs(share - 0.5) < 0.02, share  # 9600 draws: sd of the share is 0.005
    assert set(idx[y[idx] == 1]) == set(np.flatnonzero(y == 1))  # every positive drawn


def test_undersampling_uses_the_same_sampler():
    y = labels(500, 10)
    idx = np.concatenate([b.numpy() for b in Undersampler().index_batches(y, 32, seed=1).take(300)])
    assert abs(y[idx].mean() - 0.5) < 0.02


@pytest.mark.parametrize(
    ("kind", "counts", "batch", "expected"),
    [
        ("oversample", (5000, 50), 64, math.ceil(2 * 5000 / 64)),  # 157
        ("undersample", (5000, 50), 64, math.ceil(2 * 50 / 64)),  # 2
        ("natural", (5000, 50), 64, math.ceil(5050 / 64)),  # 79
        ("oversample", (4500, 45), 128, 71),
        ("undersample", (4500, 45), 16, 6),
        ("natural", (64, 0), 64, 1),
    ],
)
def test_steps_per_epoch_formulas(kind: str, counts: tuple[int, int], batch: int, expected: int):
    assert sampler(kind).steps_per_epoch(np.array(counts), batch) == expected


def test_natural_epoch_is_one_shuffled_pass():
    y = labels(40, 10)
    natural = NaturalSampler()
    steps = natural.steps_per_epoch(np.bincount(y), 16)
    batches = [b.numpy() for b in natural.index_batches(y, 16, seed=0).take(2 * steps)]
    first = np.concatenate(batches[:steps])
    second = np.concatenate(batches[steps:])
    assert sorted(first) == sorted(second) == list(range(50))
    assert not np.array_equal(first, second)  # reshuffled each epoch
    assert not np.array_equal(first, np.arange(50))


@pytest.mark.parametrize("kind", ["natural", "oversample", "undersample"])
def test_images_seen_counts_every_image_fed(kind: str):
    """Exact, short batches included: the natural sampler's last batch of each pass holds
    the remainder (50 = 16 + 16 + 16 + 2), the class-balanced samplers' are all full."""
    y = labels(40, 10)
    counts, batch = np.bincount(y), 16
    chosen = sampler(kind)
    sizes = [len(b) for b in chosen.index_batches(y, batch, seed=0).take(11).as_numpy_iterator()]
    for steps in range(12):
        assert chosen.images_seen(steps, counts, batch) == sum(sizes[:steps]), steps
    if kind == "natural":
        assert sizes[:4] == [16, 16, 16, 2] and chosen.images_seen(8, counts, batch) == 100
    else:
        assert chosen.images_seen(8, counts, batch) == 8 * batch


def test_sampler_order_is_seeded():
    y = labels(100, 10)

    def draw(seed: int) -> np.ndarray:
        ds = Oversampler().index_batches(y, 16, seed=seed).take(5)
        return np.concatenate([b.numpy() for b in ds])

    assert np.array_equal(draw(7), draw(7))
    assert not np.array_equal(draw(7), draw(8))


# --------------------------------------------------------------------------- weights
@pytest.mark.parametrize("counts", [(5000, 50), (4500, 45), (30, 10)])
def test_balanced_weights_equal_sklearn(counts: tuple[int, int]):
    y = np.repeat([0, 1], counts)
    expected = compute_class_weight("balanced", classes=np.array([0, 1]), y=y)
    np.testing.assert_array_equal(BalancedWeights().class_weights(np.array(counts)), expected)


def test_effective_number_weights_equal_the_formula():
    beta, n = 0.999, np.array([5000.0, 50.0])
    w = EffectiveNumberWeights(beta=beta).class_weights(n)
    raw = [(1 - beta) / (1 - beta**5000), (1 - beta) / (1 - beta**50)]
    scale = 5050 / (raw[0] * 5000 + raw[1] * 50)  # normalised so sum_c w_c n_c = N
    np.testing.assert_allclose(w, [raw[0] * scale, raw[1] * scale], rtol=1e-12)
    assert (w * n).sum() == pytest.approx(n.sum())
    # beta -> 1 tends to inverse frequency, i.e. the "balanced" weights
    near_one = EffectiveNumberWeights(beta=1 - 1e-9).class_weights(n)
    np.testing.assert_allclose(near_one, BalancedWeights().class_weights(n), rtol=1e-4)


def test_no_weights_means_plain_batches():
    ds = tf.data.Dataset.from_tensors((tf.zeros((2, 1)), tf.one_hot([0, 1], 2)))
    out, callbacks = NoWeights().attach(ds, np.array([1, 1]), 0)
    assert out is ds and callbacks == []


class PositiveWeight(keras.metrics.Metric):
    """Mean sample weight Keras hands to the positives of each epoch (the DRW probe)."""

    def __init__(self, name: str = "w_pos", **kwargs: object) -> None:
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        pos = tf.cast(y_true[:, 1], "float32")
        w = tf.ones_like(pos) if sample_weight is None else tf.reshape(sample_weight, [-1])
        self.total.assign_add(tf.reduce_sum(pos * w))
        self.count.assign_add(tf.reduce_sum(pos))

    def result(self):
        return self.total / self.count


@pytest.mark.slow  # trains a model
@pytest.mark.parametrize(("sampler", "switch"), [("natural", 2), ("oversample", 3)])
def test_drw_weights_inactive_before_from_epoch_and_active_from_it(sampler: str, switch: int):
    """``from_epoch`` 2 sampler epochs = step 8 (natural: 56 images, batch 16, 4 steps an
    epoch) or step 12 (oversample: 6 steps); with a check every 5 steps the weights switch
    on at the first check boundary at or after it: step 10 (check 2) or 15 (check 3)."""
    y = labels(48, 8)
    x = np.random.default_rng(0).random((len(y), 32, 32, 3), dtype=np.float32)
    remedy = Remedy(sampler=sampler, weights={"kind": "balanced", "from_epoch": 2})
    data = remedy.train_data(x, y, batch_size=16, seed=0, check_every=5)
    assert data.min_checks == switch  # early stopping waits for the re-weighted phase
    model = build_model(SMALL, seed=0)
    model.compile(
        optimizer="sgd",
        loss=remedy.keras_loss(class_prior(y)),
        weighted_metrics=[PositiveWeight()],  # Keras passes sample weights to these only
    )
    history = model.fit(
        data.dataset,
        steps_per_epoch=5,  # fit's epoch is a check
        epochs=5,
        callbacks=data.callbacks,
        shuffle=False,
        verbose=0,
    )
    w_pos = compute_class_weight("balanced", classes=np.array([0, 1]), y=y)[1]
    expected = [1.0] * switch + [w_pos] * (5 - switch)
    np.testing.assert_allclose(history.history["w_pos"], expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("kind", "from_epoch", "check_every", "steps", "checks"),
    [
        ("natural", 10, 100, 720, 8),  # 72 steps an epoch (4545 images); step 720 -> check 8
        ("natural", 10, 72, 720, 10),  # on a check boundary: that check
        ("oversample", 10, 100, 1410, 15),  # 141 steps an epoch
        ("undersample", 10, 100, 20, 1),  # 2 steps an epoch
        ("undersample", 3, 1, 6, 6),  # a check every step
        ("natural", 0, 100, 0, 0),  # not deferred: weighted and watched from the start
    ],
)
def test_drw_switch_is_the_first_check_at_or_after_from_epoch_sampler_epochs(
    kind: str, from_epoch: int, check_every: int, steps: int, checks: int
):
    """The one conversion of DRW's warm-up (sampler epochs, as in the paper) into checks;
    4500 + 45 images in batches of 64, as in the study."""
    counts = np.array([4500, 45])
    remedy = Remedy(sampler=kind, weights={"kind": "balanced", "from_epoch": from_epoch})
    assert remedy.warmup_steps(counts, 64) == steps
    assert remedy.min_checks(counts, 64, check_every) == checks
    assert Remedy(sampler=kind).min_checks(counts, 64, check_every) == 0  # no weights


def test_class_weight_from_epoch_zero_is_active_at_once():
    y = labels(20, 4)
    ds = tf.data.Dataset.from_tensors((tf.zeros((len(y), 1)), tf.one_hot(y, 2)))
    out, _ = BalancedWeights().attach(ds, np.bincount(y), 0)
    _, _, w = next(iter(out))
    expected = compute_class_weight("balanced", classes=np.array([0, 1]), y=y)[y]
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-6)


# --------------------------------------------------------------------------- losses
PROBS = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.05, 0.95]], np.float32)
Y = np.array([0, 1, 1, 0])
ONE_HOT = np.eye(2, dtype=np.float32)[Y]


def loss_values(loss: Loss) -> np.ndarray:
    fn = loss.keras_loss(np.array([0.5, 0.5]))
    if isinstance(fn, keras.losses.Loss):  # built-in: per-sample values via reduction=None
        fn = type(fn)(reduction=None)
    return np.asarray(fn(tf.constant(ONE_HOT), tf.constant(PROBS)))


def test_crossentropy_is_minus_log_p_of_the_true_class():
    expected = -np.log(PROBS[np.arange(4), Y])
    np.testing.assert_allclose(loss_values(CrossentropyLoss()), expected, rtol=1e-5)


@pytest.mark.parametrize(("gamma", "alpha"), [(2.0, 0.25), (0.0, 0.5), (1.0, 0.9)])
def test_focal_loss_equals_the_formula(gamma: float, alpha: float):
    p_t = PROBS[np.arange(4), Y]
    alpha_t = np.where(Y == 1, alpha, 1 - alpha)  # alpha weighs the positive class
    expected = -alpha_t * (1 - p_t) ** gamma * np.log(p_t)
    got = loss_values(FocalLoss(gamma=gamma, alpha=alpha))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.parametrize("tau", [0.0, 1.0, 2.5])
def test_logit_adjusted_loss_equals_the_formula_on_logits(tau: float):
    logits = np.array([[2.0, -1.0], [0.5, 1.5], [-0.3, 0.2], [3.0, 0.0]])
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    prior = np.array([0.99, 0.01])
    adjusted = logits + tau * np.log(prior)  # Menon et al. 2021, eq. (10)
    expected = np.log(np.exp(adjusted).sum(axis=1)) - adjusted[np.arange(4), Y]
    fn = LogitAdjustedLoss(tau=tau).keras_loss(prior)
    got = np.asarray(fn(tf.constant(ONE_HOT), tf.constant(probs, tf.float32)))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    if tau == 0.0:  # no adjustment: plain crossentropy
        np.testing.assert_allclose(got, -np.log(probs[np.arange(4), Y]), rtol=1e-5)


# --------------------------------------------------------------------------- augment
def augmented(augment: Augment, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((32, 32, 32, 3), dtype=np.float32)
    y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, 32)]
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    out = list(augment.apply(ds, seed))
    return x, np.concatenate([a.numpy() for a, _ in out]), np.concatenate([b for _, b in out])


def test_augmentation_changes_images_keeps_labels_and_shapes():
    x, x_aug, y_aug = augmented(Augment(flip=True, translate=0.1), seed=0)
    assert x_aug.shape == x.shape and x_aug.dtype == np.float32
    np.testing.assert_array_equal(y_aug, np.eye(2)[np.argmax(y_aug, 1)])  # untouched
    changed = [not np.array_equal(a, b) for a, b in zip(x, x_aug, strict=True)]
    assert sum(changed) >= len(x) // 2
    assert x_aug.min() >= 0.0 and x_aug.max() <= 1.0  # reflect fill: still pixel values


def test_flip_only_mirrors_images():
    x, x_aug, _ = augmented(Augment(flip=True), seed=0)
    for a, b in zip(x, x_aug, strict=True):
        assert np.array_equal(a, b) or np.array_equal(a[:, ::-1], b)
    assert any(not np.array_equal(a, b) for a, b in zip(x, x_aug, strict=True))


def test_augmentation_is_seeded_and_off_by_default():
    _, first, _ = augmented(Augment(flip=True, translate=0.1), seed=5)
    _, again, _ = augmented(Augment(flip=True, translate=0.1), seed=5)
    _, other, _ = augmented(Augment(flip=True, translate=0.1), seed=6)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    x, unchanged, _ = augmented(Augment(), seed=5)
    assert np.array_equal(x, unchanged)


# --------------------------------------------------------------------------- model hooks
def test_output_bias_init_sets_log_prior():
    model = build_model(SMALL, seed=0)
    kernel_before = model.get_layer(OUTPUT_LAYER).get_weights()[0]
    prior = class_prior(labels(990, 10))
    OutputBias(enabled=True).apply(model, prior)
    kernel, bias = model.get_layer(OUTPUT_LAYER).get_weights()
    np.testing.assert_array_equal(bias, np.log(prior).astype(np.float32))
    np.testing.assert_array_equal(kernel, kernel_before)
    # softmax(log prior) = prior: with a zero kernel the model would predict the prior
    np.testing.assert_allclose(np.exp(bias) / np.exp(bias).sum(), prior, rtol=1e-6)


def test_output_bias_init_off_leaves_the_model_alone():
    model = build_model(SMALL, seed=0)
    before = model.get_weights()
    OutputBias().apply(model, np.array([0.9, 0.1]))
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))


def test_posthoc_shift_moves_only_the_last_bias_by_minus_tau_log_prior():
    model = build_model(SMALL, seed=0)
    OutputBias(enabled=True).apply(model, np.array([0.7, 0.3]))  # a non-zero bias to start from
    before = model.get_weights()
    prior, tau = np.array([0.99, 0.01]), 1.5
    PosthocShift(tau=tau).apply(model, prior)
    after = model.get_weights()
    *same_before, bias_before = before
    *same_after, bias_after = after
    assert all(np.array_equal(a, b) for a, b in zip(same_before, same_after, strict=True))
    np.testing.assert_array_equal(bias_after, (bias_before - tau * np.log(prior)).astype("f4"))


def test_params_yaml_forms_build_the_components():
    """What params.yaml writes is what the training loop gets: no copy in between."""
    remedy = Retrain.model_validate(
        {
            "start": "baseline",
            "sampler": "oversample",
            "loss": {"kind": "focal", "gamma": 1.0},
            "trainable": ["dense", "last"],
            "posthoc_tau": 0.5,
        }
    )
    assert remedy.sampler == Oversampler()
    assert remedy.loss == FocalLoss(gamma=1.0, alpha=0.25)
    assert remedy.start.remedy == "baseline"
    assert remedy.trainable.layers == ("dense", "last")
    assert remedy.posthoc_tau == PosthocShift(tau=0.5)
    assert remedy.trains and remedy.retrained and not Remedy().retrained
    assert not Retrain(start="baseline", trainable=[]).trains  # post-hoc only


def test_shipped_remedies_keep_their_meaning():
    """params.yaml and catalogue.yaml as committed validate to the components they always
    meant."""
    p = params.parse(with_catalogue(yaml.safe_load(PARAMS_FILE.read_text())))
    assert p.remedy("baseline") == Remedy()
    assert p.remedy("class_weight").weights == BalancedWeights()
    assert p.remedy("drw").weights.warmup_epochs == 10  # sampler epochs, as in the paper
    # 4500 + 45 training images, batch 64: 72 steps an epoch, so step 720 = check 8 (of 100)
    assert p.remedy("drw").warmup_steps(np.array([4500, 45]), 64) == 720
    assert p.remedy("drw").min_checks(np.array([4500, 45]), 64, 100) == 8
    assert p.remedy("focal").loss == FocalLoss(gamma=2.0, alpha=0.25)
    assert p.remedy("focal").output_bias_init == OutputBias(enabled=True)
    assert p.remedy("logit_adjusted").loss == LogitAdjustedLoss(tau=1.0)
    assert p.remedy("oversample_augment").augment == Augment(flip=True, translate=0.1)
    assert p.remedy("balanced").train_set.kind == "balanced"
    assert p.remedy("crt") == Retrain(start="baseline", sampler="oversample")
    assert p.remedy("posthoc_logit_adjusted").posthoc_tau.tau == 1.0
    assert not p.remedy("posthoc_logit_adjusted").trains
    assert isinstance(Remedy().loss, Loss)


def test_every_catalogue_remedy_is_a_valid_composition_that_can_join_the_study():
    """catalogue.yaml's entries are what a user copies into params.yaml: each one, added
    alone to the shipped params, validates (its kinds' modules load), and none of its
    names clashes with the default study's."""
    shipped = yaml.safe_load(PARAMS_FILE.read_text())
    catalogue = yaml.safe_load((PARAMS_FILE.parent / "catalogue.yaml").read_text())
    assert catalogue["remedies"] and catalogue["retrain"]
    for section in ("remedies", "retrain"):
        study = set(shipped["remedies"]) | set(shipped["retrain"])
        assert not set(catalogue[section]) & study
        for name, spec in catalogue[section].items():
            raw = yaml.safe_load(PARAMS_FILE.read_text())
            raw[section][name] = spec
            assert params.parse(raw).remedy(name) is not None, name
