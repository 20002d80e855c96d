"""Procedural Quick, Draw! doodles written in the exact Kaggle CSV layout.

Each class is a small stroke recipe in unit coordinates (y points down, like images). A drawing
then gets random stroke splitting, order and direction, per-stroke translation and scale,
rotation, aspect change, shear, smooth wobble and per-point noise, and is finally normalised like
Kaggle's "simplified" data: the top-left corner is moved to 0 and the larger side is scaled to
span 0..255 (aspect kept), then rounded to integers.

Some classes are deliberately confusable (circle / octagon / hexagon / stop sign, wheel / donut /
clock / circle, square / door / diamond / traffic light, zigzag / lightning / mountain / squiggle,
hourglass / bowtie, sun / smiley face), mostly through optional parts that people leave out and
through heavy jitter. ``write_synthetic`` also makes ``STRAY_RATE`` of the rows "something else"
(another class's shape or a scribble, mostly ``recognized=False``), like the noise in the real
data, so a small CNN gets high but not perfect accuracy (about 0.94 MAP@3 measured).

``write_synthetic`` writes ``train_simplified/<word>.csv``, ``test_simplified.csv`` and
``test_solution.csv``. The byte format copies the real Kaggle files (checked against
``shared/data/quickdraw-real-sample``): csv-module quoting with ``\\r\\n`` line ends, ``drawing``
as ``json.dumps`` output with Python's default ``", "`` separators, ``recognized`` as
``True``/``False`` and timestamps like ``2017-03-28 15:47:12.56245`` (trailing zeros of the
fraction dropped, no zone suffix).

Why one module of ~850 lines: most of it is the 24 class recipes, one short function
each, which read best side by side; the writer at the end is a few dozen lines.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from doodle.data.layout import SOLUTION_FILE, TEST_COLUMNS, TEST_FILE, TRAIN_COLUMNS, TRAIN_DIR
from doodle.fileio import write_csv

Stroke = np.ndarray  # float array of shape (n, 2), unit coordinates
Drawing = list[list[list[int]]]

TAU = 2.0 * np.pi

# Kaggle key_ids are 16-digit integers in about this range.
KEY_ID_LOW = 4_500_000_000_000_000
KEY_ID_HIGH = 6_700_000_000_000_000

# The real Kaggle CSVs use json.dumps' default separators: "[[[0, 5], [3, 4]]]".
JSON_SEPARATORS = (", ", ": ")

_COUNTRIES = (
    "US",
    "GB",
    "CA",
    "DE",
    "AU",
    "RU",
    "BR",
    "SE",
    "FI",
    "CZ",
    "FR",
    "TH",
    "PL",
    "HU",
    "KR",
    "PH",
    "IT",
    "NL",
    "SA",
    "ID",
    "JP",
    "IN",
)
_COUNTRY_WEIGHTS = np.array(
    [
        45,
        7,
        4,
        3.5,
        3,
        2.5,
        2,
        1.7,
        1.6,
        1.5,
        1.4,
        1.3,
        1.3,
        1.2,
        1.2,
        1.2,
        1.1,
        1.0,
        1.0,
        0.8,
        0.7,
        0.7,
    ]
)
_COUNTRY_P = _COUNTRY_WEIGHTS / _COUNTRY_WEIGHTS.sum()

_T0 = np.datetime64("2017-01-01T00:00:00", "us")  # timestamps fall in Jan..Mar 2017
_T_SPAN_US = 89 * 86_400 * 1_000_000

#: Share of rows (train and test) where the player drew something else: another class's shape
#: or a scribble, mostly with ``recognized=False``. It caps the reachable accuracy, like the
#: noise in the real data.
STRAY_RATE = 0.04

# --------------------------------------------------------------------------------------------
# geometry helpers (unit coordinates)
# --------------------------------------------------------------------------------------------


def _ring(cx: float, cy: float, rx: float, ry: float, a0: float, sweep: float, n: int) -> Stroke:
    """Points along an elliptic arc from angle a0 over ``sweep`` radians."""
    a = a0 + np.linspace(0.0, sweep, n)
    return np.column_stack([cx + rx * np.cos(a), cy + ry * np.sin(a)])


def _loop(
    rng: np.random.Generator,
    cx: float = 0.0,
    cy: float = 0.0,
    r: float = 1.0,
    squash: float = 0.08,
    n: tuple[int, int] = (16, 28),
) -> Stroke:
    """A hand-drawn closed ellipse: random start, slight over- or under-shoot."""
    ry = r * float(np.exp(rng.normal(0.0, squash)))
    sweep = TAU * (1.0 + rng.uniform(-0.04, 0.08))
    return _ring(
        cx,
        cy,
        r,
        ry,
        rng.uniform(0, TAU),
        sweep * rng.choice((-1, 1)),
        int(rng.integers(n[0], n[1] + 1)),
    )


def _dot(rng: np.random.Generator, cx: float, cy: float, r: float) -> Stroke:
    """A tiny closed blob (an eye, a knob)."""
    return _ring(cx, cy, r, r, rng.uniform(0, TAU), TAU, int(rng.integers(4, 7)))


def _seg(x0: float, y0: float, x1: float, y1: float) -> Stroke:
    return np.array([[x0, y0], [x1, y1]], dtype=float)


def _poly(
    vertices: np.ndarray | Sequence,
    rng: np.random.Generator,
    closed: bool = False,
    extra: float = 0.5,
) -> Stroke:
    """Polyline through ``vertices``; each edge gets Binomial(3, ``extra``) extra points."""
    v = np.asarray(vertices, dtype=float)
    if closed:
        start = int(rng.integers(len(v)))
        v = np.roll(v, -start, axis=0)
        v = np.vstack([v, v[:1]])
    a, b = v[:-1], v[1:]
    reps = 1 + rng.binomial(3, extra, len(a))
    idx = np.repeat(np.arange(len(a)), reps)
    t = (np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)) / np.repeat(reps, reps)
    pts = a[idx] + t[:, None] * (b - a)[idx]
    return np.vstack([pts, v[-1:]])


def _ngon(k: int, r: float = 1.0, rot: float = 0.0, cx: float = 0.0, cy: float = 0.0) -> np.ndarray:
    a = rot + TAU * np.arange(k) / k
    return np.column_stack([cx + r * np.cos(a), cy + r * np.sin(a)])


def _rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=float)


def _split(s: Stroke, rng: np.random.Generator, p: float, max_cuts: int = 3) -> list[Stroke]:
    """With probability ``p`` cut a stroke into pieces at interior points (lifting the pen)."""
    if len(s) < 3 or rng.random() >= p:
        return [s]
    k = int(rng.integers(1, min(max_cuts, len(s) - 2) + 1))
    cuts = np.sort(rng.choice(np.arange(1, len(s) - 1), size=k, replace=False))
    bounds = [0, *cuts.tolist(), len(s) - 1]
    return [s[i : j + 1] for i, j in zip(bounds[:-1], bounds[1:], strict=True)]


def _polygon(rng: np.random.Generator, v: np.ndarray, split: float = 0.3) -> list[Stroke]:
    return _split(_poly(v, rng, closed=True), rng, split)


# --------------------------------------------------------------------------------------------
# class recipes: each returns a list of strokes in unit coordinates, natural drawing order
# --------------------------------------------------------------------------------------------


def _circle(rng: np.random.Generator) -> list[Stroke]:
    return _split(_loop(rng, squash=0.1, n=(18, 32)), rng, 0.1, 1)


def _square(rng: np.random.Generator) -> list[Stroke]:
    h = float(np.exp(rng.normal(0.0, 0.1)))
    return _polygon(rng, _rect(-1, -h, 1, h), 0.45)


def _triangle(rng: np.random.Generator) -> list[Stroke]:
    v = _ngon(3, 1.0, -np.pi / 2) + rng.normal(0, 0.08, (3, 2))
    return _polygon(rng, v, 0.35)


def _star(rng: np.random.Generator) -> list[Stroke]:
    outer = _ngon(5, 1.0, -np.pi / 2)
    if rng.random() < 0.5:  # pentagram in one go
        return _split(_poly(outer[[0, 2, 4, 1, 3, 0]], rng, extra=0.1), rng, 0.15, 1)
    inner = _ngon(5, rng.uniform(0.35, 0.5), -np.pi / 2 + np.pi / 5)
    v = np.empty((10, 2))
    v[0::2], v[1::2] = outer, inner
    return _polygon(rng, v, 0.15)


def _zigzag(rng: np.random.Generator) -> list[Stroke]:
    k = int(rng.integers(3, 8))
    x = np.linspace(-1, 1, k + 1)
    y = np.where(np.arange(k + 1) % 2 == 0, 1.0, -1.0) * rng.uniform(0.2, 0.5)
    s = _poly(np.column_stack([x, y + rng.normal(0, 0.05, k + 1)]), rng, extra=0.3)
    if rng.random() < 0.2:  # vertical zigzags look like an open lightning bolt
        s = s[:, ::-1]
    return [s]


def _line(rng: np.random.Generator) -> list[Stroke]:
    n = int(rng.integers(2, 5))
    x = np.linspace(-1, 1, n)
    return [np.column_stack([x, rng.normal(0, 0.03, n) + rng.normal(0, 0.05) * (1 - x * x)])]


def _hexagon(rng: np.random.Generator) -> list[Stroke]:
    return _polygon(rng, _ngon(6, 1.0, rng.choice((0.0, np.pi / 6))), 0.3)


def _octagon(rng: np.random.Generator) -> list[Stroke]:
    return _polygon(rng, _ngon(8, 1.0, np.pi / 8), 0.3)


def _diamond(rng: np.random.Generator) -> list[Stroke]:
    h = rng.uniform(1.05, 1.6)
    return _polygon(rng, np.array([[0, -h], [1, 0], [0, h], [-1, 0]]), 0.35)


def _moon(rng: np.random.Generator) -> list[Stroke]:
    sweep = rng.uniform(3.6, 4.6)
    a0 = np.pi - sweep / 2  # open side faces right
    outer = _ring(0, 0, 1, 1, a0, sweep, int(rng.integers(8, 13)))
    d = rng.uniform(0.35, 0.7)
    p0, p1 = outer[0], outer[-1]
    # inner arc: through both tips, bulging toward the outer arc
    mid = np.array([-1 + d, 0.0])
    t = np.linspace(0, 1, int(rng.integers(5, 9)))[:, None]
    inner = (1 - t) ** 2 * p1 + 2 * t * (1 - t) * (2 * mid - (p0 + p1) / 2) + t**2 * p0
    if rng.random() < 0.7:
        return [np.vstack([outer, inner[1:]])]
    return [outer, inner]


def _sun(rng: np.random.Generator) -> list[Stroke]:
    r = rng.uniform(0.45, 0.6)
    out = [_loop(rng, r=r)]
    k = int(rng.integers(6, 13)) if rng.random() > 0.06 else 0
    a = rng.uniform(0, TAU) + TAU * np.arange(k) / k
    r0, r1 = r * rng.uniform(1.1, 1.3), rng.uniform(0.9, 1.05)
    out += [_seg(r0 * np.cos(t), r0 * np.sin(t), r1 * np.cos(t), r1 * np.sin(t)) for t in a]
    if rng.random() < 0.2:  # a face inside, as children draw it
        out += _face_features(rng, r)
    return out


def _cloud(rng: np.random.Generator) -> list[Stroke]:
    k = int(rng.integers(4, 9))
    n = 5 * k + 1
    a = rng.uniform(0, TAU) + np.linspace(0, TAU, n)
    bump = 1 + rng.uniform(0.15, 0.3) * np.abs(np.sin(k * (a - a[0]) / 2))
    ry = rng.uniform(0.5, 0.7)
    s = np.column_stack([bump * np.cos(a), ry * bump * np.sin(a)])
    return _split(s, rng, 0.15, 1)


def _lightning(rng: np.random.Generator) -> list[Stroke]:
    w = rng.uniform(0.3, 0.5)
    if rng.random() < 0.5:  # open bolt
        return [_poly([[w, -1], [-w, 0.05], [w, -0.05], [-w, 1]], rng, extra=0.1)]
    j = rng.uniform(0.12, 0.22)
    v = np.array([[w * 0.6, -1], [-w, 0.1], [-j, 0.1], [-w * 0.7, 1], [w, -0.15], [j, -0.15]])
    return _polygon(rng, v, 0.2)


def _door(rng: np.random.Generator) -> list[Stroke]:
    h = rng.uniform(1.3, 2.3)
    v = _rect(-1, -h, 1, h)
    if rng.random() < 0.5:  # open at the bottom
        out = [_poly(v[[3, 0, 1, 2]], rng)]
    else:
        out = _polygon(rng, v, 0.3)
    if rng.random() < 0.8:
        knob = rng.uniform(0.1, 0.18)
        out.append(_dot(rng, rng.choice((-0.6, 0.6)), rng.uniform(-0.1, 0.3), knob))
    return out


def _envelope(rng: np.random.Generator) -> list[Stroke]:
    h = rng.uniform(0.55, 0.8)
    out = _polygon(rng, _rect(-1, -h, 1, h), 0.3)
    cy = rng.uniform(-0.1, 0.2)
    out.append(np.array([[-1, -h], [0, cy], [1, -h]]))
    if rng.random() < 0.2:
        out += [_seg(-1, h, -0.3, cy * 0.5 + 0.1), _seg(1, h, 0.3, cy * 0.5 + 0.1)]
    return out


def _house(rng: np.random.Generator) -> list[Stroke]:
    out = _polygon(rng, _rect(-1, 0, 1, rng.uniform(1.3, 1.9)), 0.3)
    if rng.random() > 0.04:
        apex = [rng.normal(0, 0.1), -rng.uniform(0.8, 1.3)]
        over = rng.uniform(0, 0.2)
        out.append(np.array([[-1 - over, 0], apex, [1 + over, 0]]))
    bottom = out[0][:, 1].max()
    if rng.random() < 0.6:
        dx = rng.uniform(-0.5, 0.5)
        out.append(
            _poly(
                [
                    [dx - 0.2, bottom],
                    [dx - 0.2, bottom - 0.7],
                    [dx + 0.2, bottom - 0.7],
                    [dx + 0.2, bottom],
                ],
                rng,
                extra=0,
            )
        )
    if rng.random() < 0.35:
        out += _polygon(rng, _rect(0.35, 0.25, 0.75, 0.6), 0)
    return out


def _fish(rng: np.random.Generator) -> list[Stroke]:
    h = rng.uniform(0.35, 0.6)
    top = _ring(0, h * 1.4, 1, h * 2.4, -np.pi * 0.78, np.pi * 0.56, 6)
    bot = top[::-1] * [1, -1]
    body = np.vstack([top, bot[1:]])
    if rng.random() < 0.6:
        out = [body]
    else:
        out = [top, bot]
    tail_x = top[-1, 0]
    tw, th = rng.uniform(0.35, 0.6), rng.uniform(0.3, 0.5)
    tail = np.array([[tail_x - 0.05, 0], [tail_x + tw, -th], [tail_x + tw, th], [tail_x - 0.05, 0]])
    out.append(_poly(tail, rng, extra=0.1))
    if rng.random() < 0.6:
        out.append(_dot(rng, -0.55, -h * 0.25, 0.06))
    return out


def _spokes(rng: np.random.Generator, r0: float, r1: float, k: int) -> list[Stroke]:
    a = rng.uniform(0, TAU) + TAU * np.arange(k) / k
    return [_seg(r0 * np.cos(t), r0 * np.sin(t), r1 * np.cos(t), r1 * np.sin(t)) for t in a]


def _wheel(rng: np.random.Generator) -> list[Stroke]:
    out = [_loop(rng, squash=0.05, n=(18, 32))]
    if rng.random() < 0.5:
        out.append(_loop(rng, r=rng.uniform(0.75, 0.9), squash=0.05))
    hub = rng.uniform(0.1, 0.3) if rng.random() < 0.6 else 0.0
    if hub:
        out.append(_loop(rng, r=hub, n=(6, 9)))
    if rng.random() > 0.1:  # sometimes no spokes: a donut or a circle
        k = int(rng.integers(3, 9))
        if hub == 0.0 and rng.random() < 0.5 and k % 2 == 0:
            a = rng.uniform(0, np.pi) + np.pi * np.arange(k // 2) / (k // 2)
            out += [_seg(np.cos(t), np.sin(t), -np.cos(t), -np.sin(t)) for t in a]
        else:
            out += _spokes(rng, hub, 0.85, k)
    return out


def _donut(rng: np.random.Generator) -> list[Stroke]:
    out = [_loop(rng), _loop(rng, r=rng.uniform(0.25, 0.5), n=(7, 12))]
    if rng.random() < 0.45:
        for _ in range(int(rng.integers(3, 9))):
            a, r, t = rng.uniform(0, TAU), rng.uniform(0.55, 0.85), rng.uniform(0, np.pi)
            cx, cy = r * np.cos(a), r * np.sin(a)
            out.append(_seg(cx, cy, cx + 0.1 * np.cos(t), cy + 0.1 * np.sin(t)))
    return out


def _stop_sign(rng: np.random.Generator) -> list[Stroke]:
    out = _polygon(rng, _ngon(8, 1.0, np.pi / 8), 0.3)
    if rng.random() < 0.7:  # "STOP" as four small letter-ish scribbles
        for i, x in enumerate(np.linspace(-0.6, 0.6, 4)):
            letters = (
                [[0.12, -0.2], [-0.12, -0.15], [0.12, 0.15], [-0.12, 0.2]],
                [[-0.14, -0.2], [0.14, -0.2], [0, -0.2], [0, 0.2]],
                None,
                [[-0.1, 0.2], [-0.1, -0.2], [0.12, -0.1], [-0.1, 0.0]],
            )[i]
            out.append(
                _dot(rng, x, 0, 0.17)
                if letters is None
                else np.asarray(letters, dtype=float) + [x, 0]
            )
    if rng.random() < 0.5:
        pw = rng.uniform(0.06, 0.12)
        bottom = 1.0 + rng.uniform(0.8, 1.4)
        out += [_seg(-pw, 0.93, -pw, bottom), _seg(pw, 0.93, pw, bottom)]
    return out


def _mountain(rng: np.random.Generator) -> list[Stroke]:
    k = int(rng.integers(1, 4))
    xs = np.linspace(-1, 1, 2 * k + 1)
    ys = np.ones(2 * k + 1)
    ys[1::2] = -rng.uniform(0.3, 1.0, k)
    ys[2:-1:2] = rng.uniform(-0.2, 0.5, k - 1)
    xs[1:-1] += rng.normal(0, 0.08, 2 * k - 1)
    out = [_poly(np.column_stack([xs, ys]), rng)]
    if rng.random() < 0.3:
        out.append(_seg(-1, 1, 1, 1))
    if rng.random() < 0.3:  # snow cap on the highest peak
        i = 1 + 2 * int(np.argmin(ys[1::2]))
        px, py = xs[i], ys[i]
        out.append(
            np.array(
                [
                    [px - 0.25, py + 0.35],
                    [px - 0.1, py + 0.25],
                    [px, py + 0.4],
                    [px + 0.1, py + 0.25],
                    [px + 0.25, py + 0.35],
                ]
            )
        )
    return out


def _face_features(rng: np.random.Generator, r: float) -> list[Stroke]:
    ex, ey = r * rng.uniform(0.3, 0.45), -r * rng.uniform(0.2, 0.4)
    if rng.random() < 0.5:
        eyes = [_dot(rng, -ex, ey, r * 0.08), _dot(rng, ex, ey, r * 0.08)]
    else:
        d = r * 0.1
        eyes = [_seg(-ex, ey - d, -ex, ey + d), _seg(ex, ey - d, ex, ey + d)]
    sweep = rng.uniform(0.5, 0.8) * np.pi
    smile = _ring(0, 0, r * 0.6, r * 0.55, np.pi / 2 - sweep / 2, sweep, int(rng.integers(4, 8)))
    return [*eyes, smile]


def _smiley_face(rng: np.random.Generator) -> list[Stroke]:
    out = [_loop(rng, n=(18, 32))]
    if rng.random() > 0.03:
        out += _face_features(rng, 1.0)
    return out


def _clock(rng: np.random.Generator) -> list[Stroke]:
    out = [_loop(rng, squash=0.05, n=(18, 32))]
    if rng.random() < 0.4:
        k = 12 if rng.random() < 0.5 else 4
        out += _spokes(rng, 0.75, 0.9, k)
    a1, a2 = rng.uniform(0, TAU, 2)
    hands = np.array(
        [[0.5 * np.cos(a1), 0.5 * np.sin(a1)], [0, 0], [0.75 * np.cos(a2), 0.75 * np.sin(a2)]]
    )
    out += [hands] if rng.random() < 0.6 else [hands[:2], hands[1:]]
    if rng.random() < 0.15:  # alarm bells / feet
        out += [
            _ring(-0.7, -0.85, 0.3, 0.2, np.pi, np.pi, 5),
            _ring(0.7, -0.85, 0.3, 0.2, np.pi, np.pi, 5),
        ]
    return out


def _ladder(rng: np.random.Generator) -> list[Stroke]:
    w = rng.uniform(0.3, 0.55)
    out = [_seg(-w, -1, -w, 1), _seg(w, -1, w, 1)]
    k = int(rng.integers(3, 8))
    out += [_seg(-w, y, w, y) for y in np.linspace(-1, 1, k + 2)[1:-1]]
    return out


def _fence(rng: np.random.Generator) -> list[Stroke]:
    k = int(rng.integers(4, 9))
    h = rng.uniform(0.4, 0.8)
    xs = np.linspace(-1, 1, k)
    pointed = rng.random() < 0.5
    out = []
    for x in xs:
        if pointed:
            out.append(
                np.array(
                    [
                        [x - 0.08, h],
                        [x - 0.08, -h + 0.1],
                        [x, -h],
                        [x + 0.08, -h + 0.1],
                        [x + 0.08, h],
                    ]
                )
            )
        else:
            out.append(_seg(x, -h, x, h))
    out += [_seg(-1.1, y, 1.1, y) for y in (-h * 0.45, h * 0.45)]
    return out


def _hourglass(rng: np.random.Generator, w: float = 0.6) -> list[Stroke]:
    w *= rng.uniform(0.8, 1.2)
    waist = rng.uniform(0.03, 0.12)
    if rng.random() < 0.5:
        v = np.array([[-w, -1], [w, -1], [waist, 0], [w, 1], [-w, 1], [-waist, 0]])
        out = _polygon(rng, v, 0.3)
    else:
        out = [
            _seg(-w, -1, w, -1),
            _seg(-w, 1, w, 1),
            np.array([[-w, -1], [-waist, 0], [-w, 1]]),
            np.array([[w, -1], [waist, 0], [w, 1]]),
        ]
    if rng.random() < 0.3:  # sand
        out.append(np.array([[-w * 0.6, 0.85], [0, 0.55], [w * 0.6, 0.85]]))
    return out


def _bowtie(rng: np.random.Generator) -> list[Stroke]:
    out = [s[:, ::-1].copy() for s in _hourglass(rng, w=0.55)[:4]]
    if rng.random() < 0.6:
        out.append(_dot(rng, 0, 0, rng.uniform(0.12, 0.22)))
    return out


def _rainbow(rng: np.random.Generator) -> list[Stroke]:
    k = int(rng.integers(2, 6))
    r = np.linspace(1.0, rng.uniform(0.35, 0.6), k)
    return [
        _ring(0, 0, ri, ri * rng.uniform(0.9, 1.1), np.pi, np.pi, int(rng.integers(6, 11)))
        for ri in r
    ]


def _stairs(rng: np.random.Generator) -> list[Stroke]:
    k = int(rng.integers(3, 7))
    step = 2.0 / k
    pts = [[-1.0, 1.0]]
    for i in range(k):
        pts += [[-1 + i * step, 1 - (i + 1) * step], [-1 + (i + 1) * step, 1 - (i + 1) * step]]
    out = [_poly(pts, rng, extra=0.2)]
    if rng.random() < 0.5:
        out.append(np.array([[1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]))
    return out


def _traffic_light(rng: np.random.Generator) -> list[Stroke]:
    w = rng.uniform(0.35, 0.5)
    out = _polygon(rng, _rect(-w, -1, w, 1), 0.2)
    if rng.random() > 0.05:
        out += [_loop(rng, 0, cy, w * 0.6, n=(6, 10)) for cy in (-0.6, 0.0, 0.6)]
    if rng.random() < 0.3:
        out.append(_seg(0, 1, 0, rng.uniform(1.5, 2.0)))
    return out


def _snowflake(rng: np.random.Generator) -> list[Stroke]:
    k = int(rng.choice((3, 3, 4)))
    a = rng.uniform(0, np.pi) + np.pi * np.arange(k) / k
    out = [_seg(np.cos(t), np.sin(t), -np.cos(t), -np.sin(t)) for t in a]
    if rng.random() < 0.6:
        for t in np.concatenate([a, a + np.pi]):
            c = 0.65 * np.array([np.cos(t), np.sin(t)])
            e1 = np.array([np.cos(t + 0.6), np.sin(t + 0.6)]) * 0.35
            e2 = np.array([np.cos(t - 0.6), np.sin(t - 0.6)]) * 0.35
            out.append(np.array([c + e1, c, c + e2]))
    return out


def _squiggle(rng: np.random.Generator) -> list[Stroke]:
    n = int(rng.integers(16, 31))
    x = np.linspace(-1, 1, n)
    periods = rng.uniform(1.2, 3.0)
    y = rng.uniform(0.15, 0.4) * np.sin(np.pi * periods * x + rng.uniform(0, TAU))
    y += rng.uniform(-0.2, 0.2) * x
    return [np.column_stack([x, y])]


def _hot_air_balloon(rng: np.random.Generator) -> list[Stroke]:
    r = rng.uniform(0.6, 0.8)
    gap = rng.uniform(0.5, 0.9)  # open angle at the bottom
    env = _ring(
        0,
        -0.35,
        r,
        r * rng.uniform(1.0, 1.2),
        np.pi / 2 + gap / 2,
        TAU - gap,
        int(rng.integers(12, 18)),
    )
    out = [env]
    bw, by = rng.uniform(0.15, 0.25), rng.uniform(0.75, 0.9)
    p0, p1 = env[0], env[-1]
    if rng.random() < 0.5:  # tapering to the basket in one stroke
        out = [np.vstack([[[-bw, by]], env, [[bw, by]]])]
    else:
        out += [_seg(p0[0], p0[1], -bw, by), _seg(p1[0], p1[1], bw, by)]
    if rng.random() > 0.1:
        out += _polygon(rng, _rect(-bw, by, bw, by + rng.uniform(0.2, 0.3)), 0)
    return out


def _scribble(rng: np.random.Generator) -> list[Stroke]:
    """Random pen walks: what an unrecognisable doodle looks like."""
    out = []
    for _ in range(int(rng.integers(1, 5))):
        steps = rng.normal(0.0, 0.4, (int(rng.integers(3, 14)), 2))
        out.append(np.cumsum(steps, axis=0) + rng.normal(0.0, 0.6, 2))
    return out


# name -> (recipe, rotation: None = any angle, else std of the angle in degrees)
_RECIPES: dict[str, tuple[Callable[[np.random.Generator], list[Stroke]], float | None]] = {
    "circle": (_circle, None),
    "octagon": (_octagon, None),
    "hexagon": (_hexagon, None),
    "stop sign": (_stop_sign, 8.0),
    "wheel": (_wheel, None),
    "donut": (_donut, None),
    "square": (_square, 10.0),
    "door": (_door, 6.0),
    "diamond": (_diamond, 8.0),
    "triangle": (_triangle, 15.0),
    "star": (_star, 15.0),
    "zigzag": (_zigzag, 15.0),
    "lightning": (_lightning, 15.0),
    "line": (_line, None),
    "moon": (_moon, 40.0),
    "sun": (_sun, None),
    "cloud": (_cloud, 8.0),
    "envelope": (_envelope, 6.0),
    "house": (_house, 6.0),
    "fish": (_fish, 12.0),
    "smiley face": (_smiley_face, 10.0),
    "hourglass": (_hourglass, 10.0),
    "bowtie": (_bowtie, 10.0),
    "mountain": (_mountain, 6.0),
    "clock": (_clock, 10.0),
    "ladder": (_ladder, 10.0),
    "fence": (_fence, 6.0),
    "rainbow": (_rainbow, 10.0),
    "stairs": (_stairs, 6.0),
    "traffic light": (_traffic_light, 6.0),
    "snowflake": (_snowflake, None),
    "squiggle": (_squiggle, 15.0),
    "hot air balloon": (_hot_air_balloon, 8.0),
}

#: Real Quick, Draw! class names imitated by the generator; ``n_classes`` takes a prefix.
CLASSES: tuple[str, ...] = tuple(_RECIPES)

# --------------------------------------------------------------------------------------------
# augmentation and Kaggle normalisation
# --------------------------------------------------------------------------------------------


def _augment(
    recipe: Callable[[np.random.Generator], list[Stroke]],
    rot_sd: float | None,
    rng: np.random.Generator,
) -> tuple[list[Stroke], bool]:
    """Recipe plus hand-drawn variation; the flag marks sloppy drawings (heavy jitter/drop)."""
    strokes = [np.asarray(s, dtype=float) for s in recipe(rng)]
    u = rng.random(12)  # all scalar random draws of this drawing at once
    sloppy = bool(u[0] < 0.15)
    if len(strokes) > 1 and u[1] < 0.03:  # unfinished drawing
        del strokes[1 + int(u[2] * (len(strokes) - 1))]
        sloppy = True
    k = len(strokes)
    if u[3] < 0.35:
        strokes = [strokes[i] for i in rng.permutation(k)]
    flips = (rng.random(k) < 0.3).tolist()
    strokes = [st[::-1] if f else st for st, f in zip(strokes, flips, strict=True)]

    lens = np.array([len(st) for st in strokes])
    ends = np.cumsum(lens)
    pts = np.concatenate(strokes)
    sid = np.repeat(np.arange(k), lens)
    span = float((pts.max(axis=0) - pts.min(axis=0)).max()) or 1.0
    z = rng.standard_normal(3 * k + 3)

    # per-stroke translation and scale about the stroke centre
    centre = (np.add.reduceat(pts, ends - lens) / lens[:, None])[sid]
    s_scale = np.exp(z[:k] * (0.1 if sloppy else 0.04))[sid, None]
    s_shift = (z[k : 3 * k].reshape(k, 2) * ((0.06 if sloppy else 0.02) * span))[sid]
    pts = (pts - centre) * s_scale + centre + s_shift

    # global rotation, aspect, shear, mirror
    ang = u[4] * TAU if rot_sd is None else np.deg2rad(z[-1] * rot_sd)
    c, s = np.cos(ang), np.sin(ang)
    asp, sh = np.exp(0.1 * z[-2]), 0.08 * z[-3]
    mx = -1.0 if u[5] < 0.5 else 1.0
    m = np.array([[c * asp * mx, c * sh - s / asp], [s * asp * mx, s * sh + c / asp]])
    pts = pts @ m.T

    # smooth wobble (a low-frequency warp) and per-point noise
    amp = ((0.06 + 0.06 * u[6]) if sloppy else (0.01 + 0.04 * u[6])) * span
    fx, fy = (1.0 + 2.0 * u[7:9]) / span
    px, py = u[9:11] * TAU
    wob = np.column_stack([np.sin(fx * pts[:, 1] + px), np.sin(fy * pts[:, 0] + py)])
    noise = ((0.025 + 0.025 * u[11]) if sloppy else (0.004 + 0.014 * u[11])) * span
    pts = pts + amp * wob + rng.normal(0.0, noise, pts.shape)
    return [pts[e - n : e] for e, n in zip(ends.tolist(), lens.tolist(), strict=True)], sloppy


def _normalise(strokes: list[Stroke]) -> Drawing:
    """Kaggle "simplified" form: min at 0, larger side spans 0..255, ints, no repeated points."""
    lens = np.array([len(st) for st in strokes])
    pts = np.concatenate(strokes)
    lo = pts.min(axis=0)
    ext = float((pts.max(axis=0) - lo).max()) or 1.0
    q = np.clip(np.rint((pts - lo) * (255.0 / ext)), 0, 255).astype(np.int64)
    keep = np.ones(len(q), dtype=bool)
    keep[1:] = np.any(q[1:] != q[:-1], axis=1)
    keep[np.cumsum(lens) - lens] = True  # stroke starts
    counts = np.add.reduceat(keep, np.cumsum(lens) - lens).tolist()
    xs, ys = q[keep].T.tolist()
    out: Drawing = []
    i = 0
    for n in counts:
        x, y = xs[i : i + n], ys[i : i + n]
        if n == 1:  # real simplified strokes always have >= 2 points
            x, y = [x[0], x[0] + 1 if x[0] < 255 else x[0] - 1], [y[0], y[0]]
        out.append([x, y])
        i += n
    return out


def _make(word: str, rng: np.random.Generator, stray: float = 0.0) -> tuple[Drawing, bool]:
    """A drawing of ``word`` and its sloppy flag; with probability ``stray`` the player drew
    something else instead (another class or a scribble), as in the real data."""
    recipe, rot_sd = _RECIPES[word]
    if stray > 0.0 and rng.random() < stray:
        other = int(rng.integers(len(CLASSES) + 1))
        recipe, rot_sd = _RECIPES[CLASSES[other]] if other < len(CLASSES) else (_scribble, None)
        return _normalise(_augment(recipe, rot_sd, rng)[0]), True
    strokes, sloppy = _augment(recipe, rot_sd, rng)
    return _normalise(strokes), sloppy


# --------------------------------------------------------------------------------------------
# Metadata (key ids, countries, timestamps) and the Kaggle-layout writer
# --------------------------------------------------------------------------------------------


def _key_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` unique uniformly random 16-digit key_ids (so every shard bucket gets its share)."""
    keys = np.unique(rng.integers(KEY_ID_LOW, KEY_ID_HIGH, size=n, dtype=np.int64))
    while len(keys) < n:
        more = rng.integers(KEY_ID_LOW, KEY_ID_HIGH, size=n - len(keys), dtype=np.int64)
        keys = np.unique(np.concatenate([keys, more]))
    return rng.permutation(keys)


