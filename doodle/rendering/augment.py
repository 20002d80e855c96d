"""Stroke-level augmentation: per-drawing affine maps and stroke dropout, applied to the
points inside the renderer (before rasterising), so augmentation costs no extra pass."""

from __future__ import annotations

import numpy as np

from doodle.config import Augment  # the settings' schema lives with the others

__all__ = ["Augment", "NO_AUGMENT", "flip_affines", "random_affines"]

CENTRE = 127.5  # the middle of the 0..255 drawing frame


# No augmentation (evaluation, and tests that want none).
NO_AUGMENT = Augment(flip=0.0, scale=0.0, shift=0.0, rotate=0.0, stroke_dropout=0.0)


def random_affines(rng: np.random.Generator, n: int, aug: Augment) -> np.ndarray | None:
    """``(n, 2, 3)`` float32 maps of 256-scale points about the frame centre (None: identity)."""
    if not aug.geometric:
        return None
    sx = 1.0 + rng.uniform(-aug.scale, aug.scale, n)
    sy = sx * (1.0 + rng.uniform(-aug.scale, aug.scale, n) / 2)  # mild aspect jitter
    sx = np.where(rng.random(n) < aug.flip, -sx, sx)
    theta = np.deg2rad(rng.uniform(-aug.rotate, aug.rotate, n))
    c, s = np.cos(theta), np.sin(theta)
    t = rng.uniform(-aug.shift, aug.shift, (n, 2)) * 256
    m = np.empty((n, 2, 3), np.float32)
    # p' = R @ diag(sx, sy) @ (p - C) + C + t
    m[:, 0, 0], m[:, 0, 1] = c * sx, -s * sy
    m[:, 1, 0], m[:, 1, 1] = s * sx, c * sy
    m[:, 0, 2] = CENTRE - (m[:, 0, 0] + m[:, 0, 1]) * CENTRE + t[:, 0]
    m[:, 1, 2] = CENTRE - (m[:, 1, 0] + m[:, 1, 1]) * CENTRE + t[:, 1]
    return m


def flip_affines(n: int) -> np.ndarray:
    """Horizontal flips for test-time augmentation."""
    m = np.zeros((n, 2, 3), np.float32)
    m[:, 0, 0], m[:, 0, 2], m[:, 1, 1] = -1.0, 2 * CENTRE, 1.0
    return m
