"""The stroke-to-grid family (``arch: strokegrid``): the drawing's points, each with a feature
vector learnt from its neighbours along the pen's path, placed on a 2-D grid that a
convolutional trunk reads.

**The points** (:func:`encode`, numpy + numba, in the loader). Each drawing becomes exactly
``seq_len`` points resampled along its strokes: every stroke keeps its first point, the
rest are spread over the strokes by arc length (each stroke from its first to its last
point, so the ends are kept), and the pen-up jump between strokes is not a stroke. A drawing
that has no length (dots only) keeps its points and is padded with all-zero rows; the
``valid`` feature is 1 at every real point. Per point (float32):

* ``valid``; ``x``, ``y`` centred (about -1..1, as the lstm family's); ``dx``, ``dy``, the
  step from the previous point (/32 px); ``pen_up`` on each stroke's last point;
* point order: ``order``, the point's place in the drawing (0..1), and ``stroke``, its
  stroke's (0..1);
* with ``encoding: time3`` (shards made from Kaggle's raw files) two more, from the
  points' times interpolated along the strokes: ``time``, the share of the drawing's time
  gone (0..1), and ``dt``, the time since the previous point in seconds (capped at 10;
  the pause before a stroke lands on its first point).

Augmentation is the other families': the same 256-scale affine maps and stroke dropout,
applied to the points before resampling (so a flipped drawing is resampled as drawn).

**The model** (:func:`grid_body`; the head is :func:`doodle.models.build.build_model`'s):
a 1-D convolution embeds each point, then residual blocks of dilated 1-D convolutions
(dilations 1, 2, 4, 8: each point sees 31 neighbours along the path) give every point a
feature vector; :class:`PointsToGrid` sums (or max-pools) those vectors into an ``S x S``
grid at each point's (x, y) (differentiable in the features: a segment sum / max); a
compact residual trunk of 3x3 convolutions (stages at S, S/2, S/4) reads the grid, and
global average pooling feeds the head.

Why a trunk of our own and not a keras.applications backbone after its stem: the grid
replaces the stem's output, so the backbone would have to be cut behind its stem, and the
applications are single functional graphs whose stems differ by family (names, widths,
pooling; NASNet's two stems feed each other): a cut is per-family surgery on private layer
names. Feeding the grid to a whole backbone instead runs its stem's strided convolution on
the grid, halving a resolution that the points were placed at on purpose. The trunk here is
three stages of pre-activation residual blocks (ResNet's basic block); ``alpha`` scales
every width (32 channels a point and 16, 32, 64 in the trunk at alpha 1).

Every weight is a convolution kernel or a BatchNorm over channels, independent of
``seq_len`` and of the grid size ``S``: a warm start within the family carries every weight
to a longer ``seq_len`` or a larger ``S`` (the trunk ends in global pooling).
"""

from __future__ import annotations

import keras
import numba
import numpy as np
from keras import layers, ops

from doodle.data.strokes import Drawings
from doodle.models.sequences import kernel_inputs
from doodle.rendering.raster import dropout_fallback, stroke_u

FEATURES = ("valid", "x", "y", "dx", "dy", "pen_up", "order", "stroke")
TIME_FEATURES = (*FEATURES, "time", "dt")
REDUCES = ("sum", "max")
DILATIONS = (1, 2, 4, 8)
# Widths at alpha 1, sized for a CPU (faster per drawing than MobileNetV2 alpha 0.5 at 64 px
# there: BENCHMARKS.md); alpha 2 gives the 64-channel grid of the 8th place's model.
POINT_WIDTH = 32  # the per-point feature vector (= the grid's channels)
TRUNK_WIDTHS = (16, 32, 64)  # the trunk's stages at S, S/2, S/4

_CENTRE = 127.5
_POS_SCALE = 1 / 128.0
_STEP_SCALE = 1 / 32.0
_DT_CAP = 10_000.0  # ms
_I_VALID, _I_X, _I_Y = 0, 1, 2


def features(timed: bool) -> tuple[str, ...]:
    """The per-point features, with the time ones (``encoding: time3``) or without."""
    return TIME_FEATURES if timed else FEATURES


# -- the points ---------------------------------------------------------------------------------
@numba.njit(cache=True, nogil=True, inline="always")
def _kept(s, s0, keep, seed, drop_prob):
    return drop_prob <= 0.0 or s == keep or stroke_u(seed, s - s0) >= drop_prob


