"""The models, defined in one place: an image backbone chosen by name from
:mod:`doodle.models.backbones` (every keras.applications family) on uint8 doodles, a Conv1D +
bidirectional LSTM over point sequences (``arch: lstm``), or the points placed on a learnt
grid (``arch: strokegrid``, :mod:`doodle.models.strokegrid`). Every family ends in the same
head: its pooled features (with ``train.country``, beside an embedding of the drawing's
country), dropout, and a float32 softmax."""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import keras
from keras import layers, ops

from doodle.data.countries import N_COUNTRIES
from doodle.errors import DoodleError
from doodle.models import strokegrid
from doodle.models.backbones import Backbone, is_sequence, lookup

COUNTRY_DIM = 10  # the country embedding's width (the 50th place's 10-d embedding)

# ImageNet statistics (RGB, 0..1) behind the torch and caffe modes; a grey drawing from
# scratch gets their channel means.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


class WeightsError(DoodleError, RuntimeError):
    """Backbone weights that cannot be had (offline ImageNet download, a file that does not
    fit the model): the message says what to do."""


@keras.saving.register_keras_serializable(package="doodle")
class Preprocess(layers.Layer):
    """uint8 drawings -> the input the backbone's family documents (see
    :mod:`doodle.models.backbones`), as per-channel ``x * scale + offset``.

    ``repeat=3`` first copies a grey channel into three (ImageNet weights on grey drawings:
    the first convolution then sees R = G = B, exactly as on a grey photograph).
    """

    def __init__(self, mode: str, repeat: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.mode, self.repeat = mode, int(repeat)

    def build(self, input_shape):
        channels = int(input_shape[-1]) * self.repeat
        self._flip = self.mode == "caffe" and channels == 3  # RGB -> BGR
        if self.mode in ("tf", "tf128"):
            half = 127.5 if self.mode == "tf" else 128.0
            scale, offset = [1 / half] * channels, [-1.0] * channels
        elif self.mode == "torch":
            mean, std = (_MEAN, _STD) if channels == 3 else ([sum(_MEAN) / 3], [sum(_STD) / 3])
            scale = [1 / (255 * s) for s in std]
            offset = [-m / s for m, s in zip(mean, std, strict=True)]
        elif self.mode == "caffe":
            bgr = _CAFFE_BGR_MEAN if channels == 3 else [sum(_CAFFE_BGR_MEAN) / 3]
            scale, offset = [1.0] * channels, [-m for m in bgr]
        elif self.mode == "none":
            scale, offset = [1.0] * channels, [0.0] * channels
        else:
            raise ValueError(f"unknown preprocessing mode {self.mode!r}")
        self._scale, self._offset = scale, offset

    def call(self, x):
        x = ops.cast(x, self.compute_dtype)
        if self.repeat > 1:
            x = ops.concatenate([x] * self.repeat, axis=-1)
        if self._flip:
            x = x[..., ::-1]
        scale = ops.convert_to_tensor(self._scale, self.compute_dtype)
        offset = ops.convert_to_tensor(self._offset, self.compute_dtype)
        return x * scale + offset

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], int(input_shape[-1]) * self.repeat)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "repeat": self.repeat}


