"""Fast stroke rendering: packed drawings -> uint8 images, one numba call per batch.

Drawings are rasterised straight at the target size from the flat stroke arrays of
:mod:`doodle.data.strokes` (which may be a memory-mapped shard; nothing is gathered or copied).
Every segment is a thick anti-aliased line: a pixel's coverage comes from the distance ``d``
of its centre to the segment (a capsule, so joints and ends are round and a one-point
stroke is a dot), ``coverage = clip((halfwidth + ramp / 2 - d) / ramp, 0, 1)``, with the
edge ``ramp`` tuned to match the reference (cv2 at 256 then bilinear resize; see
:func:`_edge_ramp`). Coordinates are at 256 scale; target pixel ``i`` covers source pixels
``i * 256 / size ...``, so ``x_px = (x + 0.5) * size / 256 - 0.5``. ``line_width`` 6 draws
like ``cv2.line(thickness=6)``, whose band is 7 source pixels wide. Against that reference
(``benchmarks/reference.py``) the mean absolute difference on the real sample is ~1.1 grey
levels at 64 and 128 px; the reference draws nothing for one-point strokes, we draw a dot.

Compositing follows ``cv2.line`` drawing order: within a stroke the segments form one shape
(a pixel keeps the largest coverage of the stroke's segments), and each stroke is
alpha-blended over what is already there, ``v = v * (1 - c) + colour * c``, so later
strokes cover earlier ones.

Encodings (``encoding``, :data:`ENCODINGS`), all on a black background:

* ``grey`` (1 channel): the reference kernels' stroke-order grey, stroke ``k`` (0-based
  within the drawing) in ``255 - min(k, 10) * 13``.
* ``order3`` (3 channels: where in the drawing's *order* a line was made, no time):

  - ch0: the grey stroke-order value above;
  - ch1: progress through the drawing's points, 255 at its first point falling linearly
    to 55 at its last (interpolated along each segment);
  - ch2: progress within the stroke, 255 at the stroke's first point to 55 at its last:
    the drawing direction of every stroke.
* ``time3`` (3 channels: *when* and how fast, from the per-point times of drawings made
  from Kaggle's raw files; in the spirit of the top solutions' delay / stroke-time channels):

  - ch0: the pause before the stroke (from the previous stroke's last point to its first;
    0 for the first stroke), ``255 - 100 * min(pause_s, 2)``: 255 without a pause, 55 at
    2 s or more (per stroke);
  - ch1: time since the drawing began, ``255 - 10 * min(t_s, 20)``: 255 at its first
    point, 55 at 20 s or later (the game's limit), interpolated along each segment;
  - ch2: pen speed over each segment, ``v`` = length (256-px scale, before augmentation) /
    max(time, 1 ms), as ``55 + 200 * clip(log2(v * 32) / 6, 0, 1)``: 55 at 1/32 px/ms or
    slower, 255 at 2 px/ms or faster (log scale: real strokes span that range; median
    0.24 px/ms -> 152).

  Real drawings: median length 6.1 s, median pause 0.44 s (BENCHMARKS.md, *Raw data*).

Augmentation happens inside the kernel, per drawing, before rasterising: an affine map of
the 256-scale coordinates, and stroke dropout decided by a hash of ``(seed, stroke index)``
(dropped strokes leave the colours of the others unchanged; at least one stroke is kept).

Speed: the kernel is single-threaded (input-pipeline workers run in parallel, one batch
each) and releases the GIL. Per capsule row it visits only a conservative run of pixels,
8 at a time; a stroke's coverage layer is blended along the same runs, never over a
bounding box. The 8-pixel primitives are explicit vector code (:mod:`doodle.rendering.simd`)
when it compiles on this numba/llvmlite, else plain numba loops doing the same float32
arithmetic (identical images, slower; ``FAST_PATH`` says which, ``DOODLE_RENDER=plain``
forces the fallback). The fast path's kernel is cached on disk for every later process;
:func:`warmup` loads or compiles it up front.

Why one module of ~540 lines: the kernel's geometry (capsule runs per row), compositing and
the fallback primitives work on the same padded row layout; the vector primitives, which
can break with a numba/llvmlite upgrade, are the part kept apart.
"""