@numba.njit(cache=True, nogil=True)
def _stroke_length(xy, a, e, m):
    total = 0.0
    px = m[0, 0] * xy[a, 0] + m[0, 1] * xy[a, 1] + m[0, 2]
    py = m[1, 0] * xy[a, 0] + m[1, 1] * xy[a, 1] + m[1, 2]
    for k in range(a + 1, e):
        x = m[0, 0] * xy[k, 0] + m[0, 1] * xy[k, 1] + m[0, 2]
        y = m[1, 0] * xy[k, 0] + m[1, 1] * xy[k, 1] + m[1, 2]
        total += np.sqrt((x - px) ** 2 + (y - py) ** 2)
        px, py = x, y
    return total


@numba.njit(cache=True, nogil=True)
def _encode_kernel(xy, tm, stroke_offsets, drawing_offsets, idx, mats, drop_prob, drop_seed, out):
    seq_len = out.shape[1]
    timed = out.shape[2] == len(TIME_FEATURES)
    for b in range(idx.shape[0]):
        d = idx[b]
        s0, s1 = drawing_offsets[d], drawing_offsets[d + 1]
        seed = drop_seed[b]
        keep = s0 + dropout_fallback(seed, s1 - s0, drop_prob)
        m = mats[b]
        # pass 1: the kept strokes' count, total length and last time
        n_kept, total, t_end = 0, 0.0, 0.0
        for s in range(s0, s1):
            if _kept(s, s0, keep, seed, drop_prob):
                a, e = stroke_offsets[s], stroke_offsets[s + 1]
                n_kept += 1
                total += _stroke_length(xy, a, e, m)
                if timed:
                    t_end = max(t_end, float(tm[e - 1]))
        if n_kept == 0:
            continue
        spare = max(0, seq_len - n_kept)  # points beyond each stroke's first, by length
        # pass 2: the points
        n, k_stroke, cum, given = 0, 0, 0.0, 0
        px, py, pt = 0.0, 0.0, 0.0
        for s in range(s0, s1):
            if n == seq_len:
                break
            if not _kept(s, s0, keep, seed, drop_prob):
                continue
            a, e = stroke_offsets[s], stroke_offsets[s + 1]
            length = _stroke_length(xy, a, e, m)
            cum += length
            upto = int(np.floor(spare * cum / total + 0.5)) if total > 0.0 else 0
            count = min(1 + upto - given, seq_len - n)
            given = upto
            # walk the stroke's segments, placing `count` points evenly by arc length
            j = a  # the segment j -> j + 1
            x0 = m[0, 0] * xy[a, 0] + m[0, 1] * xy[a, 1] + m[0, 2]
            y0 = m[1, 0] * xy[a, 0] + m[1, 1] * xy[a, 1] + m[1, 2]
            x1, y1, seg, done = x0, y0, 0.0, 0.0
            if e - a > 1:
                x1 = m[0, 0] * xy[a + 1, 0] + m[0, 1] * xy[a + 1, 1] + m[0, 2]
                y1 = m[1, 0] * xy[a + 1, 0] + m[1, 1] * xy[a + 1, 1] + m[1, 2]
                seg = np.sqrt((x1 - x0) ** 2 + (y1 - y0) ** 2)
            for q in range(count):
                target = length * q / (count - 1) if count > 1 else 0.0
                while j < e - 2 and done + seg < target:
                    done += seg
                    j += 1
                    x0, y0 = x1, y1
                    x1 = m[0, 0] * xy[j + 1, 0] + m[0, 1] * xy[j + 1, 1] + m[0, 2]
                    y1 = m[1, 0] * xy[j + 1, 0] + m[1, 1] * xy[j + 1, 1] + m[1, 2]
                    seg = np.sqrt((x1 - x0) ** 2 + (y1 - y0) ** 2)
                f = min(max((target - done) / seg, 0.0), 1.0) if seg > 0.0 else 0.0
                x = x0 + f * (x1 - x0)
                y = y0 + f * (y1 - y0)
                row = out[b, n]
                row[_I_VALID] = 1.0
                row[_I_X] = (x - _CENTRE) * _POS_SCALE
                row[_I_Y] = (y - _CENTRE) * _POS_SCALE
                if n > 0:
                    row[3] = (x - px) * _STEP_SCALE
                    row[4] = (y - py) * _STEP_SCALE
                row[5] = 1.0 if q == count - 1 else 0.0
                row[7] = k_stroke / max(1, n_kept - 1)
                if timed:
                    ta = float(tm[j])
                    tb = float(tm[j + 1]) if e - a > 1 else ta
                    t = ta + f * (tb - ta)
                    row[8] = t / t_end if t_end > 0.0 else 0.0
                    if n > 0:
                        row[9] = min(max(t - pt, 0.0), _DT_CAP) * 0.001
                    pt = t
                px, py = x, y
                n += 1
            k_stroke += 1
        out[b, n - 1, 5] = 1.0  # a drawing cut short ends with the pen up too
        for i in range(n):
            out[b, i, 6] = i / max(1, n - 1)


