"""tf.data benchmark: our TFRecord reader vs our PyDataset vs the reference
``TextLineDataset`` + ``tf.py_function`` loader, and bytes per drawing on disk.

Loaders (same training shards, batch size and image size; batches/s in steady state):

* ``tfdata``: :func:`doodle.data.tfrecord.make_tf_dataset` over GZIP TFRecords of strokes
  (training mode: interleave, shuffle, batch, one numba render call per batch, augmentation);
* ``pydataset``: ``DrawingDataset`` in training mode through Keras' ``PyDatasetAdapter``
  enqueuer with ``workers`` threads (what ``fit`` iterates; ``ds[i]`` in a loop if that
  private API is missing), augmentation on;
* ``textline``: the reference loader, re-implemented: a CSV of ``drawing,word``
  lines -> ``TextLineDataset`` -> ``decode_csv`` -> per line a ``tf.py_function`` that does
  ``json.loads`` + ``cv2.line`` on a 256 canvas (width 6, stroke ``t`` in grey
  ``255 - min(t, 10) * 13``) + ``cv2.resize`` -> ``shuffle(3000)`` -> ``batch``.

Each variant runs ``rounds`` times in alternation; a round builds a fresh pipeline, pulls
``warmup`` batches (start-up: tracing, JIT, shuffle-buffer fill; reported separately as
``*_startup_s``), then counts batches for its share of ``seconds``. The best round counts:
other load on a shared machine only ever slows a round down.

Disk: bytes per training drawing of our stroke TFRecords and of the stroke shards, and of
GZIP TFRecords of pre-rendered raw uint8 pixels (64 and 128 px) written for a sample.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from doodle.data.shards import open_shard, read_classes, train_shard_paths  # noqa: E402
from doodle.rendering.augment import Augment  # noqa: E402

# params.yaml's train.augment defaults: loaders are timed as training runs them.
AUGMENT = Augment(flip=0.5, scale=0.1, shift=0.05, rotate=8, stroke_dropout=0.05)
FULL_KAGGLE_TRAIN = 49_700_000  # drawings, for the projected sizes


# -- inputs ---------------------------------------------------------------------------------
def ensure_tfrecords(shard_dir: Path, tfrec_dir: Path | None, workdir: Path) -> Path:
    """``tfrec_dir`` if it holds converted TFRecords; else convert the shards into it (when it
    is new or empty) or into ``workdir`` (never overwriting someone's folder)."""
    from doodle.data.tfrecord import MANIFEST, convert_shards, read_manifest

    if tfrec_dir is not None and (Path(tfrec_dir) / MANIFEST).is_file():
        if read_manifest(tfrec_dir).get("enabled"):
            return Path(tfrec_dir)
    if tfrec_dir is None or (Path(tfrec_dir).exists() and any(Path(tfrec_dir).iterdir())):
        tfrec_dir = workdir / "tfrecords"
    convert_shards(shard_dir, Path(tfrec_dir), enabled=True, progress=False)
    return Path(tfrec_dir)


def write_textline_csv(shard_paths: list[Path], classes: list[str], path: Path, limit: int) -> int:
    """Up to ``limit`` training drawings as a ``drawing,word`` CSV (Kaggle's JSON style)."""
    n = 0
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["drawing", "word"])
        for p in shard_paths:
            shard = open_shard(p)
            for i in range(min(len(shard), limit - n)):
                strokes = [[xs, ys] for xs, ys in shard.drawings.strokes(i)]
                w.writerow([json.dumps(strokes), classes[int(shard.label[i])]])
                n += 1
            if n >= limit:
                break
    return n


# -- the reference loader -----------------------------------------------------------
def cv2_image(drawing_json: bytes, img_size: int) -> np.ndarray:
    """``json.loads`` + ``cv2.line`` at 256 (width 6, time-coloured) + ``cv2.resize``."""
    import cv2

    img = np.zeros((256, 256), np.uint8)
    for t, (xs, ys) in enumerate(json.loads(drawing_json)):
        colour = 255 - min(t, 10) * 13
        for i in range(len(xs) - 1):
            cv2.line(img, (xs[i], ys[i]), (xs[i + 1], ys[i + 1]), colour, 6)
    return cv2.resize(img, (img_size, img_size))[:, :, None]


