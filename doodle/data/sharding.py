"""The shard stage: Kaggle's per-class CSVs -> shuffled stroke shards, holdout and test.

The reference "shuffle" step, done so memory never holds the dataset, on every core:

1. *Spill* (parallel, one class file a task): worker processes parse the class files (read in
   place: from a folder or straight out of a zip, see :mod:`doodle.data.files`) in chunks of
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
process is one chunk of a class file (``CHUNK_ROWS`` rows or ``CHUNK_BYTES`` of text) or
one shard.

Kaggle's raw layout (``train_raw/``, ``test_raw.csv``) goes the same way: each chunk is parsed
and simplified by :func:`doodle.data.rawcells.parse_raw_many`, and the shards also hold every
point's time (:mod:`doodle.data.shards`). The test drawings come from ``test_raw.csv`` in the
order of ``test_simplified.csv`` (joined on key_id; the stage stops, naming the counts, when
the two files do not hold the same key_ids), so the submission covers exactly its rows.

Bad rows are counted per reason and listed (file, row, reason) in ``skipped_rows.csv``;
the stage fails only when a file is unreadable or nothing usable is left. Raw rows that are
repaired rather than skipped (times that step back, see :mod:`doodle.data.rawcells`) are counted
under ``repaired`` and listed in ``repaired_rows.csv``.

Why one module of ~550 lines: the spill, distribute and write steps share the worker
processes' state (``_Job``, set once per worker) and the spill-file layout; split apart,
each piece would need the others' internals. Reading CSV rows is :mod:`doodle.data.rows`.
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

from doodle.data.cells import parse_many
from doodle.data.files import LOCATION_FILE, ZIP_ERRORS, Member, RawData, RawDataError, open_raw
from doodle.data.layout import DATASET_FILE
from doodle.data.rawcells import parse_raw_many
from doodle.data.rows import (
    BAD_CSV_ROW,
    BAD_KEY_ID,
    DUPLICATE_KEY_ID,
    TEST_REQUIRED,
    TRAIN_REQUIRED,
    UNKNOWN_CLASS,
    WORD_MISMATCH,
    SkipLog,
    parse_key_id,
    read_csv_rows,
    shown,
)
from doodle.data.shards import write_shard
from doodle.data.strokes import Drawings, concat, pack
from doodle.errors import DoodleError
from doodle.fileio import (
    atomic_path,
    check_disk_space,
    human_bytes,
    remove,
    tree_size,
    write_json,
)

# Rows parsed before they are spilled: bounds memory whatever the size of a class file
# (a raw row is ~4 KB of text, a simplified one ~0.5 KB: the byte bound acts on raw files).
CHUNK_ROWS = 20_000
CHUNK_BYTES = 16 << 20
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
# and the spill files hold the same drawings once more until each shard is written. Raw
# text is ~18x the shards made from it (times included): measured 0.056 on the raw sample.
DISK_PER_CSV_BYTE = {"simplified": 0.5, "raw": 0.15}
REPAIRED_FILE = "repaired_rows.csv"

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
# per drawing, plus the points' times (uint16) for raw input. A class spill is written chunk
# by chunk, each chunk sorted by shard; the parent cuts it with the (drawings, strokes,
# points) counts per (chunk, shard) the worker returns.
_EXTS = ("xy", "len", "rec", "t")


def _spill_paths(folder: Path, stem: str, timed: bool) -> tuple[Path, ...]:
    return tuple(folder / f"{stem}.{ext}" for ext in _EXTS[: 4 if timed else 3])


def _append(paths: tuple[Path, ...], *arrays: np.ndarray) -> None:
    for p, arr in zip(paths, arrays, strict=True):
        with open(p, "ab") as f:
            arr.tofile(f)


def _spill_arrays(drawings: Drawings, rec: np.ndarray) -> tuple[np.ndarray, ...]:
    """What :func:`_append` writes for these drawings (times last, when they have them)."""
    lens = np.diff(drawings.stroke_offsets).astype(np.int32)
    return (drawings.xy, lens, rec) + ((drawings.t,) if drawings.has_time else ())


def _load_spill(folder: Path, stem: str, timed: bool) -> tuple[Drawings, np.ndarray]:
    paths = _spill_paths(folder, stem, timed)
    if not paths[2].exists():
        empty = pack([])
        if timed:
            empty.t = np.zeros(0, np.uint16)
        return empty, np.zeros(0, _RECORD)
    rec = np.fromfile(paths[2], dtype=_RECORD)
    lens = np.fromfile(paths[1], dtype=np.int32)
    xy = np.fromfile(paths[0], dtype=np.uint8).reshape(-1, 2)
    t = np.fromfile(paths[3], dtype=np.uint16) if timed else None
    return Drawings.from_lengths(xy, lens, rec["n_strokes"], t), rec


@dataclass
class _Job:
    """What every worker needs (sent once, to each worker)."""

    folder: Path  # the spill folder
    n_shards: int
    label_of: dict[str, int]
    names: list[str]  # class file names, by file number (for messages)
    seed: int
    val_size: int
    layout: str = "simplified"  # raw: parse and simplify raw cells, keep the times

    @property
    def timed(self) -> bool:
        return self.layout == "raw"


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
    repairs: dict[str, Counter]


def _parse(texts: list[str], timed: bool, name: str, rows: list[int], repair_log: SkipLog):
    """Parse a chunk's drawing cells (raw ones simplified, their repairs logged):
    (drawings, per cell None or the DrawingError)."""
    if not timed:
        return parse_many(texts)
    parsed = parse_raw_many(texts)
    for row_no, found in zip(rows, parsed.repairs, strict=True):
        for reason, detail in found or ():
            repair_log.skip(name, row_no, reason, detail)
    return parsed.drawings, parsed.errors


def _spill_class(task: tuple[int, Member]) -> _ClassResult:
    """Parse one class file into its own shard-sorted spill (runs in a worker)."""
    file_no, member = task
    job = _JOB
    name = member.name
    stem = f"c{file_no:05d}"
    paths = _spill_paths(job.folder, stem, job.timed)
    log = SkipLog(job.folder / f"{stem}.skip", header=False)
    repair_log = SkipLog(job.folder / f"{stem}.repair", header=False)
    texts: list[str] = []
    recs: list[tuple] = []
    chunks: list[np.ndarray] = []
    read = kept = text_bytes = 0

    def flush() -> int:
        nonlocal text_bytes
        if not recs:
            return 0
        rows = [r[5] for r in recs]
        drawings, errors = _parse(texts, job.timed, name, rows, repair_log)
        good = [i for i, e in enumerate(errors) if e is None]
        for i, e in enumerate(errors):
            if e is not None:
                log.skip(name, recs[i][5], e.reason, str(e))
        rec = np.array([recs[i] for i in good], dtype=_RECORD)
        drawings = drawings.take(np.array(good, dtype=np.int64))
        rec["n_strokes"] = drawings.n_strokes
        texts.clear()
        recs.clear()
        text_bytes = 0
        shard = shard_of(rec["key_id"], job.n_shards)
        order = np.argsort(shard, kind="stable")
        drawings, rec = drawings.take(order), rec[order]
        counts = np.bincount(shard, minlength=job.n_shards)
        starts = drawings.drawing_offsets[np.r_[0, np.cumsum(counts)]]
        chunks.append(
            np.stack([counts, np.diff(starts), np.diff(drawings.stroke_offsets[starts])], axis=1)
        )
        _append(paths, *_spill_arrays(drawings, rec))
        return len(good)

    try:
        for row_no, row in read_csv_rows(member, TRAIN_REQUIRED, log):
            read += 1
            try:
                key = parse_key_id(row["key_id"])
            except ValueError:
                log.skip(name, row_no, BAD_KEY_ID, shown(row["key_id"]))
                continue
            label = job.label_of.get(row["word"])
            if label is None:
                log.skip(name, row_no, UNKNOWN_CLASS, shown(row["word"]))
                continue
            if label != file_no:  # the file's class is label file_no (class_list's order)
                log.skip(name, row_no, WORD_MISMATCH, _mismatch(row["word"], job, file_no))
                continue
            texts.append(row["drawing"])
            text_bytes += len(row["drawing"])
            recs.append(
                (key, label, 0, row["countrycode"][:2].encode("ascii", "replace"), file_no, row_no)
            )
            if len(recs) >= CHUNK_ROWS or text_bytes >= CHUNK_BYTES:
                kept += flush()
        kept += flush()
    finally:
        log.close()
        repair_log.close()
    # Rows the CSV reader rejected were never yielded: count them so rows = kept + skipped.
    rows = read + log.counts.get(name, Counter())[BAD_CSV_ROW]
    table = np.stack(chunks) if chunks else np.zeros((0, job.n_shards, 3), np.int64)
    return _ClassResult(file_no, rows, kept, log.counts, table, repair_log.counts)


def _mismatch(word: str, job: _Job, file_no: int) -> str:
    """The detail of a row whose word is a class, but not its file's."""
    return f"word {word!r} in the class file of {list(job.label_of)[file_no]!r}"


