"""The stroke format: Kaggle's JSON drawings parsed, validated and packed into flat arrays.

A batch of drawings is three flat arrays (no pixels, no Python objects):

* ``xy``               ``(P, 2) uint8``  every point of every stroke, drawing after drawing;
* ``stroke_offsets``   ``(S + 1,) int64`` stroke ``s`` owns points ``stroke_offsets[s]:[s + 1]``;
* ``drawing_offsets``  ``(N + 1,) int64`` drawing ``d`` owns strokes ``drawing_offsets[d]:[d + 1]``;
* ``t``                ``(P,) uint16`` or None: each point's time in milliseconds since its
                       drawing's first point (only drawings made from Kaggle's raw files have
                       times: :mod:`doodle.data.rawcells`).

The same layout is what the shard files hold and what the renderer reads, so a batch is
rendered straight from a memory-mapped shard without copying.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numba
import numpy as np

from doodle.errors import DoodleError

Stroke = tuple[list[int], list[int]]

# Skip reasons, counted per file in the shard report (a fixed vocabulary so reports add up).
BAD_JSON = "bad_json"
NOT_A_DRAWING = "not_a_drawing"
EMPTY_DRAWING = "empty_drawing"
EMPTY_STROKE = "empty_stroke"
XY_MISMATCH = "xy_length_mismatch"
NON_NUMERIC = "non_numeric_coordinate"
NON_INTEGER = "non_integer_coordinate"
OUT_OF_RANGE = "coordinate_out_of_range"
DRAWING_REASONS = (
    BAD_JSON,
    NOT_A_DRAWING,
    EMPTY_DRAWING,
    EMPTY_STROKE,
    XY_MISMATCH,
    NON_NUMERIC,
    NON_INTEGER,
    OUT_OF_RANGE,
)


class DrawingError(DoodleError, ValueError):
    """A drawing that cannot be used; ``reason`` is one of ``DRAWING_REASONS``."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def _check_number(v: object) -> None:
    # bool is an int subclass in Python; a drawing of True/False is not a drawing.
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise DrawingError(NON_NUMERIC, f"value {v!r}")
    if isinstance(v, float) and not v.is_integer():
        raise DrawingError(NON_INTEGER, f"value {v!r} (raw data? use the simplified files)")
    if not 0 <= v <= 255:
        raise DrawingError(OUT_OF_RANGE, f"value {v!r} outside 0..255")


def parse_drawing(text: str) -> list[Stroke]:
    """Parse one ``drawing`` cell (JSON, never eval) into validated ``(xs, ys)`` strokes.

    A third per-stroke list (timings, as in Kaggle's raw files) is ignored.
    """
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError) as e:
        raise DrawingError(BAD_JSON, str(e)) from None
    if not isinstance(data, list):
        raise DrawingError(NOT_A_DRAWING, f"top level is {type(data).__name__}, not a list")
    if not data:
        raise DrawingError(EMPTY_DRAWING)
    strokes: list[Stroke] = []
    for i, stroke in enumerate(data):
        if (
            not isinstance(stroke, list)
            or len(stroke) < 2
            or not all(isinstance(c, list) for c in stroke)
        ):
            raise DrawingError(NOT_A_DRAWING, f"stroke {i} is not [[xs], [ys]]")
        xs, ys = stroke[0], stroke[1]
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


# -- many drawings at once: a compiled scanner for the common case --------------------------
# Kaggle's cells are JSON of one strict shape: [[[x, ...], [y, ...]], ...] with small
# non-negative integers. The scanner below parses exactly that shape straight into the flat
# arrays, ~50x faster than json.loads plus the checks; any cell it does not accept (a float,
# a bad shape, a value out of range, a third timing list with odd content) goes through
# parse_drawing, which gives the precise reason or parses what JSON allows.
_LBR, _RBR, _COMMA, _ZERO, _NINE = 91, 93, 44, 48, 57


@numba.njit(cache=True, nogil=True, inline="always")
def _ws(buf, i, end):
    while i < end and (buf[i] == 32 or buf[i] == 9 or buf[i] == 10 or buf[i] == 13):
        i += 1
    return i