def textline_dataset(csv_path: Path, classes: list[str], batch_size: int, img_size: int):
    """``TextLineDataset`` + per-line ``tf.py_function`` rendering, as in the source notes."""
    import tensorflow as tf

    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(classes), tf.range(len(classes), dtype=tf.int64)
        ),
        default_value=-1,
    )

    def parse(line):
        drawing, word = tf.io.decode_csv(line, record_defaults=[[""], [""]])
        return drawing, table.lookup(word)

    def draw(drawing, label):
        [img] = tf.py_function(lambda d: cv2_image(d.numpy(), img_size), [drawing], [tf.uint8])
        img.set_shape((img_size, img_size, 1))
        return img, tf.one_hot(label, len(classes))

    autotune = tf.data.AUTOTUNE
    return (
        tf.data.TextLineDataset(str(csv_path))
        .skip(1)
        .repeat()
        .map(parse, num_parallel_calls=autotune)
        .map(draw, num_parallel_calls=autotune)
        .shuffle(3000)
        .batch(batch_size)
        .prefetch(autotune)
    )


# -- disk -----------------------------------------------------------------------------------
def image_tfrecord_bytes(
    shard_paths: list[Path], img_size: int, n: int, path: Path
) -> tuple[float, int]:
    """(bytes per drawing, drawings) of a GZIP TFRecord of up to ``n`` pre-rendered raw uint8
    images + label, taken from the shards in order."""
    import tensorflow as tf

    from doodle.rendering.raster import render

    F = tf.train.Feature
    done = 0
    with tf.io.TFRecordWriter(str(path), tf.io.TFRecordOptions(compression_type="GZIP")) as w:
        for p in shard_paths:
            shard = open_shard(p)
            k = min(n - done, len(shard))
            images = render(shard.drawings, np.arange(k), img_size, "grey", 6.0)
            for img, label in zip(images, np.asarray(shard.label[:k]), strict=True):
                w.write(
                    tf.train.Example(
                        features=tf.train.Features(
                            feature={
                                "image": F(bytes_list=tf.train.BytesList(value=[img.tobytes()])),
                                "label": F(int64_list=tf.train.Int64List(value=[int(label)])),
                            }
                        )
                    ).SerializeToString()
                )
            done += k
            if done >= n:
                break
    return path.stat().st_size / max(done, 1), done


# -- timing ---------------------------------------------------------------------------------
def _rate(
    make: Callable[[], tuple[Iterator, Callable[[], None]]], seconds: float, warmup: int
) -> tuple[float, float, float]:
    """(batches per wall second, per CPU second, start-up seconds) after ``warmup`` batches."""
    t0 = time.perf_counter()
    it, close = make()
    try:
        for _ in range(warmup):
            next(it)
        startup = time.perf_counter() - t0
        w0, c0, n = time.perf_counter(), time.process_time(), 0
        while True:
            next(it)
            n += 1
            if time.perf_counter() - w0 >= seconds:
                break
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    finally:
        close()
    return n / wall, n / max(cpu, 1e-9), startup