def encode(
    drawings: Drawings,
    idx: np.ndarray | None,
    seq_len: int,
    timed: bool,
    affine: np.ndarray | None = None,
    drop_prob: float = 0.0,
    drop_seed: np.ndarray | None = None,
) -> np.ndarray:
    """Drawings ``idx`` (all when None) -> ``(n, seq_len, len(features(timed)))`` float32.

    ``timed``: add the time features (the drawings must have times). ``affine``: ``(n, 2,
    3)`` maps of 256-scale points (:mod:`doodle.rendering.augment`); ``drop_prob`` /
    ``drop_seed``: stroke dropout, one seed per drawing (the same strokes as the renderer
    drops for the same seed).
    """
    if seq_len < 2:
        raise ValueError(f"seq_len must be at least 2, got {seq_len}")
    if timed and not drawings.has_time:
        raise ValueError("timed points need drawings with times (shards made from raw files)")
    arrays, seeds = kernel_inputs(drawings, idx, affine, drop_seed, timed)
    out = np.zeros((len(seeds), int(seq_len), len(features(timed))), np.float32)
    _encode_kernel(*arrays, float(drop_prob), seeds, out)
    return out


# -- the model ----------------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="doodle")
class ValidPoints(layers.Layer):
    """1.0 at the real points, 0.0 at the padding: ``(B, L, F) -> (B, L, 1)``."""

    def call(self, points):
        return ops.cast(points[..., _I_VALID : _I_VALID + 1] > 0.5, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 1)


@keras.saving.register_keras_serializable(package="doodle")
class PointsToGrid(layers.Layer):
    """Each point's feature vector placed on an ``size x size`` grid at the point's (x, y):
    ``[(B, L, C) features, (B, L, F) points] -> (B, size, size, C)``.

    A cell holds the sum (``reduce="sum"``) or the channel-wise maximum (``"max"``; 0 where
    no point falls) of the vectors of the points in it; padding points go nowhere. Both are
    one segment reduction over the batch's points (``keras.ops.segment_sum`` /
    ``segment_max``, on TensorFlow and JAX alike), differentiable in the features; the
    positions only choose the cell. Computed in float32 under mixed precision.
    """

    def __init__(self, size: int, reduce: str = "sum", **kwargs):
        super().__init__(**kwargs)
        if reduce not in REDUCES:
            raise ValueError(f"reduce must be one of {', '.join(REDUCES)}, got {reduce!r}")
        self.size, self.reduce = int(size), reduce

    def call(self, inputs):
        feats, points = inputs
        size = self.size
        batch, length = ops.shape(feats)[0], ops.shape(feats)[1]
        channels = feats.shape[-1]
        # 256-scale position -> cell; points pushed off the frame by augmentation stay on
        # its edge cells
        pos = ops.cast(points[..., _I_X : _I_Y + 1], "float32") * 128.0 + _CENTRE
        cell = ops.clip(ops.cast(ops.floor(pos * (size / 256.0)), "int32"), 0, size - 1)
        cells = size * size
        seg = (
            cell[..., 1] * size
            + cell[..., 0]
            + ops.expand_dims(ops.arange(batch, dtype="int32") * cells, 1)
        )
        valid = points[..., _I_VALID] > 0.5
        trash = batch * cells  # one extra segment takes the padding
        seg = ops.reshape(ops.where(valid, seg, trash), (-1,))
        data = ops.reshape(ops.cast(feats, "float32"), (batch * length, channels))
        if self.reduce == "sum":
            grid = ops.segment_sum(data, seg, num_segments=trash + 1)
        else:
            grid = ops.segment_max(data, seg, num_segments=trash + 1)
            ones = ops.ones((batch * length, 1), "float32")
            filled = ops.segment_sum(ones, seg, num_segments=trash + 1) > 0
            grid = ops.where(filled, grid, ops.zeros_like(grid))
        grid = ops.reshape(grid[:trash], (batch, size, size, channels))
        return ops.cast(grid, self.compute_dtype)

    def compute_output_shape(self, input_shapes):
        feats = input_shapes[0]
        return (feats[0], self.size, self.size, feats[-1])

    def get_config(self):
        return {**super().get_config(), "size": self.size, "reduce": self.reduce}


