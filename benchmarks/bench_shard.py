"""Shard-stage benchmark: drawings/s and peak memory of ``shard_dataset`` at several sizes.

Raw data: ``write_synthetic`` writes a base pool (``base_per_class`` drawings per class, in
Kaggle's exact CSV layout), then :func:`expand_raw` grows it to any size by cycling each class
file's rows under fresh, unique, uniformly spread 16-digit key_ids (the stage drops repeated
key_ids). Parsing, spilling and memory cost the same per row as freshly generated drawings,
and generating millions of drawings procedurally takes far longer than sharding them.

Each shard run is a separate process, so its peak RSS (``os.wait4``'s ``ru_maxrss``) is the
stage's own and nothing is shared between sizes. This module imports no TensorFlow: the child
process runs this file with ``--child``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KEY_ID_LOW = 4_500_000_000_000_000
KEY_ID_HIGH = 6_750_000_000_000_000
TRAIN_HEADER = ("countrycode", "drawing", "key_id", "recognized", "timestamp", "word")

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


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


def _rss_mb(maxrss_kb: int) -> float:
    # Linux reports ru_maxrss and VmHWM in KiB.
    return round(maxrss_kb / 1024.0, 1)


def _peak_rss_mb() -> float:
    """This process's peak RSS since exec (``VmHWM``).

    Not ``ru_maxrss``: Linux carries the parent's RSS at fork time into a child's
    ``ru_maxrss`` across exec, so a child of a 1 GB TensorFlow process would "peak" at 1 GB.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return _rss_mb(int(line.split()[1]))
    except OSError:
        pass
    import resource

    return _rss_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def run_shard_process(
    raw_dir: Path, out_dir: Path, n_shards: int, val_size: int, seed: int = 0
) -> dict:
    """Run ``shard_dataset`` in a fresh process; returns its timing, rows and peak RSS (MiB).

    The peak is the child's own ``VmHWM`` (see :func:`_peak_rss_mb`); ``os.wait4``'s
    ``ru_maxrss`` is kept as ``wait4_maxrss_mb`` (an upper bound that includes this process's
    RSS when it forked the child).
    """
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        str(raw_dir),
        str(out_dir),
        str(n_shards),
        str(val_size),
        str(seed),
    ]
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
        "wait4_maxrss_mb": _rss_mb(usage.ru_maxrss),
        "import_rss_mb": child["import_rss_mb"],
        "drawings_per_shard": round(child["train_rows"] / n_shards),
        "output_mb": round(child["bytes"] / 2**20, 1),
    }


def _child(argv: list[str]) -> None:
    """Child process body: import, note the RSS floor, shard, print one JSON line."""
    sys.path.insert(0, str(ROOT))
    from doodle.data.sharding import shard_dataset

    raw, out, n_shards, val_size, seed = argv
    floor = _peak_rss_mb()
    t0 = time.perf_counter()
    report = shard_dataset(
        Path(raw),
        Path(out),
        int(n_shards),
        int(val_size),
        int(seed),
        Path(out).parent / f"{Path(out).name}-report.json",
    )
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "seconds": seconds,
                "rows_read": report["rows_read"],
                "train_rows": report["train_rows"] + report["holdout_rows"],
                "bytes": report["bytes"],
                "import_rss_mb": floor,
                "peak_rss_mb": _peak_rss_mb(),
            }
        )
    )


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


def main(argv: list[str] | None = None) -> None:
    """CLI: ``python benchmarks/bench_shard.py [--quick]`` (or ``--child`` for internal use)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        _child(argv[1:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-large", action="store_true")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="doodle-bench-shard-") as tmp:
        kw = (
            dict(
                small_per_class=250,
                large_per_class=1000,
                small_shards=2,
                large_shards=8,
                base_per_class=50,
                test_per_class=5,
                val_size=50,
            )
            if a.quick
            else {}
        )
        print(json.dumps(bench_shard(Path(tmp), skip_large=a.skip_large, **kw), indent=2))


if __name__ == "__main__":
    main()