from __future__ import annotations

import os
import warnings

import numba
import numpy as np

from doodle.config import IMG_SIZES
from doodle.data.strokes import Drawings, pack

MIN_SIZE, MAX_SIZE = IMG_SIZES  # params.yaml's img_size range (doodle/config.py)
BASE_SIZE = 256
# name -> (channels, kernel mode); ``train.encoding`` in params.yaml picks one.
ENCODINGS = {"grey": (1, 0), "order3": (3, 1), "time3": (3, 2)}  # time3 needs Drawings.t
_GREY, _ORDER3, _TIME3 = 0, 1, 2
# cv2.line(thickness=6) fills the pixels within 3 of the centre line *inclusive*: a band
# 7 source pixels wide. Our coverage model measures area, so it gets the same extra pixel.
_CV2_EXTRA_WIDTH = 1.0
# Pixels per vector block in the row loops (8 float32 = one AVX register); the layer rows
# are padded by one block so that a block never spills into the next row.
_LANES = 8  # must equal render_simd.LANES


def _edge_ramp(size: int) -> float:
    """Width (target pixels) of the anti-aliased edge.

    The reference resizes with cv2's bilinear filter, which at a downscale factor ``f``
    averages only 2 of every ``f`` source pixels: its footprint is ``2 * size / 256`` target
    pixels, sharper than an area average. An edge ramp of 0.8 x that footprint matched it
    best on the real sample (swept at 32..256 px); kept within [0.25, 1] pixel.
    """
    return min(1.0, max(0.25, 1.6 * size / BASE_SIZE))


def _check_size(img_size: int) -> int:
    if not isinstance(img_size, (int, np.integer)) or not MIN_SIZE <= img_size <= MAX_SIZE:
        raise ValueError(f"img_size must be an int in {MIN_SIZE}..{MAX_SIZE}, got {img_size!r}")
    return int(img_size)