@numba.njit(cache=True, nogil=True)
def _int_list(buf, i, end, xy, base, col):
    """``[int, ...]`` at ``i`` into ``xy[base:, col]``: (next index, count, ok)."""
    i = _ws(buf, i, end)
    if i >= end or buf[i] != _LBR:
        return i, 0, False
    i = _ws(buf, i + 1, end)
    n = 0
    if i < end and buf[i] == _RBR:
        return i + 1, 0, True
    while True:
        if i >= end or buf[i] < _ZERO or buf[i] > _NINE:
            return i, n, False
        if buf[i] == _ZERO and i + 1 < end and _ZERO <= buf[i + 1] <= _NINE:
            return i, n, False  # a leading zero is not JSON
        v = 0
        while i < end and _ZERO <= buf[i] <= _NINE and v <= 255:
            v = v * 10 + (buf[i] - _ZERO)
            i += 1
        if v > 255:
            return i, n, False
        xy[base + n, col] = v
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
    """A list of plain numbers (a timing list): (next index, ok)."""
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


@numba.njit(cache=True, nogil=True)
def _scan(buf, offsets, xy, stroke_len, n_strokes, ok):
    """Parse every drawing ``buf[offsets[d]:offsets[d + 1]]``; ``ok[d]`` says whether the
    strict shape was found (else its slot holds no strokes). Returns (points, strokes)."""
    n_pts = 0
    n_str = 0
    for d in range(len(offsets) - 1):
        i, end = offsets[d], offsets[d + 1]
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
            i, nx, good = _int_list(buf, i + 1, end, xy, n_pts, 0)
            if not good or nx == 0:
                good = False
                break
            i = _ws(buf, i, end)
            if i >= end or buf[i] != _COMMA:
                good = False
                break
            i, ny, good = _int_list(buf, i + 1, end, xy, n_pts, 1)
            if not good or ny != nx:
                good = False
                break
            i = _ws(buf, i, end)
            while good and i < end and buf[i] == _COMMA:  # timing lists: ignored
                i, good = _skip_number_list(buf, i + 1, end)
                i = _ws(buf, i, end)
            if not good or i >= end or buf[i] != _RBR:
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
            ok[d] = True
        else:
            n_pts, n_str = p0, s0
            n_strokes[d] = 0
            ok[d] = False
    return n_pts, n_str


