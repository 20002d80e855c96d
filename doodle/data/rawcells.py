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

Cells are read by :mod:`doodle.data.cells` (its compiled scanner, ``json.loads`` for the rest),
which also gives a bad cell its reason (:class:`~doodle.data.cells.DrawingError`), as for
simplified cells. Two defects are *repaired and counted* here instead (:data:`REPAIRS`):

* ``time_backwards``: a time smaller than one before it in the drawing. Real drawings do this
  (5 of the 6,688 of the raw sample step back inside a stroke, by 1-443 ms); their points are
  fine, so the drawing is kept and its times made non-decreasing (each time raised to the
  largest one before it);
* ``time_clamped``: a time beyond 65,535 ms after the drawing's first point, stored as 65,535.

Speed: the scanner reads ints and floats (sign, fraction, exponent; up to 18 significant digits,
converted exactly as ``float()`` does) straight into flat arrays; a cell it does not accept goes
through ``json.loads`` (:func:`doodle.data.cells.parse_raw_drawing`), which gives the precise
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

from doodle.data.cells import DrawingError, RawStroke, scan_cells
from doodle.data.strokes import T_MAX, Drawings

# Defects repaired (and counted, and listed) rather than skipped.
TIME_BACKWARDS = "time_backwards"
TIME_CLAMPED = "time_clamped"
REPAIRS = (TIME_BACKWARDS, TIME_CLAMPED)
EPSILON = 2.0  # RDP tolerance, in pixels of the 0..255 box
STEP = 1.0  # resampling step, same unit
_REPAIR_BACKWARDS, _REPAIR_CLAMPED = 1, 2


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
def _simplify(vals, stroke_len, n_strokes, xy_out, t_out, len_out, repairs, backstep):
    """Simplify every drawing (x, y, t per point in ``vals``, checked by the scanner or the
    precise path; a bad cell has no strokes) into ``xy_out`` / ``t_out`` / ``len_out`` (see
    the module docstring). ``repairs[d]`` gets the repair bits, ``backstep[d]`` the largest
    step back (ms). Returns (points, strokes) written."""
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
        if ns == 0:
            continue
        # Repair the times (in place: vals is this call's own copy).
        t0 = vals[p_first, 2]
        run = t0
        step_back = 0.0
        for k in range(p_first, p_first + n_pts):
            t = vals[k, 2]
            if t < run:
                step_back = max(step_back, run - t)
                vals[k, 2] = run
            else:
                run = t
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
    vals, stroke_len, n_strokes, errors = scan_cells(texts, raw=True)
    n = len(n_strokes)
    # Output room: RDP keeps at most two resampled points per input point (one on each side
    # of a corner), and a one-point stroke becomes two.
    xy = np.empty((2 * len(vals) + 2 * len(stroke_len) + 1, 2), np.uint8)
    t = np.empty(len(xy), np.uint16)
    lens = np.empty(len(stroke_len) + 1, np.int64)
    repairs_bits = np.zeros(n, np.int8)
    backstep = np.zeros(n, np.float64)
    p_out, s_out = _simplify(vals, stroke_len, n_strokes, xy, t, lens, repairs_bits, backstep)
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
