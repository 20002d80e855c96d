"""The models, defined in one place: a keras.applications backbone on uint8 doodles."""

from __future__ import annotations

import keras
from keras import layers

# name -> (constructor, takes alpha, input range the backbone expects)
ARCHS = {
    "mobilenetv2": (keras.applications.MobileNetV2, True, "symmetric"),
    "mobilenet": (keras.applications.MobileNet, True, "symmetric"),
    "efficientnetb0": (keras.applications.EfficientNetB0, False, "raw"),
    "resnet50": (keras.applications.ResNet50, False, "unit"),
}


def build_model(arch: str, img_size: int, channels: int, n_classes: int, alpha: float = 1.0,
                weights: str | None = None, dropout: float = 0.0,
                bn_momentum: float | None = 0.9) -> keras.Model:
    """uint8 images (img_size, img_size, channels) -> class probabilities (float32).

    ``weights``: None (from scratch, the usual choice for doodles) or a local weights file
    for the backbone (channels must match the file's).
    ``bn_momentum``: keras.applications builds BatchNorm with momentum 0.999, whose moving
    statistics need thousands of steps to settle; until then inference (holdout, test) is
    near chance even when training accuracy is high (measured: holdout MAP@3 0.07 with
    0.99 after 120 steps, 0.73 with 0.9). 0.9 settles within a few dozen steps.
    None keeps the backbone's own value.
    """
    if arch not in ARCHS:
        raise ValueError(f"arch {arch!r} unknown; choose one of {sorted(ARCHS)}")
    ctor, takes_alpha, scale = ARCHS[arch]
    inputs = keras.Input((img_size, img_size, channels), dtype="uint8", name="image")
    # Rescale (and cast) inside the model so the loader ships uint8 (4x smaller batches).
    factor, offset = {"symmetric": (1 / 127.5, -1.0), "unit": (1 / 255.0, 0.0),
                      "raw": (1.0, 0.0)}[scale]
    x = layers.Rescaling(factor, offset=offset, name="rescale")(inputs)
    kwargs = {"alpha": alpha} if takes_alpha else {}
    backbone = ctor(include_top=False, weights=weights, input_shape=(img_size, img_size, channels),
                    pooling="avg", **kwargs)
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
