"""Rendering throughput per CPU core, against the reference per-drawing baseline.

    NUMBA_NUM_THREADS=1 python benchmarks/bench_render.py [--seconds 2] [--out bench.json]

prints JSON: ``render_per_core_{64,128}`` (drawings per CPU-second of our single-threaded
kernel, batch 512, after warm-up, median of repeats; ``*_wall`` per wall-clock second, lower
when other processes share the core), ``render_order3_per_core_{64,128}`` (order3, 3 channels),
``baseline_render_per_core_64`` (``json.loads`` + ``cv2.line`` at 256 + resize, one drawing
at a time) and ``agreement_mad_{64,128}`` (mean absolute pixel difference, 0..255, of our grey
images against that baseline; ``agreement_mad_area_*`` against the INTER_AREA variant).
Importing this module runs nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from benchmarks.reference import SAMPLE_DIR, load_sample_json, reference_image  # noqa: E402
from doodle.data.cells import parse_drawing  # noqa: E402
from doodle.data.strokes import Drawings, pack  # noqa: E402


def _median_rate(step, n_per_step: int, seconds: float, repeats: int) -> tuple[float, float]:
    """Median over ``repeats`` of items per CPU-second and per wall-second of ``step``.

    Each repeat runs ``step`` for about ``seconds`` of this thread's CPU time. The CPU-time
    rate is the per-core figure: it does not count time this thread waited for the core
    (shared CI boxes), while the wall rate does.
    """
    cpu_rates, wall_rates = [], []
    for _ in range(repeats):
        n = 0
        c0 = time.thread_time()
        w0 = time.perf_counter()
        while True:
            step()
            n += n_per_step
            dc = time.thread_time() - c0
            if dc >= seconds:
                break
        cpu_rates.append(n / dc)
        wall_rates.append(n / (time.perf_counter() - w0))
    return float(np.median(cpu_rates)), float(np.median(wall_rates))


def bench_render(
    drawings: Drawings | Sequence[str],
    sizes: Sequence[int] = (64, 128),
    seconds: float = 2.0,
    repeats: int = 5,
    batch: int = 512,
    seed: int = 0,
) -> dict:
    """Measure our renderer on ``drawings`` (cycled in shuffled batches of ``batch``).

    Given JSON ``drawing`` strings instead of packed ``Drawings``, also measures the
    baseline (at the first size) and the agreement with it at every size. Runs in the
    calling thread: the kernel is single-threaded, so rates are per core.
    """
    import cv2

    from doodle.rendering.raster import render, warmup

    cv2_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # the baseline on one core too; restored below
    try:
        return _bench(render, warmup, drawings, sizes, seconds, repeats, batch, seed)
    finally:
        cv2.setNumThreads(cv2_threads)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _bench(render, warmup, drawings, sizes, seconds, repeats, batch, seed) -> dict:
    import cv2

    texts: list[str] | None = None
    if not isinstance(drawings, Drawings):
        texts = list(drawings)
        drawings = pack([parse_drawing(t) for t in texts])
    n = len(drawings)
    warmup()
    rng = np.random.default_rng(seed)
    # Enough shuffled batches to cycle through every drawing (repeating them as needed).
    n_batches = max(1, -(-n // batch))
    order = np.concatenate([rng.permutation(n) for _ in range(-(-n_batches * batch // n))])
    batches = order[: n_batches * batch].reshape(n_batches, batch)
    result: dict = {
        "n_drawings": n,
        "batch": batch,
        "seconds": seconds,
        "repeats": repeats,
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": 1,
    }
    for size in sizes:
        for encoding, key in (("grey", "render_per_core"), ("order3", "render_order3_per_core")):
            out = np.empty((batch, size, size, 1 if encoding == "grey" else 3), np.uint8)
            cursor = [0]

            def step(size=size, encoding=encoding, out=out, cursor=cursor) -> None:
                render(drawings, batches[cursor[0] % n_batches], size, encoding, out=out)
                cursor[0] += 1

            step()
            cpu, wall = _median_rate(step, batch, seconds, repeats)
            result[f"{key}_{size}"] = round(cpu, 1)
            result[f"{key}_{size}_wall"] = round(wall, 1)
    if texts is not None:
        size0 = sizes[0]
        pos = [0]

        def base_step() -> None:
            reference_image(texts[pos[0] % n], size0)
            pos[0] += 1

        cpu, wall = _median_rate(base_step, 1, seconds, repeats)
        result[f"baseline_render_per_core_{size0}"] = round(cpu, 1)
        result[f"baseline_render_per_core_{size0}_wall"] = round(wall, 1)
        for size in sizes:
            ours = render(drawings, None, size, "grey")[..., 0].astype(np.int16)
            for interp, key in (
                (cv2.INTER_LINEAR, "agreement_mad"),
                (cv2.INTER_AREA, "agreement_mad_area"),
            ):
                ref = np.stack([reference_image(t, size, interpolation=interp) for t in texts])
                result[f"{key}_{size}"] = round(float(np.abs(ours - ref).mean()), 3)
    return result


def main(argv: Sequence[str] | None = None) -> dict:
    """Benchmark on the real sample's train drawings; print (and optionally write) JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sample-dir", type=Path, default=SAMPLE_DIR)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    texts, _ = load_sample_json(args.sample_dir)
    result = bench_render(texts, seconds=args.seconds, repeats=args.repeats)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return result


if __name__ == "__main__":
    # One core: numba must not spin up a thread pool, nor OpenCV (read at import time).
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    main()
