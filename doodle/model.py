"""The models, defined in one place: a keras.applications backbone on uint8 doodles, or a
Conv1D + bidirectional LSTM over point sequences (``arch: lstm``)."""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers, ops

from doodle.sequences import FEATURES

# name -> (constructor, takes alpha, input range the backbone expects)
ARCHS = {
    "mobilenetv2": (keras.applications.MobileNetV2, True, "symmetric"),
    "mobilenet": (keras.applications.MobileNet, True, "symmetric"),
    "efficientnetb0": (keras.applications.EfficientNetB0, False, "raw"),
    "resnet50": (keras.applications.ResNet50, False, "unit"),
}


def build_model(
    arch: str,
    img_size: int,
    channels: int,
    n_classes: int,
    alpha: float = 1.0,
    weights: str | None = None,
    dropout: float = 0.0,
    bn_momentum: float | None = 0.9,
    seq_len: int = 128,
    seq_features: int = len(FEATURES),
) -> keras.Model:
    """uint8 images (img_size, img_size, channels) -> class probabilities (float32); for
    ``arch: lstm``, point sequences (seq_len, seq_features) -> probabilities (``seq_features``
    is 6 for shards with times: :func:`doodle.sequences.features`).

    ``weights``: None (from scratch, the usual choice for doodles) or a local weights file
    for the backbone (channels must match the file's).
    ``bn_momentum``: keras.applications builds BatchNorm with momentum 0.999, whose moving
    statistics need thousands of steps to settle; until then inference (holdout, test) is
    near chance even when training accuracy is high (measured: holdout MAP@3 0.07 with
    0.99 after 120 steps, 0.73 with 0.9). 0.9 settles within a few dozen steps.
    None keeps the backbone's own value.
    """
    if arch == "lstm":
        return build_sequence_model(
            seq_len,
            n_classes,
            alpha=alpha,
            dropout=dropout,
            bn_momentum=bn_momentum,
            features=seq_features,
        )
    if arch not in ARCHS:
        raise ValueError(f"arch {arch!r} unknown; choose one of {sorted(ARCHS)}")
    ctor, takes_alpha, scale = ARCHS[arch]
    inputs = keras.Input((img_size, img_size, channels), dtype="uint8", name="image")
    # Rescale (and cast) inside the model so the loader ships uint8 (4x smaller batches).
    factor, offset = {"symmetric": (1 / 127.5, -1.0), "unit": (1 / 255.0, 0.0), "raw": (1.0, 0.0)}[
        scale
    ]
    x = layers.Rescaling(factor, offset=offset, name="rescale")(inputs)
    kwargs = {"alpha": alpha} if takes_alpha else {}
    backbone = ctor(
        include_top=False,
        weights=weights,
        input_shape=(img_size, img_size, channels),
        pooling="avg",
        **kwargs,
    )
    if bn_momentum is not None:
        for layer in backbone.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = float(bn_momentum)
    x = backbone(x)
    if dropout:
        x = layers.Dropout(dropout)(x)
    # float32 head: softmax in bf16/fp16 loses the small probabilities MAP@3 ranks on.
    outputs = layers.Dense(n_classes, activation="softmax", dtype="float32", name="probs")(x)
    return keras.Model(inputs, outputs, name=f"{arch}_{img_size}x{channels}")


# -- the stroke-sequence family -------------------------------------------------------------
@keras.saving.register_keras_serializable(package="doodle")
class PointMask(layers.Layer):
    """True at the real points of a sequence (padding rows are all zero, no point is)."""

    def call(self, points):
        return ops.any(ops.not_equal(points, 0), axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape[:-1]


@keras.saving.register_keras_serializable(package="doodle")
class MaskedMeanMax(layers.Layer):
    """Mean and max over the real time steps, concatenated: (B, T, C) -> (B, 2C)."""

    def call(self, inputs):
        x, valid = inputs
        m = ops.cast(ops.expand_dims(valid, -1), self.compute_dtype)
        mean = ops.sum(x * m, axis=1) / ops.maximum(ops.sum(m, axis=1), 1.0)
        # LSTM outputs lie in (-1, 1): -1 at padded steps never wins the max
        floor = ops.cast(-1.0, self.compute_dtype)
        top = ops.max(ops.where(ops.expand_dims(valid, -1), x, floor), axis=1)
        return ops.concatenate([mean, top], axis=-1)

    def compute_output_shape(self, input_shapes):
        shape = input_shapes[0]
        return (shape[0], 2 * shape[-1])


def build_sequence_model(
    seq_len: int,
    n_classes: int,
    alpha: float = 1.0,
    dropout: float = 0.0,
    bn_momentum: float | None = 0.9,
    features: int = len(FEATURES),
) -> keras.Model:
    """Point sequences (seq_len, features) float32 -> class probabilities (float32).

    As in TensorFlow's Quick, Draw! RNN tutorial: 1-D convolutions over neighbouring points
    (48, 64, 96 filters), then bidirectional LSTMs (two of 128 units) over the whole
    drawing; padded steps are masked, and the outputs are pooled (mean and max) over the
    real points only. ``alpha`` scales every width.
    """
    inputs = keras.Input((seq_len, features), dtype="float32", name="points")
    valid = PointMask(name="valid")(inputs)
    x = inputs
    for filters, kernel in ((48, 5), (64, 5), (96, 3)):
        x = layers.Conv1D(max(8, round(filters * alpha)), kernel, padding="same")(x)
        x = layers.BatchNormalization(momentum=0.99 if bn_momentum is None else bn_momentum)(x)
        x = layers.Activation("relu")(x)
    for _ in range(2):
        lstm = layers.LSTM(max(8, round(128 * alpha)), return_sequences=True)
        x = layers.Bidirectional(lstm)(x, mask=valid)
    x = MaskedMeanMax(name="pool")([x, valid])
    if dropout:
        x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax", dtype="float32", name="probs")(x)
    return keras.Model(inputs, outputs, name=f"lstm_{seq_len}")


def load_model(path: Path) -> keras.Model:
    """A saved member model (this module registers the custom layers it may hold)."""
    return keras.models.load_model(path)
