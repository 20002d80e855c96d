"""Where and how a member trains: devices, data-parallel distribution, precision, XLA."""

from __future__ import annotations

import os
from contextlib import nullcontext

import keras


def accelerators() -> tuple[str, int]:
    """('gpu'|'tpu'|'cpu', count) for the active backend."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        devs = jax.devices()
        kind = devs[0].platform
        return ("cpu", 1) if kind == "cpu" else (kind, len(devs))
    if backend == "tensorflow":
        import tensorflow as tf

        if tf.config.list_logical_devices("TPU"):
            return "tpu", len(tf.config.list_logical_devices("TPU"))
        gpus = tf.config.list_physical_devices("GPU")
        return ("gpu", len(gpus)) if gpus else ("cpu", 1)
    return "cpu", 1


def distribution(mode: str = "auto"):
    """Pick the data-parallel set-up: returns (scope context, replicas, description).

    ``mode``: auto | none | mirrored | multiworker | tpu (TF) / data_parallel (JAX).
    Multi-host: TensorFlow reads ``TF_CONFIG`` (MultiWorkerMirroredStrategy); JAX uses
    ``keras.distribution.initialize()`` from its coordinator environment variables.
    """
    backend = keras.backend.backend()
    kind, n = accelerators()
    if mode == "none":
        return nullcontext(), 1, f"single device ({kind})"
    if backend == "tensorflow":
        import tensorflow as tf

        if mode == "tpu" or (mode == "auto" and kind == "tpu"):
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            strategy = tf.distribute.TPUStrategy(resolver)
        elif mode == "multiworker" or (mode == "auto" and "TF_CONFIG" in os.environ):
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
        elif mode == "mirrored" or (mode == "auto" and kind == "gpu" and n > 1):
            strategy = tf.distribute.MirroredStrategy()
        else:
            return nullcontext(), 1, f"single device ({kind})"
        return (
            strategy.scope(),
            strategy.num_replicas_in_sync,
            f"{type(strategy).__name__} x{strategy.num_replicas_in_sync}",
        )
    if backend == "jax":
        import jax

        if "KERAS_DISTRIBUTION_JOB_ADDRESSES" in os.environ:
            keras.distribution.initialize()
        devices = jax.devices()
        if mode == "data_parallel" or (mode == "auto" and len(devices) > 1):
            keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
            return nullcontext(), len(devices), f"DataParallel x{len(devices)} ({kind})"
    return nullcontext(), 1, f"single device ({kind})"


def set_precision(mode: str, kind: str) -> str:
    """Set the global dtype policy: auto (bf16 on GPU/TPU, off on CPU) | off | bf16 | fp16."""
    policy = {
        "off": "float32",
        "bf16": "mixed_bfloat16",
        "fp16": "mixed_float16",
        "auto": "float32" if kind == "cpu" else "mixed_bfloat16",
    }.get(str(mode))
    if policy is None:
        raise ValueError(f"mixed_precision {mode!r}: choose auto, off, bf16 or fp16")
    keras.mixed_precision.set_global_policy(policy)
    return policy


def jit_setting(mode, kind: str) -> bool | str:
    """auto (XLA on GPU/TPU; off on CPU, where compiling costs a minute and gains little)
    | true | false."""
    if str(mode) == "auto":
        return False if kind == "cpu" else "auto"
    return bool(mode)
