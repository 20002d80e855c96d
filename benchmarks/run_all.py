"""``make bench``: every input-pipeline figure, measured side by side in one run.

Sections (each on the same machine, the loader ones on the same shards):

* render   -- ``benchmarks/bench_render.py``: our renderer vs the reference per-drawing
  ``cv2`` renderer, per core, on the real sample (synthetic drawings if it is absent);
* loader   -- ``benchmarks/bench_loader.py``: our PyDataset vs the ``from_generator`` loader;
* scaling  -- ``benchmarks/bench_loader.py``: the training loader's images/s at 64 and 128 px
  with 1 and 2 workers (and per CPU-second: what one core feeds);
* tfdata   -- ``benchmarks/bench_loader.py``: our TFRecords through tf.data vs the PyDataset
  vs the ``TextLineDataset`` loader, and bytes per drawing on disk;
* shard    -- here (:func:`bench_shard`): shard-stage drawings/s and peak RSS at two sizes.

Writes ``reports/bench.json`` (atomically) and prints a Markdown table for BENCHMARKS.md.
``--quick`` is a small fast run (the smoke test uses it); its figures mean nothing.

The shard section's data: ``write_synthetic`` writes a base pool (``base_per_class`` drawings
per class, in Kaggle's exact CSV layout), then :func:`expand_raw` grows it to any size by
cycling each class file's rows under fresh, unique, uniformly spread 16-digit key_ids (the
stage drops repeated key_ids). Parsing, spilling and memory cost the same per row as freshly
generated drawings, and generating millions of drawings procedurally takes far longer than
sharding them. Each shard run is a separate process, so its peak RSS is the stage's own and
nothing is shared between sizes.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import inspect
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from benchmarks.shared_data import SHARED  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The real Kaggle-layout sample lives beside the repository (benchmarks/shared_data.py).
REAL_SAMPLE = SHARED / "quickdraw-real-sample"

SECTIONS = ("render", "loader", "scaling", "tfdata", "shard")
# --quick: the shard section at sizes that take seconds (the figures then mean nothing)
QUICK_SHARD = dict(
    small_per_class=250,
    large_per_class=1000,
    small_shards=2,
    large_shards=8,
    base_per_class=50,
    test_per_class=5,
    val_size=50,
)
KEY_ID_LOW = 4_500_000_000_000_000
KEY_ID_HIGH = 6_750_000_000_000_000

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

# (key, comparison, threshold, what it means)
TARGETS: list[tuple[str, str, float, str]] = [
    ("render_per_core_64", ">=", 150_000, "drawings/s/core rendered at 64 px"),
    ("render_per_core_128", ">=", 40_000, "drawings/s/core rendered at 128 px"),
    ("loader_ratio_vs_from_generator", ">=", 10, "PyDataset / from_generator batches/s"),
    ("shard_rss_ratio_large_vs_small", "<=", 1.25, "shard peak RSS flat (4x data)"),
]

# Rows of the Markdown table: (key, label, unit).
TABLE: list[tuple[str, str, str]] = [
    ("render_per_core_64", "Render, ours, 64 px", "drawings/s/core"),
    ("render_per_core_128", "Render, ours, 128 px", "drawings/s/core"),
    ("render_per_core_64_wall", "Render, ours, 64 px, per wall-clock second", "drawings/s"),
    ("render_per_core_128_wall", "Render, ours, 128 px, per wall-clock second", "drawings/s"),
    ("render_fallback_per_core_64", "Render, plain-numba fallback, 64 px", "drawings/s/core"),
    ("render_fallback_per_core_128", "Render, plain-numba fallback, 128 px", "drawings/s/core"),
    ("render_fast_vs_fallback_64", "Render, fast path / fallback, 64 px", "x"),
    ("render_order3_per_core_64", "Render, ours, order3 (3 channels), 64 px", "drawings/s/core"),
    ("render_order3_per_core_128", "Render, ours, order3 (3 channels), 128 px", "drawings/s/core"),
    (
        "baseline_render_per_core_64",
        "Render, cv2 reference (public kernels), 64 px",
        "drawings/s/core",
    ),
    (
        "baseline_render_per_core_64_wall",
        "Render, cv2 reference, 64 px, per wall-clock second",
        "drawings/s",
    ),
    ("render_speedup_64", "Render speed-up vs reference, 64 px", "x"),
    ("agreement_mad_64", "Ours vs cv2 reference, mean abs. pixel diff., 64 px", "of 255"),
    ("agreement_mad_128", "Ours vs cv2 reference, mean abs. pixel diff., 128 px", "of 255"),
    ("agreement_mad_area_64", "Ours vs cv2 reference (INTER_AREA), MAD, 64 px", "of 255"),
    ("from_generator_batches_per_s", "Loader: reference kernels' from_generator", "batches/s"),
    ("pydataset_direct_batches_per_s", "Loader: PyDataset ds[i], 1 thread", "batches/s"),
    ("pydataset_enqueuer_batches_per_s", "Loader: PyDataset via Keras enqueuer", "batches/s"),
    ("pydataset_keras_tf_batches_per_s", "Loader: PyDataset via Keras get_tf_dataset", "batches/s"),
    ("pydataset_images_per_s", "Loader: PyDataset (enqueuer)", "images/s"),
    ("from_generator_images_per_cpu_s", "Loader: from_generator per CPU-second", "images"),
    (
        "baseline_python_only_images_per_cpu_s",
        "Loader: the same generator without tf.data, per CPU-second",
        "images",
    ),
    ("pydataset_direct_images_per_cpu_s", "Loader: PyDataset ds[i] per CPU-second", "images"),
    (
        "sequence_loader_per_s",
        "Loader: point sequences (arch lstm), ds[i], 1 thread",
        "sequences/s",
    ),
    ("loader_ratio_vs_from_generator", "Loader ratio (enqueuer / from_generator)", "x"),
    ("loader_ratio_direct_vs_from_generator", "Loader ratio (1 thread / from_generator)", "x"),
    ("loader_ratio_per_cpu_s", "Loader ratio per CPU-second", "x"),
    ("scaling_images_per_s_64_w1", "Training loader, 64 px, 1 worker", "images/s"),
    ("scaling_images_per_s_64_w2", "Training loader, 64 px, 2 workers", "images/s"),
    ("scaling_images_per_cpu_s_64", "Training loader, 64 px, per CPU-second (1 worker)", "images"),
    ("scaling_ratio_64_w2_vs_w1", "Training loader, 64 px, 2 workers / 1", "x"),
    ("scaling_images_per_s_128_w1", "Training loader, 128 px, 1 worker", "images/s"),
    ("scaling_images_per_s_128_w2", "Training loader, 128 px, 2 workers", "images/s"),
    (
        "scaling_images_per_cpu_s_128",
        "Training loader, 128 px, per CPU-second (1 worker)",
        "images",
    ),
    ("scaling_ratio_128_w2_vs_w1", "Training loader, 128 px, 2 workers / 1", "x"),
    ("shard_drawings_per_s_small", "Shard stage, small", "drawings/s"),
    ("shard_peak_rss_mb_small", "Shard stage peak RSS, small", "MiB"),
    ("shard_drawings_per_s_large", "Shard stage, large", "drawings/s"),
    ("shard_peak_rss_mb_large", "Shard stage peak RSS, large", "MiB"),
    ("shard_peak_rss_mb_large_fixed_shards", "Shard stage peak RSS, large, n_shards fixed", "MiB"),
    ("shard_import_rss_mb_small", "Shard process RSS after imports (floor)", "MiB"),
    ("shard_rss_ratio_large_vs_small", "Shard RSS ratio large/small (shard size fixed)", "x"),
    (
        "shard_rss_ratio_large_fixed_shards_vs_small",
        "Shard RSS ratio large/small (n_shards fixed)",
        "x",
    ),
    (
        "shard_peak_rss_mb_large_more_classes",
        "Shard stage peak RSS, large via 4x class files",
        "MiB",
    ),
    (
        "shard_rss_ratio_large_more_classes_vs_small",
        "Shard RSS ratio large/small (4x class files, same chunk and shard size)",
        "x",
    ),
]


# -- the shard section ----------------------------------------------------------------------
def unique_key_ids(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct 16-digit key_ids spread evenly over Kaggle's range, in random order."""
    step = (KEY_ID_HIGH - KEY_ID_LOW) // max(n, 1)
    keys = KEY_ID_LOW + np.arange(n, dtype=np.int64) * step + rng.integers(0, step, n)
    return rng.permutation(keys)


