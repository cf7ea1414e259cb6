"""The study's CNN: its size, its output layer, and seed-only initialisation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imbalance import params
from imbalance.training.model import LAYER_NAMES, OUTPUT_LAYER, build_model, trainable_count

keras = pytest.importorskip("keras")

PARAMS_FILE = Path(__file__).resolve().parents[1] / "params.yaml"


@pytest.fixture(scope="module")
def default_model_params() -> params.Model:
    """The shipped defaults: the 15,458 figure is a property of params.yaml as committed."""
    return params.load(PARAMS_FILE).model


def test_default_model_has_15458_trainable_parameters(default_model_params: params.Model):
    model = build_model(default_model_params, seed=0)
    assert trainable_count(model) == 15_458
    assert model.count_params() == 15_458  # and nothing non-trainable hides elsewhere


def test_output_layer_is_last_with_two_softmax_outputs(default_model_params: params.Model):
    model = build_model(default_model_params, seed=0)
    assert model.layers[-1].name == OUTPUT_LAYER == "last"
    assert [layer.name for layer in model.layers[1:]] == list(LAYER_NAMES)
    x = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)
    probs = np.asarray(model(x))
    assert probs.shape == (4, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)


def test_initial_weights_depend_only_on_the_seed(default_model_params: params.Model):
    first = build_model(default_model_params, seed=3).get_weights()
    keras.random.uniform((10,))  # consume global randomness: must not matter
    np.random.default_rng().random(10)
    again = build_model(default_model_params, seed=3).get_weights()
    other = build_model(default_model_params, seed=4).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], other[0])


def test_sizes_are_params():
    small = params.Model(filters=[4, 8, 8], kernel_size=3, dense_units=8)
    model = build_model(small, seed=0)
    # conv (3*3*in + 1) * out for each block, then dense and the 2-way output
    expected = (27 + 1) * 4 + (36 + 1) * 8 + (72 + 1) * 8 + (8 + 1) * 8 + (8 + 1) * 2
    assert trainable_count(model) == expected
