"""Drawing cells read into flat arrays, and the one place where a bad cell gets its reason.

Kaggle's ``drawing`` cells come in two forms:

* **simplified** ``[[[x, ...], [y, ...]], ...]``: integers 0..255 (a third list per stroke, a
  timing list, is ignored);
* **raw** ``[[[x, ...], [y, ...], [t, ...]], ...]``: screen coordinates as recorded (ints or
  floats, negative too) and milliseconds since the drawing's first point
  (:mod:`doodle.data.rawcells` simplifies them).

How a cell is read: one compiled scanner (:func:`_scan`) reads the strict shape of either form
straight into flat arrays, ~50x faster than ``json.loads`` plus the checks. A cell it does not
accept, for any reason (a float in a simplified cell, a value out of range, a bad shape, an
exponent past 1e22, a number of more than 18 significant digits, nesting, garbage), goes to the
precise path, :func:`read_cell`: ``json.loads`` and the checks of its form. That is the only
place where a cell becomes a :class:`DrawingError` with one of :data:`REASONS`:

* whatever ``json.loads`` raises is ``bad_json``, with its words: bad syntax, nesting deeper
  than the interpreter's recursion limit (a ``RecursionError``, not a ``JSONDecodeError``), an
  integer of more than 4,300 digits (a ``ValueError``), a cell that is not text;
* what the checks find is its own reason (:data:`REASONS`);
* anything else the checks raise for a value they did not foresee is ``not_a_drawing``, with the
  exception's name: a bad row is skipped and reported by construction, never a traceback.

What JSON allows and the scanner does not take (``1e2``, a 26-digit decimal) is read by the
precise path and kept, in its place: the result is the same as the precise path cell by cell.
"""

from __future__ import annotations

import json
import math
import reprlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numba
import numpy as np

from doodle.data.strokes import Drawings, Stroke, offsets
from doodle.errors import DoodleError

T = TypeVar("T")

# Skip reasons, counted per file in the shard report (a fixed vocabulary so reports add up).
BAD_JSON = "bad_json"
NOT_A_DRAWING = "not_a_drawing"
EMPTY_DRAWING = "empty_drawing"
EMPTY_STROKE = "empty_stroke"
XY_MISMATCH = "xy_length_mismatch"
T_MISMATCH = "time_length_mismatch"
NON_NUMERIC = "non_numeric_coordinate"
NON_INTEGER = "non_integer_coordinate"
OUT_OF_RANGE = "coordinate_out_of_range"
REASONS = (
    BAD_JSON,
    NOT_A_DRAWING,
    EMPTY_DRAWING,
    EMPTY_STROKE,
    XY_MISMATCH,
    T_MISMATCH,
    NON_NUMERIC,
    NON_INTEGER,
    OUT_OF_RANGE,
)
# Raw values: |x|, |y| beyond COORD_LIMIT is not a screen coordinate (and would lose
# precision when scaled); |t| beyond TIME_LIMIT (ms, ~30,000 years) is not a time.
COORD_LIMIT = 1e9
TIME_LIMIT = 1e15

RawStroke = tuple[list[float], list[float], list[float]]


class DrawingError(DoodleError, ValueError):
    """A drawing that cannot be used; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


# -- the precise path: json.loads, the checks, and the funnel ---------------------------------
_short = reprlib.Repr()
_short.maxstring = _short.maxother = 40
_short.maxlevel = 3


def read_cell(text: object, check: Callable[[Any], T]) -> T:
    """``check(json.loads(text))``; every way that fails is a :class:`DrawingError` (see the
    module docstring): the one place where a cell's failure becomes a reason."""
    try:
        data = json.loads(text)
    except Exception as e:  # every failure of the JSON reader is this cell's, nothing else's
        why = "nested too deeply to read" if isinstance(e, RecursionError) else type(e).__name__
        raise DrawingError(BAD_JSON, f"{why}: {e}") from None
    try:
        return check(data)
    except DrawingError:
        raise
    except Exception as e:  # a value the checks did not foresee: still this row's problem
        raise DrawingError(NOT_A_DRAWING, f"unreadable ({type(e).__name__}: {e})") from None