def write_base(
    dest: Path, n_classes: int, base_per_class: int, test_per_class: int, seed: int = 0
) -> dict:
    """The synthetic base pool (Kaggle layout) that :func:`expand_raw` cycles through."""
    from doodle.data.synthetic import write_synthetic

    return write_synthetic(dest, base_per_class, test_per_class, seed, n_classes=n_classes)


def expand_raw(base: Path, dest: Path, per_class: int, seed: int = 0, class_copies: int = 1) -> int:
    """Write ``dest`` in Kaggle layout with ``per_class`` training rows per class of ``base``.

    Rows cycle through the base file's rows; every row gets a new unique key_id. With
    ``class_copies`` > 1 each base class is written that many times as distinct classes
    (``"<word> 2"``, ...; file name and ``word`` column), so the data grows by adding class
    files rather than by growing them. The test files are copied unchanged. Returns the
    number of training rows written.
    """
    files = sorted((Path(base) / "train_simplified").glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"{base}/train_simplified: no class files")
    (dest / "train_simplified").mkdir(parents=True, exist_ok=True)
    for name in ("test_simplified.csv", "test_solution.csv"):
        if (Path(base) / name).is_file():
            shutil.copyfile(Path(base) / name, dest / name)
    n = len(files) * per_class * class_copies
    keys = unique_key_ids(n, np.random.default_rng([seed, 11])).tolist()
    k = 0
    for f in files:
        with open(f, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader)
            rows = list(reader)
        key_col, word_col = header.index("key_id"), header.index("word")
        for c in range(1, class_copies + 1):
            word = f.stem if c == 1 else f"{f.stem} {c}"
            with open(
                dest / "train_simplified" / f"{word}.csv", "w", newline="", encoding="utf-8"
            ) as fh:
                w = csv.writer(fh)
                w.writerow(header)
                for j in range(per_class):
                    row = list(rows[j % len(rows)])
                    row[key_col] = keys[k]
                    row[word_col] = word
                    k += 1
                    w.writerow(row)
    return k


