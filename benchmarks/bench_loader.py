"""Loader benchmark: our ``DrawingDataset`` (a Keras PyDataset) vs the reference
``tf.data.Dataset.from_generator`` loader over pandas chunks, on the same drawings.

The baseline (re-implemented here): ``pd.read_csv(chunksize=...)`` of a CSV with a
``drawing`` column; per row ``json.loads`` + ``cv2.line`` on a 256 canvas (width 6, stroke
``t`` in grey ``255 - min(t, 10) * 13``) + ``cv2.resize`` to ``img_size``
(:func:`benchmarks.reference.reference_image`); the generator yields ``(image, label)`` and
the dataset is ``.batch(batch_size)``. The CSV is written from the very shards our loader
reads, so both see the same drawings in the same order. ``baseline_python_only`` runs the same
generator without TensorFlow, to show what ``from_generator`` itself costs per element.

Ours is measured three ways: ``ds[i]`` in a loop (one thread, ``workers=1``); through Keras'
``PyDatasetAdapter`` numpy iterator with its ``OrderedEnqueuer`` and ``workers`` threads (what
``model.fit`` iterates on the JAX backend); and through the adapter's ``get_tf_dataset()``
(what ``model.fit`` iterates on the TensorFlow backend). Each variant runs in several
alternating rounds, each on a fresh iterator: start-up plus ``warmup`` batches are timed apart
(``*_startup_s``), then batches are counted for the round's share of ``seconds``. The best
round counts, since other load on the machine only ever slows a round down. CPU time (all
threads of this process) is reported too: images per CPU-second hardly depend on that load.

:func:`loader_scaling`: the training loader's images/s by image size and worker count.

:func:`bench_tfdata`: our GZIP stroke TFRecords through tf.data
(:func:`doodle.training.tfdata.make_tf_dataset`: interleave, shuffle, batch, one render call
per batch, augmentation) vs the PyDataset through the enqueuer vs the source notes' loader,
re-implemented: a ``drawing,word`` CSV -> ``TextLineDataset`` -> ``decode_csv`` -> per line a
``tf.py_function`` rendering it the reference way -> ``shuffle(3000)`` -> ``batch``; in the
same alternating rounds. And bytes per training drawing on disk: our stroke TFRecords, the
shards, the CSV, and GZIP TFRecords of pre-rendered uint8 images (64 and 128 px, a sample).

Loaders draw grey lines of the reference's width and augment and shuffle as params.yaml's
``train`` section says.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import numpy as np

from benchmarks.reference import LINE_WIDTH, reference_image
from doodle.config import TrainConfig, load_params
from doodle.data.shards import open_shard, read_classes, train_shard_paths
from doodle.gpu.feed import cores_to_feed, loader_rate  # noqa: F401  (kept importable here)
from doodle.gpu.feed import rate as _rate

ROOT = Path(__file__).resolve().parents[1]
FULL_KAGGLE_TRAIN = 49_700_000  # drawings, for the projected sizes on disk
LOADER_CSV = ("countrycode", "drawing", "key_id", "word", "y")  # the from_generator baseline's


@cache
def train_recipe() -> TrainConfig:
    """params.yaml's ``train`` section: the loaders augment and shuffle as training does."""
    return load_params(ROOT / "params.yaml").train


def write_csv_from_shards(
    shard_paths: list[Path],
    classes: list[str],
    csv_path: Path,
    columns: tuple[str, ...] = LOADER_CSV,
    limit: int | None = None,
) -> int:
    """Write the shards' drawings, in order, as a Kaggle-style CSV of ``columns`` (``y``: the
    label's index), up to ``limit`` rows. ``drawing`` uses ``json.dumps``' default
    separators, as Kaggle's files do. Returns rows."""
    n = 0
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(columns)
        for p in shard_paths:
            s = open_shard(p)
            d = s.drawings
            xy = np.asarray(d.xy)
            so, do = np.asarray(d.stroke_offsets), np.asarray(d.drawing_offsets)
            for i in range(len(s)):
                if n == limit:
                    return n
                strokes = [
                    [xy[so[k] : so[k + 1], 0].tolist(), xy[so[k] : so[k + 1], 1].tolist()]
                    for k in range(do[i], do[i + 1])
                ]
                label = int(s.label[i])
                row = {
                    "countrycode": s.countrycode[i].decode(),
                    "drawing": json.dumps(strokes),
                    "key_id": int(s.key_id[i]),
                    "word": classes[label],
                    "y": label,
                }
                w.writerow([row[c] for c in columns])
                n += 1
    return n