def parse_many(texts: Sequence[str]) -> tuple[Drawings, list[DrawingError | None]]:
    """Parse many ``drawing`` cells at once: the drawings (a failed one as a drawing with
    no strokes, in its place) and, per cell, ``None`` or the :class:`DrawingError`.

    Same result as :func:`parse_drawing` on each cell, much faster.
    """
    enc = [t.encode("utf-8", "surrogatepass") if isinstance(t, str) else b"" for t in texts]
    bounds = offsets(np.fromiter(map(len, enc), np.int64, len(enc)))
    buf = np.frombuffer(b"".join(enc), np.uint8)
    xy = np.empty((len(buf) // 4 + 1, 2), np.uint8)
    stroke_len = np.empty(len(buf) // 9 + 1, np.int64)
    n_strokes = np.zeros(len(enc), np.int64)
    ok = np.zeros(len(enc), np.bool_)
    n_pts, n_str = _scan(buf, bounds, xy, stroke_len, n_strokes, ok)
    fast = Drawings.from_lengths(xy[:n_pts].copy(), stroke_len[:n_str].copy(), n_strokes)
    errors: list[DrawingError | None] = [None] * len(enc)
    rescued: dict[int, list[Stroke]] = {}
    for d in np.flatnonzero(~ok).tolist():
        try:
            rescued[d] = parse_drawing(texts[d])
        except DrawingError as e:
            errors[d] = e
    if not rescued:
        return fast, errors
    pieces, prev = [], 0
    for d in sorted(rescued):  # splice the slow path's drawings in, in order
        pieces += [fast.take(np.arange(prev, d)), pack([rescued[d]])]
        prev = d + 1
    pieces.append(fast.take(np.arange(prev, len(enc))))
    return concat(pieces), errors


# Times are stored in uint16 milliseconds: a drawing's times saturate at about 65.5 s (the
# game gives 20 s; doodle.data.rawcells counts the drawings it clamps).
T_MAX = np.iinfo(np.uint16).max


@dataclass
class Drawings:
    """Many drawings in flat arrays (see the module docstring)."""

    xy: np.ndarray
    stroke_offsets: np.ndarray
    drawing_offsets: np.ndarray
    t: np.ndarray | None = None  # (P,) uint16 ms since the drawing's first point, or None

    @classmethod
    def from_lengths(
        cls,
        xy: np.ndarray,
        stroke_lengths: np.ndarray,
        n_strokes: np.ndarray,
        t: np.ndarray | None = None,
    ) -> Drawings:
        """Points plus points-per-stroke and strokes-per-drawing (how files store them)."""
        return cls(xy, offsets(stroke_lengths), offsets(n_strokes), t)

    @property
    def has_time(self) -> bool:
        return self.t is not None

    def __len__(self) -> int:
        return len(self.drawing_offsets) - 1

    @property
    def n_strokes(self) -> np.ndarray:
        return np.diff(self.drawing_offsets).astype(np.int32)

    @property
    def n_points(self) -> np.ndarray:
        return (
            self.stroke_offsets[self.drawing_offsets[1:]]
            - self.stroke_offsets[self.drawing_offsets[:-1]]
        ).astype(np.int32)

    def strokes(self, i: int) -> list[Stroke]:
        """Drawing ``i`` as Python ``(xs, ys)`` lists (for tests and pictures, not hot loops)."""
        out = []
        for s in range(self.drawing_offsets[i], self.drawing_offsets[i + 1]):
            pts = self.xy[self.stroke_offsets[s] : self.stroke_offsets[s + 1]]
            out.append((pts[:, 0].tolist(), pts[:, 1].tolist()))
        return out

    def times(self, i: int) -> list[list[int]]:
        """Drawing ``i``'s point times per stroke (ms; for tests and pictures)."""
        if self.t is None:
            raise ValueError("these drawings have no times (made from simplified files)")
        return [
            np.asarray(self.t[self.stroke_offsets[s] : self.stroke_offsets[s + 1]]).tolist()
            for s in range(self.drawing_offsets[i], self.drawing_offsets[i + 1])
        ]

    def take(self, idx: np.ndarray) -> Drawings:
        """The drawings ``idx`` (in that order) as a new compact ``Drawings`` (vectorised)."""
        idx = np.asarray(idx, dtype=np.int64)
        d0 = self.drawing_offsets[idx]
        ns = self.drawing_offsets[idx + 1] - d0
        stroke_idx = concat_ranges(d0, ns)
        s0 = self.stroke_offsets[stroke_idx]
        npts = self.stroke_offsets[stroke_idx + 1] - s0
        points = concat_ranges(s0, npts)
        xy = np.asarray(self.xy)[points]
        t = None if self.t is None else np.asarray(self.t)[points]
        return Drawings.from_lengths(xy, npts, ns, t)


def concat_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + n) for s, n in zip(starts, lengths)])`` without a loop."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    shift = np.asarray(starts, dtype=np.int64) - (ends - lengths)
    return np.repeat(shift, lengths) + np.arange(total, dtype=np.int64)


def offsets(lengths: np.ndarray) -> np.ndarray:
    """Lengths -> start offsets with a final end: ``[0, l0, l0 + l1, ...]`` (int64)."""
    out = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


def pack(drawings: Iterable[Sequence[Stroke]]) -> Drawings:
    """Pack parsed drawings (lists of ``(xs, ys)``) into flat arrays."""
    xs_all: list[int] = []
    ys_all: list[int] = []
    stroke_lens: list[int] = []
    n_strokes: list[int] = []
    for strokes in drawings:
        n_strokes.append(len(strokes))
        for xs, ys in strokes:
            xs_all.extend(xs)
            ys_all.extend(ys)
            stroke_lens.append(len(xs))
    xy = np.empty((len(xs_all), 2), dtype=np.uint8)
    xy[:, 0] = xs_all
    xy[:, 1] = ys_all
    return Drawings.from_lengths(
        xy, np.asarray(stroke_lens, np.int64), np.asarray(n_strokes, np.int64)
    )


def concat(parts: Sequence[Drawings]) -> Drawings:
    """Concatenate several ``Drawings`` into one (all with times, or none)."""
    if not parts:
        return pack([])
    timed = {p.has_time for p in parts}
    if len(timed) > 1:
        raise ValueError("cannot concatenate drawings with times and drawings without")
    xy = np.concatenate([p.xy for p in parts])
    s_lens = np.concatenate([np.diff(p.stroke_offsets) for p in parts])
    d_lens = np.concatenate([np.diff(p.drawing_offsets) for p in parts])
    t = np.concatenate([p.t for p in parts]) if timed == {True} else None
    return Drawings.from_lengths(xy, s_lens, d_lens, t)