def _top(data: object) -> list:
    """A parsed cell's list of strokes (not yet checked)."""
    if not isinstance(data, list):
        raise DrawingError(NOT_A_DRAWING, f"top level is {type(data).__name__}, not a list")
    if not data:
        raise DrawingError(EMPTY_DRAWING)
    return data


def _lists(stroke: object, i: int, n_lists: int, shape: str) -> list[list]:
    """Stroke ``i`` as a list of at least ``n_lists`` lists."""
    if (
        not isinstance(stroke, list)
        or len(stroke) < n_lists
        or not all(isinstance(c, list) for c in stroke)
    ):
        raise DrawingError(NOT_A_DRAWING, f"stroke {i} is not {shape}")
    return stroke


def _check_number(v: object) -> None:
    # bool is an int subclass in Python; a drawing of True/False is not a drawing. json.loads
    # reads NaN, Infinity and 1e400 (as inf): no position either.
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise DrawingError(NON_NUMERIC, f"value {_short.repr(v)}")
    if isinstance(v, float) and not math.isfinite(v):
        raise DrawingError(NON_NUMERIC, f"value {v!r}")
    if isinstance(v, float) and not v.is_integer():
        raise DrawingError(NON_INTEGER, f"value {v!r} (raw data? use the simplified files)")
    if not 0 <= v <= 255:
        raise DrawingError(OUT_OF_RANGE, f"value {_short.repr(v)} outside 0..255")


def check_simplified(data: object) -> list[Stroke]:
    """A parsed simplified cell's validated ``(xs, ys)`` strokes (a timing list is ignored)."""
    strokes: list[Stroke] = []
    for i, stroke in enumerate(_top(data)):
        xs, ys = _lists(stroke, i, 2, "[[xs], [ys]]")[:2]
        if len(xs) != len(ys):
            raise DrawingError(XY_MISMATCH, f"stroke {i}: {len(xs)} x vs {len(ys)} y")
        if not xs:
            raise DrawingError(EMPTY_STROKE, f"stroke {i}")
        strokes.append((xs, ys))
    # Validate values in one pass over all points (the common case: small ints).
    for xs, ys in strokes:
        for v in xs:
            if v.__class__ is not int or not 0 <= v <= 255:
                _check_number(v)
        for v in ys:
            if v.__class__ is not int or not 0 <= v <= 255:
                _check_number(v)
    return strokes


def _check_value(v: object, what: str, stroke: int) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise DrawingError(NON_NUMERIC, f"stroke {stroke}: {what} value {_short.repr(v)}")
    if isinstance(v, float) and not math.isfinite(v):
        raise DrawingError(NON_NUMERIC, f"stroke {stroke}: {what} value {v!r}")
    limit = TIME_LIMIT if what == "time" else COORD_LIMIT
    if abs(v) > limit:  # exact for ints of any size (no float conversion to overflow)
        raise DrawingError(
            OUT_OF_RANGE, f"stroke {stroke}: {what} value {_short.repr(v)} beyond {limit:g}"
        )


def check_raw(data: object) -> list[RawStroke]:
    """A parsed raw cell's validated ``(xs, ys, ts)`` strokes."""
    strokes: list[RawStroke] = []
    for i, stroke in enumerate(_top(data)):
        if len(_lists(stroke, i, 0, "[[xs], [ys], [ts]]")) != 3:
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


def parse_drawing(text: str) -> list[Stroke]:
    """One simplified ``drawing`` cell (JSON, never eval) as validated ``(xs, ys)`` strokes."""
    return read_cell(text, check_simplified)


def parse_raw_drawing(text: str) -> list[RawStroke]:
    """One raw ``drawing`` cell (JSON, never eval) as validated ``(xs, ys, ts)`` strokes."""
    return read_cell(text, check_raw)


# -- the compiled scanner ---------------------------------------------------------------------
_LBR, _RBR, _COMMA, _ZERO, _NINE, _MINUS, _DOT = 91, 93, 44, 48, 57, 45, 46
_POW10 = np.array([10.0**k for k in range(23)])  # exact doubles
_TWO53 = 2**53
_MAX_DIGITS = 18  # significant digits the scanner takes (10**18 < 2**63)


