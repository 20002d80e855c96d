"""The stroke format: many drawings in flat arrays (packed, sliced, concatenated).

A batch of drawings is three flat arrays (no pixels, no Python objects):

* ``xy``               ``(P, 2) uint8``  every point of every stroke, drawing after drawing;
* ``stroke_offsets``   ``(S + 1,) int64`` stroke ``s`` owns points ``stroke_offsets[s]:[s + 1]``;
* ``drawing_offsets``  ``(N + 1,) int64`` drawing ``d`` owns strokes ``drawing_offsets[d]:[d + 1]``;
* ``t``                ``(P,) uint16`` or None: each point's time in milliseconds since its
                       drawing's first point (only drawings made from Kaggle's raw files have
                       times: :mod:`doodle.data.rawcells`).

The same layout is what the shard files hold and what the renderer reads, so a batch is
rendered straight from a memory-mapped shard without copying. Kaggle's cells are read into it
by :mod:`doodle.data.cells` (and, raw ones, simplified by :mod:`doodle.data.rawcells`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

Stroke = tuple[list[int], list[int]]


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