def _kib_to_mb(kib: int) -> float:
    # Linux reports ru_maxrss and VmHWM in KiB.
    return round(kib / 1024.0, 1)


def peak_rss_mb() -> float:
    """This process's peak RSS since exec (``VmHWM``).

    Not ``ru_maxrss``: Linux carries the parent's RSS at fork time into a child's
    ``ru_maxrss`` across exec, so a child of a 1 GB TensorFlow process would "peak" at 1 GB.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return _kib_to_mb(int(line.split()[1]))
    except OSError:
        pass
    import resource

    return _kib_to_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


# The child: import, note the RSS floor, shard, print one JSON line.
_SHARD_CHILD = """
import json, sys, time
from pathlib import Path
from benchmarks.run_all import peak_rss_mb
from doodle.data.sharding import shard_dataset
raw, out, n_shards, val_size, seed = sys.argv[1:]
floor = peak_rss_mb()
t0 = time.perf_counter()
report = shard_dataset(Path(raw), Path(out), int(n_shards), int(val_size), int(seed),
                       Path(out).parent / f"{Path(out).name}-report.json")
print(json.dumps({"seconds": time.perf_counter() - t0, "rows_read": report["rows_read"],
                  "train_rows": report["train_rows"] + report["holdout_rows"],
                  "bytes": report["bytes"], "import_rss_mb": floor,
                  "peak_rss_mb": peak_rss_mb()}))
