"""The shard stage: Kaggle's per-class CSVs -> shuffled stroke shards, holdout and test.

The reference "shuffle" step, done so memory never holds the dataset: class files
are streamed one at a time (in chunks), each drawing is appended to the spill files of
shard ``(key_id // 10**7) % n_shards`` (so every shard holds every class), and then each
shard alone is loaded, shuffled with the seed and written in the binary stroke format.
Peak memory is one chunk of a class file or one shard, whichever is larger.

Bad rows are counted per reason and listed (file, row, reason) in ``skipped_rows.csv``;
the stage fails only when a file is unreadable or nothing usable is left.
"""

from __future__ import annotations

import csv
import shutil
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from doodle.errors import DoodleError
from doodle.fileio import (
    atomic_path,
    check_disk_space,
    human_bytes,
    remove,
    tree_size,
    write_json,
)
from doodle.layout import DATASET_FILE, SOLUTION_FILE, TEST_FILE, TRAIN_DIR
from doodle.shards import write_shard
from doodle.strokes import DrawingError, Drawings, pack, parse_drawing

# Rows parsed before they are spilled: bounds memory whatever the size of a class file.
CHUNK_ROWS = 20_000
BAD_CSV_ROW = "bad_csv_row"
BAD_KEY_ID = "bad_key_id"
UNKNOWN_CLASS = "unknown_class"
DUPLICATE_KEY_ID = "duplicate_key_id"
# One per drawing in the spill files; file/row say where it came from, so a duplicate
# key_id found when its shard is finalised can still be reported with file and row.
_RECORD = np.dtype([("key_id", "<i8"), ("label", "<i2"), ("n_strokes", "<i4"), ("cc", "S2"),
                    ("file", "<i4"), ("row", "<i8")])

# Kaggle's 16-digit key ids and 200 KB+ drawings (a 20,000-point doodle) exceed the csv
# module's default 128 KB field limit.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


class ShardStageError(DoodleError, RuntimeError):
    """An input the stage cannot use at all (names the file and the problem)."""