def _distribute(result: _ClassResult, folder: Path, n_shards: int, timed: bool) -> None:
    """Append a class spill's per-shard slices to the shard spills (parent, file order)."""
    stem = f"c{result.file_no:05d}"
    src = _spill_paths(folder, stem, timed)
    if len(result.chunks):
        files = [open(p, "rb") for p in src]
        try:
            for chunk in result.chunks:
                # Within a chunk: all points, then all lengths, then all records (then all
                # times), each in shard order; cut the streams at the same shard boundaries.
                n_pts = int(chunk[:, 2].sum())
                xy = np.fromfile(files[0], np.uint8, n_pts * 2).reshape(-1, 2)
                lens = np.fromfile(files[1], np.int32, int(chunk[:, 1].sum()))
                rec = np.fromfile(files[2], _RECORD, int(chunk[:, 0].sum()))
                t = np.fromfile(files[3], np.uint16, n_pts) if timed else None
                bounds = np.cumsum(np.r_[[[0, 0, 0]], chunk], axis=0)
                for s in np.flatnonzero(chunk[:, 0]):
                    (d0, s0, p0), (d1, s1, p1) = bounds[s], bounds[s + 1]
                    parts = (xy[p0:p1], lens[s0:s1], rec[d0:d1]) + ((t[p0:p1],) if timed else ())
                    _append(_spill_paths(folder, f"{s:03d}", timed), *parts)
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
    repairs: dict[str, Counter]


