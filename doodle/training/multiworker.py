"""What training in several processes needs beyond one (``python -m doodle.training.launch``).

* Every process renders only its share of each global batch (``DrawingDataset(share=...)``);
  on TensorFlow that share reaches MultiWorkerMirroredStrategy through
  ``distribute_datasets_from_function`` (``worker_input``), so tf.data never shards or
  rebatches it again; on JAX, Keras assembles the shares into one global batch.
* BatchNorm statistics cover the global batch on both engines (TensorFlow: synchronized
  BatchNorm; JAX: one SPMD program), so N processes train the model one process would.
* Only the chief (process 0) evaluates the holdout, and it does so on a plain local copy
  of the model (``LocalCopy``): a collective ``predict`` would need every process.
* Two Keras 3 bugs with MultiWorkerMirroredStrategy are patched (``patch_keras_for_multiworker``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import keras
import numpy as np

from doodle.errors import DoodleError


def patch_keras_for_multiworker() -> None:
    """Work around Keras 3's TensorFlow trainer under MultiWorkerMirroredStrategy.

    1. It averages the per-step logs (scalars) with ``strategy.reduce("MEAN", v, axis=0)``,
       which fails on a scalar ("Invalid reduction dimension 0 for input with 0
       dimensions", tensorflow/tensorflow#72388); averaged over the replicas instead.
    2. Before the first step it reads a batch to learn the input shapes, reducing it over
       the replicas (which MultiWorkerMirroredStrategy cannot do eagerly); and on an endless
       input that batch is then missing from training. ``build_for_input`` builds the model
       from the shapes beforehand, and the read is skipped.
    """
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer, "_doodle_patched", False):
        return
    check_private_keras(trainer)
    reduce_per_replica = trainer.reduce_per_replica

    def reduce_logs(values, strategy, reduction="auto"):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return reduce_per_replica(values, strategy, reduction)

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None or _built(self):
            return
        raise RuntimeError(
            "build the model with multiworker.build_for_input before fit: Keras would build "
            "it from the first batch of the (endless) input and train without that batch"
        )

    trainer.reduce_per_replica = reduce_logs
    trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    trainer._doodle_patched = True


# The private Keras internals the patch, _built and build_for_input rely on (checked before
# patching: a Keras release that renames one stops the stage in one line instead of
# misbehaving). A model's own attributes are looked up on a model instance.
PRIVATE_KERAS = {
    "keras.src.backend.tensorflow.trainer": (
        "reduce_per_replica",
        "_collective_all_reduce_multi_worker",
        "TensorFlowTrainer._maybe_symbolic_build",
    ),
    "keras.Model": ("_symbolic_build", "_flatten_layers"),
    "a keras.Model": ("_compile_metrics", "_compile_loss", "_distribute_strategy"),
}
_MISSING = object()


def check_private_keras(trainer_module) -> None:
    """Every private attribute the multi-process patches use exists in this Keras."""
    owners = {
        "keras.src.backend.tensorflow.trainer": trainer_module,
        "keras.Model": keras.Model,
        "a keras.Model": keras.Sequential(),
    }
    missing = []
    for owner, names in PRIVATE_KERAS.items():
        for name in names:
            obj = owners[owner]
            for part in name.split("."):
                obj = getattr(obj, part, _MISSING)
            if obj is _MISSING:
                missing.append(f"{owner}.{name}")
    if missing:
        raise DoodleError(
            f"Keras {keras.__version__} lacks {', '.join(missing)}, which training in several "
            "processes patches (doodle/training/multiworker.py): use the Keras pyproject.toml "
            "admits, or train as one process"
        )


def _built(model: keras.Model) -> bool:
    """True when fit has nothing left to build (what Keras' symbolic build would do)."""
    parts = (model._compile_metrics, model._compile_loss, model.optimizer)
    return all(layer.built for layer in model._flatten_layers()) and all(
        p is None or p.built for p in parts
    )


def build_for_input(model: keras.Model, dataset) -> None:
    """Build the model, its compiled loss and metrics and its optimizer for one replica's
    share of ``dataset``'s batches (call inside the strategy's scope)."""
    n = dataset.batch_size // dataset.processes
    xs = tuple(np.zeros((n, *shape), dtype) for shape, dtype in dataset.input_specs())
    y = np.zeros((n, dataset.n_classes), np.float32)
    model._symbolic_build(data_batch=(xs[0] if len(xs) == 1 else xs, y))


def worker_input(strategy, dataset, epoch: int, start: int, workers: int = 1):
    """This worker's share of every global batch from ``epoch``/``start`` on, endless (fit
    stops after ``steps_per_epoch``), as the per-worker input of a tf.distribute strategy."""
    import tensorflow as tf

    steps = dataset.steps
    n = dataset.batch_size // dataset.processes
    specs = [
        tf.TensorSpec((n, *shape), tf.as_dtype(dtype)) for shape, dtype in dataset.input_specs()
    ]
    specs.append(tf.TensorSpec((n, dataset.n_classes), tf.float32))

    def load(k: np.int64):
        g = epoch * steps + start + int(k)
        x, y = dataset.batch_at(g // steps, g % steps)
        return (*(x if isinstance(x, tuple) else (x,)), y)  # flat: numpy_function's way

    def shaped(*arrays):
        *xs, y = (tf.ensure_shape(a, s.shape) for a, s in zip(arrays, specs, strict=True))
        return (xs[0] if len(xs) == 1 else tuple(xs)), y

    def per_worker(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
        if ctx.num_input_pipelines != dataset.processes:
            raise RuntimeError(
                f"{ctx.num_input_pipelines} input pipelines for {dataset.processes} processes"
            )
        ds = tf.data.Dataset.range(2**62).map(
            lambda k: tuple(tf.numpy_function(load, [k], [s.dtype for s in specs])),
            num_parallel_calls=max(1, workers),
            deterministic=True,
        )
        ds = ds.map(shaped)  # (tf.data passes a tuple's parts as arguments)
        # Several GPUs in this process: the strategy takes one element per local replica.
        local = ctx.num_replicas_in_sync // ctx.num_input_pipelines
        if local > 1:
            ds = ds.unbatch().batch(n // local, drop_remainder=True)
        return ds.prefetch(2)

    return strategy.distribute_datasets_from_function(per_worker)


def synchronize_batchnorm(model: keras.Model, on: bool) -> None:
    """BatchNorm statistics over the global batch (TensorFlow; read at call time). Switched
    off before saving: a model saved with it would not load on JAX."""
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = on


@contextmanager
def no_distribution() -> Iterator[None]:
    """Build or run a model on this process alone while a JAX distribution is set."""
    saved = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(saved)


class LocalCopy:
    """A model of this process alone, with the distributed model's current weights."""

    def __init__(self, build: Callable[[], keras.Model]):
        with no_distribution():
            self.model = build()

    def __call__(self, source: keras.Model, weights: list | None = None) -> keras.Model:
        self.model.set_weights(source.get_weights() if weights is None else weights)
        return self.model

    def predict(self, source: keras.Model, data, weights: list | None = None) -> np.ndarray:
        """``source``'s predictions (with ``weights`` instead of its own, e.g. averaged)."""
        with no_distribution():
            return self(source, weights).predict(data, verbose=0)


def barrier(placement) -> None:
    """Wait until every training process gets here (the end of training: the others must
    not exit while the chief still saves, or the engines report them as crashed)."""
    if placement.processes == 1:
        return
    if placement.strategy is not None:
        import tensorflow as tf

        strategy = placement.strategy

        @tf.function  # eagerly, MultiWorkerMirroredStrategy warns of its overhead
        def all_here():
            return strategy.reduce("SUM", strategy.run(lambda: tf.constant(1.0)), axis=None)

        all_here()
    else:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("doodle.train.end")