"""


def run_shard_process(
    raw_dir: Path, out_dir: Path, n_shards: int, val_size: int, seed: int = 0
) -> dict:
    """Run ``shard_dataset`` in a fresh process; returns its timing, rows and peak RSS (MiB).

    The peak is the child's own ``VmHWM`` (see :func:`peak_rss_mb`); ``os.wait4``'s
    ``ru_maxrss`` is kept as ``wait4_maxrss_mb`` (an upper bound that includes this process's
    RSS when it forked the child).
    """
    cmd = [sys.executable, "-c", _SHARD_CHILD, str(raw_dir), str(out_dir)]
    cmd += [str(n_shards), str(val_size), str(seed)]
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode(errors="replace")
    if p.returncode != 0:
        raise RuntimeError(f"shard child failed (exit {p.returncode}): {stderr[-2000:]}")
    child = json.loads(stdout.strip().splitlines()[-1])
    rows = child["rows_read"]
    return {
        "rows": rows,
        "n_shards": n_shards,
        "seconds": round(child["seconds"], 2),
        "drawings_per_s": round(rows / child["seconds"], 1),
        "peak_rss_mb": child["peak_rss_mb"],
        "wait4_maxrss_mb": _kib_to_mb(usage.ru_maxrss),
        "import_rss_mb": child["import_rss_mb"],
        "drawings_per_shard": round(child["train_rows"] / n_shards),
        "output_mb": round(child["bytes"] / 2**20, 1),
    }


def bench_shard(
    workdir: Path,
    n_classes: int = 24,
    small_per_class: int = 20_834,
    large_per_class: int = 83_334,
    small_shards: int = 20,
    large_shards: int = 80,
    base_per_class: int = 1_000,
    test_per_class: int = 100,
    val_size: int = 2_400,
    skip_large: bool = False,
    log=print,
) -> dict:
    """Shard a small and a large synthetic dataset (each in its own process) -> flat dict.

    The large one (same classes, ``large_per_class`` rows each) is sharded twice: with
    ``n_shards`` grown in proportion to the data (same shard size as the small run; the keys
    without suffix) and with the small run's ``n_shards`` (``*_large_fixed_shards``: each
    shard grows with the data). A third large run (``*_large_more_classes``) reaches the same
    size by adding class files of ``small_per_class`` rows instead (``large_shards`` shards),
    so class files, stage chunks and shards are all the same size as in the small run and
    only state that grows with the whole dataset can raise the peak.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    base = workdir / "base"
    t0 = time.perf_counter()
    write_base(base, n_classes, base_per_class, test_per_class)
    log(
        f"bench_shard: base pool {n_classes} x {base_per_class} written in "
        f"{time.perf_counter() - t0:.1f}s"
    )
    out: dict = {
        "shard_classes": n_classes,
        "shard_base_per_class": base_per_class,
        "shard_test_rows": n_classes * test_per_class,
    }

    def one(tag: str, per_class: int, n_shards: int, raw: Path) -> None:
        res = run_shard_process(raw, workdir / f"shards-{tag}", n_shards, val_size)
        log(
            f"bench_shard: {tag}: {res['rows']:,} rows, {n_shards} shards, "
            f"{res['drawings_per_s']:,.0f} drawings/s, peak RSS {res['peak_rss_mb']} MiB"
        )
        shutil.rmtree(workdir / f"shards-{tag}", ignore_errors=True)
        (workdir / f"shards-{tag}-report.json").unlink(missing_ok=True)
        out.update(
            {
                f"shard_rows_{tag}": res["rows"],
                f"shard_n_shards_{tag}": n_shards,
                f"shard_drawings_per_shard_{tag}": res["drawings_per_shard"],
                f"shard_seconds_{tag}": res["seconds"],
                f"shard_drawings_per_s_{tag}": res["drawings_per_s"],
                f"shard_peak_rss_mb_{tag}": res["peak_rss_mb"],
                f"shard_import_rss_mb_{tag}": res["import_rss_mb"],
                f"shard_output_mb_{tag}": res["output_mb"],
            }
        )

    copies = max(1, round(large_per_class / small_per_class))
    sizes = [("small", small_per_class, small_shards, 1)]
    if not skip_large:
        sizes += [
            ("large", large_per_class, large_shards, 1),
            ("large_more_classes", small_per_class, large_shards, copies),
        ]
    for tag, per_class, n_shards, class_copies in sizes:
        raw = workdir / f"raw-{tag}"
        t0 = time.perf_counter()
        rows = expand_raw(base, raw, per_class, class_copies=class_copies)
        log(
            f"bench_shard: {tag}: {rows:,} raw rows ({n_classes * class_copies} class files) "
            f"written in {time.perf_counter() - t0:.1f}s"
        )
        one(tag, per_class, n_shards, raw)
        out[f"shard_classes_{tag}"] = n_classes * class_copies
        out[f"shard_rows_per_class_{tag}"] = per_class
        if tag == "large":
            one("large_fixed_shards", per_class, small_shards, raw)
        shutil.rmtree(raw, ignore_errors=True)
    if not skip_large:
        small = out["shard_peak_rss_mb_small"]
        for tag in ("large", "large_fixed_shards", "large_more_classes"):
            out[f"shard_rss_ratio_{tag}_vs_small"] = round(
                out[f"shard_peak_rss_mb_{tag}"] / small, 2
            )
        out["shard_size_ratio_large_vs_small"] = round(
            out["shard_rows_large"] / out["shard_rows_small"], 2
        )
    return out