@numba.njit(cache=True, nogil=True, inline="always")
def _ws(buf, i, end):
    while i < end and (buf[i] == 32 or buf[i] == 9 or buf[i] == 10 or buf[i] == 13):
        i += 1
    return i


@numba.njit(cache=True, nogil=True)
def _int_list(buf, i, end, vals, base, col):
    """``[int 0..255, ...]`` at ``i`` into ``vals[base:, col]``: (next index, count, ok)."""
    i = _ws(buf, i, end)
    if i >= end or buf[i] != _LBR:
        return i, 0, False
    i = _ws(buf, i + 1, end)
    n = 0
    if i < end and buf[i] == _RBR:
        return i + 1, 0, True
    while True:
        if base + n >= vals.shape[0] or i >= end or buf[i] < _ZERO or buf[i] > _NINE:
            return i, n, False
        if buf[i] == _ZERO and i + 1 < end and _ZERO <= buf[i + 1] <= _NINE:
            return i, n, False  # a leading zero is not JSON
        v = 0
        while i < end and _ZERO <= buf[i] <= _NINE and v <= 255:
            v = v * 10 + (buf[i] - _ZERO)
            i += 1
        if v > 255:
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
def _skip_number_list(buf, i, end):
    """A list of plain numbers (a simplified cell's timing list): (next index, ok)."""
    i = _ws(buf, i, end)
    if i >= end or buf[i] != _LBR:
        return i, False
    i += 1
    while i < end and buf[i] != _RBR:
        c = buf[i]
        if not (_ZERO <= c <= _NINE or c == _COMMA or c == 32 or c == 46 or c == 45):
            return i, False
        i += 1
    return i + 1, i < end


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
    value tests/data/test_rawcells.py tries. Larger exponents are left to ``json.loads``.
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
def _number_list(buf, i, end, vals, base, col, limit):
    """``[number, ...]`` (each ``|v| <= limit``) at ``i`` into ``vals[base:, col]``:
    (next index, count, ok)."""
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
        if not ok or abs(v) > limit:
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
def _stroke(buf, i, end, vals, base, raw, limits):
    """One stroke ``[[xs], [ys]]`` (simplified; further lists of plain numbers skipped) or
    ``[[xs], [ys], [ts]]`` (raw, nothing after) at ``i``: (next index, points, ok)."""
    i = _ws(buf, i, end)
    if i >= end or buf[i] != _LBR:
        return i, 0, False
    n = 0
    for col in range(3 if raw else 2):
        if col > 0:
            i = _ws(buf, i, end)
            if i >= end or buf[i] != _COMMA:
                return i, n, False
        if raw:
            i, m, good = _number_list(buf, i + 1, end, vals, base, col, limits[col])
        else:
            i, m, good = _int_list(buf, i + 1, end, vals, base, col)
        if not good or m == 0 or (col > 0 and m != n):
            return i, n, False
        n = m
    i = _ws(buf, i, end)
    while not raw and i < end and buf[i] == _COMMA:  # timing lists: ignored
        i, good = _skip_number_list(buf, i + 1, end)
        if not good:
            return i, n, False
        i = _ws(buf, i, end)
    if i >= end or buf[i] != _RBR:
        return i, n, False
    return i + 1, n, True


@numba.njit(cache=True, nogil=True)
def _scan(buf, bounds, vals, stroke_len, n_strokes, ok, raw, limits):
    """Read every cell ``buf[bounds[d]:bounds[d + 1]]`` of the strict shape into ``vals`` (x, y
    and, raw, t per point) and ``stroke_len``; ``ok[d]`` says whether the shape was found (else
    the cell's slot holds no strokes). Returns (points, strokes)."""
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
            if n_str >= stroke_len.shape[0]:
                good = False
                break
            i, n, good = _stroke(buf, i, end, vals, n_pts, raw, limits)
            if not good:
                break
            stroke_len[n_str] = n
            n_str += 1
            n_pts += n
            ns += 1
            i = _ws(buf, i, end)
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
            ok[d] = True
        else:
            n_pts, n_str = p0, s0
            n_strokes[d] = 0
            ok[d] = False
    return n_pts, n_str


