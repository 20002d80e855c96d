"""Draw ``docs/encodings.png``: the same 8 real drawings in each encoding, at 128 px.

    python benchmarks/encodings_figure.py [--sample-dir DIR] [--out docs/encodings.png]

The drawings are real raw ones (``../shared/data/quickdraw-real-raw-sample/train_raw``),
simplified with their times by :func:`doodle.data.rawcells.parse_raw_many`, as the shard stage
does. Row 1: ``grey``; row 2: ``order3`` as RGB (stroke order, drawing progress, stroke
progress); row 3: ``time3`` as RGB (pause before the stroke, time since the start, pen speed);
row 4: the reference renderer (cv2 at 256, resize) on Google's simplified twin.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.reference import reference_image  # noqa: E402
from benchmarks.shared_data import SHARED  # noqa: E402
from doodle.data.rawcells import parse_raw_many  # noqa: E402
from doodle.rendering.raster import render  # noqa: E402

RAW_SAMPLE = SHARED / "quickdraw-real-raw-sample"

CLASSES = (
    "cat",
    "The Eiffel Tower",
    "bicycle",
    "snail",
    "butterfly",
    "hot air balloon",
    "umbrella",
    "house",
)
ROWS = (
    "grey",
    "order3 as RGB",
    "time3 as RGB",
    "reference: cv2 256 + resize",
)
SIZE = 128
PAD = 8
LEFT = 150
TOP = 28


def pick_drawings(
    sample_dir: Path, classes: tuple[str, ...] = CLASSES
) -> tuple[list[str], list[str]]:
    """Per class, the first recognised drawing with 3 to 8 strokes (so that the stroke-order
    and pause colours have something to show), else the first one: (raw cells, their
    simplified twins)."""
    csv.field_size_limit(2**31 - 1)
    raw, twins = [], []
    for word in classes:
        rows = []
        for folder in ("train_raw", "train_simplified"):
            with open(Path(sample_dir) / folder / f"{word}.csv", newline="") as f:
                rows.append(list(csv.DictReader(f)))
        pairs = [(a, b) for a, b in zip(*rows, strict=True) if a["recognized"] == "True"]
        a, b = next((p for p in pairs if 3 <= len(json.loads(p[0]["drawing"])) <= 8), pairs[0])
        raw.append(a["drawing"])
        twins.append(b["drawing"])
    return raw, twins


def _text(img: np.ndarray, s: str, x: int, y: int, scale: float = 0.45) -> None:
    cv2.putText(img, s, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (20, 20, 20), 1, cv2.LINE_AA)


def make_figure(
    raw_json: list[str], twins_json: list[str], classes: tuple[str, ...] = CLASSES
) -> np.ndarray:
    """The labelled grid as a BGR uint8 image."""
    parsed = parse_raw_many(raw_json)
    assert parsed.errors == [None] * len(raw_json), parsed.errors
    d = parsed.drawings
    grey = render(d, None, SIZE, "grey")[..., 0]
    order3 = render(d, None, SIZE, "order3")
    time3 = render(d, None, SIZE, "time3")
    ref = np.stack([reference_image(j, SIZE) for j in twins_json])
    n = len(raw_json)
    h = TOP + len(ROWS) * (SIZE + PAD) + PAD
    w = LEFT + n * (SIZE + PAD)
    fig = np.full((h, w, 3), 255, np.uint8)
    for c, word in enumerate(classes):
        x = LEFT + c * (SIZE + PAD)
        _text(fig, word if len(word) <= 18 else word[:17] + ".", x + 2, TOP - 10)
        tiles = (
            cv2.cvtColor(grey[c], cv2.COLOR_GRAY2BGR),
            order3[c][..., ::-1],
            time3[c][..., ::-1],
            cv2.cvtColor(ref[c], cv2.COLOR_GRAY2BGR),
        )
        for r, tile in enumerate(tiles):
            y = TOP + r * (SIZE + PAD)
            fig[y : y + SIZE, x : x + SIZE] = tile
    for r, label in enumerate(ROWS):
        y = TOP + r * (SIZE + PAD) + SIZE // 2
        words = label.split(": ") if ": " in label else label.rsplit(" ", 1)
        for i, part in enumerate(words):
            _text(fig, part, 6, y - 6 + 18 * i, 0.42)
    return fig


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sample-dir", type=Path, default=RAW_SAMPLE)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "encodings.png")
    args = ap.parse_args(argv)
    fig = make_figure(*pick_drawings(args.sample_dir))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), fig, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")
    return args.out


if __name__ == "__main__":
    main()
