"""The study's minimal CNN (15,458 trainable parameters with the default ``model`` params).

Every layer has a fixed name, so that retrain remedies can name the layers they train
(``trainable: [last]``), so that two models built in one process get the same config
(Keras would otherwise number them ``conv2d_1``, ``conv2d_2``, ...), and so that the saved
file does not depend on what else the process built. Every initialiser gets an explicit
seed derived from the run seed: the initial weights depend on the seed only, not on how
many random numbers were drawn before.

Architecture (DESIGN.md): Conv2D f0 → MaxPool → Conv2D f1 → MaxPool → Conv2D f2 →
GlobalAveragePooling → Dense dense_units (relu) → Dense 2 (softmax, ``last``).
16/32/32 filters, 3×3 kernels and 32 dense units give 448 + 4,640 + 9,248 + 1,056 + 66.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # params imports this module (via the components): no import cycle at run time
    import keras

    from imbalance import params

INPUT_SHAPE = (32, 32, 3)
N_CLASSES = 2
OUTPUT_LAYER = "last"
#: Layer names in order; ``retrain.<remedy>.trainable`` must use these.
LAYER_NAMES = ("conv0", "pool0", "conv1", "pool1", "conv2", "gap", "dense", OUTPUT_LAYER)


def build_model(model_params: params.Model, seed: int) -> keras.Model:
    """Build the CNN with initial weights that depend only on ``seed``.

    Input: float32 images in [0, 1], 32×32×3. Output: two softmax probabilities
    (airplane, automobile). Uncompiled: the training loop compiles it with the remedy's
    loss, and saved models stay free of training-only objects.
    """
    import keras
    from keras import layers

    def init(i: int) -> tuple[keras.initializers.Initializer, keras.initializers.Initializer]:
        # A distinct seed per layer: equal shapes must not get equal initial weights.
        kernel = keras.initializers.GlorotUniform(seed=seed * len(LAYER_NAMES) + i)
        return kernel, keras.initializers.Zeros()

    f0, f1, f2 = model_params.filters
    k = model_params.kernel_size
    conv = {"kernel_size": k, "padding": "valid", "activation": "relu"}
    inputs = keras.Input(shape=INPUT_SHAPE, dtype="float32", name="image")
    x = layers.Conv2D(f0, **conv, name="conv0", **_initialisers(init(0)))(inputs)
    x = layers.MaxPooling2D(name="pool0")(x)
    x = layers.Conv2D(f1, **conv, name="conv1", **_initialisers(init(2)))(x)
    x = layers.MaxPooling2D(name="pool1")(x)
    x = layers.Conv2D(f2, **conv, name="conv2", **_initialisers(init(4)))(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(
        model_params.dense_units, activation="relu", name="dense", **_initialisers(init(6))
    )(x)
    outputs = layers.Dense(
        N_CLASSES, activation="softmax", name=OUTPUT_LAYER, **_initialisers(init(7))
    )(x)
    return keras.Model(inputs, outputs, name="cnn")


def _initialisers(pair: tuple[object, object]) -> dict[str, object]:
    kernel, bias = pair
    return {"kernel_initializer": kernel, "bias_initializer": bias}


def trainable_count(model: keras.Model) -> int:
    """Number of trainable scalars (what the study calls the model's size)."""
    return int(sum(int(w.numpy().size) for w in model.trainable_weights))