def build_model(
    arch: str,
    img_size: int,
    channels: int,
    n_classes: int,
    *,
    alpha: float | None,
    weights: str | None,
    dropout: float,
    bn_momentum: float | None,
    seq_len: int,
    seq_features: int,
    grid_size: int,
    grid_reduce: str,
    country: bool,
) -> keras.Model:
    """uint8 images (img_size, img_size, channels) -> class probabilities (float32); for
    the point families (``arch: lstm``, ``strokegrid``), point sequences (seq_len,
    seq_features) -> probabilities (``seq_features``: :func:`doodle.training.dataset.
    sequence_features`). ``country``: a second input, the drawing's country index
    (:mod:`doodle.data.countries`), embedded beside the pooled features before the head.

    ``alpha``: the width multiplier of the families that have one (None: the family's 1.0,
    or the width the name gives, ``mobilenetv2_050``). ``weights``: None (from scratch),
    ``"imagenet"`` (Keras' ImageNet weights; a grey drawing is repeated into the three
    channels they expect) or a local weights file for the backbone (a file saved from a
    backbone with this member's channels, or a three-channel ImageNet file, which a grey
    member then reads through the same repeated channel).
    ``bn_momentum``: keras.applications builds BatchNorm with momentum 0.999, whose moving
    statistics need thousands of steps to settle; until then inference (holdout, test) is
    near chance even when training accuracy is high (measured: holdout MAP@3 0.07 with
    0.99 after 120 steps, 0.73 with 0.9). 0.9 settles within a few dozen steps.
    None keeps the backbone's own value. ``grid_size`` / ``grid_reduce``: the strokegrid
    family's S and how points share a cell (sum | max).
    """
    width = 1.0 if alpha is None else alpha
    if arch == "strokegrid":
        inputs, x = strokegrid.grid_body(
            seq_len,
            seq_features,
            grid_size=grid_size,
            reduce=grid_reduce,
            alpha=width,
            bn_momentum=bn_momentum,
        )
        name = f"strokegrid_{seq_len}x{grid_size}"
    elif is_sequence(arch):
        inputs, x = _sequence_body(
            seq_len, alpha=width, bn_momentum=bn_momentum, features=seq_features
        )
        name = f"lstm_{seq_len}"
    else:
        inputs, x = _image_body(arch, img_size, channels, alpha, weights, bn_momentum)
        name = f"{arch}_{img_size}x{channels}"
    return _head(inputs, x, n_classes, dropout, country, name)


def _head(inputs, x, n_classes: int, dropout: float, country: bool, name: str) -> keras.Model:
    """Pooled features (+ the country's embedding) -> dropout -> float32 softmax."""
    model_inputs = [inputs]
    if country:
        code = keras.Input((), dtype="int32", name="country")
        model_inputs.append(code)
        vec = layers.Embedding(N_COUNTRIES, COUNTRY_DIM, name="country_embedding")(code)
        x = layers.Concatenate(name="with_country")([x, vec])
    if dropout:
        x = layers.Dropout(dropout)(x)
    # float32 head: softmax in bf16/fp16 loses the small probabilities MAP@3 ranks on.
    outputs = layers.Dense(n_classes, activation="softmax", dtype="float32", name="probs")(x)
    return keras.Model(model_inputs if country else inputs, outputs, name=name)


def _image_body(
    arch: str,
    img_size: int,
    channels: int,
    alpha: float | None,
    weights: str | None,
    bn_momentum: float | None,
):
    """``(image input, pooled features)``: a keras.applications backbone behind its
    preprocessing."""
    spec = lookup(arch)
    inputs = keras.Input((img_size, img_size, channels), dtype="uint8", name="image")
    backbone, repeat = _backbone(spec, img_size, channels, alpha, weights)
    # Preprocess (and cast) inside the model so the loader ships uint8 (4x smaller batches).
    x = Preprocess(spec.preprocess, repeat=repeat, name="preprocess")(inputs)
    if bn_momentum is not None:
        for layer in backbone.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = float(bn_momentum)
    return inputs, backbone(x)


def _backbone(
    spec: Backbone, size: int, channels: int, alpha: float | None, weights: str | None
) -> tuple[keras.Model, int]:
    """The keras.applications backbone (no top, global average pooling) and how many times
    the input channel is repeated to feed it."""
    kwargs: dict = {}
    if spec.has_width:
        kwargs["alpha"] = spec.alpha or (1.0 if alpha is None else alpha)
    if spec.own_preprocessing:
        kwargs["include_preprocessing"] = False  # doodle.models.build.Preprocess does it
    ctor = getattr(keras.applications, spec.constructor)

    def make(in_channels: int, source: str | None) -> keras.Model:
        return ctor(
            include_top=False,
            weights=source,
            input_shape=(size, size, in_channels),
            pooling="avg",
            **kwargs,
        )

    if weights == "imagenet":
        try:
            return make(3, "imagenet"), 3 if channels == 1 else 1
        except Exception as e:  # Keras raises a bare Exception when the download fails
            raise _offline(spec, e) from None
    if weights is None:
        return make(channels, None), 1
    return _from_file(spec, Path(weights), channels, make)