def _width(n: int, alpha: float) -> int:
    return max(8, round(n * alpha))


def _bn(momentum: float | None) -> layers.BatchNormalization:
    return layers.BatchNormalization(momentum=0.99 if momentum is None else momentum)


def _point_block(x, valid, width: int, dilation: int, bn_momentum: float | None, name: str):
    """Pre-activation residual block of one dilated 1-D convolution; padding stays 0."""
    h = _bn(bn_momentum)(x)
    h = layers.Activation("relu")(h)
    h = layers.Conv1D(width, 3, dilation_rate=dilation, padding="same", name=name)(h)
    return layers.Multiply()([layers.Add()([x, h]), valid])


def _grid_block(g, width: int, stride: int, bn_momentum: float | None, name: str):
    """Pre-activation residual basic block (two 3x3 convolutions)."""
    h = _bn(bn_momentum)(g)
    h = layers.Activation("relu")(h)
    short = g
    if stride != 1 or g.shape[-1] != width:
        short = layers.Conv2D(width, 1, strides=stride, use_bias=False, name=f"{name}_short")(h)
    h = layers.Conv2D(width, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_a")(h)
    h = _bn(bn_momentum)(h)
    h = layers.Activation("relu")(h)
    h = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"{name}_b")(h)
    return layers.Add()([short, h])


def grid_body(
    seq_len: int,
    n_features: int,
    *,
    grid_size: int,
    reduce: str,
    alpha: float,
    bn_momentum: float | None,
):
    """``(points input, pooled features)``: the family up to its head."""
    points = keras.Input((seq_len, n_features), dtype="float32", name="points")
    valid = ValidPoints(name="valid")(points)
    width = _width(POINT_WIDTH, alpha)
    x = layers.Conv1D(width, 1, name="point_embed")(points)
    x = layers.Multiply()([x, valid])
    for d in DILATIONS:
        x = _point_block(x, valid, width, d, bn_momentum, name=f"point_dilated{d}")
    x = _bn(bn_momentum)(x)
    x = layers.Activation("relu")(x)
    x = layers.Multiply()([x, valid])
    g = PointsToGrid(grid_size, reduce, name="to_grid")([x, points])
    g = _bn(bn_momentum)(g)  # sums over busy cells are large: normalise before the trunk
    for i, w in enumerate(TRUNK_WIDTHS):
        g = _grid_block(g, _width(w, alpha), 1 if i == 0 else 2, bn_momentum, f"grid{i + 1}")
    g = _bn(bn_momentum)(g)
    g = layers.Activation("relu")(g)
    return points, layers.GlobalAveragePooling2D(name="pool")(g)


def macs(seq_len: int, grid_size: int, alpha: float, n_features: int) -> int:
    """Multiply-accumulates of one drawing's forward pass through the convolutions (the
    rest -- BatchNorm, the scatter, the head -- is a small share): the basis of the
    presets' speed estimates for this family (doodle/presets.py)."""
    width = _width(POINT_WIDTH, alpha)
    total = seq_len * n_features * width + len(DILATIONS) * seq_len * width * width * 3
    side, channels = grid_size, width
    for i, w in enumerate(TRUNK_WIDTHS):
        w = _width(w, alpha)
        if i:
            side = -(-side // 2)  # "same" padding, stride 2
        cells = side * side
        total += cells * (channels * w * 9 + w * w * 9)
        if i or channels != w:
            total += cells * channels * w  # the 1x1 shortcut
        channels = w
    return total
