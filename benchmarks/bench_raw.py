"""Raw-data benchmark: the shard stage on Kaggle's raw layout beside the simplified layout, on
the same drawings, in one run; the renderer's encodings on the raw shards; the projection for
the full raw data.

    python benchmarks/bench_raw.py [--replicas 8] [--workdir /tmp/doodle-bench-raw]
                                   [--out reports/bench_raw.json]

Input: the real raw sample (``../shared/data/quickdraw-real-raw-sample``: 6,688 training
drawings in ``train_raw/`` with their simplified twins, row for row, in ``train_simplified/``)
written ``--replicas`` times under fresh key_ids (``key + r * 10**16``, the same shard), once
per layout; the test files as they are. Each shard run is a fresh process (``fetch_path`` then
``shard_dataset``, as the stages call them), 1 worker then all cores, simplified and raw
alternating, so both see the same machine load:

* drawings/s per core: training drawings / CPU seconds of the stage (its process and its
  workers, start-up excluded); drawings/s on the wall clock;
* peak RSS of the stage's process and of each worker (sampled from /proc every 0.25 s);
* shard bytes per drawing (train + holdout shards), and what the time array costs of it.

Then ``render`` at 64 px on the raw shards (``grey``, ``order3``, ``time3``: drawings per
CPU-second, one thread) and the projection for Kaggle's 49.7M training drawings (labelled a
projection: it assumes the per-core rate holds on more cores, as bench_fulldata measured for
the simplified files). The machine's load average is recorded beside the figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.bench_fulldata import _rss_mb, _tree  # noqa: E402
from benchmarks.shared_data import SHARED  # noqa: E402

RAW_SAMPLE = SHARED / "quickdraw-real-raw-sample"
FULL_TRAIN = 49_707_579  # Kaggle's training drawings
FULL_TEST = 112_199
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

_CHILD = """
import json, resource, sys, time
from pathlib import Path
root, src, layout, raw, out, workers = json.loads(sys.argv[1])
sys.path.insert(0, root)
from doodle.data.download import fetch_path
from doodle.data.sharding import shard_dataset
import doodle.data.rawcells, doodle.data.strokes  # compiled kernels: loaded before the clock starts

def cpu():
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime

fetch_path(Path(src), Path(raw), 0, layout)
c0, t0 = cpu(), time.time()
r = shard_dataset(Path(raw), Path(out), 20, 2000, 0, Path(out + ".json"), workers=workers)
print(json.dumps({"cpu_s": cpu() - c0, "wall_s": time.time() - t0, "report": r}))
"""


def make_inputs(work: Path, replicas: int) -> dict[str, Path]:
    """``work/raw`` and ``work/simplified``: the sample's training drawings ``replicas`` times
    in each layout (same rows), and its test files."""
    out = {"raw": work / "raw", "simplified": work / "simplified"}
    done = work / "inputs.json"
    if done.is_file() and json.loads(done.read_text()) == {"replicas": replicas}:
        return out
    for layout, folder in (("raw", "train_raw"), ("simplified", "train_simplified")):
        shutil.rmtree(out[layout], ignore_errors=True)
        (out[layout] / folder).mkdir(parents=True)
        for f in sorted((RAW_SAMPLE / folder).glob("*.csv")):
            with open(f, newline="", encoding="utf-8") as fin:
                rows = list(csv.DictReader(fin))
            with open(out[layout] / folder / f.name, "w", newline="", encoding="utf-8") as fout:
                w = csv.DictWriter(fout, list(rows[0]))
                w.writeheader()
                for r in range(replicas):
                    for row in rows:
                        w.writerow(row | {"key_id": str(int(row["key_id"]) + r * 10**16)})
        names = ["test_simplified.csv"] + (["test_raw.csv"] if layout == "raw" else [])
        for name in names:
            shutil.copy(RAW_SAMPLE / name, out[layout] / name)
    done.write_text(json.dumps({"replicas": replicas}))
    return out


def run_shard(src: Path, layout: str, work: Path, workers: int) -> dict:
    """One shard run in a fresh process, its memory sampled from outside."""
    raw, out = work / f"{layout}-{workers}-raw", work / f"{layout}-{workers}-shards"
    for p in (raw, out):
        shutil.rmtree(p, ignore_errors=True)
    argv = json.dumps([str(ROOT), str(src), layout, str(raw), str(out), workers])
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    peak = {"parent": 0.0, "worker": 0.0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak["parent"] = max(peak["parent"], _rss_mb(proc.pid))
            peak["worker"] = max([peak["worker"], *(_rss_mb(p) for p in _tree(proc.pid)[1:])])
            stop.wait(0.25)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    stdout, _ = proc.communicate()
    stop.set()
    t.join()
    if proc.returncode:
        raise SystemExit(f"shard run {layout} x{workers} failed ({proc.returncode})")
    res = json.loads(stdout.strip().splitlines()[-1])
    report = res["report"]
    drawings = report["train_rows"] + report["holdout_rows"]
    shards = [*out.glob("train-*.qds"), out / "holdout.qds"]
    shard_bytes = sum(p.stat().st_size for p in shards)
    time_bytes = 0
    from doodle.data.shards import read_header

    for p in shards:
        arrays = read_header(p)[0]["arrays"]
        if "t" in arrays:
            time_bytes += 2 * arrays["t"]["shape"][0]
    csv_bytes = sum(f.stat().st_size for f in src.glob("train_*/*.csv"))
    return {
        "layout": layout,
        "workers": workers,
        "drawings": drawings,
        "wall_s": round(res["wall_s"], 2),
        "cpu_s": round(res["cpu_s"], 2),
        "drawings_per_cpu_s": round(drawings / res["cpu_s"], 1),
        "drawings_per_wall_s": round(drawings / res["wall_s"], 1),
        "peak_parent_rss_mb": round(peak["parent"], 1),
        "peak_worker_rss_mb": round(peak["worker"], 1),
        "csv_bytes_per_drawing": round(csv_bytes / drawings, 1),
        "shard_bytes_per_drawing": round(shard_bytes / drawings, 1),
        "time_bytes_per_drawing": round(time_bytes / drawings, 1),
        "points_per_drawing": round(
            sum(read_header(p)[0]["arrays"]["xy"]["shape"][0] for p in shards) / drawings, 1
        ),
        "repaired": report.get("repaired", {}),
        "skipped": report["skipped"],
    }


def render_rates(shard_dir: Path, seconds: float = 2.0) -> dict:
    """Drawings per CPU-second of ``render`` at 64 px, batch 512, per encoding."""
    import numpy as np

    from doodle.data.shards import open_shard
    from doodle.rendering.raster import render, warmup

    warmup()
    d = open_shard(next(iter(sorted(shard_dir.glob("train-*.qds"))))).drawings
    idx = np.random.default_rng(0).integers(0, len(d), 512)
    out = {}
    for enc in ("grey", "order3", "time3"):
        render(d, idx, 64, enc)
        n, c0 = 0, time.process_time()
        while time.process_time() - c0 < seconds:
            render(d, idx, 64, enc)
            n += len(idx)
        out[enc] = round(n / (time.process_time() - c0), 1)
    return out


def projection(runs: list[dict], cores: int) -> dict:
    """The full raw data from the measured per-core rates (a projection, arithmetic kept)."""
    raw = next(r for r in runs if r["layout"] == "raw" and r["workers"] == 1)
    simp = next(r for r in runs if r["layout"] == "simplified" and r["workers"] == 1)
    total = FULL_TRAIN + FULL_TEST
    hours = {}
    for name, r in (("raw", raw), ("simplified", simp)):
        for c in (cores, 8, 16):
            hours[f"{name}_{c}_cores_min"] = round(total / (r["drawings_per_cpu_s"] * c) / 60, 1)
    return {
        "drawings": total,
        "raw_csv_gb": round(raw["csv_bytes_per_drawing"] * total / 1e9, 1),
        "simplified_csv_gb": round(simp["csv_bytes_per_drawing"] * total / 1e9, 1),
        "raw_shards_gb": round(raw["shard_bytes_per_drawing"] * total / 1e9, 2),
        "simplified_shards_gb": round(simp["shard_bytes_per_drawing"] * total / 1e9, 2),
        "time_array_gb": round(raw["time_bytes_per_drawing"] * total / 1e9, 2),
        **hours,
        "arithmetic": (
            f"minutes = {total:,} drawings / (drawings per CPU-second x cores) / 60; "
            "GB = bytes per drawing x drawings"
        ),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--replicas", type=int, default=8)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/doodle-bench-raw"))
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "bench_raw.json")
    args = ap.parse_args(argv)
    if not RAW_SAMPLE.is_dir():
        raise SystemExit(f"the real raw sample is not at {RAW_SAMPLE} (DOODLE_SHARED_DATA)")
    args.workdir.mkdir(parents=True, exist_ok=True)
    inputs = make_inputs(args.workdir, args.replicas)
    cores = len(os.sched_getaffinity(0))
    load_before = os.getloadavg()
    runs = []
    for workers in sorted({1, cores}):
        for layout in ("simplified", "raw"):
            runs.append(run_shard(inputs[layout], layout, args.workdir, workers))
            print(json.dumps(runs[-1]), flush=True)
    result = {
        "replicas": args.replicas,
        "cores": cores,
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "runs": runs,
        "ratios": {
            "raw_vs_simplified_per_core": round(
                runs[1]["drawings_per_cpu_s"] / runs[0]["drawings_per_cpu_s"], 3
            ),
            "raw_vs_simplified_shard_bytes": round(
                runs[1]["shard_bytes_per_drawing"] / runs[0]["shard_bytes_per_drawing"], 3
            ),
            "raw_vs_simplified_csv_bytes": round(
                runs[1]["csv_bytes_per_drawing"] / runs[0]["csv_bytes_per_drawing"], 2
            ),
        },
        "render_64_per_cpu_s": render_rates(args.workdir / f"raw-{cores}-shards"),
        "projection": projection(runs, cores),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    return result


if __name__ == "__main__":
    main()