def _read_test(task: tuple[RawData, list[str]]) -> _TestResult:
    """The test file, in its order (runs in a worker). Every key_id must get a prediction,
    so a bad drawing is kept as a blank one (and reported); a bad key_id is an error; a
    repeated key_id is skipped (a submission has one row per key_id). In the raw layout the
    drawings come from ``test_raw.csv``, in the order of ``test_simplified.csv``."""
    raw, classes = task
    log = SkipLog(_JOB.folder / "test.skip", header=False)
    repair_log = SkipLog(_JOB.folder / "test.repair", header=False)
    try:
        drawings, keys, ccs = _read_test_drawings(raw.test_drawings, _JOB.timed, log, repair_log)
        if raw.test_drawings is not raw.test:
            drawings, keys, ccs = _join_test(raw, drawings, keys, ccs, log)
    finally:
        log.close()
        repair_log.close()
    solution = _read_solution(raw.solution, classes)
    label = np.array([solution.get(k, -1) for k in keys.tolist()], dtype=np.int16)
    return _TestResult(drawings, keys, label, ccs, log.counts, repair_log.counts)


def _test_rows(
    member: Member, required: list[str], log: SkipLog
) -> Iterator[tuple[int, int, dict]]:
    """(row, key_id, row) of a test file, each key_id once (a repeat is skipped and logged);
    a key_id that is not an integer stops the stage."""
    seen: set[int] = set()
    for row_no, row in read_csv_rows(member, required, log):
        try:
            key = parse_key_id(row["key_id"])
        except ValueError:
            raise ShardStageError(
                f"{member.name}: row {row_no}: key_id {shown(row['key_id'])} is not "
                "an integer; every test row needs one for the submission"
            ) from None
        if key in seen:
            log.skip(member.name, row_no, DUPLICATE_KEY_ID, str(key))
            continue
        seen.add(key)
        yield row_no, key, row


def _read_test_drawings(
    member: Member, timed: bool, log: SkipLog, repair_log: SkipLog
) -> tuple[Drawings, np.ndarray, np.ndarray]:
    """Every drawing of a test file, in its order: (drawings, key_ids, countrycodes)."""
    name = member.name
    parts: list[Drawings] = []
    texts: list[str] = []
    rows: list[int] = []
    keys, ccs = [], []
    text_bytes = 0

    def flush() -> None:
        # a bad drawing stays, blank, in its place
        drawings, errors = _parse(texts, timed, name, rows, repair_log)
        for row_no, e in zip(rows, errors, strict=True):
            if e is not None:
                log.skip(name, row_no, f"blank_{e.reason}", "kept as a blank drawing: " + str(e))
        parts.append(drawings)
        texts.clear()
        rows.clear()

    for row_no, key, row in _test_rows(member, TEST_REQUIRED, log):
        texts.append(row["drawing"])
        text_bytes += len(row["drawing"])
        rows.append(row_no)
        keys.append(key)
        ccs.append(row["countrycode"][:2].encode("ascii", "replace"))
        if len(texts) >= CHUNK_ROWS or text_bytes >= CHUNK_BYTES:
            flush()
            text_bytes = 0
    flush()
    return concat(parts), np.array(keys, dtype=np.int64), np.array(ccs, dtype="S2")