def _timestamps(rng: np.random.Generator, n: int) -> list[str]:
    """Strings like ``2017-03-28 15:47:12.56245`` (Kaggle drops trailing zeros of the fraction)."""
    us = rng.integers(0, _T_SPAN_US // 10, size=n) * 10  # 5 decimal digits
    text = np.datetime_as_string(_T0 + us.astype("timedelta64[us]"), unit="us")
    out = []
    for t in text.tolist():
        day, clock = t.split("T")
        sec, frac = clock.split(".")
        out.append(f"{day} {sec}.{frac[:5].rstrip('0') or '0'}")
    return out


def _dump(drawing: Drawing) -> str:
    return json.dumps(drawing, separators=JSON_SEPARATORS)


def write_synthetic(
    dest: Path, train_per_class: int, test_per_class: int, seed: int, n_classes: int | None = None
) -> dict:
    """Write a synthetic competition folder under ``dest`` in Kaggle's layout.

    Creates ``train_simplified/<word>.csv`` (``countrycode,drawing,key_id,recognized,timestamp,
    word``), ``test_simplified.csv`` (``key_id,countrycode,drawing``, shuffled, balanced) and
    ``test_solution.csv`` (``key_id,word`` with spaces as underscores). The output is byte for
    byte a function of the arguments; drawings of class ``i`` do not depend on ``n_classes``.
    Returns ``{"classes": n, "train_rows": ..., "test_rows": ...}``.
    """
    n = len(CLASSES) if n_classes is None else int(n_classes)
    if not 1 <= n <= len(CLASSES):
        raise ValueError(f"n_classes must be in 1..{len(CLASSES)}, got {n_classes}")
    if train_per_class < 0 or test_per_class < 0:
        raise ValueError("per-class counts must be >= 0")
    words = CLASSES[:n]
    dest = Path(dest)
    (dest / TRAIN_DIR).mkdir(parents=True, exist_ok=True)

    meta = np.random.default_rng([seed, 2])
    n_train, n_test = n * train_per_class, n * test_per_class
    keys = _key_ids(meta, n_train + n_test).tolist()
    countries = meta.choice(len(_COUNTRIES), size=n_train + n_test, p=_COUNTRY_P).tolist()
    stamps = _timestamps(meta, n_train)
    luck = meta.random(n_train).tolist()

    for i, word in enumerate(tqdm(words, desc="synthetic", unit="class")):
        rng = np.random.default_rng([seed, 0, i])
        rows = []
        for j in range(i * train_per_class, (i + 1) * train_per_class):
            drawing, sloppy = _make(word, rng, STRAY_RATE)
            recognized = luck[j] < (0.55 if sloppy else 0.97)
            rows.append(
                (_COUNTRIES[countries[j]], _dump(drawing), keys[j], recognized, stamps[j], word)
            )
        write_csv(dest / TRAIN_DIR / f"{word}.csv", TRAIN_COLUMNS, rows)

    tests: list[tuple[str, str]] = []
    for i, word in enumerate(words):
        rng = np.random.default_rng([seed, 1, i])
        tests += [(_dump(_make(word, rng, STRAY_RATE)[0]), word) for _ in range(test_per_class)]
    order = np.random.default_rng([seed, 3]).permutation(len(tests)).tolist()
    test_rows, solution_rows = [], []
    for k, t in enumerate(order):
        key, country = keys[n_train + k], _COUNTRIES[countries[n_train + k]]
        drawing, word = tests[t]
        test_rows.append((key, country, drawing))
        solution_rows.append((key, word.replace(" ", "_")))
    write_csv(dest / TEST_FILE, TEST_COLUMNS, test_rows)
    write_csv(dest / SOLUTION_FILE, ("key_id", "word"), solution_rows)
    return {"classes": n, "train_rows": n_train, "test_rows": n_test}


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: ``python -m doodle.data.synthetic DEST --train-per-class N --test-per-class M``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dest", type=Path)
    ap.add_argument("--train-per-class", type=int, default=2000)
    ap.add_argument("--test-per-class", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-classes", type=int, default=None)
    a = ap.parse_args(argv)
    print(
        json.dumps(
            write_synthetic(a.dest, a.train_per_class, a.test_per_class, a.seed, a.n_classes)
        )
    )


if __name__ == "__main__":
    main()