def baseline_rows(
    csv_path: Path, img_size: int, chunksize: int = 10_000
) -> Iterator[tuple[np.ndarray, int]]:
    """The reference generator: pandas chunks -> per row ``(image, label)``, once."""
    import pandas as pd

    for chunk in pd.read_csv(csv_path, chunksize=chunksize):
        for drawing, y in zip(chunk["drawing"].values, chunk["y"].values, strict=True):
            yield reference_image(drawing, img_size)[:, :, None], y


def baseline_batches(csv_path: Path, batch_size: int, img_size: int) -> Iterator[list]:
    """The same generator without TensorFlow, in lists of ``batch_size`` rows, forever.

    Not a loader anyone uses: it separates the generator's own cost from ``from_generator``'s.
    """
    while True:
        batch = []
        for row in baseline_rows(csv_path, img_size):
            batch.append(row)
            if len(batch) == batch_size:
                yield batch
                batch = []


def from_generator_dataset(csv_path: Path, batch_size: int, img_size: int, chunksize: int = 10_000):
    """The reference loader: ``from_generator`` over pandas chunks, then ``.batch``.

    Repeats forever (as a training loop over the file would).
    """
    import tensorflow as tf

    def gen() -> Iterator[tuple[np.ndarray, int]]:
        return baseline_rows(csv_path, img_size, chunksize)

    ds = tf.data.Dataset.from_generator(
        gen,
        output_signature=(
            tf.TensorSpec((img_size, img_size, 1), tf.uint8),
            tf.TensorSpec((), tf.int64),
        ),
    )
    return ds.repeat().batch(batch_size)


def make_pydataset(
    shard_paths: list[Path], n_classes: int, batch_size: int, img_size: int, workers: int
):
    """Our training loader, configured as ``train`` runs it (augmentation on)."""
    from doodle.training.dataset import DrawingDataset

    recipe = train_recipe()
    return DrawingDataset(
        shard_paths,
        batch_size=batch_size,
        img_size=img_size,
        encoding="grey",
        line_width=LINE_WIDTH,
        n_classes=n_classes,
        training=True,
        seed=0,
        augment=recipe.augment,
        shuffle_buffer=recipe.shuffle_buffer,
        steps_per_epoch=10**7,
        workers=workers,
    )


def make_sequence_dataset(
    shard_paths: list[Path], n_classes: int, batch_size: int, seq_len: int = 128
):
    """The stroke-sequence family's loader (``arch: lstm``), as ``train`` runs it."""
    from doodle.training.dataset import SequenceDataset

    return SequenceDataset(
        shard_paths,
        seq_len=seq_len,
        batch_size=batch_size,
        n_classes=n_classes,
        training=True,
        seed=0,
        augment=train_recipe().augment,
        shuffle_buffer=train_recipe().shuffle_buffer,
        steps_per_epoch=10**7,
        workers=1,
    )