def _join_test(
    raw: RawData, drawings: Drawings, keys: np.ndarray, ccs: np.ndarray, log: SkipLog
) -> tuple[Drawings, np.ndarray, np.ndarray]:
    """The raw test drawings in the order of ``raw.test`` (test_simplified.csv), whose
    key_ids the submission must hold; refuses when the two files' key_ids differ."""
    order = [key for _, key, _ in _test_rows(raw.test, ["key_id"], log)]
    want = np.array(order, dtype=np.int64)
    only_raw = np.setdiff1d(keys, want)
    only_simplified = np.setdiff1d(want, keys)
    if len(only_raw) or len(only_simplified):

        def some(a: np.ndarray) -> str:
            return f" (e.g. {', '.join(map(str, a[:3].tolist()))})" if len(a) else ""

        raise ShardStageError(
            f"{raw.test_drawings.name} has {len(keys):,} key_ids and {raw.test.name} "
            f"{len(want):,}: {len(only_raw):,} only in the first{some(only_raw)}, "
            f"{len(only_simplified):,} only in the second{some(only_simplified)}; the two test "
            "files must hold the same drawings (download both again)"
        )
    where = np.argsort(keys, kind="stable")
    idx = where[np.searchsorted(keys, want, sorter=where)]
    return drawings.take(idx), want, ccs[idx]


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
    drawings, rec = _load_spill(job.folder, f"{s:03d}", job.timed)
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
    for p in _spill_paths(job.folder, f"{s:03d}", job.timed):
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
    check_disk_space(out_dir, int(raw.train_bytes * DISK_PER_CSV_BYTE[raw.layout]), "sharding")
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        folder = tmp / ".spill"
        folder.mkdir()
        label_of = {c: i for i, c in enumerate(classes)}
        job = _Job(folder, n_shards, label_of, names, seed, val_size, raw.layout)
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
    keys = METRIC_KEYS + (("repaired_total",) if "repaired" in report else ())
    write_json(report_path, {k: report[k] for k in keys})
    skipped = report["skipped"]
    repaired = ""
    if "repaired" in report:
        repaired = (
            f", {report['repaired_total']:,} repaired "
            f"({', '.join(f'{k}={v}' for k, v in report['repaired'].items()) or 'none'})"
        )
    print(
        f"shard: {report['rows_read']:,} rows read, {report['train_rows']:,} train, "
        f"{report['holdout_rows']:,} holdout, {report['test_rows']:,} test, "
        f"{report['skipped_total']:,} skipped "
        f"({', '.join(f'{k}={v}' for k, v in skipped.items()) or 'none'}){repaired}; "
        f"{human_bytes(report['bytes'])} in {time.time() - t0:.1f}s with {workers} "
        f"worker(s) -> {out_dir}"
    )
    return report


def _shard_all(pool, job: _Job, raw: RawData, members: list[Member], tmp: Path) -> dict:
    folder = job.folder
    classes = class_list(raw)
    test_task = (raw, classes)
    test_async = pool.apply_async(_read_test, (test_task,)) if pool is not None else None
    per_file: dict[str, dict] = {}
    counts: dict[str, Counter] = {}
    repairs: dict[str, Counter] = {}
    for res in _run_tasks(
        pool, _spill_class, enumerate(members), len(members), "shard: read classes", "file"
    ):
        _distribute(res, folder, job.n_shards, job.timed)
        per_file[members[res.file_no].name] = {"rows": res.rows, "kept": res.kept}
        counts.update(res.counts)
        repairs.update(res.repairs)
    test = test_async.get() if test_async is not None else _read_test(test_task)
    counts.update(test.counts)
    repairs.update(test.repairs)
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
    if job.timed:  # the repaired rows, in the same order (kept, and listed)
        with open(tmp / REPAIRED_FILE, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerow(SkipLog.HEADER)
            for part in [f"c{i:05d}.repair" for i in range(len(members))] + ["test.repair"]:
                f.write((folder / part).read_text(encoding="utf-8"))
    remove(folder)
    if n_train == 0:
        raise ShardStageError(
            f"{raw.origin}: no usable training drawings (see the skipped rows report)"
        )
    for f, c in counts.items():
        per_file.setdefault(f, {"rows": 0, "kept": 0})["skipped"] = dict(c)
    for f, c in repairs.items():
        per_file.setdefault(f, {"rows": 0, "kept": 0})["repaired"] = dict(c)
    skipped = Counter()
    for c in counts.values():
        skipped.update(c)
    repaired = Counter()
    for c in repairs.values():
        repaired.update(c)
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
    if job.timed:  # (a simplified report stays as it always was)
        report |= {
            "layout": raw.layout,
            "repaired": dict(repaired),
            "repaired_total": int(sum(repaired.values())),
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