# -- the run --------------------------------------------------------------------------------
def machine_info() -> dict:
    """CPU model, core counts, memory, load and library versions."""
    info: dict = {
        "nproc": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "cpu_model": platform.processor() or "unknown",
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["mem_total_gib"] = round(int(line.split()[1]) / 2**20, 1)
                break
    except OSError:
        pass
    info["loadavg_start"] = [round(x, 2) for x in os.getloadavg()]
    import importlib.metadata as md

    for pkg in ("numpy", "numba", "pandas", "opencv-python-headless", "tensorflow", "keras"):
        try:
            info[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    info["keras_backend"] = os.environ.get("KERAS_BACKEND", "tensorflow")
    return info


def sample_source(
    workdir: Path, note: Callable[[str], None], sample: Path = REAL_SAMPLE
) -> tuple[Path, bool]:
    """The Kaggle-layout folder the render and loader benchmarks read (real if present)."""
    if (Path(sample) / "train_simplified").is_dir():
        return Path(sample), True
    from doodle.data.synthetic import write_synthetic

    dest = workdir / "synthetic-sample"
    write_synthetic(dest, 250, 5, seed=0, n_classes=24)
    note(
        f"real sample not found at {sample}: render and loader figures use 6,000 "
        "synthetic drawings instead"
    )
    return dest, False


def _render_fallback(raw: Path, seconds: float, repeats: int) -> dict:
    """The plain-numba fallback renderer's speed (``DOODLE_RENDER=plain``, in a fresh
    process, since the choice is made at import), beside the fast path's."""
    import subprocess

    env = os.environ | {"DOODLE_RENDER": "plain", "NUMBA_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "bench_render.py"),
        "--sample-dir",
        str(raw),
        "--seconds",
        str(seconds),
        "--repeats",
        str(repeats),
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    res = json.loads(out[out.index("{") :])
    return {
        f"render_fallback_per_core_{size}": res[f"render_per_core_{size}"]
        for size in (64, 128)
        if f"render_per_core_{size}" in res
    }


def _render_section(
    raw: Path, sizes: tuple[int, ...], seconds: float, repeats: int, fallback: bool = True
) -> dict:
    """bench_render on the sample's JSON drawings; its bookkeeping keys get a ``render_``
    prefix so they cannot collide with other sections' keys. With ``fallback``, the
    plain-numba renderer is measured too."""
    from benchmarks.bench_render import bench_render
    from benchmarks.reference import load_sample_json

    drawings, _ = load_sample_json(raw)
    res = _call(bench_render, drawings, sizes, seconds, repeats=repeats)
    out = {
        (k if k.startswith(("render_", "baseline_", "agreement_")) else f"render_{k}"): v
        for k, v in res.items()
    }
    if out.get("baseline_render_per_core_64") and out.get("render_per_core_64"):
        out["render_speedup_64"] = round(
            out["render_per_core_64"] / out["baseline_render_per_core_64"], 2
        )
    from doodle.rendering.raster import FAST_PATH

    out["render_fast_path"] = FAST_PATH
    if fallback and FAST_PATH:
        out |= _render_fallback(raw, seconds, repeats)
        if out.get("render_fallback_per_core_64"):
            out["render_fast_vs_fallback_64"] = round(
                out["render_per_core_64"] / out["render_fallback_per_core_64"], 2
            )
    return out


def _loader_shards(raw: Path, dest: Path) -> Path:
    from doodle.data.sharding import shard_dataset

    shard_dataset(
        raw,
        dest,
        n_shards=2,
        val_size=0,
        seed=0,
        report_path=dest.parent / "loader-shard-report.json",
    )
    return dest


def targets_status(fig: dict) -> list[dict]:
    """Each target with its measured value and whether it is met (None: not measured)."""
    out = []
    for key, op, thr, what in TARGETS:
        v = fig.get(key)
        met = None if v is None else (v >= thr if op == ">=" else v <= thr)
        out.append({"key": key, "target": f"{op} {thr:g}", "what": what, "value": v, "met": met})
    return out


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def markdown_table(fig: dict, extra_keys: list[str] | None = None) -> str:
    """The figures as a Markdown table (rows whose key was not measured are left out).

    ``extra_keys``: further numeric keys (e.g. bench_tfdata's) appended under their own name.
    """
    target = {k: f"{op} {thr:g}" for k, op, thr, _ in TARGETS}
    status = {t["key"]: t["met"] for t in targets_status(fig)}
    rows = list(TABLE)
    known = {k for k, _, _ in TABLE}
    figure_like = (
        "per_s",
        "per_cpu",
        "ratio",
        "bytes_per_drawing",
        "_gb",
        "startup_s",
        "convert_s",
    )
    rows += [
        (k, k, "")
        for k in extra_keys or []
        if k not in known and any(w in k for w in figure_like) and not k.endswith("_sample")
    ]
    lines = ["| Figure | Value | Unit | Target | Met |", "|---|---:|---|---|---|"]
    for key, label, unit in rows:
        v = fig.get(key)
        if v is None or isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        met = status.get(key)
        label = f"`{key}`" if label == key else f"{label} (`{key}`)"
        lines.append(
            f"| {label} | {_fmt(v)} | {unit} | {target.get(key, '')} | "
            f"{'' if met is None else ('yes' if met else 'NO')} |"
        )
    return "\n".join(lines)


def _call(fn: Callable, *args: object, **kwargs: object) -> dict:
    """Call ``fn`` with only the keyword arguments its signature accepts."""
    params = inspect.signature(fn).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    return fn(*args, **kwargs)


def run(args: argparse.Namespace, workdir: Path, log: Callable[[str], None] = print) -> dict:
    """Run every section; returns the report (figures flat at the top level)."""
    quick = args.quick
    notes: list[str] = []
    failed: list[str] = []

    def note(msg: str) -> None:
        notes.append(msg)
        log(f"NOTE: {msg}")

    fig: dict = {}
    sections: dict[str, float] = {}
    section_keys: dict[str, list[str]] = {}

    def section(name: str, fn: Callable[[], dict], required: bool = True) -> None:
        if name not in args.sections:
            note(f"{name}: not run (--sections {','.join(args.sections)})")
            return
        log(f"== {name} ==")
        t0 = time.perf_counter()
        try:
            res = fn()
        except Exception as e:  # noqa: BLE001 - one broken section must not hide the others
            msg = f"{name}: {type(e).__name__}: {e}"
            if required:
                failed.append(msg)
            note(("FAILED " if required else "skipped ") + msg)
            log(traceback.format_exc(limit=3))
            return
        finally:
            sections[name] = round(time.perf_counter() - t0, 1)
        clash = [k for k in res if k in fig]
        if clash:  # never let a later section overwrite an earlier one's figure
            note(
                f"{name}: keys {clash} already measured by another section; stored as {name}_<key>"
            )
            res = {(f"{name}_{k}" if k in clash else k): v for k, v in res.items()}
        section_keys[name] = list(res)
        fig.update(res)

    info = machine_info()
    raw, real = sample_source(workdir, note, args.sample_dir)
    fig["sample_real"] = real
    fig["sample_dir"] = str(raw)
    secs = args.seconds if args.seconds is not None else (0.3 if quick else 5.0)

    # bench_render: ``repeats`` windows of ``seconds`` per figure, the median counts.
    section(
        "render",
        lambda: _render_section(
            raw, (64, 128), secs / 5 if not quick else secs, 1 if quick else 5, not quick
        ),
    )
    shard_dir = workdir / "loader-shards"

    def loader() -> dict:
        from benchmarks.bench_loader import bench_loader

        return bench_loader(
            _loader_shards(raw, shard_dir),
            workdir / "loader.csv",
            batch_size=args.batch_size,
            img_size=64,
            seconds=secs * (1 if quick else 3),
            workers=args.workers,
            rounds=1 if quick else 4,
            warmup=1 if quick else 2,
            log=log,
        )

    section("loader", loader)

    def scaling() -> dict:
        from benchmarks.bench_loader import loader_scaling

        if not shard_dir.is_dir():
            _loader_shards(raw, shard_dir)
        return loader_scaling(
            shard_dir,
            workers=(1, args.workers) if args.workers > 1 else (1,),
            batch_size=args.batch_size,
            seconds=secs * (1 if quick else 3),
            rounds=1 if quick else 3,
            log=log,
        )

    section("scaling", scaling)

    def tfdata() -> dict:
        from benchmarks.bench_loader import bench_tfdata

        if not shard_dir.is_dir():
            _loader_shards(raw, shard_dir)
        quick_kw = dict(rounds=1, warmup=1, csv_rows=1_000, image_sample=100) if quick else {}
        return _call(
            bench_tfdata,
            shard_dir,
            workdir / "tfrecords",
            args.batch_size,
            64,
            secs * (1 if quick else 3),
            workers=args.workers,
            log=log,
            **quick_kw,
        )

    section("tfdata", tfdata)

    def shard() -> dict:
        kw = QUICK_SHARD if quick else {}
        return bench_shard(workdir / "shard", skip_large=args.skip_shard_large, log=log, **kw)

    section("shard", shard)
    if args.skip_shard_large and "shard" in args.sections:
        note("--skip-shard-large: the large shard runs (and the RSS ratios) were skipped")

    info["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    report = {
        "command": "make bench  (= .venv/bin/python benchmarks/run_all.py "
        + " ".join(args.argv)
        + ")",
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": info,
        "section_seconds": sections,
        "section_keys": section_keys,
        **fig,
        "targets": targets_status(fig),
        "notes": notes,
        "failed": failed,
    }
    return report


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status (1 if a required section failed)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, short timings")
    ap.add_argument(
        "--skip-shard-large",
        action="store_true",
        help="shard only the small dataset (no RSS ratio)",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "bench.json")
    ap.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="timing window per measurement (default 5, quick 0.3)",
    )
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument(
        "--sample-dir",
        type=Path,
        default=REAL_SAMPLE,
        help="the real Kaggle-layout sample (default: ../shared/data/quickdraw-real-sample "
        "beside the repo); synthetic drawings if it is absent",
    )
    ap.add_argument("--workers", type=int, default=2, help="PyDataset enqueuer threads")
    ap.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)",
    )
    ap.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep the generated data here (default: a temp folder, deleted)",
    )
    args = ap.parse_args(argv)
    args.argv = argv
    args.sections = [x.strip() for x in args.sections.split(",") if x.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown section(s) {sorted(unknown)}; choose from {SECTIONS}")
    from doodle.fileio import write_json

    tmp = None
    if args.workdir is None:
        tmp = tempfile.mkdtemp(prefix="doodle-bench-")
        workdir = Path(tmp)
    else:
        workdir = args.workdir
        workdir.mkdir(parents=True, exist_ok=True)
    try:
        report = run(args, workdir)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    write_json(args.out, report)
    print()
    print(
        json.dumps(
            {k: v for k, v in report.items() if k not in ("targets", "section_keys")}, indent=2
        )
    )
    print()
    m = report["machine"]
    print(
        f"Machine: {m['cpu_model']}, nproc={m['nproc']}, "
        f"{m.get('mem_total_gib', '?')} GiB RAM, load average at start "
        f"{m['loadavg_start']}, at end {m['loadavg_end']}"
    )
    print()
    print(markdown_table(report, report["section_keys"].get("tfdata")))
    print()
    for t in report["targets"]:
        state = "not measured" if t["met"] is None else ("met" if t["met"] else "MISSED")
        print(f"target {t['key']} {t['target']}: {_fmt(t['value'])} -> {state}")
    for n in report["notes"]:
        print(f"note: {n}")
    print(f"wrote {args.out}")
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
