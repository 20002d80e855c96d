"""The optional TFRecord stage: stroke shards -> GZIP TFRecords (read by
:mod:`doodle.training.tfdata`).

Files: one per shard, named with their item count (``train-007-n4523.tfrec``,
``holdout-n2400.tfrec``, ``test-n112199.tfrec``), GZIP-compressed, beside ``manifest.json``
and a copy of ``classes.json``. They hold strokes, not pixels: ~120 B per real drawing,
against ~1.9 kB for GZIP'd pre-rendered 128 px images. One ``tf.train.Example`` per drawing:

* ``xy``              bytes  the drawing's points, uint8 ``x0 y0 x1 y1 ...`` (256 scale);
* ``stroke_lengths``  int64 list  points per stroke;
* ``label``           int64  class index, -1 when unknown (test);
* ``key_id``          int64;
* ``countrycode``     bytes  (two letters, may be empty).

The layout is written here and parsed by the spec :func:`features` beside it, so the format
lives in one file. The encoder is hand-written protobuf: 3.4x faster conversion than
``tf.train.Example`` objects (BENCHMARKS.md). TensorFlow is imported lazily: file names, the
manifest and the disabled stage work without it.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from doodle.data.shards import open_shard, read_header, train_shard_paths
from doodle.data.strokes import Drawings
from doodle.errors import InputError
from doodle.fileio import atomic_path, check_disk_space, human_bytes, tree_size, write_json

if TYPE_CHECKING:  # pragma: no cover
    pass

COMPRESSION = "GZIP"
SUFFIX = ".tfrec"
MANIFEST = "manifest.json"
FORMAT_VERSION = 1
SPLITS = ("train", "holdout", "test")
NAME_RE = re.compile(r"^(?P<stem>.+)-n(?P<n>\d+)\.tfrec$")
_U64 = (1 << 64) - 1


# -- file names and manifest ----------------------------------------------------------------
def record_name(stem: str, n: int) -> str:
    """``train-007`` with 4523 drawings -> ``train-007-n4523.tfrec``."""
    return f"{stem}-n{int(n)}{SUFFIX}"


def count_in_name(path: Path | str) -> int:
    """The item count a TFRecord file name carries (``...-n4523.tfrec`` -> 4523)."""
    m = NAME_RE.match(Path(path).name)
    if not m:
        raise InputError(f"{path}: not a TFRecord file name of the form <stem>-n<count>.tfrec")
    return int(m["n"])


def total_rows(files: Sequence[Path | str]) -> int:
    """Drawings in ``files``, from their names (no reading)."""
    return sum(count_in_name(f) for f in files)


def read_manifest(tfrec_dir: Path) -> dict:
    path = Path(tfrec_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the tfrecord stage (dvc repro tfrecord)")
    return json.loads(path.read_text())


def split_files(tfrec_dir: Path, split: str) -> list[Path]:
    """The TFRecord files of ``split`` (train | holdout | test) in order; a clear error when
    the conversion was disabled or the files are missing."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    tfrec_dir = Path(tfrec_dir)
    if not read_manifest(tfrec_dir).get("enabled", False):
        raise FileNotFoundError(
            f"{tfrec_dir} holds no TFRecords (tfrecord.enabled is false); set "
            "tfrecord.enabled: true in params.yaml to read tfrecord.input: tfrecord"
        )
    stem = re.compile(r"^train-\d+$" if split == "train" else rf"^{split}$")
    files = sorted(
        p
        for p in tfrec_dir.glob(f"*{SUFFIX}")
        if (m := NAME_RE.match(p.name)) and stem.match(m["stem"])
    )
    if not files:
        raise FileNotFoundError(
            f"{tfrec_dir}: no {split} TFRecord files; re-run the tfrecord stage"
        )
    return files


def _shard_sources(shard_dir: Path) -> list[Path]:
    shard_dir = Path(shard_dir)
    paths = list(train_shard_paths(shard_dir))
    paths += [p for p in (shard_dir / "holdout.qds", shard_dir / "test.qds") if p.is_file()]
    if not paths:
        raise FileNotFoundError(f"{shard_dir}: no shard files (*.qds); run the shard stage")
    return paths