def bench_loader(
    shard_dir: Path,
    csv_path: Path,
    batch_size: int = 256,
    img_size: int = 64,
    seconds: float = 10.0,
    workers: int = 2,
    rounds: int = 3,
    warmup: int = 2,
    tf_path: bool = True,
    log: Callable[[str], None] = print,
) -> dict:
    """Time both loaders on ``shard_dir``'s training shards -> flat dict of figures.

    ``seconds`` is per loader variant, split into ``rounds`` alternating rounds.
    """
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    from doodle.rendering.raster import warmup as render_warmup

    paths = train_shard_paths(shard_dir)
    classes = read_classes(shard_dir)
    if not Path(csv_path).is_file():
        write_csv_from_shards(paths, classes, Path(csv_path))
    render_warmup()
    single = make_pydataset(paths, len(classes), batch_size, img_size, workers=1)
    threaded = make_pydataset(paths, len(classes), batch_size, img_size, workers=workers)
    has_tf = importlib.util.find_spec("tensorflow") is not None
    baseline = from_generator_dataset(Path(csv_path), batch_size, img_size) if has_tf else None

    sequences = make_sequence_dataset(paths, len(classes), batch_size)

    def looped(ds) -> Callable:
        def make():
            def batches() -> Iterator:
                i = 0
                while True:
                    yield ds[i]
                    i += 1

            return batches(), lambda: None

        return make

    direct = looped(single)

    def enqueuer():
        adapter = PyDatasetAdapter(threaded, shuffle=False)
        if adapter.enqueuer is None:
            raise RuntimeError("Keras built no enqueuer (workers must be > 1)")
        return adapter.get_numpy_iterator(), adapter.enqueuer.stop

    def keras_tf():
        adapter = PyDatasetAdapter(threaded, shuffle=False)
        stop = adapter.enqueuer.stop if adapter.enqueuer else (lambda: None)
        return iter(adapter.get_tf_dataset()), stop

    def from_generator():
        return iter(baseline), lambda: None

    def python_only():
        return baseline_batches(Path(csv_path), batch_size, img_size), lambda: None

    variants: dict[str, Callable] = {
        "from_generator": from_generator,
        "pydataset_direct": direct,
        "pydataset_enqueuer": enqueuer,
        "baseline_python_only": python_only,
        "sequences_direct": looped(sequences),
    }
    if tf_path:
        variants["pydataset_keras_tf"] = keras_tf
    if not has_tf:  # e.g. a JAX-only GPU box: no tf.data, so no source-documents loader
        del variants["from_generator"]
        variants.pop("pydataset_keras_tf")
        log(
            "bench_loader: TensorFlow not installed: from_generator and get_tf_dataset skipped;"
            " ratios are against the same generator without tf.data"
        )
    wall: dict[str, float] = {}  # best batches per wall second
    cpu: dict[str, float] = {}  # best batches per CPU second
    startup: dict[str, float] = {}  # shortest start-up
    errors: dict[str, str] = {}
    per_round = seconds / max(rounds, 1)
    for r in range(max(rounds, 1)):
        for name, make in variants.items():
            if name in errors:
                continue
            try:
                res = _rate(make, per_round, warmup)
            except Exception as e:  # noqa: BLE001 - reported, the others still run
                errors[name] = f"{type(e).__name__}: {e}"
                log(f"bench_loader: {name} failed: {errors[name]}")
                continue
            log(
                f"bench_loader: round {r + 1} {name}: {res[0]:.1f} batches/s "
                f"({res[1]:.1f} per CPU-s)"
            )
            wall[name] = max(wall.get(name, 0.0), res[0])
            cpu[name] = max(cpu.get(name, 0.0), res[1])
            startup[name] = min(startup.get(name, res[2]), res[2])
    base_key = "from_generator" if has_tf else "baseline_python_only"
    if base_key not in wall or (
        "pydataset_enqueuer" not in wall and "pydataset_direct" not in wall
    ):
        raise RuntimeError(f"loader benchmark failed: {errors}")

    out: dict = {
        "loader_batch_size": batch_size,
        "loader_img_size": img_size,
        "loader_workers": workers,
        "loader_drawings": int(single.total),
        "loader_rounds": rounds,
        "loader_seconds_per_variant": seconds,
    }
    for name in wall:
        out[f"{name}_batches_per_s"] = round(wall[name], 2)
        out[f"{name}_images_per_cpu_s"] = round(cpu[name] * batch_size, 1)
        out[f"{name}_startup_s"] = round(startup[name], 3)
    gen = wall[base_key]
    ours_key = "pydataset_enqueuer" if "pydataset_enqueuer" in wall else "pydataset_direct"
    ours = wall[ours_key]
    out["loader_measured_with"] = (
        f"keras OrderedEnqueuer, workers={workers}"
        if ours_key == "pydataset_enqueuer"
        else "ds[i], workers=1"
    )
    out["loader_baseline"] = base_key
    out["pydataset_batches_per_s"] = round(ours, 2)
    out["pydataset_images_per_s"] = round(ours * batch_size, 1)
    out[f"{base_key}_images_per_s"] = round(gen * batch_size, 1)
    suffix = "vs_from_generator" if has_tf else "vs_python_generator"
    out[f"loader_ratio_{suffix}"] = round(ours / gen, 2)
    if "pydataset_direct" in wall:
        out[f"loader_ratio_direct_{suffix}"] = round(wall["pydataset_direct"] / gen, 2)
    if "pydataset_keras_tf" in wall:
        out[f"loader_ratio_keras_tf_{suffix}"] = round(wall["pydataset_keras_tf"] / gen, 2)
    out["loader_ratio_per_cpu_s"] = round(cpu[ours_key] / cpu[base_key], 2)
    if "sequences_direct" in wall:  # arch lstm: point sequences, one thread (ds[i])
        out["sequence_loader_per_s"] = round(wall["sequences_direct"] * batch_size, 1)
        out["sequence_loader_seq_len"] = sequences.seq_len
    if errors:
        out["loader_errors"] = errors
    return out


