"""How fast the loader feeds a model: images per wall second and per CPU second of a training
``DrawingDataset`` pulled the way ``model.fit`` pulls it, and the arithmetic of how many
cores that takes at a given step rate (``make doctor``, ``make gpu-check``, the loader
benchmarks)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator


def rate(
    make_iter: Callable[[], tuple[Iterator, Callable[[], None]]], seconds: float, warmup: int
) -> tuple[float, float, float]:
    """(batches per wall second, per CPU second, start-up seconds) for one fresh iterator.

    Start-up (building the pipeline and the first ``warmup`` batches: tf.data tracing, the
    first pandas chunk, thread pools) is timed separately; the rate counts the batches after.
    """
    s0 = time.perf_counter()
    it, close = make_iter()
    try:
        for _ in range(warmup):
            next(it)
        w0, c0 = time.perf_counter(), time.process_time()
        n = 0
        while True:
            next(it)
            n += 1
            if time.perf_counter() - w0 >= seconds:
                break
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    finally:
        close()
    return n / wall, n / max(cpu, 1e-9), w0 - s0


def loader_rate(dataset, seconds: float, warmup: int = 2) -> tuple[float, float]:
    """(images per wall second, per CPU second of this process) of a training
    ``DrawingDataset`` pulled the way ``model.fit`` pulls it on JAX: Keras'
    ``PyDatasetAdapter`` numpy iterator (the loop's own thread with ``workers=1``, its
    ``OrderedEnqueuer`` thread pool with more)."""
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    def make():
        adapter = PyDatasetAdapter(dataset, shuffle=False)
        adapter.on_epoch_begin()
        return iter(adapter.get_numpy_iterator()), adapter.on_epoch_end

    per_wall, per_cpu, _ = rate(make, seconds, warmup)
    return per_wall * dataset.batch_size, per_cpu * dataset.batch_size


def cores_to_feed(images_per_s: float, per_core: float) -> float:
    """Arithmetic, not a measurement: cores a loader rendering ``per_core`` images per
    CPU-second needs to feed a model training at ``images_per_s`` (linear scaling
    assumed; the main loop's own thread and the step's host work come on top)."""
    return images_per_s / max(per_core, 1e-9)
