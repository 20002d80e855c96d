"""Prediction: class probabilities for the holdout and the test set, per member."""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np

from doodle.config import MemberConfig, RuntimeConfig
from doodle.data.shards import read_classes
from doodle.fileio import atomic_path
from doodle.metrics import map3
from doodle.models.build import load_model
from doodle.training.dataset import DrawingDataset, member_dataset

SPLITS = ("holdout", "test")


def predict_split(
    model: keras.Model,
    shard_path: Path,
    cfg: MemberConfig,
    *,
    batch_size: int,
    tta_flip: bool,
    workers: int,
    n_classes: int,
    tfrec_dir: Path,
) -> tuple[np.ndarray, DrawingDataset]:
    """Probabilities (float32) for one shard file, in its order; averaged with the
    horizontally flipped drawings when ``tta_flip``."""
    if cfg.input == "tfrecord":  # tf.data over data/tfrecord: same images, same order
        from doodle.data.tfrecord import split_files
        from doodle.training.tfdata import TFRecordIndex, make_tf_dataset

        files = split_files(tfrec_dir, Path(shard_path).stem)
        kw = dict(
            batch_size=batch_size,
            img_size=cfg.img_size,
            encoding=cfg.encoding,
            line_width=cfg.line_width,
            n_classes=n_classes,
        )
        probs = model.predict(make_tf_dataset(files, **kw), verbose=1)
        if tta_flip:
            probs = (probs + model.predict(make_tf_dataset(files, flip=True, **kw), verbose=1)) / 2
        return probs, TFRecordIndex(files)
    kwargs = dict(batch_size=batch_size, n_classes=n_classes, workers=workers)
    data = member_dataset(cfg, [shard_path], **kwargs)
    probs = model.predict(data, verbose=1)
    if tta_flip:
        probs = (
            probs + model.predict(member_dataset(cfg, [shard_path], flip=True, **kwargs), verbose=1)
        ) / 2
    return probs, data


def save_predictions(
    path: Path, probs: np.ndarray, data: DrawingDataset, classes: list[str]
) -> None:
    """The prediction file contract (see doodle.ensemble): float16 probs beside their ids."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(
                f,
                probs=probs.astype(np.float16),
                key_id=data.column("key_id"),
                label=data.column("label").astype(np.int64),
                classes=np.array(classes, dtype=str),
                n_strokes=data.n_strokes(),
                n_points=data.n_points(),
                countrycode=data.column("countrycode").astype("U2"),
            )


def predict_member(
    model_path: Path,
    shard_dir: Path,
    out_dir: Path,
    cfg: MemberConfig,
    runtime: RuntimeConfig,
    tta_flip: bool,
    tfrec_dir: Path,
) -> dict:
    """Write ``out_dir/{holdout,test}.npz``; returns holdout MAP@3 and timings."""
    t0 = time.time()
    classes = read_classes(shard_dir)
    model = load_model(model_path)
    model.run_eagerly = runtime.eager
    summary: dict = {"name": cfg.name}
    # Both splits go into a temp folder that replaces out_dir at the end: a kill between
    # the two never leaves a new holdout file beside an old test file.
    with atomic_path(Path(out_dir)) as tmp:
        tmp.mkdir(parents=True)
        for split in SPLITS:
            probs, data = predict_split(
                model,
                Path(shard_dir) / f"{split}.qds",
                cfg,
                batch_size=runtime.predict_batch_size,
                tta_flip=tta_flip,
                workers=runtime.workers,
                n_classes=len(classes),
                tfrec_dir=tfrec_dir,
            )
            save_predictions(tmp / f"{split}.npz", probs, data, classes)
            summary[f"{split}_rows"] = len(probs)
            labels = data.column("label")
            if (labels >= 0).all():
                summary[f"{split}_map3"] = round(map3(probs, labels), 5)
    summary["seconds"] = round(time.time() - t0, 1)
    print(f"predict: {cfg.name}: " + ", ".join(f"{k}={v}" for k, v in summary.items()))
    return summary
