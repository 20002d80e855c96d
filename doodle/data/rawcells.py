"""Kaggle's raw drawings: a compiled scanner for their cells and Google's simplification.

A raw cell is JSON, one ``[[x0, ...], [y0, ...], [t0, ...]]`` per stroke: screen coordinates as
the app recorded them (ints or floats, negative too, floats written with all their digits) and
milliseconds since the drawing's first point. :func:`parse_raw_many` turns many cells into
:class:`~doodle.data.strokes.Drawings` *with times*, simplified the way Google made the simplified
files (the recipe published with the Quick, Draw! dataset):

1. shift so the smallest x and the smallest y are 0;
2. scale uniformly so the larger extent is 255 (``v * 255 / extent``);
3. resample every stroke at 1 px: a point every 1.0 of arc length from the stroke's first
   point, plus its last point (``numpy.interp`` over the cumulative length, bit for bit);
4. Ramer-Douglas-Peucker on each resampled stroke, epsilon 2.0 (distance to the chord's line);
5. round to int (half to even); a stroke left with one point is kept as two identical points
   (timed at the stroke's first and last point).

Every kept point keeps its time, interpolated along the stroke like x and y, rounded to the
millisecond, relative to the drawing's first point, as uint16 (a drawing's times saturate at
65,535 ms; counted). On the real raw sample this gives Google's own simplified drawing exactly
for about 95% of the drawings (BENCHMARKS.md, *Raw data*); the rest differ by a pixel here and
there, where a resampled point falls on the other side of a rounding or RDP threshold.

Bad cells are reported like bad simplified ones (:class:`~doodle.data.strokes.DrawingError` with a
fixed reason), and two defects are *repaired and counted* instead (:data:`REPAIRS`):

* ``time_backwards``: a time smaller than one before it in the drawing. Real drawings do this
  (5 of the 6,688 of the raw sample step back inside a stroke, by 1-443 ms); their points are
  fine, so the drawing is kept and its times made non-decreasing (each time raised to the
  largest one before it);
* ``time_clamped``: a time beyond 65,535 ms after the drawing's first point, stored as 65,535.

Speed: the scanner reads ints and floats (sign, fraction, exponent; up to 18 significant digits,
converted exactly as ``float()`` does, see :func:`_scale10`) straight into flat arrays; a cell it
does not accept goes through ``json.loads`` (:func:`parse_raw_drawing`), which gives the precise
reason or reads what JSON allows; then one compiled pass simplifies every drawing. No Python
runs per drawing unless its cell is unusual.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from doodle.data.strokes import (
    BAD_JSON,
    EMPTY_DRAWING,
    EMPTY_STROKE,
    NON_NUMERIC,
    NOT_A_DRAWING,
    OUT_OF_RANGE,
    T_MAX,
    XY_MISMATCH,
    DrawingError,
    Drawings,
    offsets,
)

T_MISMATCH = "time_length_mismatch"
RAW_REASONS = (
    BAD_JSON,
    NOT_A_DRAWING,
    EMPTY_DRAWING,
    EMPTY_STROKE,
    XY_MISMATCH,
    T_MISMATCH,
    NON_NUMERIC,
    OUT_OF_RANGE,
)
# Defects repaired (and counted, and listed) rather than skipped.
TIME_BACKWARDS = "time_backwards"
TIME_CLAMPED = "time_clamped"
REPAIRS = (TIME_BACKWARDS, TIME_CLAMPED)
EPSILON = 2.0  # RDP tolerance, in pixels of the 0..255 box
STEP = 1.0  # resampling step, same unit
COORD_LIMIT = 1e9  # |x|, |y| beyond this is not a screen coordinate (and would lose precision)
TIME_LIMIT = 1e15  # |t| beyond this (ms, ~30,000 years) is not a time

# Per-drawing status of the compiled passes.
_OK, _FALLBACK, _RANGE, _NONFINITE = 0, 1, 2, 3
_REPAIR_BACKWARDS, _REPAIR_CLAMPED = 1, 2


# -- the scanner --------------------------------------------------------------------------------
_LBR, _RBR, _COMMA, _ZERO, _NINE, _MINUS, _DOT = 91, 93, 44, 48, 57, 45, 46
_POW10 = np.array([10.0**k for k in range(23)])  # exact doubles
_TWO53 = 2**53
_MAX_DIGITS = 18  # significant digits the scanner takes (10**18 < 2**63)


@numba.njit(cache=True, nogil=True, inline="always")
def _ws(buf, i, end):
    while i < end and (buf[i] == 32 or buf[i] == 9 or buf[i] == 10 or buf[i] == 13):
        i += 1
    return i


@numba.njit(cache=True, nogil=True, inline="always")
def _two_prod(a, b):
    """``a * b`` as ``p + e`` exactly (Dekker's product, no FMA needed)."""
    p = a * b
    c = 134217729.0 * a  # 2**27 + 1
    ah = c - (c - a)
    al = a - ah
    c = 134217729.0 * b
    bh = c - (c - b)
    bl = b - bh
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, e


@numba.njit(cache=True, nogil=True)
def _scale10(m, e):
    """``m * 10**e`` as the nearest double, for an int ``0 <= m < 10**18``: (value, ok).

    Below 2**53 with ``|e| <= 22`` both factors are exact doubles and one IEEE operation
    rounds correctly; above, ``m`` is split into two doubles and the quotient (product)
    corrected by its exact residual (double-double), which rounds as ``float()`` does on every
    value tests/test_rawstrokes.py tries. Larger exponents are left to ``json.loads``.
    """
    if m == 0:
        return 0.0, True
    if e < -22 or e > 22:
        return 0.0, False
    if m < _TWO53:
        if e >= 0:
            return float(m) * _POW10[e], True
        return float(m) / _POW10[-e], True
    hi = float(m)
    lo = float(m - np.int64(hi))
    if e >= 0:
        p, err = _two_prod(hi, _POW10[e])
        return p + (err + lo * _POW10[e]), True
    d = _POW10[-e]
    q = hi / d
    p, err = _two_prod(q, d)
    r = ((hi - p) - err) + lo
    return q + r / d, True


@numba.njit(cache=True, nogil=True)
def _number(buf, i, end):
    """A JSON number at ``i``: (next index, value, ok)."""
    neg = False
    if i < end and buf[i] == _MINUS:
        neg = True
        i += 1
    if i >= end or buf[i] < _ZERO or buf[i] > _NINE:
        return i, 0.0, False
    if buf[i] == _ZERO and i + 1 < end and _ZERO <= buf[i + 1] <= _NINE:
        return i, 0.0, False  # a leading zero is not JSON
    m = np.int64(0)
    nd = 0
    e = 0
    while i < end and _ZERO <= buf[i] <= _NINE:
        d = buf[i] - _ZERO
        if nd < _MAX_DIGITS:
            if m != 0 or d != 0:
                m = m * 10 + d
                nd += 1
        else:
            e += 1  # more integer digits than we keep: only exact if they are zeros
            if d != 0:
                return i, 0.0, False
        i += 1
    if i < end and buf[i] == _DOT:
        i += 1
        if i >= end or buf[i] < _ZERO or buf[i] > _NINE:
            return i, 0.0, False
        while i < end and _ZERO <= buf[i] <= _NINE:
            d = buf[i] - _ZERO
            if m == 0 and d == 0:
                e -= 1
            elif nd < _MAX_DIGITS:
                m = m * 10 + d
                nd += 1
                e -= 1
            elif d != 0:
                return i, 0.0, False  # too many significant digits: json.loads decides
            i += 1
    if i < end and (buf[i] == 101 or buf[i] == 69):  # e E
        i += 1
        esign = 1
        if i < end and (buf[i] == 43 or buf[i] == _MINUS):
            esign = -1 if buf[i] == _MINUS else 1
            i += 1
        if i >= end or buf[i] < _ZERO or buf[i] > _NINE:
            return i, 0.0, False
        x = 0
        while i < end and _ZERO <= buf[i] <= _NINE:
            if x < 100000:
                x = x * 10 + (buf[i] - _ZERO)
            i += 1
        e += esign * x
    v, ok = _scale10(m, e)
    return i, -v if neg else v, ok


@numba.njit(cache=True, nogil=True)
def _number_list(buf, i, end, vals, base, col):
    """``[number, ...]`` at ``i`` into ``vals[base:, col]``: (next index, count, ok)."""
    i = _ws(buf, i, end)
    if i >= end or buf[i] != _LBR:
        return i, 0, False
    i = _ws(buf, i + 1, end)
    n = 0
    if i < end and buf[i] == _RBR:
        return i + 1, 0, True
    while True:
        if base + n >= vals.shape[0]:
            return i, n, False
        i, v, ok = _number(buf, i, end)
        if not ok:
            return i, n, False
        vals[base + n, col] = v
        n += 1
        i = _ws(buf, i, end)
        if i < end and buf[i] == _COMMA:
            i = _ws(buf, i + 1, end)
        elif i < end and buf[i] == _RBR:
            return i + 1, n, True
        else:
            return i, n, False


@numba.njit(cache=True, nogil=True)
def _scan(buf, bounds, vals, stroke_len, n_strokes, status):
    """Read every cell ``buf[bounds[d]:bounds[d + 1]]`` of the strict raw shape into ``vals``
    (x, y, t per point); ``status[d]`` is ``_FALLBACK`` where the shape was not found (its slot
    then holds no strokes). Returns (points, strokes)."""
    n_pts = 0
    n_str = 0
    for d in range(len(bounds) - 1):
        i, end = bounds[d], bounds[d + 1]
        p0, s0 = n_pts, n_str
        good = True
        ns = 0
        i = _ws(buf, i, end)
        if i >= end or buf[i] != _LBR:
            good = False
        i += 1
        while good:
            i = _ws(buf, i, end)
            if i >= end or buf[i] != _LBR:
                good = False
                break
            i, nx, good = _number_list(buf, i + 1, end, vals, n_pts, 0)
            if not good or nx == 0:
                good = False
                break
            i = _ws(buf, i, end)
            if i >= end or buf[i] != _COMMA:
                good = False
                break
            i, ny, good = _number_list(buf, i + 1, end, vals, n_pts, 1)
            if not good or ny != nx:
                good = False
                break
            i = _ws(buf, i, end)
            if i >= end or buf[i] != _COMMA:
                good = False
                break
            i, nt, good = _number_list(buf, i + 1, end, vals, n_pts, 2)
            if not good or nt != nx:
                good = False
                break
            i = _ws(buf, i, end)
            if i >= end or buf[i] != _RBR:
                good = False
                break
            stroke_len[n_str] = nx
            n_str += 1
            n_pts += nx
            ns += 1
            i = _ws(buf, i + 1, end)
            if i < end and buf[i] == _COMMA:
                i += 1
            elif i < end and buf[i] == _RBR:
                i = _ws(buf, i + 1, end)
                good = i == end  # nothing after the drawing
                break
            else:
                good = False
        if good and ns > 0:
            n_strokes[d] = ns
            status[d] = _OK
        else:
            n_pts, n_str = p0, s0
            n_strokes[d] = 0
            status[d] = _FALLBACK
    return n_pts, n_str


# -- the precise path ---------------------------------------------------------------------------
RawStroke = tuple[list[float], list[float], list[float]]


def _check_value(v: object, what: str, stroke: int) -> None:
    # bool is an int subclass; json.loads also reads NaN and Infinity, which are no numbers here.
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise DrawingError(NON_NUMERIC, f"stroke {stroke}: {what} value {v!r}")
    limit = TIME_LIMIT if what == "time" else COORD_LIMIT
    if abs(v) > limit:
        raise DrawingError(OUT_OF_RANGE, f"stroke {stroke}: {what} value {v!r} beyond {limit:g}")


def parse_raw_drawing(text: str) -> list[RawStroke]:
    """Parse one raw ``drawing`` cell (JSON, never eval) into validated ``(xs, ys, ts)``."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError, RecursionError) as e:
        raise DrawingError(BAD_JSON, str(e)) from None
    if not isinstance(data, list):
        raise DrawingError(NOT_A_DRAWING, f"top level is {type(data).__name__}, not a list")
    if not data:
        raise DrawingError(EMPTY_DRAWING)
    strokes: list[RawStroke] = []
    for i, stroke in enumerate(data):
        if not isinstance(stroke, list) or not all(isinstance(c, list) for c in stroke):
            raise DrawingError(NOT_A_DRAWING, f"stroke {i} is not [[xs], [ys], [ts]]")
        if len(stroke) != 3:
            raise DrawingError(
                NOT_A_DRAWING,
                f"stroke {i} has {len(stroke)} lists; a raw stroke is [[xs], [ys], [ts]]"
                + (" (simplified data in a raw file?)" if len(stroke) == 2 else ""),
            )
        xs, ys, ts = stroke
        if len(xs) != len(ys):
            raise DrawingError(XY_MISMATCH, f"stroke {i}: {len(xs)} x vs {len(ys)} y")
        if len(ts) != len(xs):
            raise DrawingError(T_MISMATCH, f"stroke {i}: {len(xs)} points vs {len(ts)} times")
        if not xs:
            raise DrawingError(EMPTY_STROKE, f"stroke {i}")
        for what, values in (("x", xs), ("y", ys), ("time", ts)):
            for v in values:
                if v.__class__ is not int or abs(v) > COORD_LIMIT:
                    _check_value(v, what, i)
        strokes.append((xs, ys, ts))
    return strokes


# -- the simplification -------------------------------------------------------------------------
@numba.njit(cache=True, nogil=True)
def _resample(pts, n, work):
    """Stroke ``pts[:n]`` (x, y, t) resampled every ``STEP`` of arc length into ``work``
    (as ``numpy.interp(arange(0, total + 1e-12, STEP), cumlen, column)``, plus the last point
    when that differs), given the cumulative length at each input point in ``work[:n, 3]``;
    returns the resampled count (``work`` has room)."""
    cum = work[:, 3]
    total = cum[n - 1]
    count = int(math.ceil(total + 1e-12))
    j = 0
    m = 0
    for k in range(count):
        s = k * STEP
        while j + 1 < n and cum[j + 1] <= s:
            j += 1
        if j == n - 1 or cum[j] == s:
            work[m, 0] = pts[j, 0]
            work[m, 1] = pts[j, 1]
            work[m, 2] = pts[j, 2]
        else:
            dx = cum[j + 1] - cum[j]
            u = s - cum[j]
            for c in range(3):
                slope = (pts[j + 1, c] - pts[j, c]) / dx
                work[m, c] = slope * u + pts[j, c]
        m += 1
    if work[m - 1, 0] != pts[n - 1, 0] or work[m - 1, 1] != pts[n - 1, 1]:
        work[m, 0] = pts[n - 1, 0]
        work[m, 1] = pts[n - 1, 1]
        work[m, 2] = pts[n - 1, 2]
        m += 1
    return m


@numba.njit(cache=True, nogil=True)
def _rdp(work, n, keep, stack):
    """Ramer-Douglas-Peucker on ``work[:n]`` (x, y): ``keep[:n]`` marks the points kept."""
    keep[:n] = False
    keep[0] = True
    keep[n - 1] = True
    top = 0
    stack[0, 0] = 0
    stack[0, 1] = n - 1
    top = 1
    while top > 0:
        top -= 1
        a = stack[top, 0]
        b = stack[top, 1]
        if b - a < 2:
            continue
        ax, ay = work[a, 0], work[a, 1]
        dx = work[b, 0] - ax
        dy = work[b, 1] - ay
        length = math.hypot(dx, dy)
        best = -1.0
        bi = -1
        for i in range(a + 1, b):
            px, py = work[i, 0], work[i, 1]
            if length == 0.0:
                dist = math.hypot(px - ax, py - ay)
            else:
                dist = abs(dx * (ay - py) - dy * (ax - px)) / length
            if dist > best:
                best = dist
                bi = i
        if best > EPSILON:
            keep[bi] = True
            stack[top, 0] = a
            stack[top, 1] = bi
            stack[top + 1, 0] = bi
            stack[top + 1, 1] = b
            top += 2


@numba.njit(cache=True, nogil=True)
def _grow(work, need, n):
    """Larger scratch arrays (``work``'s first ``n`` cumulative lengths kept)."""
    size = max(need, 2 * work.shape[0])
    grown = np.empty((size, 4), np.float64)
    grown[:n, 3] = work[:n, 3]
    return grown, np.empty(size, np.bool_), np.empty((size, 2), np.int64)


@numba.njit(cache=True, nogil=True)
def _simplify(vals, stroke_len, n_strokes, status, xy_out, t_out, len_out, repairs, backstep):
    """Simplify every drawing whose ``status`` is ``_OK`` (see the module docstring) into
    ``xy_out`` / ``t_out`` / ``len_out``; a drawing with bad values gets a ``status`` code and
    no strokes. ``repairs[d]`` gets the repair bits, ``backstep[d]`` the largest step back
    (ms). Returns (points, strokes) written; ``n_strokes`` is updated in place."""
    work = np.empty((1024, 4), np.float64)
    keep = np.empty(1024, np.bool_)
    stack = np.empty((1024, 2), np.int64)
    p_in = 0
    s_in = 0
    p_out = 0
    s_out = 0
    for d in range(len(n_strokes)):
        ns = n_strokes[d]
        p_first = p_in
        n_pts = 0
        for s in range(s_in, s_in + ns):
            n_pts += stroke_len[s]
        s_first = s_in
        s_in += ns
        p_in += n_pts
        if status[d] != _OK:
            n_strokes[d] = 0
            continue
        # Check the values, repair the times (in place: vals is this call's own copy).
        bad = _OK
        t0 = vals[p_first, 2]
        run = t0
        step_back = 0.0
        for k in range(p_first, p_first + n_pts):
            x, y, t = vals[k, 0], vals[k, 1], vals[k, 2]
            if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(t)):
                bad = _NONFINITE
                break
            if abs(x) > COORD_LIMIT or abs(y) > COORD_LIMIT or abs(t) > TIME_LIMIT:
                bad = _RANGE
                break
            if t < run:
                step_back = max(step_back, run - t)
                vals[k, 2] = run
            else:
                run = t
        if bad != _OK:
            status[d] = bad
            n_strokes[d] = 0
            continue
        if step_back > 0.0:
            repairs[d] |= _REPAIR_BACKWARDS
            backstep[d] = step_back
        mx = np.inf
        my = np.inf
        hx = -np.inf
        hy = -np.inf
        for k in range(p_first, p_first + n_pts):
            mx = min(mx, vals[k, 0])
            my = min(my, vals[k, 1])
            hx = max(hx, vals[k, 0])
            hy = max(hy, vals[k, 1])
        extent = max(hx - mx, hy - my)
        p = p_first
        for s in range(s_first, s_first + ns):
            n = stroke_len[s]
            pts = vals[p : p + n]
            p += n
            for k in range(n):  # shift and scale in place (multiply, then divide)
                if extent > 0.0:
                    pts[k, 0] = (pts[k, 0] - mx) * 255.0 / extent
                    pts[k, 1] = (pts[k, 1] - my) * 255.0 / extent
                else:
                    pts[k, 0] = pts[k, 0] - mx
                    pts[k, 1] = pts[k, 1] - my
                pts[k, 2] = pts[k, 2] - t0
            if n + 2 > work.shape[0]:
                work, keep, stack = _grow(work, n + 2, 0)
            cum = work[:, 3]  # the cumulative length at each point (as numpy.cumsum adds)
            cum[0] = 0.0
            for k in range(1, n):
                step = math.hypot(pts[k, 0] - pts[k - 1, 0], pts[k, 1] - pts[k - 1, 1])
                cum[k] = cum[k - 1] + step
            need = int(math.ceil(cum[n - 1] + 1e-12)) + 2
            if need > work.shape[0]:
                work, keep, stack = _grow(work, need, n)
            m = _resample(pts, n, work)
            _rdp(work, m, keep, stack)
            start = p_out
            for k in range(m):
                if keep[k]:
                    xy_out[p_out, 0] = np.uint8(min(255.0, max(0.0, np.rint(work[k, 0]))))
                    xy_out[p_out, 1] = np.uint8(min(255.0, max(0.0, np.rint(work[k, 1]))))
                    tv = np.rint(work[k, 2])
                    if tv > T_MAX:
                        repairs[d] |= _REPAIR_CLAMPED
                        tv = float(T_MAX)
                    t_out[p_out] = np.uint16(max(0.0, tv))
                    p_out += 1
            if p_out - start == 1:  # a zero-length stroke: two identical points, timed
                xy_out[p_out] = xy_out[p_out - 1]  # at the stroke's first and last point
                t_out[start] = np.uint16(min(max(np.rint(pts[0, 2]), 0.0), float(T_MAX)))
                t_out[p_out] = np.uint16(min(max(np.rint(pts[n - 1, 2]), 0.0), float(T_MAX)))
                p_out += 1
            len_out[s_out] = p_out - start
            s_out += 1
    return p_out, s_out


# -- many cells at once -------------------------------------------------------------------------
@dataclass
class RawParse:
    """What :func:`parse_raw_many` found: the simplified drawings with times (a failed cell
    as a drawing with no strokes, in its place), per cell ``None`` or the
    :class:`DrawingError`, and the repairs: per cell ``None`` or ``[(repair, detail), ...]``."""

    drawings: Drawings
    errors: list[DrawingError | None]
    repairs: list[list[tuple[str, str]] | None]


def parse_raw_many(texts: Sequence[str]) -> RawParse:
    """Parse and simplify many raw ``drawing`` cells at once (see the module docstring)."""
    enc = [t.encode("utf-8", "surrogatepass") if isinstance(t, str) else b"" for t in texts]
    n = len(enc)
    bounds = offsets(np.fromiter(map(len, enc), np.int64, n))
    buf = np.frombuffer(b"".join(enc), np.uint8)
    vals = np.empty((len(buf) // 6 + 1, 3), np.float64)
    stroke_len = np.empty(len(buf) // 6 + 1, np.int64)
    n_strokes = np.zeros(n, np.int64)
    status = np.zeros(n, np.int8)
    n_pts, n_str = _scan(buf, bounds, vals, stroke_len, n_strokes, status)
    errors: list[DrawingError | None] = [None] * n
    rescued: dict[int, list[RawStroke]] = {}
    for d in np.flatnonzero(status == _FALLBACK).tolist():
        try:
            rescued[d] = parse_raw_drawing(texts[d])
        except DrawingError as e:
            errors[d] = e
    vals, stroke_len = vals[:n_pts], stroke_len[:n_str]
    if rescued:
        vals, stroke_len = _splice(vals, stroke_len, n_strokes, rescued)
        for d in rescued:
            status[d] = _OK
    # Output room: RDP keeps at most two resampled points per input point (one on each side
    # of a corner), and a one-point stroke becomes two.
    xy = np.empty((2 * len(vals) + 2 * len(stroke_len) + 1, 2), np.uint8)
    t = np.empty(len(xy), np.uint16)
    lens = np.empty(len(stroke_len) + 1, np.int64)
    repairs_bits = np.zeros(n, np.int8)
    backstep = np.zeros(n, np.float64)
    p_out, s_out = _simplify(
        vals, stroke_len, n_strokes, status, xy, t, lens, repairs_bits, backstep
    )
    for d in np.flatnonzero((status == _RANGE) | (status == _NONFINITE)).tolist():
        # The scanner reads no NaN or Infinity: only a value out of range gets here.
        errors[d] = DrawingError(
            OUT_OF_RANGE, f"a coordinate beyond {COORD_LIMIT:g} or a time beyond {TIME_LIMIT:g}"
        )
    drawings = Drawings.from_lengths(
        xy[:p_out].copy(), lens[:s_out].copy(), n_strokes, t[:p_out].copy()
    )
    repairs: list[list[tuple[str, str]] | None] = [None] * n
    for d in np.flatnonzero(repairs_bits).tolist():
        found = []
        if repairs_bits[d] & _REPAIR_BACKWARDS:
            detail = f"times step back by up to {backstep[d]:g} ms; made non-decreasing"
            found.append((TIME_BACKWARDS, detail))
        if repairs_bits[d] & _REPAIR_CLAMPED:
            found.append((TIME_CLAMPED, f"times beyond {T_MAX} ms stored as {T_MAX}"))
        repairs[d] = found
    return RawParse(drawings, errors, repairs)


def _splice(
    vals: np.ndarray, stroke_len: np.ndarray, n_strokes: np.ndarray, rescued: dict
) -> tuple[np.ndarray, np.ndarray]:
    """Insert the drawings the precise path read into the scanner's flat arrays, in order."""
    point_off = offsets(stroke_len)
    stroke_off = offsets(n_strokes)  # the rescued ones still have 0 strokes here
    v_parts, l_parts = [], []
    prev_s = 0
    for d in sorted(rescued):
        s = stroke_off[d]
        v_parts.append(vals[point_off[prev_s] : point_off[s]])
        l_parts.append(stroke_len[prev_s:s])
        strokes = rescued[d]
        v_parts.append(
            np.array(
                [p for xs, ys, ts in strokes for p in zip(xs, ys, ts, strict=True)], np.float64
            ).reshape(-1, 3)
        )
        l_parts.append(np.array([len(xs) for xs, _, _ in strokes], np.int64))
        n_strokes[d] = len(strokes)
        prev_s = s
    v_parts.append(vals[point_off[prev_s] :])
    l_parts.append(stroke_len[prev_s:])
    return np.concatenate(v_parts), np.concatenate(l_parts)


def simplify_strokes(
    strokes: Sequence[RawStroke],
) -> tuple[list[tuple[list[int], list[int]]], list[list[int]]]:
    """One parsed raw drawing simplified: ``([(xs, ys), ...], [ts, ...])`` (for tests and
    pictures; the shard stage uses :func:`parse_raw_many`)."""
    text = json.dumps([[list(xs), list(ys), list(ts)] for xs, ys, ts in strokes])
    parsed = parse_raw_many([text])
    if parsed.errors[0] is not None:
        raise parsed.errors[0]
    return parsed.drawings.strokes(0), parsed.drawings.times(0)
