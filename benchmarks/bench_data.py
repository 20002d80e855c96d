"""Data-scale benchmarks: the download and shard stages on data of Kaggle's size and layouts,
each run a fresh process sampled from outside, side by side in one invocation.

    python benchmarks/bench_data.py full [--drawings 5000000] [--workdir /tmp/doodle-fulldata]
    python benchmarks/bench_data.py raw [--replicas 8] [--workdir /tmp/doodle-bench-raw]

``full`` (``make bench-full`` -> ``reports/bench_fulldata.json``): a Kaggle-format
``train_simplified.zip`` of millions of real-like drawings, generated once (cached in
``--workdir``): 340 class files of uneven sizes (log-normal, like Kaggle's 113k-340k rows a
class), each row a real drawing from the shared real sample (``../shared/data``; the
synthetic generator when absent) moved and scaled slightly, written in Kaggle's exact CSV
format (JSON with ", " separators, 16-digit key_ids, countrycode, recognized, timestamp) and
deflated as Kaggle's zip is. Measured with 1 and 2 shard workers, and on a second, smaller
zip: drawings/s (and per core), peak RSS of the stage's parent and of each worker, peak disk
the run adds (statvfs, sampled) against the zip's size, and the machine's own ceiling for 2
workers (a pure-Python loop in 2 processes vs 1).

``raw`` (``make bench-raw`` -> ``reports/bench_raw.json``): the real raw sample
(``../shared/data/quickdraw-real-raw-sample``: 6,688 training drawings in ``train_raw/`` with
their simplified twins, row for row, in ``train_simplified/``) written ``--replicas`` times
under fresh key_ids (``key + r * 10**16``, the same shard), once per layout; 1 worker then
all cores, simplified and raw alternating, so both see the same machine load: drawings per
CPU-second of the stage (its process and its workers, start-up excluded), peak RSS, shard
bytes per drawing and what the time array costs of it; then ``render`` at 64 px on the raw
shards per encoding, and the projection for Kaggle's 49.7M drawings (labelled a projection:
it assumes the per-core rate holds on more cores, as ``full`` measures for 2).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.shared_data import SHARED  # noqa: E402

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

FULL_DRAWINGS = 49_707_579  # rows of Kaggle's train_simplified (340 class files)
FULL_TEST = 112_199
N_CLASSES = 340
RAW_SAMPLE = SHARED / "quickdraw-real-raw-sample"


# -- one stage run: download then shard, in a fresh process, sampled from outside -------------
_CHILD = """
import json, resource, sys, time
from pathlib import Path
root, src, layout, raw, out, n_shards, val_size, workers = json.loads(sys.argv[1])
sys.path.insert(0, root)
from doodle.data.download import fetch_path
from doodle.data.sharding import shard_dataset
import doodle.data.rawcells, doodle.data.strokes  # compiled kernels: loaded before the clock starts

def cpu():
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime

t0 = time.time()
fetch_path(Path(src), Path(raw), 100, layout)
c0, t1 = cpu(), time.time()
r = shard_dataset(Path(raw), Path(out), n_shards, val_size, 0, Path(out + ".json"),
                  workers=workers)
print(json.dumps({"download_s": t1 - t0, "shard_s": time.time() - t1, "cpu_s": cpu() - c0,
                  "report": r}))