def loader_scaling(
    shard_dir: Path,
    sizes: tuple[int, ...] = (64, 128),
    workers: tuple[int, ...] = (1, 2),
    batch_size: int = 256,
    seconds: float = 3.0,
    rounds: int = 3,
    log: Callable[[str], None] = print,
) -> dict:
    """Images/s of the real training loader (augmentation on) at each image size and
    worker count, alternating rounds (the best counts), plus per CPU-second figures and
    the worker-count ratio. ``scaling_images_per_cpu_s_<size>`` (one worker) is what one
    core renders: the arithmetic of how many cores feed a GPU starts from it."""
    from doodle.rendering.raster import warmup as render_warmup

    paths = train_shard_paths(shard_dir)
    classes = read_classes(shard_dir)
    render_warmup()
    best: dict[tuple[int, int], tuple[float, float]] = {}
    for r in range(max(rounds, 1)):
        for size in sizes:
            for w in workers:
                ds = make_pydataset(paths, len(classes), batch_size, size, workers=w)
                wall, cpu = loader_rate(ds, seconds / max(rounds, 1))
                log(
                    f"loader scaling: round {r + 1}, {size} px, {w} worker(s): {wall:,.0f} images/s"
                )
                old = best.get((size, w), (0.0, 0.0))
                best[(size, w)] = (max(old[0], wall), max(old[1], cpu))
    out: dict = {
        "scaling_batch_size": batch_size,
        "scaling_workers": list(workers),
        "scaling_drawings": int(sum(len(open_shard(p)) for p in paths)),
        "scaling_rounds": rounds,
        "scaling_seconds_per_variant": seconds,
    }
    for (size, w), (wall, cpu) in best.items():
        out[f"scaling_images_per_s_{size}_w{w}"] = round(wall, 1)
        out[f"scaling_images_per_cpu_s_{size}_w{w}"] = round(cpu, 1)
    lo, hi = min(workers), max(workers)
    for size in sizes:
        if hi > lo:
            ratio = best[(size, hi)][0] / max(best[(size, lo)][0], 1e-9)
            out[f"scaling_ratio_{size}_w{hi}_vs_w{lo}"] = round(ratio, 2)
        out[f"scaling_images_per_cpu_s_{size}"] = out[f"scaling_images_per_cpu_s_{size}_w{lo}"]
    return out


# -- tf.data: our TFRecords vs the PyDataset vs the TextLineDataset loader --------------------
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


def textline_dataset(csv_path: Path, classes: list[str], batch_size: int, img_size: int):
    """``TextLineDataset`` + per-line ``tf.py_function`` rendering, as in the source notes,
    over a ``drawing,word`` CSV."""
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
        [img] = tf.py_function(
            lambda d: reference_image(d.numpy(), img_size)[:, :, None], [drawing], [tf.uint8]
        )
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
            images = render(shard.drawings, np.arange(k), img_size, "grey", LINE_WIDTH)
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
    csv_rows: int = 20_000,
    image_sample: int = 2_000,
    log: Callable[[str], None] = print,
) -> dict:
    """Time the three loaders on ``shard_dir``'s training shards and measure bytes/drawing.

    ``tfrec_dir``: existing TFRecords of those shards, or where to convert them (a temp
    folder when None or when it holds other files). ``seconds`` per loader, split in
    ``rounds`` (the best counts). Returns a flat dict of figures.
    """
    import tensorflow as tf
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    from doodle.data.tfrecord import read_manifest, split_files
    from doodle.rendering.raster import warmup as render_warmup
    from doodle.training.tfdata import make_tf_dataset

    shard_dir = Path(shard_dir)
    paths = train_shard_paths(shard_dir)
    if not paths:
        raise FileNotFoundError(f"{shard_dir}: no train-*.qds shards")
    classes = read_classes(shard_dir)
    recipe = train_recipe()
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
        n_csv = write_csv_from_shards(paths, classes, csv_path, ("drawing", "word"), csv_rows)

        def tfdata():
            ds = make_tf_dataset(
                files,
                batch_size=batch_size,
                img_size=img_size,
                encoding="grey",
                line_width=LINE_WIDTH,
                n_classes=len(classes),
                training=True,
                seed=0,
                augment=recipe.augment,
                shuffle_buffer=recipe.shuffle_buffer,
            )
            return iter(ds), lambda: None

        def pydataset():
            ds = make_pydataset(paths, len(classes), batch_size, img_size, workers)
            if workers < 2:
                return (ds[i] for i in range(10**7)), lambda: None
            adapter = PyDatasetAdapter(ds, shuffle=False)
            return adapter.get_numpy_iterator(), adapter.enqueuer.stop

        def textline():
            return iter(textline_dataset(csv_path, classes, batch_size, img_size)), lambda: None

        variants = {"tfdata": tfdata, "pydataset": pydataset, "textline_pyfunction": textline}
        best: dict[str, tuple[float, float, float]] = {}
        for r in range(max(1, rounds)):
            for name, make in variants.items():
                wall, cpu, startup = _rate(make, seconds / max(1, rounds), warmup)
                log(
                    f"bench_tfdata: round {r + 1} {name}: {wall:.1f} batches/s "
                    f"({cpu:.1f} per CPU-s, start-up {startup:.1f}s)"
                )
                if name not in best or wall > best[name][0]:
                    best[name] = (wall, cpu, startup)

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
