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
"""

from __future__ import annotations

import csv
import importlib.util
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from benchmarks.reference import reference_image
from doodle.data.shards import open_shard, read_classes, train_shard_paths
from doodle.gpu.feed import cores_to_feed, loader_rate  # noqa: F401  (moved; kept importable here)
from doodle.gpu.feed import rate as _rate
from doodle.rendering.augment import Augment

# params.yaml's train.augment defaults: the loader is timed as training runs it.
TRAIN_SHUFFLE = 50_000  # params.yaml's train.shuffle_buffer, as train runs the loader
TRAIN_AUGMENT = Augment(flip=0.5, scale=0.1, shift=0.05, rotate=8, stroke_dropout=0.05)


def write_csv_from_shards(shard_paths: list[Path], classes: list[str], csv_path: Path) -> int:
    """Write the shards' drawings, in order, as a Kaggle-style CSV (plus a ``y`` label column).

    ``drawing`` uses ``json.dumps``' default separators, as Kaggle's files do. Returns rows.
    """
    n = 0
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["countrycode", "drawing", "key_id", "word", "y"])
        for p in shard_paths:
            s = open_shard(p)
            d = s.drawings
            xy = np.asarray(d.xy)
            so, do = np.asarray(d.stroke_offsets), np.asarray(d.drawing_offsets)
            for i in range(len(s)):
                strokes = [
                    [xy[so[k] : so[k + 1], 0].tolist(), xy[so[k] : so[k + 1], 1].tolist()]
                    for k in range(do[i], do[i + 1])
                ]
                label = int(s.label[i])
                w.writerow(
                    [
                        s.countrycode[i].decode(),
                        json.dumps(strokes),
                        int(s.key_id[i]),
                        classes[label],
                        label,
                    ]
                )
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

    return DrawingDataset(
        shard_paths,
        batch_size=batch_size,
        img_size=img_size,
        encoding="grey",
        line_width=6.0,
        n_classes=n_classes,
        training=True,
        seed=0,
        augment=TRAIN_AUGMENT,
        shuffle_buffer=TRAIN_SHUFFLE,
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
        augment=TRAIN_AUGMENT,
        shuffle_buffer=TRAIN_SHUFFLE,
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
