"""The shard stage's speed with this checkout's cell reader beside an older commit's, in one run.

    python benchmarks/bench_cells.py --before REV [--replicas 8] [--repeats 3]
                                     [--workdir /tmp/doodle-bench-cells]
                                     [--out reports/bench_cells.json]

``REV``'s ``doodle/`` is exported with ``git archive`` into the work folder (nothing in the
repository changes). Input: the real raw sample (``../shared/data/quickdraw-real-raw-sample``)
written ``--replicas`` times under fresh key_ids, once per layout (simplified and raw, the same
drawings; :func:`benchmarks.bench_raw.make_inputs`). Each run is the shard stage in a fresh
process with 1 worker (``fetch_path`` then ``shard_dataset``, as the stages call them), before
and after alternating, simplified then raw, ``--repeats`` times, after one warm-up run of each
(numba's compile cache). The figure is drawings per CPU-second of the stage; the ratio after /
before is taken per repeat (the two runs side by side, so a change of the machine's load between
repeats cancels) and its median reported per layout. The outputs must be byte-identical.

Then the cell readers alone (the hot path the stage calls per chunk: ``parse_many`` for
simplified cells, ``parse_raw_many`` for raw ones, on every training cell of the raw sample in
chunks of 20,000 rows as the stage makes them), each tree in a fresh process, alternating, the
same way: cells per CPU-second over ``--parse-seconds``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.bench_raw import _CHILD, RAW_SAMPLE, make_inputs  # noqa: E402


def export(rev: str, dest: Path) -> Path:
    """``rev``'s ``doodle/`` package under ``dest`` (a code root for the child process)."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", rev, "doodle"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    tar = dest / "doodle.tar"
    tar.write_bytes(archive)
    with tarfile.open(tar) as t:
        t.extractall(dest, filter="data")
    tar.unlink()
    return dest


def digest(folder: Path) -> str:
    """One SHA-256 over every output file (names and bytes)."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


_PARSE_CHILD = """
import csv, json, sys, time
from pathlib import Path
root, sample, layout, seconds = json.loads(sys.argv[1])
sys.path.insert(0, root)
try:
    from doodle.data.cells import parse_many
except ImportError:  # before the cell reader had its own module
    from doodle.data.strokes import parse_many
from doodle.data.rawcells import parse_raw_many

csv.field_size_limit(2**31 - 1)
folder = Path(sample) / ("train_raw" if layout == "raw" else "train_simplified")
cells = []
for f in sorted(folder.glob("*.csv")):
    with open(f, newline="", encoding="utf-8") as fh:
        cells += [r["drawing"] for r in csv.DictReader(fh)]
parse = parse_raw_many if layout == "raw" else parse_many
chunks = [cells[i : i + 20000] for i in range(0, len(cells), 20000)]
for c in chunks:
    parse(c)  # compiled kernels loaded (numba's cache) before the clock starts
n, c0 = 0, time.process_time()
while time.process_time() - c0 < seconds:
    for c in chunks:
        parse(c)
        n += len(c)
print(json.dumps({"cells": n, "cpu_s": time.process_time() - c0}))
"""


def parse_rate(code: Path, layout: str, seconds: float) -> float:
    """Cells per CPU-second of the tree's cell reader for ``layout`` (a fresh process)."""
    argv = json.dumps([str(code), str(RAW_SAMPLE), layout, seconds])
    p = subprocess.run(
        [sys.executable, "-c", _PARSE_CHILD, argv], capture_output=True, text=True, cwd=code
    )
    if p.returncode:
        raise SystemExit(f"parse run ({code}, {layout}) failed:\n{p.stderr[-2000:]}")
    res = json.loads(p.stdout.strip().splitlines()[-1])
    return res["cells"] / res["cpu_s"]


def run(code: Path, src: Path, layout: str, work: Path) -> dict:
    """The shard stage with the code under ``code``, in a fresh process."""
    raw, out = work / "raw", work / "shards"
    for p in (raw, out):
        shutil.rmtree(p, ignore_errors=True)
    argv = json.dumps([str(code), str(src), layout, str(raw), str(out), 1])
    p = subprocess.run(
        [sys.executable, "-c", _CHILD, argv], capture_output=True, text=True, cwd=code
    )
    if p.returncode:
        raise SystemExit(f"shard run ({code}, {layout}) failed:\n{p.stderr[-2000:]}")
    res = json.loads(p.stdout.strip().splitlines()[-1])
    drawings = res["report"]["rows_read"]
    return {"cpu_s": res["cpu_s"], "drawings": drawings, "digest": digest(out)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", required=True, help="the git revision to compare with")
    ap.add_argument("--replicas", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--parse-seconds", type=float, default=3.0)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/doodle-bench-cells"))
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "bench_cells.json")
    args = ap.parse_args(argv)
    if not RAW_SAMPLE.is_dir():
        raise SystemExit(f"the real raw sample is not at {RAW_SAMPLE} (DOODLE_SHARED_DATA)")
    args.workdir.mkdir(parents=True, exist_ok=True)
    inputs = make_inputs(args.workdir, args.replicas)
    codes = {"before": export(args.before, args.workdir / "before"), "after": ROOT}
    load_before = os.getloadavg()
    rates: dict[str, list[float]] = {}
    digests: dict[str, set[str]] = {}
    drawings: dict[str, int] = {}
    for rep in range(args.repeats + 1):  # the first round warms numba's cache: not counted
        for layout in ("simplified", "raw"):
            for which, code in codes.items():
                r = run(code, inputs[layout], layout, args.workdir / "run")
                digests.setdefault(layout, set()).add(r["digest"])
                drawings[layout] = r["drawings"]
                if rep:
                    rate = r["drawings"] / r["cpu_s"]
                    rates.setdefault(f"{layout}_{which}", []).append(round(rate, 1))
                    print(f"{layout:10s} {which:6s} {rate:10,.0f} drawings/CPU-s", flush=True)
    parse: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for layout in ("simplified", "raw"):
            for which, code in codes.items():
                rate = parse_rate(code, layout, args.parse_seconds)
                parse.setdefault(f"{layout}_{which}", []).append(round(rate, 1))
                print(f"parse {layout:10s} {which:6s} {rate:10,.0f} cells/CPU-s", flush=True)
    median = {k: statistics.median(v) for k, v in rates.items()}

    def ratios(table: dict[str, list[float]], layout: str) -> list[float]:
        pairs = zip(table[f"{layout}_after"], table[f"{layout}_before"], strict=True)
        return [round(a / b, 3) for a, b in pairs]

    result = {
        "before": args.before,
        "replicas": args.replicas,
        "drawings_per_run": drawings,
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "drawings_per_cpu_s": rates,
        "median": median,
        "stage_ratio_per_repeat": {lay: ratios(rates, lay) for lay in ("simplified", "raw")},
        "stage_ratio_median": {
            lay: statistics.median(ratios(rates, lay)) for lay in ("simplified", "raw")
        },
        "parse_cells_per_cpu_s": parse,
        "parse_ratio_per_repeat": {lay: ratios(parse, lay) for lay in ("simplified", "raw")},
        "parse_ratio_median": {
            lay: statistics.median(ratios(parse, lay)) for lay in ("simplified", "raw")
        },
        "outputs_identical": {layout: len(d) == 1 for layout, d in digests.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