def _from_file(
    spec: Backbone, path: Path, channels: int, make: Callable[[int, None], keras.Model]
) -> tuple[keras.Model, int]:
    """The backbone built once, for the channels the file's first convolution reads (the
    member's, or three behind a repeated grey channel: Keras' ImageNet files), then loaded.
    A file that does not fit stops here, before Keras would load it partly."""
    theirs = image_kernels(path)
    if not theirs:
        raise WeightsError(f"{path}: holds no convolution kernels: not a backbone's weights")
    reads = theirs[0][-2]
    if reads != channels and not (channels == 1 and reads == 3):
        grey = " (or 3, for a grey member)" if channels == 1 else ""
        raise WeightsError(
            f"{path}: does not fit {spec.name}: its first convolution reads {reads} "
            f"channel(s), this member's images have {channels}{grey}"
        )
    net = make(reads, None)
    ours = _smallest_input(tuple(v.shape) for v in net.weights)
    if ours != theirs:
        raise WeightsError(
            f"{path}: does not fit {spec.name}: its first convolution is {_shapes(theirs)}, "
            f"the model's {_shapes(ours)} (another family or width?)"
        )
    try:
        net.load_weights(path)
    except ValueError as e:
        raise WeightsError(f"{path}: does not fit {spec.name}: {_one_line(e)}") from None
    return net, reads // channels


def image_kernels(path: Path) -> list[tuple[int, ...]]:
    """The shapes of the convolution kernels in a weights file that read the image: those
    with the fewest input channels (every later convolution reads at least 8 feature maps).

    Reads only the file's array shapes (h5py), whatever its format: Keras 3
    ``.weights.h5`` and ``.keras`` (arrays stored by layer name) or Keras 2 ``.h5``
    (ImageNet downloads)."""
    import h5py

    def shapes(f: h5py.File) -> list[tuple[int, ...]]:
        found: list[tuple[int, ...]] = []

        def visit(name: str, obj) -> None:
            if isinstance(obj, h5py.Dataset) and not name.startswith("optimizer"):
                found.append(obj.shape)

        f.visititems(visit)
        return _smallest_input(found)

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    try:
        if path.suffix == ".keras":
            with zipfile.ZipFile(path) as z, z.open("model.weights.h5") as fh:
                with h5py.File(fh, "r") as f:
                    return shapes(f)
        with h5py.File(path, "r") as f:
            return shapes(f)
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        raise WeightsError(f"{path}: not a Keras weights file ({_one_line(e)})") from None


def _smallest_input(shapes) -> list[tuple[int, ...]]:
    """The 4-D kernel shapes (kh, kw, in, out) with the fewest input channels, sorted."""
    kernels = {tuple(int(n) for n in s) for s in shapes if len(s) == 4}
    fewest = min((k[-2] for k in kernels), default=None)
    return sorted(k for k in kernels if k[-2] == fewest)


def _shapes(shapes: list[tuple[int, ...]]) -> str:
    return ", ".join("x".join(map(str, s)) for s in shapes)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:300]


def _offline(spec: Backbone, e: Exception) -> Exception:
    """The download Keras could not make, as one line that says where to put the file."""
    m = re.search(r"URL fetch failure on (\S+?):? ", str(e))
    if m is None:
        return e
    origin = m.group(1)
    home = os.environ.get("KERAS_HOME") or str(Path("~/.keras").expanduser())
    target = Path(home) / "models" / origin.rsplit("/", 1)[-1]
    return WeightsError(
        f"ImageNet weights for {spec.name} are not on this machine and Keras could not "
        f"download {origin}; fetch it where there is network and put it at {target} "
        f"(KERAS_HOME moves {home})"
    )


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
    """Mean and max over the real time steps, concatenated: ``[(B, T, C), (B, T)] -> (B, 2C)``.

    The real steps come in as the second input, ``valid``. The sequence also carries them as
    its Keras mask (the LSTMs propagate it): the layer takes that mask, reads ``valid``
    instead (the same steps, explicit in the graph on every backend), and passes no mask on,
    since its output has no time axis.
    """

    def call(self, inputs, mask=None):
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

    def compute_mask(self, inputs, mask=None):
        return None


def _sequence_body(seq_len: int, *, alpha: float, bn_momentum: float | None, features: int):
    """``(points input, pooled features)`` of the stroke-sequence family.

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
    return inputs, MaskedMeanMax(name="pool")([x, valid])


def load_model(path: Path) -> keras.Model:
    """A saved member model (this module registers the custom layers it may hold)."""
    return keras.models.load_model(path)
