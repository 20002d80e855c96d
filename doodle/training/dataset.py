"""The input pipeline: a ``keras.utils.PyDataset`` that renders batches from stroke shards.

Training stream (deterministic for a seed, whatever the worker count or order):

* the shards are walked in a shuffled order, a new order for every pass over the data;
* the concatenated stream is shuffled inside windows of ``shuffle_buffer`` drawings, which
  mixes drawings across shard boundaries;
* batch ``i`` of epoch ``e`` is stream positions ``(e * steps + i) * batch ..`` -- a pure
  function of (seed, epoch, step), so a resumed run sees exactly the batches it would have
  seen, and an epoch of ``steps_per_epoch`` batches may cover part of a pass (as in the
  reference kernels: 800 steps x 16 epochs);
* augmentation (flip, affine, stroke dropout) is drawn per batch from the same key and
  applied to the strokes inside the renderer;
* with several training processes (``share=(process, processes)``) every process renders
  only its contiguous slice of each global batch, with the augmentation the whole batch
  would have had: together they train on exactly the drawings one process would.

``DOODLE_READ_LOG=<folder>`` makes every training process append which drawings
(``key_id``) it rendered for each step to ``<folder>/reads-<process>.jsonl`` (used by the
multi-process tests; off by default).

Evaluation (holdout, test) keeps the file order, never augments and ends with a partial
batch. Images are uint8 (the model rescales), so batches stay small.

With ``country=True`` (``train.country``) a batch's inputs are ``(samples, country)``: the
drawings' country indices (int32, :mod:`doodle.data.countries`) beside them, as the model's
second input. A drawing's country is read from the shard like its points; its label only
ever as the training target.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from doodle.config import TIME_ENCODINGS, MemberConfig
from doodle.data.countries import country_index
from doodle.data.shards import Shard, has_time, open_shard, read_header
from doodle.data.strokes import Drawings
from doodle.errors import InputError
from doodle.models import sequences, strokegrid
from doodle.rendering.augment import NO_AUGMENT, Augment, flip_affines, random_affines
from doodle.rendering.raster import ENCODINGS, render
from doodle.training.input_wait import batch_ready

# What to do when an encoding that draws time meets shards without times (one line).
NO_TIMES_HINT = (
    "shard Kaggle's raw files instead: data.local.path = a folder with train_raw/ and "
    "test_raw.csv, train_raw.zip with test_raw.csv beside it, or the competition zip, with "
    "-S data.local.layout=raw (or -S data.source=kaggle -S data.kaggle.layout=raw)"
)


class DrawingDataset(keras.utils.PyDataset):
    """Batches ``(images uint8 (B, S, S, C), one-hot labels)`` rendered from shard files."""

    renders = True  # images: img_size, encoding and line_width say how

    def __init__(
        self,
        shard_paths: Sequence[Path],
        *,
        batch_size: int,
        n_classes: int,
        img_size: int | None,
        encoding: str | None,
        line_width: float | None,
        training: bool = False,
        seed: int | None = None,
        augment: Augment | None = None,
        shuffle_buffer: int | None = None,
        steps_per_epoch: int | None = None,
        epoch: int = 0,
        start_step: int = 0,
        with_labels: bool | None = None,
        flip: bool = False,
        share: tuple[int, int] = (0, 1),
        country: bool = False,
        workers: int = 1,
        use_multiprocessing: bool = False,
        max_queue_size: int = 10,
    ):
        super().__init__(
            workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size
        )
        self.paths = [Path(p) for p in shard_paths]
        if not self.paths:
            raise ValueError("no shard files given")
        headers = [read_header(p)[0] for p in self.paths]
        self.sizes = np.array([h["n"] for h in headers], dtype=np.int64)
        self.total = int(self.sizes.sum())
        if self.total == 0:
            raise InputError(f"shards {[str(p) for p in self.paths]} hold no drawings")
        timed = {has_time(h) for h in headers}
        if len(timed) > 1:
            raise InputError(
                f"shards {[str(p) for p in self.paths]} mix drawings with and without times; "
                "re-run the shard stage"
            )
        self.has_time = timed == {True}
        if self.renders and encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
        if encoding == "time3" and not self.has_time:
            raise InputError(
                f"encoding time3 draws per-point times, but {self.paths[0]} has none "
                f"(sharded from simplified files); {NO_TIMES_HINT}"
            )
        self.batch_size = int(batch_size)
        if self.renders:
            self.img_size, self.encoding = int(img_size), encoding
            self.channels = ENCODINGS[encoding][0]
            self.line_width = float(line_width)
        self.n_classes = int(n_classes)
        self.training = training
        # the training stream's settings (params.yaml's train section): none of them has a
        # default here; evaluation (training=False) keeps the file order and uses none
        if training and (seed is None or augment is None or shuffle_buffer is None):
            raise ValueError("a training stream needs seed, augment and shuffle_buffer")
        self.seed = int(seed or 0)
        self.augment = augment or NO_AUGMENT
        self.shuffle_buffer = max(1, int(shuffle_buffer or 1))
        self.steps = int(steps_per_epoch or max(1, self.total // self.batch_size))
        self.epoch, self.start_step = int(epoch), int(start_step)
        self.with_labels = training if with_labels is None else with_labels
        self.flip = flip
        self.process, self.processes = int(share[0]), int(share[1])
        if self.batch_size % self.processes or not 0 <= self.process < self.processes:
            raise ValueError(
                f"share {share}: the global batch {self.batch_size} must split evenly over "
                f"{self.processes} processes"
            )
        self.country = bool(country)
        self.read_log = os.environ.get("DOODLE_READ_LOG") if training else None
        self._shards: list[Shard] | None = None
        self._windows: dict[tuple[int, int], np.ndarray] = {}

    # Memory maps do not travel to worker processes: reopen them lazily in each one.
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_shards"], state["_windows"] = None, {}
        return state

    @property
    def shards(self) -> list[Shard]:
        if self._shards is None:
            self._shards = [open_shard(p) for p in self.paths]
        return self._shards

    @property
    def num_batches(self) -> int:
        if self.training:
            return self.steps - self.start_step
        return math.ceil(self.total / self.batch_size)

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        """Serve ``epoch`` from ``start_step`` on. Called by the trainer's callback as each
        epoch begins (Keras' own PyDataset hooks also fire while fit sets up, so counting
        them would shift the stream by an epoch)."""
        self.epoch, self.start_step = int(epoch), int(start_step)

    # -- where each drawing of a batch comes from -------------------------------------------
    @property
    def rows(self) -> slice:
        """This process's rows of every global training batch."""
        n = self.batch_size // self.processes
        return slice(self.process * n, (self.process + 1) * n)

    def _stream_positions(self, epoch: int, step: int) -> np.ndarray:
        g = epoch * self.steps + step
        return (g * self.batch_size + np.arange(self.batch_size, dtype=np.int64))[self.rows]

    def _window(self, pass_no: int, w: int) -> np.ndarray:
        key = (pass_no, w)
        perm = self._windows.get(key)
        if perm is None:
            size = min(self.shuffle_buffer, self.total - w * self.shuffle_buffer)
            perm = np.random.default_rng([self.seed, pass_no, w, 1]).permutation(size)
            if len(self._windows) > 8:
                self._windows.clear()
            self._windows[key] = perm
        return perm

    def locate(self, idx: int) -> tuple[np.ndarray, np.ndarray]:
        """(shard index, row in shard) of each drawing of batch ``idx`` (this process's
        share of it when training)."""
        if not self.training:
            pos = np.arange(
                idx * self.batch_size, min((idx + 1) * self.batch_size, self.total), dtype=np.int64
            )
            return _split(pos, self.sizes, np.arange(len(self.sizes)))
        return self._locate_train(self.epoch, self.start_step + idx)

    def _locate_train(self, epoch: int, step: int) -> tuple[np.ndarray, np.ndarray]:
        g = self._stream_positions(epoch, step)
        pass_no, pos = g // self.total, g % self.total
        stream = np.empty_like(pos)
        for p in np.unique(pass_no):
            for w in np.unique(pos[pass_no == p] // self.shuffle_buffer):
                sel = (pass_no == p) & (pos // self.shuffle_buffer == w)
                base = w * self.shuffle_buffer
                stream[sel] = base + self._window(int(p), int(w))[pos[sel] - base]
        shard_idx = np.empty_like(pos)
        row = np.empty_like(pos)
        for p in np.unique(pass_no):
            sel = pass_no == p
            order = np.random.default_rng([self.seed, int(p), 0]).permutation(len(self.sizes))
            shard_idx[sel], row[sel] = _split(stream[sel], self.sizes[order], order)
        return shard_idx, row

    # -- the batch ---------------------------------------------------------------------------
    def __getitem__(self, idx: int):
        if idx >= self.num_batches:
            raise IndexError(idx)
        if self.training:
            return self.batch_at(self.epoch, self.start_step + idx)
        return self._batch(*self.locate(idx))

    def batch_at(self, epoch: int, step: int):
        """Training batch ``step`` of ``epoch`` (this process's share): a pure function of
        (seed, epoch, step), whatever was read before."""
        shard_idx, row = self._locate_train(epoch, step)
        # Drawn for the whole global batch, then sliced: a share is augmented exactly as
        # the same rows of a one-process batch.
        rng = np.random.default_rng([self.seed, epoch, step, 2])
        affine = random_affines(rng, self.batch_size, self.augment)
        affine = None if affine is None else affine[self.rows]
        drop, drop_seed = 0.0, None
        if self.augment.stroke_dropout > 0:
            drop = self.augment.stroke_dropout
            drop_seed = rng.integers(0, 2**63, self.batch_size, dtype=np.uint64)[self.rows]
        if self.read_log:
            self._log_reads(epoch, step, shard_idx, row)
        batch = self._batch(shard_idx, row, affine, drop, drop_seed)
        batch_ready(epoch * self.steps + step)  # the input-wait figure's stamp
        return batch

    def _log_reads(self, epoch: int, step: int, shard_idx: np.ndarray, row: np.ndarray) -> None:
        keys = [int(self.shards[s].key_id[r]) for s, r in zip(shard_idx, row, strict=True)]
        line = json.dumps({"epoch": epoch, "step": step, "key_id": keys})
        os.makedirs(self.read_log, exist_ok=True)
        with open(os.path.join(self.read_log, f"reads-{self.process}.jsonl"), "a") as f:
            f.write(line + "\n")

    def _batch(
        self,
        shard_idx: np.ndarray,
        row: np.ndarray,
        affine: np.ndarray | None = None,
        drop: float = 0.0,
        drop_seed: np.ndarray | None = None,
    ):
        """Encode the drawings at (shard, row) with their augmentation; add labels."""
        n = len(row)
        if not self.training and self.flip:
            affine = flip_affines(n)
        x = np.empty((n, *self.sample_shape), self.sample_dtype)
        labels = np.empty(n, np.int64)
        country = np.empty(n, np.int32) if self.country else None
        for s in np.unique(shard_idx):
            sel = np.flatnonzero(shard_idx == s)
            shard = self.shards[s]
            x[sel] = self.encode(
                shard.drawings,
                row[sel],
                None if affine is None else affine[sel],
                drop,
                None if drop_seed is None else drop_seed[sel],
            )
            labels[sel] = shard.label[row[sel]]
            if country is not None:
                country[sel] = country_index(shard.countrycode[row[sel]])
        inputs = x if country is None else (x, country)
        if not self.with_labels:
            return (inputs,)
        if (labels < 0).any():
            raise InputError(f"unlabelled drawings in {self.paths} cannot be used for training")
        return inputs, one_hot(labels, self.n_classes)

    def input_specs(self) -> list[tuple[tuple[int, ...], type]]:
        """``(shape, dtype)`` of each model input of one drawing: the sample, and with
        ``country`` its country index."""
        specs = [(self.sample_shape, self.sample_dtype)]
        return specs + [((), np.int32)] if self.country else specs

    # -- what a drawing becomes: an image here, a point sequence in SequenceDataset -------------
    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (self.img_size, self.img_size, self.channels)

    sample_dtype = np.uint8  # the model rescales: batches stay 4x smaller than float32

    def encode(
        self,
        drawings: Drawings,
        rows: np.ndarray,
        affine: np.ndarray | None,
        drop: float,
        drop_seed: np.ndarray | None,
    ) -> np.ndarray:
        return render(
            drawings, rows, self.img_size, self.encoding, self.line_width, affine, drop, drop_seed
        )

    # -- whole-split helpers for evaluation --------------------------------------------------
    def column(self, name: str) -> np.ndarray:
        """A per-drawing array (``label``, ``key_id``, ``countrycode``) over all shards, in
        evaluation order."""
        return np.concatenate([np.asarray(getattr(s, name)) for s in self.shards])

    def n_strokes(self) -> np.ndarray:
        return np.concatenate([s.drawings.n_strokes for s in self.shards])

    def n_points(self) -> np.ndarray:
        return np.concatenate([s.drawings.n_points for s in self.shards])


class SequenceDataset(DrawingDataset):
    """Batches ``(point sequences float32 (B, seq_len, features), one-hot labels)`` for the
    stroke-sequence family: the same stream, augmentation and order, no rendering. The
    features are :func:`doodle.models.sequences.features`: with ``dt`` when the shards have
    times."""

    sample_dtype = np.float32
    renders = False

    def __init__(self, shard_paths: Sequence[Path], *, seq_len: int, **kwargs):
        # no rendering: the image settings do not apply
        image = {"img_size": None, "encoding": None, "line_width": None}
        super().__init__(shard_paths, **(image | kwargs))
        self.seq_len = int(seq_len)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (self.seq_len, len(sequences.features(self.has_time)))

    def encode(
        self,
        drawings: Drawings,
        rows: np.ndarray,
        affine: np.ndarray | None,
        drop: float,
        drop_seed: np.ndarray | None,
    ) -> np.ndarray:
        return sequences.encode(drawings, rows, self.seq_len, affine, drop, drop_seed)


class StrokeGridDataset(SequenceDataset):
    """Batches ``(points float32 (B, seq_len, features), one-hot labels)`` for the
    stroke-to-grid family: every drawing resampled to ``seq_len`` points along its strokes
    (:func:`doodle.models.strokegrid.encode`), with the time features when ``encoding`` is
    time3 (which needs shards with times)."""

    def __init__(self, shard_paths: Sequence[Path], *, seq_len: int, encoding: str, **kwargs):
        super().__init__(shard_paths, seq_len=seq_len, encoding=encoding, **kwargs)
        self.timed = encoding in TIME_ENCODINGS

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (self.seq_len, len(strokegrid.features(self.timed)))

    def encode(
        self,
        drawings: Drawings,
        rows: np.ndarray,
        affine: np.ndarray | None,
        drop: float,
        drop_seed: np.ndarray | None,
    ) -> np.ndarray:
        return strokegrid.encode(drawings, rows, self.seq_len, self.timed, affine, drop, drop_seed)


def member_dataset(cfg: MemberConfig, shard_paths: Sequence[Path], **kwargs) -> DrawingDataset:
    """The dataset a member's model reads: images rendered its way, point sequences, or
    resampled points (strokegrid); with the drawings' countries when ``cfg.country``."""
    kwargs = {"country": cfg.country} | kwargs
    if cfg.arch == "strokegrid":
        return StrokeGridDataset(shard_paths, seq_len=cfg.seq_len, encoding=cfg.encoding, **kwargs)
    if cfg.sequence:
        return SequenceDataset(shard_paths, seq_len=cfg.seq_len, **kwargs)
    return DrawingDataset(
        shard_paths,
        img_size=cfg.img_size,
        encoding=cfg.encoding,
        line_width=cfg.line_width,
        **kwargs,
    )


def sequence_features(shard_paths: Sequence[Path], cfg: MemberConfig | None = None) -> int:
    """A point family's per-point feature count: the lstm family's follows the shards
    (``dt`` with times); strokegrid's (``cfg``) its encoding (the time features with
    time3)."""
    if cfg is not None and cfg.arch == "strokegrid":
        return len(strokegrid.features(cfg.encoding in TIME_ENCODINGS))
    timed = any(has_time(read_header(p)[0]) for p in shard_paths)
    return len(sequences.features(timed))


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    out = np.zeros((len(labels), n_classes), np.float32)
    out[np.arange(len(labels)), labels] = 1.0
    return out


def _split(pos: np.ndarray, sizes: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stream positions over shards concatenated in ``order`` -> (shard index, row)."""
    ends = np.cumsum(sizes)
    k = np.searchsorted(ends, pos, side="right")
    return order[k], pos - (ends[k] - sizes[k])