"""


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (t / "children").read_text().split()]
        except OSError:
            pass
    return out


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def stage_process(
    src: Path,
    layout: str,
    raw: Path,
    out: Path,
    *,
    n_shards: int,
    val_size: int,
    workers: int,
    disk_of: Path | None = None,
) -> dict:
    """The download stage's function (a local source: recorded, read in place), then the
    shard stage's, as the stages call them, in a child process; its figures (``download_s``,
    ``shard_s``, ``cpu_s``: the shard stage's CPU seconds with its workers', ``report``)
    and the peaks sampled from /proc every 0.25 s: RSS of the stage's process and of each
    worker, and with ``disk_of`` what that filesystem gains (statvfs)."""
    argv = [str(ROOT), str(src), layout, str(raw), str(out), n_shards, val_size, workers]
    base = shutil.disk_usage(disk_of).used if disk_of else 0
    peak = {"parent": 0.0, "worker": 0.0, "disk": 0}
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, json.dumps(argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak["parent"] = max(peak["parent"], _rss_mb(proc.pid))
            peak["worker"] = max([peak["worker"], *(_rss_mb(p) for p in _tree(proc.pid)[1:])])
            if disk_of:
                peak["disk"] = max(peak["disk"], shutil.disk_usage(disk_of).used - base)
            stop.wait(0.25)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    stdout, _ = proc.communicate()
    stop.set()
    t.join()
    if proc.returncode:
        raise RuntimeError(f"stage run {layout} x{workers} failed ({proc.returncode})")
    res = json.loads(stdout.strip().splitlines()[-1])
    res.update(
        peak_parent_rss_mb=round(peak["parent"], 1), peak_worker_rss_mb=round(peak["worker"], 1)
    )
    if disk_of:
        res["peak_disk_bytes"] = peak["disk"]
    return res


# -- full: a Kaggle-size simplified zip --------------------------------------------------------
def base_pool() -> list[list]:
    """Real drawings (parsed strokes) from the shared real sample, else synthetic ones."""
    pool = []
    for name in ("quickdraw-real-sample",):  # 339 classes: the real mix of sizes
        folder = SHARED / name / "train_simplified"
        for f in sorted(folder.glob("*.csv")) if folder.is_dir() else []:
            with open(f, newline="", encoding="utf-8") as fh:
                pool += [json.loads(r["drawing"]) for r in csv.DictReader(fh)]
    if pool:
        return pool
    import tempfile

    from doodle.data.synthetic import write_synthetic

    with tempfile.TemporaryDirectory() as tmp:
        write_synthetic(Path(tmp), 200, 1, 0, n_classes=24)
        for f in sorted((Path(tmp) / "train_simplified").glob("*.csv")):
            with open(f, newline="", encoding="utf-8") as fh:
                pool += [json.loads(r["drawing"]) for r in csv.DictReader(fh)]
    return pool


def class_sizes(total: int, n_classes: int, seed: int = 0) -> list[int]:
    """Uneven class sizes summing to ``total`` (log-normal, spread like Kaggle's)."""
    rng = np.random.default_rng(seed)
    w = rng.lognormal(0.0, 0.35, n_classes)
    sizes = np.floor(w / w.sum() * total).astype(int)
    sizes[: total - sizes.sum()] += 1
    return sizes.tolist()


def _jitter(drawing: list, rnd: random.Random) -> str:
    """A drawing moved and scaled a little (clipped to 0..255), as Kaggle's JSON text."""
    s = rnd.uniform(0.9, 1.0)
    dx, dy = rnd.randint(0, 12), rnd.randint(0, 12)
    out = []
    for xs, ys, *_ in drawing:
        out.append(
            "[["
            + ", ".join(str(min(255, int(x * s) + dx)) for x in xs)
            + "], ["
            + ", ".join(str(min(255, int(y * s) + dy)) for y in ys)
            + "]]"
        )
    return "[" + ", ".join(out) + "]"


def class_csv(word: str, n: int, pool: list, first_key: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["countrycode", "drawing", "key_id", "recognized", "timestamp", "word"])
    for i in range(n):
        w.writerow(
            [
                rnd.choice(("US", "GB", "DE", "BR", "RU", "JP")),
                _jitter(pool[rnd.randrange(len(pool))], rnd),
                first_key + i * 7_919_071,
                rnd.random() > 0.1,
                f"2017-03-26 19:45:01.{rnd.randrange(10**6):06d}",
                word,
            ]
        )
    return buf.getvalue().encode()


def _class_task(args):
    word, n, first_key, seed = args
    return word, class_csv(word, n, _POOL, first_key, seed)


_POOL: list = []


def _init_pool(pool):
    global _POOL
    _POOL = pool


def make_zip(dest: Path, total: int, test_rows: int = 112_199, workers: int = 2) -> dict:
    """Write ``dest/train_simplified.zip`` and ``dest/test_simplified.csv`` (once)."""
    import multiprocessing

    dest.mkdir(parents=True, exist_ok=True)
    zpath, tpath = dest / "train_simplified.zip", dest / "test_simplified.csv"
    meta = dest / "meta.json"
    if meta.is_file() and json.loads(meta.read_text())["drawings"] == total and zpath.is_file():
        return json.loads(meta.read_text())
    pool = base_pool()
    t0 = time.time()
    sizes = class_sizes(total, N_CLASSES)
    words = [f"class {i:03d}" for i in range(N_CLASSES)]
    tasks, key = [], 4_500_000_000_000_000
    for i, (w, n) in enumerate(zip(words, sizes, strict=True)):
        tasks.append((w, n, key, i))
        key += n * 7_919_071 + 10**7
    tmp = zpath.with_suffix(".tmp")
    with (
        zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf,
        multiprocessing.get_context("spawn").Pool(workers, _init_pool, (pool,)) as p,
    ):
        for word, data in p.imap(_class_task, tasks):
            zf.writestr(f"train_simplified/{word}.csv", data)
    os.replace(tmp, zpath)
    rnd = random.Random(1)
    with open(tpath, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["key_id", "countrycode", "drawing"])
        for i in range(test_rows):
            w.writerow(
                [9_000_000_000_000_000 + i, "US", _jitter(pool[rnd.randrange(len(pool))], rnd)]
            )
    pts = [sum(len(s[0]) for s in d) for d in pool]
    info = {
        "drawings": total,
        "classes": N_CLASSES,
        "zip_bytes": zpath.stat().st_size,
        "csv_bytes": sum(i.file_size for i in zipfile.ZipFile(zpath).infolist()),
        "test_bytes": tpath.stat().st_size,
        "mean_points": round(float(np.mean(pts)), 1),
        "mean_strokes": round(float(np.mean([len(d) for d in pool])), 2),
        "smallest_class": min(sizes),
        "largest_class": max(sizes),
        "seconds": round(time.time() - t0, 1),
    }
    meta.write_text(json.dumps(info, indent=2))
    return info


def run_stage(src: Path, work: Path, workers: int, n_shards: int) -> dict:
    """:func:`stage_process` on a zip (34,000 holdout rows, as the Kaggle presets), its
    peak disk included; ``work`` is removed after."""
    work.mkdir(parents=True, exist_ok=True)
    res = stage_process(
        src,
        "auto",
        work / "raw",
        work / "shards",
        n_shards=n_shards,
        val_size=34_000,
        workers=workers,
        disk_of=work,
    )
    report = res.pop("report")
    res.update(
        rows=report["rows_read"],
        bytes=report["bytes"],
        workers=workers,
        drawings_per_s=round(report["rows_read"] / res["shard_s"]),
        per_core=round(report["rows_read"] / res["shard_s"] / workers),
    )
    shutil.rmtree(work, ignore_errors=True)
    return res


def _burn(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def cpu_scaling(n: int = 15_000_000) -> float:
    """The machine's own ceiling: a pure-Python loop in 2 spawned processes (2n of work)
    against 1 process (n), as a speed-up ratio. No I/O, no shared state."""
    import multiprocessing

    t0 = time.perf_counter()
    _burn(n)
    one = time.perf_counter() - t0
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        t0 = time.perf_counter()
        pool.map(_burn, [n, n])
        two = time.perf_counter() - t0
    return round(2 * one / two, 2)


def run_full(args: argparse.Namespace) -> dict:
    """``make bench-full``: the zips, then 1 and 2 workers on the large one, 2 on the small."""
    result: dict = {}
    for tag, n in (("large", args.drawings), ("small", args.small)):
        info = make_zip(args.workdir / f"data-{n}", n)
        print(f"{tag}: {info}", flush=True)
        result[f"data_{tag}"] = info
    large = args.workdir / f"data-{args.drawings}" / "train_simplified.zip"
    small = args.workdir / f"data-{args.small}" / "train_simplified.zip"
    for tag, src, workers, shards in (
        ("large_w1", large, 1, args.n_shards),
        ("large_w2", large, 2, args.n_shards),
        ("small_w2", small, 2, max(1, args.n_shards // 4)),
    ):
        res = run_stage(src, args.workdir / "work", workers, shards)
        print(f"{tag}: {res}", flush=True)
        result[tag] = res
    result["cpu_loop_scaling_2_vs_1"] = cpu_scaling()  # what the VM allows 2 workers
    print(f"pure-Python loop, 2 processes vs 1: {result['cpu_loop_scaling_2_vs_1']}x")
    w1, w2, sm = result["large_w1"], result["large_w2"], result["small_w2"]
    zip_bytes = result["data_large"]["zip_bytes"]
    result["summary"] = {
        "speedup_2_vs_1": round(w2["drawings_per_s"] / w1["drawings_per_s"], 2),
        "per_core_w1": w1["per_core"],
        "per_core_w2": w2["per_core"],
        "worker_rss_large_vs_small": round(w2["peak_worker_rss_mb"] / sm["peak_worker_rss_mb"], 2),
        "peak_disk_vs_zip": round(w2["peak_disk_bytes"] / zip_bytes, 2),
        "shards_vs_zip": round(w2["bytes"] / zip_bytes, 2),
        "peak_disk_vs_shards": round(w2["peak_disk_bytes"] / w2["bytes"], 2),
    }
    per_core = w2["per_core"]
    for cores in (8, 16):
        # Parsing scales with workers (measured 2 vs 1 above); the projection assumes the
        # same per-core rate, so it is an upper bound on speed where the disk keeps up.
        secs = FULL_DRAWINGS / (per_core * cores)
        result["summary"][f"full_{cores}_cores_minutes"] = round(secs / 60, 1)
    scale = FULL_DRAWINGS / args.drawings
    result["summary"]["full_shards_gib"] = round(w2["bytes"] * scale / 2**30, 1)
    result["summary"]["full_peak_disk_gib"] = round(w2["peak_disk_bytes"] * scale / 2**30, 1)
    print(json.dumps(result["summary"], indent=2))
    return result


# -- raw: Kaggle's raw layout beside the simplified one ------------------------------------------
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
    res = stage_process(src, layout, raw, out, n_shards=20, val_size=2000, workers=workers)
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
        "wall_s": round(res["shard_s"], 2),
        "cpu_s": round(res["cpu_s"], 2),
        "drawings_per_cpu_s": round(drawings / res["cpu_s"], 1),
        "drawings_per_wall_s": round(drawings / res["shard_s"], 1),
        "peak_parent_rss_mb": res["peak_parent_rss_mb"],
        "peak_worker_rss_mb": res["peak_worker_rss_mb"],
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
    """Drawings per CPU-second of ``render`` at 64 px, batch 512, per encoding (the
    reference's line width)."""
    import numpy as np

    from benchmarks.reference import LINE_WIDTH
    from doodle.data.shards import open_shard
    from doodle.rendering.raster import render, warmup

    warmup()
    d = open_shard(next(iter(sorted(shard_dir.glob("train-*.qds"))))).drawings
    idx = np.random.default_rng(0).integers(0, len(d), 512)
    out = {}
    for enc in ("grey", "order3", "time3"):
        render(d, idx, 64, enc, LINE_WIDTH)
        n, c0 = 0, time.process_time()
        while time.process_time() - c0 < seconds:
            render(d, idx, 64, enc, LINE_WIDTH)
            n += len(idx)
        out[enc] = round(n / (time.process_time() - c0), 1)
    return out


def projection(runs: list[dict], cores: int) -> dict:
    """The full raw data from the measured per-core rates (a projection, arithmetic kept)."""
    raw = next(r for r in runs if r["layout"] == "raw" and r["workers"] == 1)
    simp = next(r for r in runs if r["layout"] == "simplified" and r["workers"] == 1)
    total = FULL_DRAWINGS + FULL_TEST
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


def run_raw(args: argparse.Namespace) -> dict:
    """``make bench-raw``: simplified and raw alternating, 1 worker then all cores."""
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
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    return result


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="which", required=True)
    f = sub.add_parser("full", help="a Kaggle-size simplified zip, 1 vs 2 workers")
    f.add_argument("--drawings", type=int, default=5_000_000)
    f.add_argument(
        "--small",
        type=int,
        default=1_250_000,
        help="a second, smaller zip: worker RSS must stay flat as data grows",
    )
    f.add_argument("--workdir", type=Path, default=Path("/tmp/doodle-fulldata"))
    f.add_argument("--n-shards", type=int, default=40)
    f.add_argument("--out", type=Path, default=ROOT / "reports" / "bench_fulldata.json")
    r = sub.add_parser("raw", help="the raw layout beside the simplified one, same drawings")
    r.add_argument("--replicas", type=int, default=8)
    r.add_argument("--workdir", type=Path, default=Path("/tmp/doodle-bench-raw"))
    r.add_argument("--out", type=Path, default=ROOT / "reports" / "bench_raw.json")
    args = ap.parse_args(argv)
    result = run_full(args) if args.which == "full" else run_raw(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
