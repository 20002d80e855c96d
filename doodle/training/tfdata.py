"""The tf.data input path: GZIP TFRecords of strokes (written by :mod:`doodle.data.tfrecord`)
-> rendered, augmented batches for training and prediction.

Batches of serialized records are parsed with one vectorised ``parse_example`` (parallel
map), then rendered with the project's numba renderer in ONE ``tf.numpy_function`` call per
batch, so images are identical to the ``DrawingDataset`` path. Training streams the files
forever in a shuffled, seeded order with per-batch augmentation; evaluation keeps the file
order and never augments. TensorFlow only (imported lazily).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from doodle.data.strokes import Drawings, offsets
from doodle.data.tfrecord import COMPRESSION, NAME_RE, features, total_rows
from doodle.errors import InputError
from doodle.rendering.augment import NO_AUGMENT, Augment, flip_affines, random_affines
from doodle.rendering.raster import ENCODINGS, render

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf


def flat_batch(xy: Sequence[bytes], stroke_lengths: np.ndarray, n_strokes: np.ndarray) -> Drawings:
    """A parsed batch (per-drawing xy bytes + ragged stroke lengths) -> flat ``Drawings``."""
    pts = np.frombuffer(b"".join(xy), np.uint8).reshape(-1, 2)
    d = Drawings.from_lengths(pts, stroke_lengths, n_strokes)
    if d.stroke_offsets[-1] != len(pts) or d.drawing_offsets[-1] != len(stroke_lengths):
        raise InputError(
            f"corrupt TFRecord batch: {len(pts)} points but stroke lengths sum "
            f"to {d.stroke_offsets[-1]}"
        )
    return d


@dataclass
class Records:
    """Drawings read back from TFRecord files, in file order."""

    drawings: Drawings | None
    label: np.ndarray
    key_id: np.ndarray
    countrycode: np.ndarray
    n_strokes: np.ndarray
    n_points: np.ndarray

    def __len__(self) -> int:
        return len(self.label)


def read_records(
    files: Sequence[Path | str], with_points: bool = True, batch: int = 8192
) -> Records:
    """Every record of ``files`` in order (columns; the strokes too when ``with_points``)."""
    import tensorflow as tf

    feats = features(with_points)
    ds = (
        tf.data.TFRecordDataset([str(f) for f in files], compression_type=COMPRESSION)
        .batch(batch)
        .map(lambda s: tf.io.parse_example(s, feats))
    )
    cols: dict[str, list] = {k: [] for k in ("label", "key_id", "countrycode", "sl", "ns", "xy")}
    for b in ds:
        cols["label"].append(b["label"].numpy())
        cols["key_id"].append(b["key_id"].numpy())
        cols["countrycode"].append(b["countrycode"].numpy())
        cols["sl"].append(b["stroke_lengths"].flat_values.numpy())
        cols["ns"].append(b["stroke_lengths"].row_lengths().numpy())
        if with_points:
            cols["xy"].extend(b["xy"].numpy().tolist())

    def cat(k: str, dtype) -> np.ndarray:
        return np.concatenate(cols[k]).astype(dtype) if cols[k] else np.zeros(0, dtype)

    sl, ns = cat("sl", np.int64), cat("ns", np.int64)
    d_off, s_off = offsets(ns), offsets(sl)
    n_points = (s_off[d_off[1:]] - s_off[d_off[:-1]]).astype(np.int32)
    drawings = flat_batch(cols["xy"], sl, ns) if with_points else None
    return Records(
        drawings,
        cat("label", np.int64),
        cat("key_id", np.int64),
        cat("countrycode", "S2"),
        ns.astype(np.int32),
        n_points,
    )


class TFRecordIndex:
    """Per-drawing columns of TFRecord files in evaluation order: the ``DrawingDataset``
    whole-split helpers (``column``, ``n_strokes``, ``n_points``, ``total``), so prediction
    files are written the same way from either input."""

    def __init__(self, files: Sequence[Path | str]):
        self.files = [Path(f) for f in files]
        self.total = total_rows(self.files)
        self._rec: Records | None = None

    @property
    def records(self) -> Records:
        if self._rec is None:
            self._rec = read_records(self.files, with_points=False)
            if len(self._rec) != self.total:
                raise InputError(
                    f"{self.files}: {len(self._rec)} records but the names say "
                    f"{self.total}; re-run the tfrecord stage"
                )
        return self._rec

    def column(self, name: str) -> np.ndarray:
        """``label`` (int16, like a shard), ``key_id`` or ``countrycode``."""
        if name not in ("label", "key_id", "countrycode"):
            raise KeyError(name)
        a = getattr(self.records, name)
        return a.astype(np.int16) if name == "label" else a

    def n_strokes(self) -> np.ndarray:
        return self.records.n_strokes

    def n_points(self) -> np.ndarray:
        return self.records.n_points


def _render_batch(
    xy: np.ndarray,
    stroke_lengths: np.ndarray,
    n_strokes: np.ndarray,
    label: np.ndarray,
    batch_index: np.ndarray,
    *,
    img_size: int,
    encoding: str,
    line_width: float,
    n_classes: int,
    training: bool,
    seed: int,
    augment: Augment,
    flip: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """The body of the per-batch ``tf.numpy_function``: flat arrays -> (images, one-hot)."""
    if training and (label < 0).any():
        raise InputError("unlabelled drawings (label -1) cannot be used for training")
    drawings = flat_batch(xy.tolist(), stroke_lengths, n_strokes)
    n = len(drawings)
    affine, drop_seed, drop = None, None, 0.0
    if training:
        rng = np.random.default_rng([seed, int(batch_index), 2])
        affine = random_affines(rng, n, augment)
        if augment.stroke_dropout > 0:
            drop = augment.stroke_dropout
            drop_seed = rng.integers(0, 2**63, n, dtype=np.uint64)
    elif flip:
        affine = flip_affines(n)
    images = render(drawings, None, img_size, encoding, line_width, affine, drop, drop_seed)
    onehot = np.zeros((n, n_classes), np.float32)
    ok = label >= 0
    onehot[np.flatnonzero(ok), label[ok]] = 1.0
    if training:  # the input-wait figure's stamp (global step); Keras is loaded to train
        from doodle.training.input_wait import batch_ready

        batch_ready(int(batch_index))
    return images, onehot


def make_tf_dataset(
    files: Sequence[Path | str],
    *,
    batch_size: int,
    img_size: int,
    encoding: str,
    line_width: float,
    n_classes: int,
    training: bool = False,
    seed: int | None = None,
    augment: Augment | None = None,
    shuffle_buffer: int | None = None,
    deterministic: bool = True,
    with_labels: bool | None = None,
    flip: bool = False,
    skip_batches: int = 0,
    cycle_length: int | None = None,
) -> tf.data.Dataset:
    """A ``tf.data`` pipeline of rendered batches from TFRecord files.

    Training: the files in a seeded order reshuffled every pass (``repeat`` forever; give
    ``steps_per_epoch`` to ``fit``), read ``cycle_length`` at a time (parallel interleave),
    a ``shuffle_buffer`` of records, full batches, augmentation drawn per batch from
    ``(seed, batch number)``; ``skip_batches`` resumes a stream where a run stopped. Yields
    ``(uint8 (B, S, S, C), float32 one-hot (B, n_classes))``.

    Evaluation: the files in order, no augmentation (``flip`` for test-time flips), a final
    partial batch; yields images only unless ``with_labels``. Get the matching labels and
    ``key_id``s from :class:`TFRecordIndex`.

    ``deterministic`` keeps element order fixed under parallelism, so a seed gives the same
    batches every run (evaluation is always deterministic: its order is the files' order).
    """
    import tensorflow as tf

    files = [str(f) for f in files]
    if not files:
        raise ValueError("no TFRecord files given")
    autotune = tf.data.AUTOTUNE
    if training and (seed is None or augment is None or shuffle_buffer is None):
        raise ValueError("a training stream needs seed, augment and shuffle_buffer")
    augment = augment or NO_AUGMENT
    with_labels = training if with_labels is None else with_labels
    deterministic = bool(deterministic) or not training
    batch_size, img_size = int(batch_size), int(img_size)
    if encoding not in ENCODINGS or encoding == "time3":
        # TFRecords hold points, no times: time3 members read the shards (config.py)
        raise ValueError(f"the TFRecord path renders grey or order3, not {encoding!r}")
    channels = ENCODINGS[encoding][0]
    if training:
        cycle = max(1, min(len(files), cycle_length or 8))
        ds = (
            tf.data.Dataset.from_tensor_slices(files)
            .shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
            .repeat()
            .interleave(
                lambda f: tf.data.TFRecordDataset(f, compression_type=COMPRESSION),
                cycle_length=cycle,
                block_length=1,
                num_parallel_calls=autotune,
                deterministic=deterministic,
            )
            .shuffle(max(1, int(shuffle_buffer)), seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size, drop_remainder=True)
        )
    else:
        ds = tf.data.TFRecordDataset(files, compression_type=COMPRESSION)
        if all(NAME_RE.match(Path(f).name) for f in files):
            # The counts in the names give Keras the length (and catch a truncated file).
            ds = ds.apply(tf.data.experimental.assert_cardinality(total_rows(files)))
        ds = ds.batch(batch_size, drop_remainder=False)
    if skip_batches:
        ds = ds.skip(int(skip_batches))
    ds = ds.enumerate(start=int(skip_batches))
    feats = features(True)

    def parse(i, serialized):
        p = tf.io.parse_example(serialized, feats)
        sl = p["stroke_lengths"]
        return i, p["xy"], sl.flat_values, sl.row_lengths(), p["label"]

    def draw(xy: Any, values: Any, lengths: Any, label: Any, index: Any):
        return _render_batch(
            xy,
            values,
            lengths,
            label,
            index,
            img_size=img_size,
            encoding=encoding,
            line_width=float(line_width),
            n_classes=int(n_classes),
            training=training,
            seed=int(seed or 0),  # evaluation draws no augmentation
            augment=augment,
            flip=flip,
        )

    def to_images(i, xy, values, lengths, label):
        x, y = tf.numpy_function(
            draw, [xy, values, lengths, label, i], [tf.uint8, tf.float32], stateful=False
        )
        b = batch_size if training else None
        x.set_shape([b, img_size, img_size, channels])
        y.set_shape([b, int(n_classes)])
        return (x, y) if with_labels else x

    ds = (
        ds.map(parse, num_parallel_calls=autotune, deterministic=deterministic)
        .map(to_images, num_parallel_calls=autotune, deterministic=deterministic)
        .prefetch(autotune)
    )
    opts = tf.data.Options()
    opts.deterministic = deterministic
    return ds.with_options(opts)