# -- many cells at once -----------------------------------------------------------------------
_RAW_LIMITS = np.array([COORD_LIMIT, COORD_LIMIT, TIME_LIMIT])


def scan_cells(
    texts: Sequence[str], raw: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[DrawingError | None]]:
    """Many cells of one form at once: ``(vals, stroke_len, n_strokes, errors)``.

    ``vals`` holds every point, cell after cell: ``(P, 2) uint8`` x, y (simplified) or
    ``(P, 3) float64`` x, y, t (raw, as recorded); ``stroke_len`` the points of each stroke,
    ``n_strokes`` the strokes of each cell (0 for a bad one), ``errors`` per cell ``None`` or
    its :class:`DrawingError`. The same as :func:`read_cell` on each cell, much faster.
    """
    enc = [t.encode("utf-8", "surrogatepass") if isinstance(t, str) else b"" for t in texts]
    n = len(enc)
    bounds = offsets(np.fromiter(map(len, enc), np.int64, n))
    buf = np.frombuffer(b"".join(enc), np.uint8)
    # Room: a simplified point takes >= 4 bytes ("0,0,"), a stroke >= 9; a raw point >= 6.
    if raw:
        vals = np.empty((len(buf) // 6 + 1, 3), np.float64)
        stroke_len = np.empty(len(buf) // 6 + 1, np.int64)
    else:
        vals = np.empty((len(buf) // 4 + 1, 2), np.uint8)
        stroke_len = np.empty(len(buf) // 9 + 1, np.int64)
    n_strokes = np.zeros(n, np.int64)
    ok = np.zeros(n, np.bool_)
    n_pts, n_str = _scan(buf, bounds, vals, stroke_len, n_strokes, ok, raw, _RAW_LIMITS)
    vals, stroke_len = vals[:n_pts], stroke_len[:n_str]
    errors: list[DrawingError | None] = [None] * n
    rescued: dict[int, list] = {}
    check = check_raw if raw else check_simplified
    for d in np.flatnonzero(~ok).tolist():
        try:
            rescued[d] = read_cell(texts[d], check)
        except DrawingError as e:
            errors[d] = e
    if rescued:
        vals, stroke_len = _splice(vals, stroke_len, n_strokes, rescued)
    return vals, stroke_len, n_strokes, errors


def _splice(
    vals: np.ndarray, stroke_len: np.ndarray, n_strokes: np.ndarray, rescued: dict[int, list]
) -> tuple[np.ndarray, np.ndarray]:
    """Insert the drawings the precise path read (``rescued``: cell -> strokes, each a tuple
    of columns) into the scanner's flat arrays, in order; ``n_strokes`` is updated."""
    point_off = offsets(stroke_len)
    stroke_off = offsets(n_strokes)  # the rescued ones still have 0 strokes here
    v_parts, l_parts = [], []
    prev_s = 0
    for d in sorted(rescued):
        s = stroke_off[d]
        v_parts.append(vals[point_off[prev_s] : point_off[s]])
        l_parts.append(stroke_len[prev_s:s])
        strokes = rescued[d]
        cols = [np.concatenate([np.asarray(st[c], np.float64) for st in strokes]) for c in range(2)]
        if vals.shape[1] == 3:
            cols.append(np.concatenate([np.asarray(st[2], np.float64) for st in strokes]))
        v_parts.append(np.stack(cols, axis=1).astype(vals.dtype))
        l_parts.append(np.array([len(st[0]) for st in strokes], np.int64))
        n_strokes[d] = len(strokes)
        prev_s = s
    v_parts.append(vals[point_off[prev_s] :])
    l_parts.append(stroke_len[prev_s:])
    return np.concatenate(v_parts), np.concatenate(l_parts)


def parse_many(texts: Sequence[str]) -> tuple[Drawings, list[DrawingError | None]]:
    """Many simplified ``drawing`` cells at once: the drawings (a bad cell as a drawing with no
    strokes, in its place) and, per cell, ``None`` or the :class:`DrawingError`."""
    xy, stroke_len, n_strokes, errors = scan_cells(texts, raw=False)
    # compact copies: the scanner's arrays were sized for the worst case
    return Drawings.from_lengths(xy.copy(), stroke_len.copy(), n_strokes), errors
