"""The reference per-drawing renderer, re-implemented as the benchmark baseline.

One drawing at a time: ``json.loads`` the ``drawing`` cell, ``cv2.line`` every segment on a
256x256 uint8 canvas (thickness 6, stroke ``t`` in grey ``255 - min(t, 10) * 13``, later
strokes overwrite earlier ones), then ``cv2.resize`` to the target size. As in the original
kernels, a one-point stroke has no segment and so draws nothing.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np

from benchmarks.shared_data import SHARED

BASE_SIZE = 256
LINE_WIDTH = 6  # the kernels' cv2.line thickness; our renderer's line_width 6 draws alike
SAMPLE_DIR = SHARED / "quickdraw-real-sample"


def reference_image(
    drawing_json: str,
    img_size: int,
    line_width: int = LINE_WIDTH,
    time_colour: bool = True,
    interpolation: int = cv2.INTER_LINEAR,
) -> np.ndarray:
    """Render one JSON drawing the reference way -> ``(img_size, img_size) uint8``.

    ``interpolation`` defaults to ``cv2.resize``'s own default (bilinear), as the kernels used.
    """
    return reference_strokes_image(
        json.loads(drawing_json), img_size, line_width, time_colour, interpolation
    )


def reference_strokes_image(
    strokes,
    img_size: int,
    line_width: int = LINE_WIDTH,
    time_colour: bool = True,
    interpolation: int = cv2.INTER_LINEAR,
) -> np.ndarray:
    """:func:`reference_image` of a parsed drawing (a list of ``(xs, ys)`` strokes)."""
    img = np.zeros((BASE_SIZE, BASE_SIZE), np.uint8)
    for t, stroke in enumerate(strokes):
        xs, ys = stroke[0], stroke[1]
        colour = 255 - min(t, 10) * 13 if time_colour else 255
        for i in range(len(xs) - 1):
            cv2.line(
                img, (int(xs[i]), int(ys[i])), (int(xs[i + 1]), int(ys[i + 1])), colour, line_width
            )
    if img_size != BASE_SIZE:
        return cv2.resize(img, (img_size, img_size), interpolation=interpolation)
    return img


def load_sample_json(
    sample_dir: Path = SAMPLE_DIR, split: str = "train_simplified"
) -> tuple[list[str], list[str]]:
    """The ``drawing`` cells and ``word`` labels of every CSV in the real sample, file by file."""
    drawings: list[str] = []
    words: list[str] = []
    for path in sorted((Path(sample_dir) / split).glob("*.csv")):
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                drawings.append(row["drawing"])
                words.append(row.get("word") or path.stem)
    return drawings, words