def bench_tfdata(
    shard_dir: Path,
    tfrec_dir: Path | None = None,
    batch_size: int = 128,
    img_size: int = 64,
    seconds: float = 10.0,
    *,
    workers: int = 2,
    rounds: int = 2,
    warmup: int = 3,
    shuffle_buffer: int = 50_000,
    csv_rows: int = 20_000,
    image_sample: int = 2_000,
    log: Callable[[str], None] = print,
) -> dict:
    """Time the three loaders on ``shard_dir``'s training shards and measure bytes/drawing.

    ``tfrec_dir``: existing TFRecords of those shards, or where to convert them (a temp
    folder when None or when it holds other files). ``seconds`` per loader, split in
    ``rounds``. Returns a flat dict of figures.
    """
    import tensorflow as tf

    from doodle.data.tfrecord import read_manifest, split_files
    from doodle.rendering.raster import warmup as render_warmup
    from doodle.training.dataset import DrawingDataset
    from doodle.training.tfdata import make_tf_dataset

    shard_dir = Path(shard_dir)
    paths = train_shard_paths(shard_dir)
    if not paths:
        raise FileNotFoundError(f"{shard_dir}: no train-*.qds shards")
    classes = read_classes(shard_dir)
    render_warmup()
    with tempfile.TemporaryDirectory(prefix="bench-tfdata-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        tfrec_dir = ensure_tfrecords(
            shard_dir, None if tfrec_dir is None else Path(tfrec_dir), work
        )
        convert_s = time.perf_counter() - t0
        files = split_files(tfrec_dir, "train")
        csv_path = work / "train.csv"
        n_csv = write_textline_csv(paths, classes, csv_path, csv_rows)

        def tfdata():
            ds = make_tf_dataset(
                files,
                batch_size=batch_size,
                img_size=img_size,
                encoding="grey",
                line_width=6.0,
                n_classes=len(classes),
                training=True,
                seed=0,
                augment=AUGMENT,
                shuffle_buffer=shuffle_buffer,
            )
            return iter(ds), lambda: None

        def pydataset():
            ds = DrawingDataset(
                paths,
                batch_size=batch_size,
                img_size=img_size,
                encoding="grey",
                line_width=6.0,
                n_classes=len(classes),
                training=True,
                seed=0,
                augment=AUGMENT,
                shuffle_buffer=shuffle_buffer,
                steps_per_epoch=10**7,
                workers=workers,
            )
            try:
                from keras.src.trainers.data_adapters.py_dataset_adapter import (
                    PyDatasetAdapter,
                )
            except ImportError:
                PyDatasetAdapter = None  # noqa: N806
            if PyDatasetAdapter is None or workers < 2:
                return (ds[i] for i in range(10**7)), lambda: None
            adapter = PyDatasetAdapter(ds, shuffle=False)
            return adapter.get_numpy_iterator(), adapter.enqueuer.stop

        def textline():
            return iter(textline_dataset(csv_path, classes, batch_size, img_size)), lambda: None

        variants = {"tfdata": tfdata, "pydataset": pydataset, "textline_pyfunction": textline}
        best: dict[str, list[float]] = {}
        for r in range(max(1, rounds)):
            for name, make in variants.items():
                wall, cpu, startup = _rate(make, seconds / max(1, rounds), warmup)
                log(
                    f"bench_tfdata: round {r + 1} {name}: {wall:.1f} batches/s "
                    f"({cpu:.1f} per CPU-s, start-up {startup:.1f}s)"
                )
                old = best.get(name)
                if old is None or wall > old[0]:
                    best[name] = [wall, cpu, startup]

        manifest = read_manifest(tfrec_dir)
        train_entries = [e for e in manifest["files"] if e["name"].startswith("train-")]
        n_train = sum(e["rows"] for e in train_entries)
        per = {
            "tfrecord_strokes": sum(e["bytes"] for e in train_entries) / max(n_train, 1),
            "shards": sum(p.stat().st_size for p in paths) / max(n_train, 1),
            "csv_json": csv_path.stat().st_size / max(n_csv, 1),
        }
        for size in (64, 128):
            per[f"tfrecord_images_{size}"], n_img = image_tfrecord_bytes(
                paths, size, image_sample, work / f"images-{size}.tfrec"
            )

    out: dict = {
        "tfdata_batch_size": batch_size,
        "tfdata_img_size": img_size,
        "tfdata_workers_pydataset": workers,
        "tfdata_train_drawings": n_train,
        "tfdata_seconds_per_loader": seconds,
        "tfdata_rounds": rounds,
        "tfdata_convert_s": round(convert_s, 2),
        "tfdata_cpu_count": os.cpu_count(),
        "tfdata_tensorflow": tf.__version__,
    }
    for name, (wall, cpu, startup) in best.items():
        out[f"{name}_batches_per_s"] = round(wall, 2)
        out[f"{name}_images_per_cpu_s"] = round(cpu * batch_size, 1)
        out[f"{name}_startup_s"] = round(startup, 2)
    out["tfdata_ratio_vs_textline"] = round(best["tfdata"][0] / best["textline_pyfunction"][0], 2)
    out["tfdata_ratio_vs_pydataset"] = round(best["tfdata"][0] / best["pydataset"][0], 2)
    for k, v in per.items():
        out[f"bytes_per_drawing_{k}"] = round(v, 1)
        out[f"projected_full_train_gb_{k}"] = round(v * FULL_KAGGLE_TRAIN / 1e9, 1)
    out["bytes_per_drawing_image_sample"] = n_img
    return out


def _synthetic_shards(dest: Path) -> Path:
    from doodle.data.sharding import shard_dataset
    from doodle.data.synthetic import write_synthetic

    write_synthetic(dest / "raw", 500, 5, seed=0, n_classes=24)
    shard_dataset(
        dest / "raw",
        dest / "shards",
        n_shards=4,
        val_size=500,
        seed=0,
        report_path=dest / "shard.json",
    )
    return dest / "shards"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--shard-dir",
        type=Path,
        default=None,
        help="training shards (default: data/shards, else synthetic ones)",
    )
    ap.add_argument(
        "--tfrec-dir",
        type=Path,
        default=None,
        help="their TFRecords, or where to write them (default: a temp folder)",
    )
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--img-size", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=10.0, help="per loader")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-tfdata-main-") as tmp:
        shard_dir = args.shard_dir
        if shard_dir is None:
            default = ROOT / "data" / "shards"
            shard_dir = default if train_shard_paths(default) else _synthetic_shards(Path(tmp))
        fig = bench_tfdata(
            shard_dir,
            args.tfrec_dir,
            args.batch_size,
            args.img_size,
            args.seconds,
            workers=args.workers,
        )
    text = json.dumps(fig, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
