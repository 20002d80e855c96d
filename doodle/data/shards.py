"""Shard files: drawings in the stroke format plus labels and ids, memory-mapped on read.

One shard is one file (``train-007.qds``): a small JSON header followed by 64-byte aligned
raw arrays. Opening a shard maps the arrays read-only, so a loader touches only the
drawings of the batch it renders and many worker processes share the page cache.

Arrays: ``xy``, ``stroke_offsets``, ``drawing_offsets`` (see :mod:`doodle.data.strokes`),
``label`` (int16, -1 when unknown), ``key_id`` (int64), ``countrycode`` (``S2``), and, only in
shards made from Kaggle's raw files, ``t`` (uint16 per point: milliseconds since the drawing's
first point). A shard without times has no ``t`` entry at all, so shards made from simplified
files are byte for byte what they were before times existed. ``t`` costs 2 bytes a point
(about 82 bytes a drawing on real data: BENCHMARKS.md, *Raw data*).
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from doodle.data.strokes import Drawings
from doodle.errors import DoodleError
from doodle.fileio import atomic_path

MAGIC = b"QDSHARD1"
_ALIGN = 64
FIELDS = ("xy", "stroke_offsets", "drawing_offsets", "label", "key_id", "countrycode")
TIME_FIELD = "t"  # optional: present only in shards made from raw files


class ShardError(DoodleError, ValueError):
    """A shard file that cannot be read (truncated, wrong magic, bad header)."""


@dataclass
class Shard:
    """A memory-mapped shard: drawings plus per-drawing ``label``, ``key_id``, ``countrycode``."""

    path: Path
    drawings: Drawings
    label: np.ndarray
    key_id: np.ndarray
    countrycode: np.ndarray
    meta: dict

    def __len__(self) -> int:
        return len(self.label)

    @property
    def has_time(self) -> bool:
        return self.drawings.has_time


def has_time(header: dict) -> bool:
    """Whether a shard (its header, from :func:`read_header`) holds per-point times."""
    return TIME_FIELD in header["arrays"]


def write_shard(
    path: Path,
    drawings: Drawings,
    label: np.ndarray,
    key_id: np.ndarray,
    countrycode: np.ndarray,
    meta: dict | None = None,
) -> int:
    """Write a shard atomically (temp file, then rename); returns bytes written."""
    n = len(drawings)
    arrays = {
        "xy": np.ascontiguousarray(drawings.xy, dtype=np.uint8),
        "stroke_offsets": np.ascontiguousarray(drawings.stroke_offsets, dtype=np.int64),
        "drawing_offsets": np.ascontiguousarray(drawings.drawing_offsets, dtype=np.int64),
        "label": np.ascontiguousarray(label, dtype=np.int16),
        "key_id": np.ascontiguousarray(key_id, dtype=np.int64),
        "countrycode": np.ascontiguousarray(countrycode, dtype="S2"),
    }
    if drawings.t is not None:
        if len(drawings.t) != len(drawings.xy):
            raise ValueError(f"t has {len(drawings.t)} values, xy has {len(drawings.xy)} points")
        arrays[TIME_FIELD] = np.ascontiguousarray(drawings.t, dtype=np.uint16)
    for name in ("label", "key_id", "countrycode"):
        if len(arrays[name]) != n:
            raise ValueError(f"{name} has {len(arrays[name])} rows, drawings have {n}")
    specs: dict[str, dict] = {}
    offset = 0
    for name, a in arrays.items():
        specs[name] = {"dtype": a.dtype.str, "shape": list(a.shape), "offset": offset}
        offset += -(-a.nbytes // _ALIGN) * _ALIGN
    header = json.dumps({"n": n, "arrays": specs, "meta": meta or {}}).encode()
    data_start = -(-(len(MAGIC) + 8 + len(header)) // _ALIGN) * _ALIGN
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(MAGIC + struct.pack("<Q", len(header)) + header)
        for name, a in arrays.items():
            f.seek(data_start + specs[name]["offset"])
            f.write(a.tobytes())
        end = data_start + offset
        f.truncate(end)
    return end


def read_header(path: Path) -> tuple[dict, int]:
    """The shard's JSON header and where its data starts."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(len(MAGIC) + 8)
        if len(head) < len(MAGIC) + 8 or head[: len(MAGIC)] != MAGIC:
            raise ShardError(f"{path}: not a shard file (bad magic or truncated header)")
        (hlen,) = struct.unpack("<Q", head[len(MAGIC) :])
        raw = f.read(hlen)
    if len(raw) != hlen:
        raise ShardError(f"{path}: truncated header ({len(raw)} of {hlen} bytes)")
    try:
        header = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ShardError(f"{path}: corrupt header ({e})") from None
    start = -(-(len(MAGIC) + 8 + hlen) // _ALIGN) * _ALIGN
    # Check the size here, not only in open_shard: loaders read just the header up front
    # and open the shards later (in worker threads), where an error would surface late.
    try:
        end = max(
            (
                start + s["offset"] + int(np.prod(s["shape"])) * np.dtype(s["dtype"]).itemsize
                for s in (header["arrays"][name] for name in _fields(header))
            ),
            default=start,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ShardError(f"{path}: corrupt header (bad array table: {e!r})") from None
    size = os.path.getsize(path)
    if size < end:
        raise ShardError(f"{path}: truncated ({size} of {end} bytes); re-run the shard stage")
    return header, start


def _fields(header: dict) -> tuple[str, ...]:
    return FIELDS + ((TIME_FIELD,) if has_time(header) else ())


def open_shard(path: Path) -> Shard:
    """Memory-map a shard read-only; raises :class:`ShardError` if it is truncated."""
    path = Path(path)
    header, start = read_header(path)
    size = os.path.getsize(path)
    arrays = {}
    for name in _fields(header):
        spec = header["arrays"][name]
        dtype = np.dtype(spec["dtype"])
        shape = tuple(spec["shape"])
        nbytes = int(np.prod(shape)) * dtype.itemsize
        begin = start + spec["offset"]
        if begin + nbytes > size:
            raise ShardError(
                f"{path}: truncated ({size} bytes, array {name!r} needs "
                f"{begin + nbytes}); re-run the shard stage"
            )
        arrays[name] = (
            np.memmap(path, dtype=dtype, mode="r", offset=begin, shape=shape)
            if nbytes
            else np.zeros(shape, dtype)
        )
    drawings = Drawings(
        arrays["xy"], arrays["stroke_offsets"], arrays["drawing_offsets"], arrays.get(TIME_FIELD)
    )
    return Shard(
        path,
        drawings,
        arrays["label"],
        arrays["key_id"],
        arrays["countrycode"],
        header.get("meta", {}),
    )


def train_shard_paths(shard_dir: Path) -> list[Path]:
    """The training shards in a shard folder, in order."""
    return sorted(Path(shard_dir).glob("train-*.qds"))


def read_classes(shard_dir: Path) -> list[str]:
    """The class list (label index -> word) written by the shard stage."""
    return json.loads((Path(shard_dir) / "classes.json").read_text())
