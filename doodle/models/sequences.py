"""Drawings as point sequences, the input of the stroke-sequence family (no rendering).

Each drawing becomes ``seq_len`` rows of ``FEATURES`` (float32), its points in drawing
order: the position (centred, about -1..1), the step from the previous point (0 at a
drawing's first point) and a pen-up flag on each stroke's last point. Drawings with times
(shards made from Kaggle's raw files) get one more feature, ``dt`` (:data:`TIME_FEATURES`):
the time since the previous point in seconds, capped at 10 s (0 at the first point; inside
a stroke ~0.02-0.4, a pause between strokes ~0.1-3). Drawings longer than
``seq_len`` points are truncated (their first points are kept: the first strokes are the
most telling); shorter ones are padded with all-zero rows, which no real point can be (a
point's centred position is never exactly 0), so the model finds its mask in its input.

Augmentation is the image family's: the same 256-scale affine maps and stroke dropout
(the same strokes dropped for the same seed), applied to the points.
"""

from __future__ import annotations

import numba
import numpy as np

from doodle.data.strokes import Drawings
from doodle.rendering.raster import dropout_fallback, stroke_u

FEATURES = ("x", "y", "dx", "dy", "pen_up")
TIME_FEATURES = (*FEATURES, "dt")
_DT_SCALE = 1 / 1000.0  # ms -> s
_DT_CAP = 10_000.0  # ms


def features(has_time: bool) -> tuple[str, ...]:
    """The per-point features of drawings with times (``dt`` added) or without."""
    return TIME_FEATURES if has_time else FEATURES


_CENTRE = 127.5
_POS_SCALE = 1 / 128.0  # 0..255 -> about -1..1
_STEP_SCALE = 1 / 32.0  # simplified strokes step ~5-40 px between points


@numba.njit(cache=True, nogil=True)
def _encode_kernel(xy, tm, stroke_offsets, drawing_offsets, idx, mats, drop_prob, drop_seed, out):
    seq_len = out.shape[1]
    timed = out.shape[2] == len(TIME_FEATURES)
    for b in range(idx.shape[0]):
        d = idx[b]
        s0, s1 = drawing_offsets[d], drawing_offsets[d + 1]
        seed = drop_seed[b]
        keep = s0 + dropout_fallback(seed, s1 - s0, drop_prob)
        m00, m01, m02 = mats[b, 0, 0], mats[b, 0, 1], mats[b, 0, 2]
        m10, m11, m12 = mats[b, 1, 0], mats[b, 1, 1], mats[b, 1, 2]
        n = 0
        px, py, pt = 0.0, 0.0, 0.0
        for s in range(s0, s1):
            if n == seq_len:
                break
            if drop_prob > 0.0 and s != keep and stroke_u(seed, s - s0) < drop_prob:
                continue
            a, e = stroke_offsets[s], stroke_offsets[s + 1]
            for k in range(a, e):
                if n == seq_len:
                    break
                x0, y0 = float(xy[k, 0]), float(xy[k, 1])
                x = m00 * x0 + m01 * y0 + m02
                y = m10 * x0 + m11 * y0 + m12
                out[b, n, 0] = (x - _CENTRE) * _POS_SCALE
                out[b, n, 1] = (y - _CENTRE) * _POS_SCALE
                if n > 0:
                    out[b, n, 2] = (x - px) * _STEP_SCALE
                    out[b, n, 3] = (y - py) * _STEP_SCALE
                out[b, n, 4] = 1.0 if k == e - 1 else 0.0
                if timed:
                    tk = float(tm[k])
                    if n > 0:
                        out[b, n, 5] = min(max(tk - pt, 0.0), _DT_CAP) * _DT_SCALE
                    pt = tk
                px, py = x, y
                n += 1
        if n > 0:
            out[b, n - 1, 4] = 1.0  # a truncated drawing ends with the pen up too


_IDENTITY = np.array([[1, 0, 0], [0, 1, 0]], np.float32)


def kernel_inputs(
    drawings: Drawings,
    idx: np.ndarray | None,
    affine: np.ndarray | None,
    drop_seed: np.ndarray | None,
    timed: bool,
) -> tuple:
    """The arrays a point family's encoding kernel reads, in its argument order up to the
    dropout probability: ``(xy, t, stroke_offsets, drawing_offsets, idx, affine maps)``, and
    the per-drawing dropout seeds (shared by this module and :mod:`doodle.models.strokegrid`)."""
    idx = np.arange(len(drawings)) if idx is None else np.asarray(idx, np.int64)
    n = len(idx)
    mats = (
        np.broadcast_to(_IDENTITY, (n, 2, 3)) if affine is None else np.asarray(affine, np.float32)
    )
    seeds = np.zeros(n, np.uint64) if drop_seed is None else np.asarray(drop_seed, np.uint64)
    xy = np.asarray(drawings.xy)
    if timed:
        tm = np.asarray(drawings.t)
    else:  # unused; writeable exactly when xy is, so no extra specialisation is compiled
        tm = np.zeros(1, np.uint16)
        tm.flags.writeable = xy.flags.writeable
    arrays = (
        xy,
        tm,
        np.asarray(drawings.stroke_offsets),
        np.asarray(drawings.drawing_offsets),
        idx,
        np.ascontiguousarray(mats),
    )
    return arrays, seeds


def encode(
    drawings: Drawings,
    idx: np.ndarray | None,
    seq_len: int,
    affine: np.ndarray | None = None,
    drop_prob: float = 0.0,
    drop_seed: np.ndarray | None = None,
) -> np.ndarray:
    """Drawings ``idx`` (all when None) -> ``(n, seq_len, len(features(has_time)))`` float32,
    with the ``dt`` feature when the drawings have times.

    ``affine``: ``(n, 2, 3)`` maps of 256-scale points (see :mod:`doodle.rendering.augment`);
    ``drop_prob``/``drop_seed``: stroke dropout, one seed per drawing.
    """
    if seq_len < 2:
        raise ValueError(f"seq_len must be at least 2, got {seq_len}")
    arrays, seeds = kernel_inputs(drawings, idx, affine, drop_seed, drawings.has_time)
    out = np.zeros((len(seeds), int(seq_len), len(features(drawings.has_time))), np.float32)
    _encode_kernel(*arrays, float(drop_prob), seeds, out)
    return out