# -- encoding: hand-rolled protobuf, checked against tf.train.Example in the tests -----------
def _varint(n: int) -> bytes:
    n &= _U64
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _varints(values: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Protobuf varints of many int64 values, concatenated; plus each value's byte offset
    (``(n + 1,)``), so ``buf[off[i]:off[j]]`` is the packed encoding of values ``i:j``."""
    v = np.asarray(values, dtype=np.int64).astype(np.uint64)
    nbytes = np.ones(len(v), np.int64)
    for k in range(1, 10):
        nbytes += v >= np.uint64(1 << (7 * k))
    off = np.zeros(len(v) + 1, np.int64)
    np.cumsum(nbytes, out=off[1:])
    buf = np.empty(int(off[-1]), np.uint8)
    for k in range(10):
        sel = nbytes > k
        if not sel.any():
            break
        byte = (v[sel] >> np.uint64(7 * k)) & np.uint64(0x7F)
        byte |= np.where(nbytes[sel] > k + 1, np.uint64(0x80), np.uint64(0))
        buf[off[:-1][sel] + k] = byte.astype(np.uint8)
    return buf.tobytes(), off


_VB = [bytes((i,)) for i in range(128)]  # one-byte varints


def _vlen(n: int) -> bytes:
    return _VB[n] if n < 128 else _varint(n)


def _entry(key_hdr: bytes, kind: bytes, payload: bytes) -> bytes:
    """One ``Features.feature`` map entry (field 1): key and ``Feature{kind: List{payload}}``.

    ``key_hdr`` is the encoded key field; ``kind`` is ``b"\\x0a"`` (bytes_list: ``payload``
    is one value) or ``b"\\x1a"`` (int64_list: ``payload`` is the packed varints).
    """
    lst = b"\x0a" + _vlen(len(payload)) + payload
    feat = kind + _vlen(len(lst)) + lst
    inner = key_hdr + b"\x12" + _vlen(len(feat)) + feat
    return b"\x0a" + _vlen(len(inner)) + inner


def _key(name: bytes) -> bytes:
    return b"\x0a" + _vlen(len(name)) + name


_K_XY, _K_SL, _K_LABEL, _K_KEY, _K_CC = map(
    _key, (b"xy", b"stroke_lengths", b"label", b"key_id", b"countrycode")
)
_BYTES, _INT64 = b"\x0a", b"\x1a"


def encode_examples(
    drawings: Drawings,
    label: np.ndarray,
    key_id: np.ndarray,
    countrycode: np.ndarray,
    start: int = 0,
    stop: int | None = None,
) -> list[bytes]:
    """Serialized ``tf.train.Example`` records of drawings ``start:stop`` (no TensorFlow;
    ~5x faster than building ``tf.train.Example`` objects)."""
    stop = len(drawings) if stop is None else stop
    d_off = np.asarray(drawings.drawing_offsets[start : stop + 1], np.int64)
    s_off = np.asarray(drawings.stroke_offsets[d_off[0] : d_off[-1] + 1], np.int64)
    xy = np.ascontiguousarray(drawings.xy[s_off[0] : s_off[-1]], np.uint8).reshape(-1).tobytes()
    s_buf, s_pos = _varints(np.diff(s_off))
    k_buf, k_pos = _varints(np.asarray(key_id[start:stop], np.int64))
    labels = np.asarray(label[start:stop], np.int64).tolist()
    ccs = np.asarray(countrycode[start:stop], dtype="S2").tolist()
    label_entry = {v: _entry(_K_LABEL, _INT64, _varint(v)) for v in set(labels)}
    cc_entry = {v: _entry(_K_CC, _BYTES, v) for v in set(ccs)}
    d_rel, p_rel = (d_off - d_off[0]).tolist(), ((s_off - s_off[0]) * 2).tolist()
    s_pos, k_pos = s_pos.tolist(), k_pos.tolist()
    out = []
    for i in range(stop - start):
        a, b = d_rel[i], d_rel[i + 1]
        feats = (
            _entry(_K_XY, _BYTES, xy[p_rel[a] : p_rel[b]])
            + _entry(_K_SL, _INT64, s_buf[s_pos[a] : s_pos[b]])
            + label_entry[labels[i]]
            + _entry(_K_KEY, _INT64, k_buf[k_pos[i] : k_pos[i + 1]])
            + cc_entry[ccs[i]]
        )
        out.append(b"\x0a" + _vlen(len(feats)) + feats)  # Example.features(1)
    return out


# -- conversion -----------------------------------------------------------------------------
def convert_shard(shard_path: Path, out_dir: Path, chunk: int = 8192, progress=None) -> dict:
    """Write one shard as ``<stem>-n<count>.tfrec`` (GZIP) in ``out_dir``; returns its entry."""
    import tensorflow as tf

    shard = open_shard(shard_path)
    n = len(shard)
    name = record_name(Path(shard_path).stem, n)
    opts = tf.io.TFRecordOptions(compression_type=COMPRESSION)
    with atomic_path(Path(out_dir) / name) as tmp, tf.io.TFRecordWriter(str(tmp), opts) as w:
        for i in range(0, n, chunk):
            for rec in encode_examples(
                shard.drawings, shard.label, shard.key_id, shard.countrycode, i, min(n, i + chunk)
            ):
                w.write(rec)
            if progress is not None:
                progress(min(n, i + chunk) - i)
    return {
        "name": name,
        "source": Path(shard_path).name,
        "rows": n,
        "bytes": (Path(out_dir) / name).stat().st_size,
    }


def _convert_worker(args: tuple[str, str]) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return convert_shard(Path(args[0]), Path(args[1]))


def convert_shards(
    shard_dir: Path, out_dir: Path, *, enabled: bool = True, workers: int = 1, progress: bool = True
) -> dict:
    """Convert every shard of ``shard_dir`` into ``out_dir`` (written atomically: temp folder,
    then rename). When not ``enabled`` only a small manifest is written (no TensorFlow
    needed). Returns the manifest, plus ``seconds``."""
    t0 = time.time()
    shard_dir, out_dir = Path(shard_dir), Path(out_dir)
    if not enabled:
        manifest = {
            "enabled": False,
            "format_version": FORMAT_VERSION,
            "note": "tfrecord.enabled is false: no TFRecords were written",
        }
        with atomic_path(out_dir) as tmp:
            tmp.mkdir(parents=True)
            write_json(tmp / MANIFEST, manifest)
        return manifest | {"seconds": round(time.time() - t0, 2)}
    from tqdm import tqdm

    sources = _shard_sources(shard_dir)
    total = sum(int(read_header(p)[0]["n"]) for p in sources)
    # Each worker process imports TensorFlow (seconds): only worth it for big inputs.
    workers = max(1, min(int(workers), len(sources), total // 200_000))
    if workers == 1:
        import tensorflow  # noqa: F401  (before the progress bar starts)
    # Stroke TFRecords are smaller than the shards (GZIP): their size is a safe bound.
    check_disk_space(out_dir, sum(p.stat().st_size for p in sources), "writing TFRecords")
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        with tqdm(
            total=total, desc="tfrecord", unit="drawing", unit_scale=True, disable=not progress
        ) as bar:
            if workers == 1:
                entries = [convert_shard(p, tmp, progress=bar.update) for p in sources]
            else:
                import multiprocessing as mp
                from concurrent.futures import ProcessPoolExecutor

                # spawn: TensorFlow is not fork-safe; each worker imports it afresh.
                with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as ex:
                    entries = []
                    for e in ex.map(_convert_worker, [(str(p), str(tmp)) for p in sources]):
                        bar.update(e["rows"])
                        entries.append(e)
        if (shard_dir / "classes.json").is_file():
            (tmp / "classes.json").write_bytes((shard_dir / "classes.json").read_bytes())
        manifest = {
            "enabled": True,
            "format_version": FORMAT_VERSION,
            "compression": COMPRESSION,
            "features": {
                "xy": "bytes (uint8 x,y pairs)",
                "stroke_lengths": "int64 list",
                "label": "int64",
                "key_id": "int64",
                "countrycode": "bytes",
            },
            "rows": sum(e["rows"] for e in entries),
            "bytes": sum(e["bytes"] for e in entries),
            "source_bytes": sum(p.stat().st_size for p in sources),
            "files": entries,
        }
        write_json(tmp / MANIFEST, manifest)
    manifest["seconds"] = round(time.time() - t0, 2)
    manifest["dir_bytes"] = tree_size(out_dir)
    return manifest


def summary_line(manifest: dict, out_dir: Path) -> str:
    """One line for the stage log."""
    if not manifest.get("enabled"):
        return (
            f"tfrecord: disabled (tfrecord.enabled: false); wrote only {Path(out_dir) / MANIFEST}"
        )
    rows, nbytes = manifest["rows"], manifest["bytes"]
    return (
        f"tfrecord: {rows:,} drawings in {len(manifest['files'])} files, "
        f"{manifest['seconds']:.1f}s, {human_bytes(nbytes)} "
        f"({nbytes / max(rows, 1):.0f} B/drawing; shards "
        f"{human_bytes(manifest['source_bytes'])}) -> {out_dir}"
    )


# -- the record layout the reader parses ---------------------------------------------
def features(with_points: bool = True) -> dict:
    import tensorflow as tf

    f = {
        "stroke_lengths": tf.io.RaggedFeature(tf.int64, row_splits_dtype=tf.int64),
        "label": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
        "key_id": tf.io.FixedLenFeature([], tf.int64, default_value=0),
        "countrycode": tf.io.FixedLenFeature([], tf.string, default_value=""),
    }
    if with_points:
        f["xy"] = tf.io.FixedLenFeature([], tf.string)
    return f
