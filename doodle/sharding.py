"""The shard stage: Kaggle's per-class CSVs -> shuffled stroke shards, holdout and test.

The reference "shuffle" step, done so memory never holds the dataset, on every core:

1. *Spill* (parallel, one class file a task): worker processes parse the class files (read in
   place: from a folder or straight out of a zip, see :mod:`doodle.rawdata`) in chunks of
   ``CHUNK_ROWS`` rows and write each chunk sorted by shard ``(key_id // 10**7) %
   n_shards`` to per-class spill files. The parent appends each class's slices to the
   per-shard spill files **in class-file order**, whatever order the workers finish in.
   The test file is parsed by a worker too.
2. *Shuffle + write* (parallel, one shard a task): each shard alone is loaded, its repeated
   key_ids dropped (a key_id always maps to the same shard), shuffled with a generator
   seeded by ``(seed, shard)`` and written in the binary stroke format; its spill files
   are deleted as soon as it is written, so the disk holds the data about once.

Every step's output depends only on the input and the params, never on the worker count
or timing: 1 and 16 workers write byte-identical shards and reports. Peak memory per
process is one chunk of a class file or one shard.

Bad rows are counted per reason and listed (file, row, reason) in ``skipped_rows.csv``;
the stage fails only when a file is unreadable or nothing usable is left.

Why one module of ~550 lines: the spill, distribute and write steps share the worker
processes' state (``_Job``, set once per worker) and the spill-file layout; split apart,
each piece would need the others' internals. Reading CSV rows is :mod:`doodle.csvrows`.
"""

from __future__ import annotations

import csv
import multiprocessing
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from doodle.csvrows import (
    BAD_CSV_ROW,
    BAD_KEY_ID,
    DUPLICATE_KEY_ID,
    TEST_REQUIRED,
    TRAIN_REQUIRED,
    UNKNOWN_CLASS,
    SkipLog,
    parse_key_id,
    read_csv_rows,
)
from doodle.errors import DoodleError
from doodle.fileio import (
    atomic_path,
    check_disk_space,
    human_bytes,
    remove,
    tree_size,
    write_json,
)
from doodle.layout import DATASET_FILE
from doodle.rawdata import LOCATION_FILE, ZIP_ERRORS, Member, RawData, RawDataError, open_raw
from doodle.shard_format import write_shard
from doodle.strokes import Drawings, concat, pack, parse_many

# Rows parsed before they are spilled: bounds memory whatever the size of a class file.
CHUNK_ROWS = 20_000
# One per drawing in the spill files; file/row say where it came from, so a duplicate
# key_id found when its shard is finalised can still be reported with file and row.
_RECORD = np.dtype(
    [
        ("key_id", "<i8"),
        ("label", "<i2"),
        ("n_strokes", "<i4"),
        ("cc", "S2"),
        ("file", "<i4"),
        ("row", "<i8"),
    ]
)
# Disk the stage needs per byte of class CSV: shards are about a third of the CSV text,
# and the spill files hold the same drawings once more until each shard is written.
DISK_PER_CSV_BYTE = 0.5

# Kaggle's 16-digit key ids and 200 KB+ drawings (a 20,000-point doodle) exceed the csv
# module's default 128 KB field limit.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


class ShardStageError(DoodleError, RuntimeError):
    """An input the stage cannot use at all (names the file and the problem)."""