@numba.njit(cache=True, nogil=True, inline="always")
def _mix64(z: np.uint64) -> np.uint64:
    # splitmix64 finaliser: cheap, well mixed, identical on every platform.
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@numba.njit(cache=True, nogil=True, inline="always")
def stroke_u(seed: np.uint64, t: int) -> float:
    """A uniform [0, 1) number for stroke ``t`` of the drawing with ``seed`` (stroke ``t``
    is dropped when it is below the dropout probability)."""
    z = _mix64(seed + np.uint64(t + 1) * np.uint64(0x9E3779B97F4A7C15))
    return float(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@numba.njit(cache=True, nogil=True, inline="always")
def _pause_colour(ms: float) -> float:
    return 255.0 - 100.0 * min(max(ms, 0.0) * 0.001, 2.0)


@numba.njit(cache=True, nogil=True, inline="always")
def _time_colour(ms: float) -> float:
    return 255.0 - 10.0 * min(ms * 0.001, 20.0)


@numba.njit(cache=True, nogil=True, inline="always")
def _speed_colour(dist: float, ms: float) -> float:
    v = dist / max(ms, 1.0)
    if v <= 0.0:
        return 55.0
    return 55.0 + 200.0 * min(max((np.log2(v) + 5.0) / 6.0, 0.0), 1.0)


@numba.njit(cache=True, nogil=True)
def dropout_fallback(seed: np.uint64, n_strokes: int, drop_prob: float) -> int:
    """The stroke kept whatever its hash when dropout would drop all ``n_strokes`` (the one
    with the largest hash), else a value no stroke has (-n_strokes - 1)."""
    if drop_prob <= 0.0:
        return -n_strokes - 1
    best, arg = -1.0, 0
    for t in range(n_strokes):
        u = stroke_u(seed, t)
        if u >= drop_prob:
            return -n_strokes - 1
        if u > best:
            best, arg = u, t
    return arg


# --- the per-pixel primitives: the vector fast path, or plain numba -------------------------
# Both do the same float32 operations in the same order, so they give identical images
# (tests/test_render.py compares them); the plain ones run at about a third of the speed.
@numba.njit(nogil=True, inline="always")
def _capsule1(px, py, dx, dy, inv_l2, r, inv_ramp):
    t = (px * dx + py * dy) * inv_l2
    t = t if t > _F0 else _F0
    t = t if t < _F1 else _F1
    ex = px - t * dx
    ey = py - t * dy
    c = (r - np.sqrt(ex * ex + ey * ey)) * inv_ramp
    return (c if c < _F1 else _F1), t


@numba.njit(nogil=True, inline="always")
def _cover8_plain(cov, q, px0, py, dx, dy, inv_l2, r, inv_ramp):
    for i in range(_LANES):
        c, _ = _capsule1(px0 + np.float32(i), py, dx, dy, inv_l2, r, inv_ramp)
        old = cov[q + i]
        cov[q + i] = c if c > old else old


@numba.njit(nogil=True, inline="always")
def _cover8_rgb_plain(cov, col1, col2, q, px0, py, dx, dy, inv_l2, r, inv_ramp, p1a, d1, p2a, d2):
    for i in range(_LANES):
        c, t = _capsule1(px0 + np.float32(i), py, dx, dy, inv_l2, r, inv_ramp)
        if c > cov[q + i]:
            col1[q + i] = p1a + d1 * t
            col2[q + i] = p2a + d2 * t
            cov[q + i] = c


@numba.njit(nogil=True, inline="always")
def _blend8_plain(acc, cov, q, g0):
    for i in range(_LANES):
        v = acc[q + i]
        acc[q + i] = v + (g0 - v) * cov[q + i]
        cov[q + i] = _F0


@numba.njit(nogil=True, inline="always")
def _blend8_rgb_plain(acc, cov, col1, col2, q, plane, g0):
    for i in range(_LANES):
        c = cov[q + i]
        v = acc[q + i]
        acc[q + i] = v + (g0 - v) * c
        v = acc[plane + q + i]
        acc[plane + q + i] = v + (col1[q + i] - v) * c
        v = acc[2 * plane + q + i]
        acc[2 * plane + q + i] = v + (col2[q + i] - v) * c
        cov[q + i] = _F0


def _choose_primitives() -> tuple:
    """The vector fast path if it compiles here (``DOODLE_RENDER=plain`` forces the
    fallback), else the plain-numba primitives with a one-line warning."""
    if os.environ.get("DOODLE_RENDER", "").lower() == "plain":
        return False, (_cover8_plain, _cover8_rgb_plain, _blend8_plain, _blend8_rgb_plain)
    try:
        from doodle.rendering import simd as render_simd

        render_simd.probe()
        return True, (
            render_simd.cover8,
            render_simd.cover8_rgb,
            render_simd.blend8,
            render_simd.blend8_rgb,
        )
    except Exception as e:  # noqa: BLE001 - any failure to build the vector code
        warnings.warn(
            f"render: the vector fast path does not compile here ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}); using the plain-numba renderer "
            "(identical images, about 3x slower)",
            RuntimeWarning,
            stacklevel=2,
        )
        return False, (_cover8_plain, _cover8_rgb_plain, _blend8_plain, _blend8_rgb_plain)


_F0, _F1 = np.float32(0.0), np.float32(1.0)
FAST_PATH, (_cover8, _cover8_rgb, _blend8, _blend8_rgb) = _choose_primitives()
# The kernels below are compiled against whichever primitives were chosen; only the fast
# path's are cached on disk (a forced fallback must never load a cached fast kernel).
_kernel_jit = numba.njit(cache=FAST_PATH, nogil=True)


@_kernel_jit
def _segment(
    cov,
    col1,
    col2,
    spans,
    n_spans,
    size,
    stride,
    nch,
    ax,
    ay,
    bx,
    by,
    r,
    inv_ramp,
    p1a,
    p1b,
    p2a,
    p2b,
):
    """Raise the stroke layer ``cov`` to the coverage of the capsule (a, b) (target pixels).

    ``r`` is the radius where coverage reaches 0; it rises by ``inv_ramp`` per pixel inwards,
    up to 1. With ``nch == 3``, ``col1``/``col2`` take the colour of the segment that covers
    a pixel most; that colour runs linearly from ``p?a`` at ``a`` to ``p?b`` at ``b``.
    Each row's run (start, blocks) is appended to ``spans`` for the composite; returns the
    new run count (``spans`` must have room for ``size`` more).
    """
    dx = bx - ax
    dy = by - ay
    l2 = dx * dx + dy * dy
    inv_l2 = 1.0 / l2 if l2 > 1e-12 else 0.0
    ymin = min(ay, by)
    ymax = max(ay, by)
    # Clamp before int conversion: affine-augmented points may lie far off the canvas.
    y_lo = int(max(0.0, min(np.ceil(ymin - r), size)))
    y_hi = int(min(size - 1.0, max(np.floor(ymax + r), -1.0)))
    steep = abs(dy) > 1e-9
    slope = dx / dy if steep else 0.0
    xmin_seg = min(ax, bx)
    xmax_seg = max(ax, bx)
    f32 = np.float32
    fdx, fdy, finv_l2, fr, finv_ramp = f32(dx), f32(dy), f32(inv_l2), f32(r), f32(inv_ramp)
    fp1a, fd1, fp2a, fd2 = f32(p1a), f32(p1b - p1a), f32(p2a), f32(p2b - p2a)
    for yi in range(y_lo, y_hi + 1):
        y = float(yi)
        # x range of the centre line within rows y +- r, widened by r: a tight
        # conservative span of the capsule on this row (no bounding-box scan).
        if steep:
            ya = max(y - r, ymin)
            yb = min(y + r, ymax)
            xa = ax + (ya - ay) * slope
            xb = ax + (yb - ay) * slope
            lo = min(xa, xb) - r
            hi = max(xa, xb) + r
        else:
            lo = xmin_seg - r
            hi = xmax_seg + r
        x_lo = int(max(0.0, min(np.ceil(lo), size)))
        x_hi = int(min(size - 1.0, max(np.floor(hi), -1.0)))
        if x_lo > x_hi:
            continue
        # Whole blocks; pixels outside the capsule (block tails in the row padding included)
        # get coverage <= 0 and leave the layer unchanged.
        n_blk = (x_hi - x_lo + _LANES) // _LANES
        p0 = yi * stride + x_lo
        spans[n_spans, 0] = p0
        spans[n_spans, 1] = n_blk
        n_spans += 1
        py = f32(y - ay)
        for k in range(n_blk):
            px0 = f32(x_lo + k * _LANES - ax)
            if nch == 1:
                _cover8(cov, p0 + k * _LANES, px0, py, fdx, fdy, finv_l2, fr, finv_ramp)
            else:
                _cover8_rgb(
                    cov,
                    col1,
                    col2,
                    p0 + k * _LANES,
                    px0,
                    py,
                    fdx,
                    fdy,
                    finv_l2,
                    fr,
                    finv_ramp,
                    fp1a,
                    fd1,
                    fp2a,
                    fd2,
                )
    return n_spans


@_kernel_jit
def _composite(acc, cov, col1, col2, spans, n_spans, nch, g0):
    """Blend the stroke layer over the canvas ``acc`` (``v += (colour - v) * cov``) along the
    stroke's runs, clearing the layer as it goes (so a pixel in two runs is blended once)."""
    plane = cov.shape[0]
    for i in range(n_spans):
        p0 = spans[i, 0]
        for k in range(spans[i, 1]):
            if nch == 1:
                _blend8(acc, cov, p0 + k * _LANES, g0)
            else:
                _blend8_rgb(acc, cov, col1, col2, p0 + k * _LANES, plane, g0)


@_kernel_jit
def _store(img, acc, size, stride, nch):
    """Round the float canvas into the uint8 image (H, W, nch) and clear the canvas."""
    plane = size * stride
    half = np.float32(0.5)
    for y in range(size):
        src = acc[y * stride : y * stride + size]
        dst = img[y * size * nch : (y + 1) * size * nch]
        if nch == 1:
            for x in range(size):
                dst[x] = np.uint8(src[x] + half)
        else:
            src1 = acc[plane + y * stride : plane + y * stride + size]
            src2 = acc[2 * plane + y * stride : 2 * plane + y * stride + size]
            for x in range(size):
                dst[3 * x] = np.uint8(src[x] + half)
                dst[3 * x + 1] = np.uint8(src1[x] + half)
                dst[3 * x + 2] = np.uint8(src2[x] + half)
    acc[:] = 0.0


@_kernel_jit
def _render_kernel(
    xy,
    tm,
    stroke_offsets,
    drawing_offsets,
    idx,
    size,
    mode,
    hw,
    ramp,
    mats,
    drop_prob,
    drop_seed,
    out,
):
    """Render drawings ``idx`` into ``out`` (B, size, size, nch) in encoding ``mode``
    (``_GREY``, ``_ORDER3``, ``_TIME3``: ``tm`` holds the points' times, else it is unused);
    ``mats`` (B, 2, 3) maps 256-scale points straight to target pixel coordinates."""
    nch = 1 if mode == _GREY else 3
    nb = idx.shape[0]
    flat = out.reshape((nb, size * size * nch))
    # The stroke being drawn lives in a coverage layer (max over its segments, so joints are
    # not drawn twice) that is blended into a float canvas when the stroke ends; the canvas
    # is rounded into ``out`` once per drawing. Rows are padded by a block (see _LANES).
    stride = size + _LANES
    plane = size * stride
    cov = np.zeros(plane, np.float32)
    col1 = np.zeros(plane if nch == 3 else 1, np.float32)
    col2 = np.zeros(plane if nch == 3 else 1, np.float32)
    acc = np.zeros(plane * nch, np.float32)
    spans = np.empty((16 * size, 2), np.int64)
    r = hw + 0.5 * ramp  # coverage reaches 0 at this distance from the centre line
    inv_ramp = 1.0 / ramp
    for b in range(nb):
        d = idx[b]
        s0 = drawing_offsets[d]
        s1 = drawing_offsets[d + 1]
        m00 = mats[b, 0, 0]
        m01 = mats[b, 0, 1]
        m02 = mats[b, 0, 2]
        m10 = mats[b, 1, 0]
        m11 = mats[b, 1, 1]
        m12 = mats[b, 1, 2]
        seed = drop_seed[b]
        keep_fallback = s0 + dropout_fallback(seed, s1 - s0, drop_prob)
        p_first = stroke_offsets[s0]
        n_pts = stroke_offsets[s1] - p_first
        inv_pts = 200.0 / (n_pts - 1) if n_pts > 1 else 0.0
        for s in range(s0, s1):
            t = s - s0
            if drop_prob > 0.0 and s != keep_fallback and stroke_u(seed, t) < drop_prob:
                continue
            a = stroke_offsets[s]
            e = stroke_offsets[s + 1]
            if e <= a:
                continue
            inv_s = 200.0 / (e - a - 1) if e - a > 1 else 0.0
            x = float(xy[a, 0])
            y = float(xy[a, 1])
            ax = m00 * x + m01 * y + m02
            ay = m10 * x + m11 * y + m12
            n_spans = 0
            if mode == _TIME3:
                g0 = _pause_colour(float(tm[a]) - float(tm[a - 1])) if s > s0 else 255.0
                p1a = _time_colour(float(tm[a]))
                dot2 = 55.0  # a dot has no speed
            else:
                g0 = 255.0 - min(t, 10) * 13.0
                p1a = 255.0 - (a - p_first) * inv_pts
                dot2 = 255.0
            if e - a == 1:  # a one-point stroke is a dot
                n_spans = _segment(
                    cov,
                    col1,
                    col2,
                    spans,
                    0,
                    size,
                    stride,
                    nch,
                    ax,
                    ay,
                    ax,
                    ay,
                    r,
                    inv_ramp,
                    p1a,
                    p1a,
                    dot2,
                    dot2,
                )
            for k in range(a + 1, e):
                x = float(xy[k, 0])
                y = float(xy[k, 1])
                bx = m00 * x + m01 * y + m02
                by = m10 * x + m11 * y + m12
                if mode == _TIME3:
                    p1b = _time_colour(float(tm[k]))
                    dist = np.hypot(x - float(xy[k - 1, 0]), y - float(xy[k - 1, 1]))
                    p2a = _speed_colour(dist, float(tm[k]) - float(tm[k - 1]))
                    p2b = p2a
                else:
                    p1b = 255.0 - (k - p_first) * inv_pts
                    p2a = 255.0 - (k - 1 - a) * inv_s
                    p2b = 255.0 - (k - a) * inv_s
                if n_spans + size > spans.shape[0]:  # long stroke: grow the run list
                    grown = np.empty((2 * spans.shape[0], 2), np.int64)
                    grown[:n_spans] = spans[:n_spans]
                    spans = grown
                n_spans = _segment(
                    cov,
                    col1,
                    col2,
                    spans,
                    n_spans,
                    size,
                    stride,
                    nch,
                    ax,
                    ay,
                    bx,
                    by,
                    r,
                    inv_ramp,
                    p1a,
                    p1b,
                    p2a,
                    p2b,
                )
                ax = bx
                ay = by
                p1a = p1b
            _composite(acc, cov, col1, col2, spans, n_spans, nch, np.float32(g0))
        _store(flat[b], acc, size, stride, nch)
    return out


def _target_mats(affine: np.ndarray | None, n: int, img_size: int) -> np.ndarray:
    """Fold the 256-scale affine and the 256 -> target pixel mapping into one (n, 2, 3)."""
    s = img_size / BASE_SIZE
    if affine is None:
        m = np.zeros((n, 2, 3), np.float64)
        m[:, 0, 0] = m[:, 1, 1] = s
        m[:, :, 2] = 0.5 * s - 0.5
        return m
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (n, 2, 3):
        raise ValueError(f"affine must have shape ({n}, 2, 3), got {a.shape}")
    # Finite and moderate, so that every coordinate stays finite in float32 lane arithmetic.
    if not (np.abs(a) < 1e6).all():
        raise ValueError("affine entries must be finite and below 1e6 in magnitude")
    m = a * s
    m[:, :, 2] += 0.5 * s - 0.5
    return m


def render(
    drawings: Drawings,
    idx: np.ndarray | None,
    img_size: int,
    encoding: str,
    line_width: float,
    affine: np.ndarray | None = None,
    drop_prob: float = 0.0,
    drop_seed: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Render drawings ``idx`` of ``drawings`` -> uint8 ``(B, img_size, img_size, C)``.

    ``encoding`` is one of :data:`ENCODINGS` (``C`` = 1 for grey, else 3; ``time3`` needs
    drawings with times). ``idx=None`` renders all drawings. ``line_width`` is at 256 scale.
    ``affine`` (B, 2, 3) maps 256-scale ``(x, y, 1)`` to new 256-scale coordinates.
    ``drop_prob`` drops each stroke with that probability, decided by a hash of
    ``(drop_seed[b], stroke index)`` (``drop_seed`` (B,) uint64 is required then). ``out`` is
    an optional C-contiguous uint8 buffer of the output shape to render into.
    Deterministic: same inputs, same bytes.
    """
    size = _check_size(img_size)
    if not 0.0 < line_width <= BASE_SIZE:
        raise ValueError(f"line_width must be in (0, {BASE_SIZE}], got {line_width!r}")
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
    channels, mode = ENCODINGS[encoding]
    if mode == _TIME3 and drawings.t is None:
        raise ValueError(
            "encoding time3 draws per-point times, and these drawings have none (made from "
            "simplified files; shard Kaggle's raw files: train_raw + test_raw.csv)"
        )
    n_all = len(drawings)
    if idx is None:
        idx = np.arange(n_all, dtype=np.int64)
    else:
        idx = np.ascontiguousarray(idx, dtype=np.int64).reshape(-1)
        if len(idx) and (idx.min() < 0 or idx.max() >= n_all):
            raise IndexError(f"idx out of range for {n_all} drawings")
    nb = len(idx)
    shape = (nb, size, size, channels)
    if out is None:
        out = np.empty(shape, np.uint8)
    elif out.shape != shape or out.dtype != np.uint8 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous uint8 array of shape {shape}")
    if not 0.0 <= drop_prob <= 1.0:
        raise ValueError(f"drop_prob must be in [0, 1], got {drop_prob!r}")
    if drop_prob > 0.0:
        if drop_seed is None:
            raise ValueError("drop_prob > 0 needs drop_seed (B,) uint64")
        seeds = np.ascontiguousarray(drop_seed).astype(np.uint64, copy=False).reshape(-1)
        if len(seeds) != nb:
            raise ValueError(f"drop_seed has {len(seeds)} values for {nb} drawings")
    else:
        seeds = np.zeros(nb, np.uint64)
    hw = 0.5 * (line_width + _CV2_EXTRA_WIDTH) * size / BASE_SIZE
    # np.asarray turns a memmap into a plain ndarray view (no copy) for numba.
    xy = np.asarray(drawings.xy, dtype=np.uint8)
    _render_kernel(
        xy,
        _times(drawings, mode, xy.flags.writeable),
        np.asarray(drawings.stroke_offsets, dtype=np.int64),
        np.asarray(drawings.drawing_offsets, dtype=np.int64),
        idx,
        size,
        mode,
        float(hw),
        _edge_ramp(size),
        _target_mats(affine, nb, size),
        float(drop_prob),
        seeds,
        out,
    )
    return out


_NO_TIMES = np.zeros(1, np.uint16)
_NO_TIMES_RO = np.zeros(1, np.uint16)
_NO_TIMES_RO.flags.writeable = False


def _times(drawings: Drawings, mode: int, writeable: bool) -> np.ndarray:
    """The times the kernel reads: the drawings' own for time3, else a stand-in that is
    writeable exactly when ``xy`` is (so no extra kernel specialisation is compiled)."""
    if mode == _TIME3:
        return np.asarray(drawings.t, dtype=np.uint16)
    return _NO_TIMES if writeable else _NO_TIMES_RO


def warmup() -> None:
    """Compile the kernel (or load it from numba's on-disk cache), so that timed batches carry
    no JIT cost: for in-memory arrays and for read-only ones (memory-mapped shards)."""
    d = pack([[([10, 200], [20, 220])], [([5], [5])]])
    d.t = np.array([0, 400, 900], np.uint16)
    seeds = np.arange(2, dtype=np.uint64)
    for arrays in (
        d,
        Drawings(*(_readonly(a) for a in (d.xy, d.stroke_offsets, d.drawing_offsets, d.t))),
    ):
        for encoding in ENCODINGS:  # any line width: this only compiles
            render(arrays, None, MIN_SIZE, encoding, 6.0)
        render(arrays, None, MIN_SIZE, "order3", 6.0, drop_prob=0.5, drop_seed=seeds)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flags.writeable = False
    return a
