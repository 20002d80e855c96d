"""Draw ``docs/encodings.png``: the same 8 real drawings in each encoding, at 128 px.

    python benchmarks/encodings_figure.py [--sample-dir DIR] [--out docs/encodings.png]

Row 1: the grey stroke-order encoding (``channels=1``); row 2: the three time channels
(``channels=3``) shown as RGB; row 3: the reference renderer (cv2 at 256, resize).
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

from benchmarks.reference import SAMPLE_DIR, reference_image  # noqa: E402
from doodle.render import render  # noqa: E402
from doodle.strokes import pack, parse_drawing  # noqa: E402

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
ROWS = ("grey (channels=1)", "time channels as RGB", "reference: cv2 256 + resize")
SIZE = 128
PAD = 8
LEFT = 150
TOP = 28


def pick_drawings(sample_dir: Path, classes: tuple[str, ...] = CLASSES) -> list[str]:
    """Per class, the first recognised drawing with 3 to 8 strokes (so that the stroke-order
    colours have something to show), else the first one."""
    out = []
    for word in classes:
        with open(Path(sample_dir) / "train_simplified" / f"{word}.csv", newline="") as f:
            rows = [r["drawing"] for r in csv.DictReader(f) if r["recognized"] == "True"]
        out.append(next((j for j in rows if 3 <= len(json.loads(j)) <= 8), rows[0]))
    return out


def _text(img: np.ndarray, s: str, x: int, y: int, scale: float = 0.45) -> None:
    cv2.putText(img, s, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (20, 20, 20), 1, cv2.LINE_AA)


def make_figure(drawings_json: list[str], classes: tuple[str, ...] = CLASSES) -> np.ndarray:
    """The labelled grid as a BGR uint8 image."""
    d = pack([parse_drawing(j) for j in drawings_json])
    grey = render(d, None, SIZE, 1)[..., 0]
    rgb = render(d, None, SIZE, 3)
    ref = np.stack([reference_image(j, SIZE) for j in drawings_json])
    n = len(drawings_json)
    h = TOP + len(ROWS) * (SIZE + PAD) + PAD
    w = LEFT + n * (SIZE + PAD)
    fig = np.full((h, w, 3), 255, np.uint8)
    for c, word in enumerate(classes):
        x = LEFT + c * (SIZE + PAD)
        _text(fig, word if len(word) <= 18 else word[:17] + ".", x + 2, TOP - 10)
        tiles = (
            cv2.cvtColor(grey[c], cv2.COLOR_GRAY2BGR),
            rgb[c][..., ::-1],
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
    ap.add_argument("--sample-dir", type=Path, default=SAMPLE_DIR)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "encodings.png")
    args = ap.parse_args(argv)
    fig = make_figure(pick_drawings(args.sample_dir))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), fig, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")
    return args.out


if __name__ == "__main__":
    main()
