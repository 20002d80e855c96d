"""Which details of Google's simplification recipe reproduce Google's simplified drawings:
the recipe as :mod:`doodle.data.rawcells` implements it, and one detail changed at a time, in
plain numpy, on the real raw sample's 6,579 drawings whose Google version is known.

    python benchmarks/simplify_variants.py [--out reports/bench_simplify_variants.json]

(~10 minutes here: plain Python RDP.) Prints and writes ``{variant: [identical, drawings,
percent]}``; BENCHMARKS.md (*Raw data*) holds the table.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.shared_data import SHARED  # noqa: E402

RAW, GOOGLE = SHARED / "quickdraw-real-raw-sample", SHARED / "quickdraw-real-sample"
csv.field_size_limit(2**31 - 1)


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def pairs() -> list[tuple[list, list]]:
    """(raw drawing, Google's simplified drawing) for every drawing whose Google version is
    known (its key_id is in the 340-class sample)."""
    known = {
        r["key_id"]
        for f in [*(GOOGLE / "train_simplified").glob("*.csv"), GOOGLE / "test_simplified.csv"]
        for r in _rows(f)
    }
    files = [(RAW / "test_raw.csv", RAW / "test_simplified.csv")]
    files += [
        (f, RAW / "train_simplified" / f.name) for f in sorted((RAW / "train_raw").glob("*.csv"))
    ]
    out = []
    for a, b in files:
        for ra, rb in zip(_rows(a), _rows(b), strict=True):
            if ra["key_id"] in known:
                out.append((json.loads(ra["drawing"]), json.loads(rb["drawing"])))
    return out


def rdp(pts: np.ndarray, eps: float, segment: bool = False) -> list[int]:
    n = len(pts)
    if n < 3:
        return list(range(n))
    keep, stack = {0, n - 1}, [(0, n - 1)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        start, d = pts[a], pts[b] - pts[a]
        length = math.hypot(*d)
        p = pts[a + 1 : b]
        if length == 0:
            dist = np.hypot(p[:, 0] - start[0], p[:, 1] - start[1])
        elif segment:
            t = np.clip(((p - start) @ d) / length / length, 0, 1)
            dist = np.hypot(*(p - start - t[:, None] * d).T)
        else:
            dist = np.abs(d[0] * (start[1] - p[:, 1]) - d[1] * (start[0] - p[:, 0])) / length
        i = int(np.argmax(dist))
        if dist[i] > eps:
            keep.add(a + 1 + i)
            stack += [(a, a + 1 + i), (a + 1 + i, b)]
    return sorted(keep)


def resample_interp(pts: np.ndarray) -> np.ndarray:
    cum = np.concatenate([[0], np.cumsum(np.hypot(*np.diff(pts, axis=0).T))])
    s = np.arange(0, cum[-1] + 1e-12, 1.0)
    out = np.stack([np.interp(s, cum, pts[:, 0]), np.interp(s, cum, pts[:, 1])], 1)
    return np.concatenate([out, pts[-1:]]) if np.any(out[-1] != pts[-1]) else out


def resample_walk(pts: np.ndarray) -> np.ndarray:
    out, carry = [pts[0]], 0.0
    for i in range(1, len(pts)):
        a, b = pts[i - 1], pts[i]
        length = math.hypot(*(b - a))
        if length == 0:
            continue
        pos = 1.0 - carry
        while pos <= length:
            out.append(a + (b - a) * pos / length)
            pos += 1.0
        carry = length - (pos - 1.0)
    if np.any(out[-1] != pts[-1]):
        out.append(pts[-1])
    return np.array(out)


def simplify(d, resample=resample_interp, rnd=np.rint, segment=False, multiply_first=True):
    xs = np.concatenate([np.asarray(s[0], float) for s in d])
    ys = np.concatenate([np.asarray(s[1], float) for s in d])
    mx, my = xs.min(), ys.min()
    extent = max(xs.max() - mx, ys.max() - my)
    out = []
    for s in d:
        x, y = np.asarray(s[0], float) - mx, np.asarray(s[1], float) - my
        if extent:
            if multiply_first:
                x, y = x * 255.0 / extent, y * 255.0 / extent
            else:
                x, y = x * (255.0 / extent), y * (255.0 / extent)
        q = resample(np.stack([x, y], 1))
        q = q[rdp(q, 2.0, segment)]
        if len(q) == 1:
            q = np.concatenate([q, q])
        out.append([[int(v) for v in rnd(q[:, 0])], [int(v) for v in rnd(q[:, 1])]])
    return out


VARIANTS = {
    "recipe": {},
    "scale_by_inverse": {"multiply_first": False},
    "walk_resample": {"resample": resample_walk},
    "segment_distance": {"segment": True},
    "floor_half_up": {"rnd": lambda v: np.floor(v + 0.5)},
}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "bench_simplify_variants.json")
    args = ap.parse_args(argv)
    data = pairs()
    result = {}
    for name, kw in VARIANTS.items():
        same = sum(simplify(raw, **kw) == google for raw, google in data)
        result[name] = [same, len(data), round(100 * same / len(data), 1)]
        print(name, result[name], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