def shard_of(key_id: np.ndarray, n_shards: int) -> np.ndarray:
    """The shard a drawing goes to: ``(key_id // 10**7) % n_shards`` (the reference recipe)."""
    return (np.asarray(key_id, dtype=np.int64) // 10**7) % n_shards


class SkipLog:
    """Counts skipped rows per file and reason and lists each one (file, row, reason)."""

    def __init__(self, path: Path):
        self.counts: dict[str, Counter] = defaultdict(Counter)
        self._f = open(path, "w", newline="", encoding="utf-8")
        self._w = csv.writer(self._f)
        self._w.writerow(["file", "row", "reason", "detail"])

    def skip(self, file: str, row: int, reason: str, detail: str = "") -> None:
        self.counts[file][reason] += 1
        self._w.writerow([file, row, reason, detail[:200]])

    def close(self) -> None:
        self._f.close()


def read_csv_rows(path: Path, required: list[str], log: SkipLog) -> Iterator[tuple[int, dict]]:
    """Yield ``(row_number, {column: value})`` for a Kaggle CSV (row 1 = first data row).

    Handles a UTF-8 BOM and CRLF endings; rows with the wrong field count are skipped and
    logged. A missing column or an undecodable file raises :class:`ShardStageError`.
    """
    name = str(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise ShardStageError(f"{name}: empty file (no header row)")
            header = [h.strip() for h in header]
            missing = [c for c in required if c not in header]
            if missing:
                raise ShardStageError(f"{name}: missing column(s) {missing}; header is "
                                      f"{header}, expected {required}")
            idx = {c: header.index(c) for c in required}
            while True:
                # Row numbers are file lines minus the header line, so "row 5" is line 6.
                row_no = reader.line_num
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as e:
                    log.skip(name, row_no, BAD_CSV_ROW, str(e))
                    continue
                if reader.line_num > row_no + 1:
                    # Kaggle rows are one line each: an unbalanced quote joined several lines
                    # into one record. List every line so none is lost without a trace.
                    span = f"lines {row_no + 1}-{reader.line_num}"
                    for r in range(row_no, reader.line_num):
                        log.skip(name, r, BAD_CSV_ROW, f"{span} form one record (unbalanced "
                                 "quote?)")
                    continue
                if len(row) != len(header):
                    if row:  # blank lines are not rows
                        log.skip(name, row_no, BAD_CSV_ROW,
                                 f"{len(row)} fields, header has {len(header)}")
                    continue
                yield row_no, {c: row[i] for c, i in idx.items()}
    except UnicodeDecodeError as e:
        raise ShardStageError(f"{name}: not UTF-8 text ({e})") from None
    except OSError as e:
        raise ShardStageError(f"{name}: unreadable ({e})") from None


def _parse_key_id(text: str) -> int:
    key = int(text)
    if key < 0 or key >= 2**63:
        raise ValueError(f"key_id {text} out of range")
    return key


class _Spill:
    """Append-only per-shard spill files (points, stroke lengths, drawing records)."""

    def __init__(self, folder: Path, n_shards: int):
        self.folder = folder
        folder.mkdir(parents=True)
        self.n_shards = n_shards

    def _paths(self, s: int) -> tuple[Path, Path, Path]:
        return tuple(self.folder / f"{s:03d}.{ext}" for ext in ("xy", "len", "rec"))

    def append(self, drawings: Drawings, records: np.ndarray) -> None:
        shard = shard_of(records["key_id"], self.n_shards)
        order = np.argsort(shard, kind="stable")
        bounds = np.searchsorted(shard[order], np.arange(self.n_shards + 1))
        for s in range(self.n_shards):
            sel = order[bounds[s]:bounds[s + 1]]
            if len(sel) == 0:
                continue
            part = drawings.take(sel)
            pxy, plen, prec = self._paths(s)
            with open(pxy, "ab") as f:
                part.xy.tofile(f)
            with open(plen, "ab") as f:
                np.diff(part.stroke_offsets).astype(np.int32).tofile(f)
            with open(prec, "ab") as f:
                records[sel].tofile(f)

    def load(self, s: int) -> tuple[Drawings, np.ndarray]:
        pxy, plen, prec = self._paths(s)
        if not prec.exists():
            return pack([]), np.zeros(0, _RECORD)
        rec = np.fromfile(prec, dtype=_RECORD)
        lens = np.fromfile(plen, dtype=np.int32)
        xy = np.fromfile(pxy, dtype=np.uint8).reshape(-1, 2)
        return Drawings.from_lengths(xy, lens, rec["n_strokes"]), rec


def _flush(spill: _Spill, strokes: list, recs: list) -> None:
    if recs:
        spill.append(pack(strokes), np.array(recs, dtype=_RECORD))
        strokes.clear()
        recs.clear()


def _spill_class_file(path: Path, file_no: int, classes: dict[str, int], spill: _Spill,
                      log: SkipLog) -> tuple[int, int]:
    """Stream one class file into the spill; returns (rows read, rows kept)."""
    name = str(path)
    strokes: list = []
    recs: list = []
    read = kept = 0
    for row_no, row in read_csv_rows(path, ["countrycode", "drawing", "key_id", "word"], log):
        read += 1
        try:
            key = _parse_key_id(row["key_id"])
        except ValueError:
            log.skip(name, row_no, BAD_KEY_ID, repr(row["key_id"]))
            continue
        label = classes.get(row["word"])
        if label is None:
            log.skip(name, row_no, UNKNOWN_CLASS, repr(row["word"]))
            continue
        try:
            drawing = parse_drawing(row["drawing"])
        except DrawingError as e:
            log.skip(name, row_no, e.reason, str(e))
            continue
        strokes.append(drawing)
        recs.append((key, label, len(drawing), row["countrycode"][:2].encode("ascii", "replace"),
                     file_no, row_no))
        kept += 1
        if len(recs) >= CHUNK_ROWS:
            _flush(spill, strokes, recs)
    _flush(spill, strokes, recs)
    # Rows the CSV reader rejected were never yielded: count them so rows = kept + skipped.
    return read + log.counts[name][BAD_CSV_ROW], kept


def _first_occurrences(rec: np.ndarray, files: list[Path], log: SkipLog,
                       per_file: dict[str, dict]) -> np.ndarray:
    """Indices of the records to keep: the first (in reading order) of each key_id; the
    others are logged as duplicates with their file and row."""
    order = np.argsort(rec["key_id"], kind="stable")  # stable: reading order within a key
    keys = rec["key_id"][order]
    dup = np.zeros(len(rec), bool)
    dup[order[1:][keys[1:] == keys[:-1]]] = True
    for i in np.flatnonzero(dup):
        name = str(files[rec["file"][i]])
        log.skip(name, int(rec["row"][i]), DUPLICATE_KEY_ID, str(rec["key_id"][i]))
        per_file[name]["kept"] -= 1
    return np.flatnonzero(~dup)


def class_list(raw_dir: Path) -> list[str]:
    """Classes = the train file names (``<word>.csv``), sorted; label index = position."""
    files = sorted((Path(raw_dir) / TRAIN_DIR).glob("*.csv"))
    if not files:
        raise ShardStageError(f"{Path(raw_dir) / TRAIN_DIR}: no <word>.csv class files")
    return sorted(f.stem for f in files)


def _read_solution(raw_dir: Path, classes: list[str]) -> dict[int, int]:
    path = Path(raw_dir) / SOLUTION_FILE
    if not path.is_file():
        return {}
    by_label = {c.replace(" ", "_"): i for i, c in enumerate(classes)}
    out = {}
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            for row in csv.DictReader(f):
                label = by_label.get((row.get("word") or "").replace(" ", "_"))
                try:
                    out[int(row["key_id"])] = -1 if label is None else label
                except (TypeError, ValueError, KeyError):
                    continue
    except (UnicodeDecodeError, OSError, csv.Error) as e:
        kind = "not UTF-8 text" if isinstance(e, UnicodeDecodeError) else "unreadable"
        raise ShardStageError(f"{path}: {kind} ({e})") from None
    return out


def read_test(raw_dir: Path, classes: list[str], log: SkipLog
              ) -> tuple[Drawings, np.ndarray, np.ndarray, np.ndarray]:
    """The test file, in its order. Every key_id must get a prediction, so a bad drawing is
    kept as a blank one (and reported); a bad key_id is an error; a repeated key_id is
    skipped (a submission has one row per key_id)."""
    path = Path(raw_dir) / TEST_FILE
    name = str(path)
    if not path.is_file():
        raise ShardStageError(f"{name}: test file missing")
    solution = _read_solution(raw_dir, classes)
    strokes, keys, ccs = [], [], []
    seen: set[int] = set()
    for row_no, row in read_csv_rows(path, ["key_id", "countrycode", "drawing"], log):
        try:
            key = _parse_key_id(row["key_id"])
        except ValueError:
            raise ShardStageError(f"{name}: row {row_no}: key_id {row['key_id']!r} is not an "
                                  "integer; every test row needs one for the submission") \
                from None
        if key in seen:
            log.skip(name, row_no, DUPLICATE_KEY_ID, str(key))
            continue
        seen.add(key)
        try:
            drawing = parse_drawing(row["drawing"])
        except DrawingError as e:
            log.skip(name, row_no, f"blank_{e.reason}", "kept as a blank drawing: " + str(e))
            drawing = []
        strokes.append(drawing)
        keys.append(key)
        ccs.append(row["countrycode"][:2].encode("ascii", "replace"))
    key_id = np.array(keys, dtype=np.int64)
    label = np.array([solution.get(k, -1) for k in keys], dtype=np.int16)
    return pack(strokes), key_id, label, np.array(ccs, dtype="S2")


# The shard stage's figures in reports/shard.json (the rest is in data/shards/report.json).
METRIC_KEYS = ("classes", "train_rows", "holdout_rows", "test_rows", "test_labelled",
               "skipped_total")
REPORT_FILE = "report.json"


def shard_dataset(raw_dir: Path, out_dir: Path, n_shards: int, val_size: int, seed: int,
                  report_path: Path) -> dict:
    """Run the whole stage; returns the report (also written to ``report_path``)."""
    t0 = time.time()
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    if n_shards < 1:
        raise ShardStageError("shard.n_shards must be >= 1")
    classes = class_list(raw_dir)
    label_of = {c: i for i, c in enumerate(classes)}
    # Shards are ~1/5 the size of the CSVs; ask for the CSV size to be safe (spill + shards).
    check_disk_space(out_dir, tree_size(raw_dir), "sharding")
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        log = SkipLog(tmp / "skipped_rows.csv")
        spill = _Spill(tmp / ".spill", n_shards)
        per_file: dict[str, dict] = {}
        files = [raw_dir / TRAIN_DIR / f"{c}.csv" for c in classes]
        for i, f in enumerate(tqdm(files, desc="shard: read classes", unit="file")):
            read, kept = _spill_class_file(f, i, label_of, spill, log)
            per_file[str(f)] = {"rows": read, "kept": kept}
        test = read_test(raw_dir, classes, log)
        rng = np.random.default_rng(seed)
        n_train = n_holdout = 0
        for s in tqdm(range(n_shards), desc="shard: shuffle+write", unit="shard"):
            drawings, rec = spill.load(s)
            # A key_id always maps to the same shard, so duplicates are found here, one
            # shard in memory at a time (no dataset-wide set of ids).
            keep = _first_occurrences(rec, files, log, per_file)
            drawings, rec = drawings.take(keep), rec[keep]
            perm = rng.permutation(len(rec))
            drawings, rec = drawings.take(perm), rec[perm]
            if s == n_shards - 1:
                n_holdout = min(val_size, len(rec))
                hold = np.arange(n_holdout)
                write_shard(tmp / "holdout.qds", drawings.take(hold), rec["label"][hold],
                            rec["key_id"][hold], rec["cc"][hold], {"split": "holdout"})
                rest = np.arange(n_holdout, len(rec))
                drawings, rec = drawings.take(rest), rec[rest]
            write_shard(tmp / f"train-{s:03d}.qds", drawings, rec["label"], rec["key_id"],
                        rec["cc"], {"split": "train", "shard": s})
            n_train += len(rec)
        remove(tmp / ".spill")
        test_drawings, test_key, test_label, test_cc = test
        write_shard(tmp / "test.qds", test_drawings, test_label, test_key, test_cc,
                    {"split": "test"})
        write_json(tmp / "classes.json", classes)
        log.close()
        if n_train == 0:
            raise ShardStageError(f"{raw_dir}: no usable training drawings (see the skipped "
                                  "rows report)")
        for f, counts in log.counts.items():
            per_file.setdefault(f, {"rows": 0, "kept": 0})["skipped"] = dict(counts)
        skipped = Counter()
        for counts in log.counts.values():
            skipped.update(counts)
        report = {
            "classes": len(classes), "n_shards": n_shards,
            "rows_read": sum(v["rows"] for v in per_file.values()),
            "train_rows": n_train, "holdout_rows": n_holdout, "test_rows": len(test_key),
            "test_labelled": int((test_label >= 0).sum()),
            "skipped": dict(skipped), "skipped_total": int(sum(skipped.values())),
            "files": per_file, "seconds": round(time.time() - t0, 2),
            "bytes": tree_size(tmp),
        }
        report["empty_classes"] = [c for c in classes if not per_file.get(
            str(raw_dir / TRAIN_DIR / f"{c}.csv"), {}).get("kept")]
        if report["empty_classes"]:
            print(f"shard: warning: no usable rows for class(es) {report['empty_classes']}")
        if n_holdout < val_size:
            report["warning"] = (f"holdout has {n_holdout} rows, fewer than val_size={val_size}"
                                 " (the last shard is smaller); lower shard.n_shards")
        # The full report (per-file counts) stays with the shards; the metrics file holds
        # only the few figures worth a column in `dvc exp show`.
        write_json(tmp / REPORT_FILE, report)
        if (raw_dir / DATASET_FILE).is_file():
            shutil.copyfile(raw_dir / DATASET_FILE, tmp / DATASET_FILE)
    write_json(report_path, {k: report[k] for k in METRIC_KEYS})
    print(f"shard: {report['rows_read']:,} rows read, {n_train:,} train, {n_holdout:,} "
          f"holdout, {len(test_key):,} test, {report['skipped_total']:,} skipped "
          f"({', '.join(f'{k}={v}' for k, v in skipped.items()) or 'none'}); "
          f"{human_bytes(report['bytes'])} in {report['seconds']:.1f}s -> {out_dir}")
    return report