def shard_of(key_id: np.ndarray, n_shards: int) -> np.ndarray:
    """The shard a drawing goes to: ``(key_id // 10**7) % n_shards`` (the reference recipe)."""
    return (np.asarray(key_id, dtype=np.int64) // 10**7) % n_shards


# A worker process costs ~1.5 s to start (imports, compiled parser); it parses ~20 MB of CSV
# a second. ``workers: 0`` gives a worker per this many bytes of CSV, up to every core.
BYTES_PER_AUTO_WORKER = 64 << 20


def resolve_workers(workers: int, csv_bytes: int | None = None) -> int:
    """``0`` = every core this process may use (fewer for small inputs, where starting a
    worker would cost more than it parses); ``n > 0`` = exactly ``n``."""
    if workers > 0:
        return workers
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    if csv_bytes is None:
        return cores
    return max(1, min(cores, csv_bytes // BYTES_PER_AUTO_WORKER))


# -- spill files ------------------------------------------------------------------------------
# A spill is three flat files: points (uint8 x,y), points per stroke (int32) and one _RECORD
# per drawing. A class spill is written chunk by chunk, each chunk sorted by shard; its
# ``.idx`` holds (drawings, strokes, points) per (chunk, shard), so the parent can cut it.
_EXTS = ("xy", "len", "rec")


def _spill_paths(folder: Path, stem: str) -> tuple[Path, Path, Path]:
    return tuple(folder / f"{stem}.{ext}" for ext in _EXTS)


def _append(
    paths: tuple[Path, Path, Path], xy: np.ndarray, lens: np.ndarray, rec: np.ndarray
) -> None:
    for p, arr in zip(paths, (xy, lens, rec), strict=True):
        with open(p, "ab") as f:
            arr.tofile(f)


def _load_spill(folder: Path, stem: str) -> tuple[Drawings, np.ndarray]:
    pxy, plen, prec = _spill_paths(folder, stem)
    if not prec.exists():
        return pack([]), np.zeros(0, _RECORD)
    rec = np.fromfile(prec, dtype=_RECORD)
    lens = np.fromfile(plen, dtype=np.int32)
    xy = np.fromfile(pxy, dtype=np.uint8).reshape(-1, 2)
    return Drawings.from_lengths(xy, lens, rec["n_strokes"]), rec


@dataclass
class _Job:
    """What every worker needs (sent once, to each worker)."""

    folder: Path  # the spill folder
    n_shards: int
    label_of: dict[str, int]
    names: list[str]  # class file names, by file number (for messages)
    seed: int
    val_size: int


_JOB: _Job | None = None


def _init_worker(job: _Job) -> None:
    global _JOB
    _JOB = job


@dataclass
class _ClassResult:
    file_no: int
    rows: int
    kept: int
    counts: dict[str, Counter]
    chunks: np.ndarray  # (chunks, n_shards, 3): drawings, strokes, points


def _spill_class(task: tuple[int, Member]) -> _ClassResult:
    """Parse one class file into its own shard-sorted spill (runs in a worker)."""
    file_no, member = task
    job = _JOB
    name = member.name
    stem = f"c{file_no:05d}"
    paths = _spill_paths(job.folder, stem)
    log = SkipLog(job.folder / f"{stem}.skip", header=False)
    texts: list[str] = []
    recs: list[tuple] = []
    chunks: list[np.ndarray] = []
    read = kept = 0

    def flush() -> int:
        if not recs:
            return 0
        drawings, errors = parse_many(texts)
        good = [i for i, e in enumerate(errors) if e is None]
        for i, e in enumerate(errors):
            if e is not None:
                log.skip(name, recs[i][5], e.reason, str(e))
        rec = np.array([recs[i] for i in good], dtype=_RECORD)
        drawings = drawings.take(np.array(good, dtype=np.int64))
        rec["n_strokes"] = drawings.n_strokes
        texts.clear()
        recs.clear()
        shard = shard_of(rec["key_id"], job.n_shards)
        order = np.argsort(shard, kind="stable")
        drawings, rec = drawings.take(order), rec[order]
        counts = np.bincount(shard, minlength=job.n_shards)
        starts = drawings.drawing_offsets[np.r_[0, np.cumsum(counts)]]
        chunks.append(
            np.stack([counts, np.diff(starts), np.diff(drawings.stroke_offsets[starts])], axis=1)
        )
        _append(paths, drawings.xy, np.diff(drawings.stroke_offsets).astype(np.int32), rec)
        return len(good)

    try:
        for row_no, row in read_csv_rows(member, TRAIN_REQUIRED, log):
            read += 1
            try:
                key = parse_key_id(row["key_id"])
            except ValueError:
                log.skip(name, row_no, BAD_KEY_ID, repr(row["key_id"]))
                continue
            label = job.label_of.get(row["word"])
            if label is None:
                log.skip(name, row_no, UNKNOWN_CLASS, repr(row["word"]))
                continue
            texts.append(row["drawing"])
            recs.append(
                (key, label, 0, row["countrycode"][:2].encode("ascii", "replace"), file_no, row_no)
            )
            if len(recs) >= CHUNK_ROWS:
                kept += flush()
        kept += flush()
    finally:
        log.close()
    # Rows the CSV reader rejected were never yielded: count them so rows = kept + skipped.
    rows = read + log.counts.get(name, Counter())[BAD_CSV_ROW]
    table = np.stack(chunks) if chunks else np.zeros((0, job.n_shards, 3), np.int64)
    return _ClassResult(file_no, rows, kept, log.counts, table)


def _distribute(result: _ClassResult, folder: Path, n_shards: int) -> None:
    """Append a class spill's per-shard slices to the shard spills (parent, file order)."""
    stem = f"c{result.file_no:05d}"
    src = _spill_paths(folder, stem)
    if len(result.chunks):
        files = [open(p, "rb") for p in src]
        try:
            for chunk in result.chunks:
                # Within a chunk: all points, then all lengths, then all records, each in
                # shard order; cut the three streams at the same shard boundaries.
                xy = np.fromfile(files[0], np.uint8, int(chunk[:, 2].sum()) * 2).reshape(-1, 2)
                lens = np.fromfile(files[1], np.int32, int(chunk[:, 1].sum()))
                rec = np.fromfile(files[2], _RECORD, int(chunk[:, 0].sum()))
                bounds = np.cumsum(np.r_[[[0, 0, 0]], chunk], axis=0)
                for s in np.flatnonzero(chunk[:, 0]):
                    (d0, s0, p0), (d1, s1, p1) = bounds[s], bounds[s + 1]
                    _append(_spill_paths(folder, f"{s:03d}"), xy[p0:p1], lens[s0:s1], rec[d0:d1])
        finally:
            for f in files:
                f.close()
    for p in src:
        remove(p)


@dataclass
class _TestResult:
    drawings: Drawings
    key_id: np.ndarray
    label: np.ndarray
    cc: np.ndarray
    counts: dict[str, Counter]


def _read_test(task: tuple[Member, Member | None, list[str]]) -> _TestResult:
    """The test file, in its order (runs in a worker). Every key_id must get a prediction,
    so a bad drawing is kept as a blank one (and reported); a bad key_id is an error; a
    repeated key_id is skipped (a submission has one row per key_id)."""
    test, solution_member, classes = task
    log = SkipLog(_JOB.folder / "test.skip", header=False)
    name = test.name
    solution = _read_solution(solution_member, classes)
    parts: list[Drawings] = []
    texts: list[str] = []
    rows: list[int] = []
    keys, ccs = [], []
    seen: set[int] = set()

    def flush() -> None:
        drawings, errors = parse_many(texts)  # a bad drawing stays, blank, in its place
        for row_no, e in zip(rows, errors, strict=True):
            if e is not None:
                log.skip(name, row_no, f"blank_{e.reason}", "kept as a blank drawing: " + str(e))
        parts.append(drawings)
        texts.clear()
        rows.clear()

    try:
        for row_no, row in read_csv_rows(test, TEST_REQUIRED, log):
            try:
                key = parse_key_id(row["key_id"])
            except ValueError:
                raise ShardStageError(
                    f"{name}: row {row_no}: key_id {row['key_id']!r} is not "
                    "an integer; every test row needs one for the "
                    "submission"
                ) from None
            if key in seen:
                log.skip(name, row_no, DUPLICATE_KEY_ID, str(key))
                continue
            seen.add(key)
            texts.append(row["drawing"])
            rows.append(row_no)
            keys.append(key)
            ccs.append(row["countrycode"][:2].encode("ascii", "replace"))
            if len(texts) >= CHUNK_ROWS:
                flush()
        flush()
    finally:
        log.close()
    key_id = np.array(keys, dtype=np.int64)
    label = np.array([solution.get(k, -1) for k in keys], dtype=np.int16)
    return _TestResult(concat(parts), key_id, label, np.array(ccs, dtype="S2"), log.counts)


def _read_solution(member: Member | None, classes: list[str]) -> dict[int, int]:
    if member is None:
        return {}
    by_label = {c.replace(" ", "_"): i for i, c in enumerate(classes)}
    out = {}
    try:
        with member.open_text() as f:
            for row in csv.DictReader(f):
                label = by_label.get((row.get("word") or "").replace(" ", "_"))
                try:
                    out[int(row["key_id"])] = -1 if label is None else label
                except (TypeError, ValueError, KeyError):
                    continue
    except (UnicodeDecodeError, OSError, csv.Error, *ZIP_ERRORS) as e:
        kind = "not UTF-8 text" if isinstance(e, UnicodeDecodeError) else "unreadable"
        raise ShardStageError(f"{member.name}: {kind} ({e})") from None
    return out


@dataclass
class _ShardResult:
    shard: int
    n_train: int
    n_holdout: int
    duplicates: list[tuple[str, int, int]]  # (file, row, key_id)


def _write_shard(s: int) -> _ShardResult:
    """Load shard ``s``'s spill, drop repeated key_ids, shuffle, write (runs in a worker)."""
    job = _JOB
    out = job.folder.parent
    drawings, rec = _load_spill(job.folder, f"{s:03d}")
    # Keep the first (in reading order) of each key_id: stable sort keeps reading order.
    order = np.argsort(rec["key_id"], kind="stable")
    keys = rec["key_id"][order]
    dup = np.zeros(len(rec), bool)
    dup[order[1:][keys[1:] == keys[:-1]]] = True
    duplicates = [
        (job.names[rec["file"][i]], int(rec["row"][i]), int(rec["key_id"][i]))
        for i in np.flatnonzero(dup)
    ]
    keep = np.flatnonzero(~dup)
    perm = keep[np.random.default_rng([job.seed, s]).permutation(len(keep))]
    drawings, rec = drawings.take(perm), rec[perm]
    n_holdout = 0
    if s == job.n_shards - 1:  # the holdout = the first val_size rows of the last shard
        n_holdout = min(job.val_size, len(rec))
        hold = np.arange(n_holdout)
        write_shard(
            out / "holdout.qds",
            drawings.take(hold),
            rec["label"][hold],
            rec["key_id"][hold],
            rec["cc"][hold],
            {"split": "holdout"},
        )
        rest = np.arange(n_holdout, len(rec))
        drawings, rec = drawings.take(rest), rec[rest]
    write_shard(
        out / f"train-{s:03d}.qds",
        drawings,
        rec["label"],
        rec["key_id"],
        rec["cc"],
        {"split": "train", "shard": s},
    )
    for p in _spill_paths(job.folder, f"{s:03d}"):
        remove(p)  # written: free its disk now, so the data is on disk about once
    return _ShardResult(s, len(rec), n_holdout, duplicates)


def _run_tasks(pool, fn: Callable, tasks: Iterable, total: int, desc: str, unit: str) -> Iterator:
    """``fn`` over ``tasks`` in order: in worker processes, or here when ``pool`` is None."""
    results = pool.imap(fn, tasks) if pool is not None else map(fn, tasks)
    yield from tqdm(results, total=total, desc=desc, unit=unit)


def class_list(raw: RawData) -> list[str]:
    """Classes = the train file names (``<word>.csv``), sorted; label index = position."""
    return sorted(raw.classes)


# The shard stage's figures in reports/shard.json (the rest is in data/shards/report.json).
METRIC_KEYS = (
    "classes",
    "train_rows",
    "holdout_rows",
    "test_rows",
    "test_labelled",
    "skipped_total",
)
REPORT_FILE = "report.json"


def shard_dataset(
    raw_dir: Path,
    out_dir: Path,
    n_shards: int,
    val_size: int,
    seed: int,
    report_path: Path,
    workers: int = 1,
) -> dict:
    """Run the whole stage on ``raw_dir`` (a Kaggle-layout folder or zip, or a download
    folder pointing at one); returns the report (also written to ``report_path``)."""
    t0 = time.time()
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    if n_shards < 1:
        raise ShardStageError("shard.n_shards must be >= 1")
    try:
        raw = open_raw(raw_dir)
    except RawDataError as e:
        raise ShardStageError(str(e)) from None
    classes = class_list(raw)
    members = [raw.classes[c] for c in classes]
    names = [m.name for m in members]
    workers = min(resolve_workers(workers, raw.train_bytes), len(members) + 1)
    check_disk_space(out_dir, int(raw.train_bytes * DISK_PER_CSV_BYTE), "sharding")
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        folder = tmp / ".spill"
        folder.mkdir()
        job = _Job(folder, n_shards, {c: i for i, c in enumerate(classes)}, names, seed, val_size)
        pool = None
        if workers > 1:
            # spawn: workers start clean (no inherited threads or locks). They are born
            # ignoring Ctrl-C (an ignored signal stays ignored across exec): it is the
            # parent's to handle, with one message and the cleanup.
            old = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                pool = multiprocessing.get_context("spawn").Pool(
                    workers, initializer=_init_worker, initargs=(job,)
                )
            finally:
                signal.signal(signal.SIGINT, old)
        else:
            _init_worker(job)
        try:
            report = _shard_all(pool, job, raw, members, tmp)
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
        report["bytes"] = tree_size(tmp)
        # No timing or worker count in the output: it is the same bytes however it was made.
        write_json(tmp / REPORT_FILE, report)
        info = raw_dir / DATASET_FILE
        if info.is_file():
            (tmp / DATASET_FILE).write_bytes(info.read_bytes())
    write_json(report_path, {k: report[k] for k in METRIC_KEYS})
    skipped = report["skipped"]
    print(
        f"shard: {report['rows_read']:,} rows read, {report['train_rows']:,} train, "
        f"{report['holdout_rows']:,} holdout, {report['test_rows']:,} test, "
        f"{report['skipped_total']:,} skipped "
        f"({', '.join(f'{k}={v}' for k, v in skipped.items()) or 'none'}); "
        f"{human_bytes(report['bytes'])} in {time.time() - t0:.1f}s with {workers} "
        f"worker(s) -> {out_dir}"
    )
    return report


def _shard_all(pool, job: _Job, raw: RawData, members: list[Member], tmp: Path) -> dict:
    folder = job.folder
    classes = class_list(raw)
    test_task = (raw.test, raw.solution, classes)
    test_async = pool.apply_async(_read_test, (test_task,)) if pool is not None else None
    per_file: dict[str, dict] = {}
    counts: dict[str, Counter] = {}
    for res in _run_tasks(
        pool, _spill_class, enumerate(members), len(members), "shard: read classes", "file"
    ):
        _distribute(res, folder, job.n_shards)
        per_file[members[res.file_no].name] = {"rows": res.rows, "kept": res.kept}
        counts.update(res.counts)
    test = test_async.get() if test_async is not None else _read_test(test_task)
    counts.update(test.counts)
    n_train = n_holdout = 0
    duplicates: list[tuple[str, int, int]] = []
    for res in _run_tasks(
        pool, _write_shard, range(job.n_shards), job.n_shards, "shard: shuffle+write", "shard"
    ):
        n_train += res.n_train
        n_holdout += res.n_holdout
        duplicates += res.duplicates
    write_shard(
        tmp / "test.qds", test.drawings, test.label, test.key_id, test.cc, {"split": "test"}
    )
    write_json(tmp / "classes.json", classes)
    # The skipped-rows list, in a fixed order: class files, test file, duplicates by shard.
    with open(tmp / "skipped_rows.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(SkipLog.HEADER)
        for part in [f"c{i:05d}.skip" for i in range(len(members))] + ["test.skip"]:
            f.write((folder / part).read_text(encoding="utf-8"))
        for name, row, key in duplicates:
            w.writerow([name, row, DUPLICATE_KEY_ID, str(key)])
            counts.setdefault(name, Counter())[DUPLICATE_KEY_ID] += 1
            per_file[name]["kept"] -= 1
    remove(folder)
    if n_train == 0:
        raise ShardStageError(
            f"{raw.origin}: no usable training drawings (see the skipped rows report)"
        )
    for f, c in counts.items():
        per_file.setdefault(f, {"rows": 0, "kept": 0})["skipped"] = dict(c)
    skipped = Counter()
    for c in counts.values():
        skipped.update(c)
    report = {
        "source": raw.origin,
        "classes": len(classes),
        "n_shards": job.n_shards,
        "rows_read": sum(v["rows"] for v in per_file.values()),
        "train_rows": n_train,
        "holdout_rows": n_holdout,
        "test_rows": len(test.key_id),
        "test_labelled": int((test.label >= 0).sum()),
        "skipped": dict(skipped),
        "skipped_total": int(sum(skipped.values())),
        "files": per_file,
    }
    report["empty_classes"] = [
        c for c, m in zip(classes, members, strict=True) if not per_file[m.name]["kept"]
    ]
    if report["empty_classes"]:
        print(f"shard: warning: no usable rows for class(es) {report['empty_classes']}")
    if n_holdout < job.val_size:
        report["warning"] = (
            f"holdout has {n_holdout} rows, fewer than val_size="
            f"{job.val_size} (the last shard is smaller); lower shard.n_shards"
        )
    return report


__all__ = [
    "LOCATION_FILE",
    "ShardStageError",
    "SkipLog",
    "read_csv_rows",
    "shard_dataset",
    "shard_of",
    "class_list",
    "resolve_workers",
]
