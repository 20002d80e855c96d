"""Where and how a member trains: devices, data-parallel distribution, precision, XLA."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import keras

from doodle.errors import ConfigError


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


@dataclass
class Placement:
    """Where a member trains: the scope to build the model in, the replicas a global batch
    is split over, and this process's place among the training processes."""

    where: str
    replicas: int = 1
    process: int = 0
    processes: int = 1
    scope: AbstractContextManager = field(default_factory=nullcontext)
    strategy: object | None = None  # the tf.distribute strategy of a multi-worker run

    @property
    def chief(self) -> bool:
        """Process 0 alone writes the model, checkpoints and dvclive files."""
        return self.process == 0


def distribution(mode: str = "auto") -> Placement:
    """Pick the data-parallel set-up.

    ``mode``: auto | none | mirrored | multiworker | tpu (TF) / data_parallel (JAX).
    Several processes (``python -m doodle.training.launch``, or by hand): TensorFlow reads
    ``TF_CONFIG`` (MultiWorkerMirroredStrategy); JAX joins through
    ``keras.distribution.initialize()`` from ``KERAS_DISTRIBUTION_*`` variables.
    """
    backend = keras.backend.backend()
    _check_mode(mode, backend)
    if backend == "tensorflow" and (
        mode == "multiworker" or (mode == "auto" and "TF_CONFIG" in os.environ)
    ):
        return _tf_multiworker()  # first: it must configure TensorFlow's runtime itself
    if backend == "jax" and "KERAS_DISTRIBUTION_JOB_ADDRESSES" in os.environ:
        keras.distribution.initialize()  # likewise before JAX's first call
    kind, n = accelerators()
    if mode == "none":
        return Placement(f"single device ({kind})")
    if backend == "tensorflow":
        return _tf_placement(mode, kind, n)
    if backend == "jax":
        import jax

        devices = jax.devices()  # every process's devices
        if mode == "data_parallel" or (mode == "auto" and len(devices) > 1):
            # Each process feeds its own share of every batch (the loader is sharded),
            # so Keras must not shard it again.
            dist = keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)
            keras.distribution.set_distribution(dist)
            procs = jax.process_count()
            return Placement(
                f"DataParallel x{len(devices)} ({kind}, {procs} process{'es' * (procs > 1)})",
                replicas=len(devices),
                process=jax.process_index(),
                processes=procs,
            )
    return Placement(f"single device ({kind})")


# The set-ups each backend can honour (train.distribute); any other stops the stage.
MODES = {
    "tensorflow": ("auto", "none", "mirrored", "multiworker", "tpu"),
    "jax": ("auto", "none", "data_parallel"),
}


def _check_mode(mode: str, backend: str) -> None:
    allowed = MODES.get(backend, ("auto", "none"))
    if mode not in allowed:
        raise ConfigError(
            f"train.distribute: {mode} cannot run under KERAS_BACKEND={backend}; "
            f"choose {', '.join(allowed)}"
        )


def _tf_placement(mode: str, kind: str, n: int) -> Placement:
    import tensorflow as tf

    if mode == "tpu" and kind != "tpu":
        raise ConfigError("train.distribute: tpu, but TensorFlow finds no TPU here")
    if mode == "tpu" or (mode == "auto" and kind == "tpu"):
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        strategy = tf.distribute.TPUStrategy(resolver)
    elif mode == "mirrored" or (mode == "auto" and kind == "gpu" and n > 1):
        strategy = tf.distribute.MirroredStrategy()
    else:
        return Placement(f"single device ({kind})")
    replicas = strategy.num_replicas_in_sync
    return Placement(f"{type(strategy).__name__} x{replicas}", replicas, scope=strategy.scope())


def _tf_multiworker() -> Placement:
    import tensorflow as tf

    from doodle.training.launch import tf_config_rank
    from doodle.training.multiworker import patch_keras_for_multiworker

    patch_keras_for_multiworker()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    process, processes = tf_config_rank()
    kind, _ = accelerators()
    replicas = strategy.num_replicas_in_sync
    return Placement(
        f"MultiWorkerMirroredStrategy x{replicas} ({kind}, {processes} processes)",
        replicas,
        process,
        processes,
        strategy.scope(),
        strategy,
    )


@dataclass(frozen=True)
class Device:
    """What the precision choice needs to know about an accelerator."""

    kind: str  # cpu | gpu | tpu
    name: str = ""
    compute_capability: tuple[int, int] | None = None  # NVIDIA GPUs


def devices() -> list[Device]:
    """This process's devices as the active backend sees them (one entry for the CPU)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        out = []
        for k, d in enumerate(jax.local_devices()):
            cc = _capability(getattr(d, "compute_capability", None))  # "9.0" on CUDA devices
            kind = "gpu" if d.platform in ("gpu", "cuda") else d.platform
            out.append(Device(kind, str(d.device_kind), cc or _driver_capability(kind, k)))
        return [Device("cpu")] if out[0].kind == "cpu" else out
    if backend == "tensorflow":
        import tensorflow as tf

        if tf.config.list_logical_devices("TPU"):
            return [Device("tpu", "TPU")]
        gpus = tf.config.list_physical_devices("GPU")
        out = []
        for k, g in enumerate(gpus):
            details = tf.config.experimental.get_device_details(g)
            cc = _capability(details.get("compute_capability")) or _driver_capability("gpu", k)
            out.append(Device("gpu", str(details.get("device_name", g.name)), cc))
        return out or [Device("cpu")]
    return [Device("cpu")]


def _driver_capability(kind: str, position: int) -> tuple[int, int] | None:
    """The compute capability nvidia-smi gives the ``position``-th GPU this process sees,
    where the backend does not say (precision ``auto`` then still knows the GPU)."""
    if kind != "gpu":
        return None
    from doodle.gpu import nvidia

    listed = nvidia.list_gpus()
    shown = nvidia.by_index(listed, nvidia.visible_indices(listed))
    return shown[position].compute_capability if position < len(shown) else None


def _capability(cc) -> tuple[int, int] | None:
    """``(8, 0)`` from TensorFlow's tuple or JAX's ``"8.0"``; None when unknown."""
    if cc is None:
        return None
    try:
        major, minor = (cc.split(".") if isinstance(cc, str) else cc)[:2]
        return int(major), int(minor)
    except (TypeError, ValueError):
        return None


def device_line(name: str, placement: Placement, devs: list[Device], policy: str, why: str) -> str:
    """The first line of a training log: the device(s), the precision and why, the replicas
    (``train: base on 1 GPU (NVIDIA A100, compute capability 8.0; CUDA_VISIBLE_DEVICES=1);
    precision mixed_bfloat16 (auto: ...); 1 replica (single device (gpu))``)."""
    from doodle.gpu.guard import current

    kinds = {d.kind for d in devs}
    if kinds == {"gpu"}:
        names = "; ".join(
            d.name
            + (
                ", compute capability {}.{}".format(*d.compute_capability)
                * bool(d.compute_capability)
            )
            for d in devs
        )
        shown = os.environ.get("CUDA_VISIBLE_DEVICES")
        shown = f"; CUDA_VISIBLE_DEVICES={shown}" if shown is not None else ""
        where = f"{len(devs)} GPU{'s' * (len(devs) > 1)} ({names}{shown})"
    elif kinds == {"tpu"}:
        where = f"{len(devs)} TPU device{'s' * (len(devs) > 1)}"
    else:
        state = current()
        reason = state.cpu_reason if state and state.cpu_reason else "the backend sees no GPU"
        where = f"the CPU ({reason})"
    n = placement.replicas
    return (
        f"train: {name} on {where}; precision {policy} ({why}); "
        f"{n} replica{'s' * (n > 1)} ({placement.where})"
    )


POLICIES = {"off": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def choose_precision(mode: str, devs: list[Device]) -> tuple[str, str]:
    """(Keras dtype policy, why) for ``train.mixed_precision``.

    ``auto``: bf16 where every accelerator has bf16 units (TPU; NVIDIA compute capability
    8.0+: A100, L4, H100, H200), fp16 with loss scaling on older NVIDIA GPUs that compute
    fp16 fast (6.0+: P100, V100, T4: Kaggle's notebooks), float32 on a CPU (mixed
    precision there is slower) or on GPUs older or unknown. ``off`` / ``bf16`` / ``fp16``
    as set. Keras wraps the optimizer in a LossScaleOptimizer under fp16.
    """
    if mode in POLICIES:
        return POLICIES[mode], f"train.mixed_precision: {mode}"
    if mode != "auto":
        raise ValueError(f"mixed_precision {mode!r}: choose auto, off, bf16 or fp16")
    kinds = {d.kind for d in devs}
    if kinds == {"tpu"}:
        return POLICIES["bf16"], "auto: TPU (bf16 units)"
    if kinds != {"gpu"}:
        return POLICIES["off"], "auto: CPU (mixed precision is slower there)"
    caps = [d.compute_capability for d in devs]
    names = ", ".join(sorted({d.name or "GPU" for d in devs}))
    if any(c is None for c in caps):
        return POLICIES["off"], f"auto: {names}, compute capability unknown"
    low = min(caps)
    cc = f"compute capability {low[0]}.{low[1]}"
    if low >= (8, 0):
        return POLICIES["bf16"], f"auto: {names}, {cc} (bf16 units)"
    if low >= (6, 0):
        return POLICIES["fp16"], f"auto: {names}, {cc} (no bf16 units; fp16 + loss scaling)"
    return POLICIES["off"], f"auto: {names}, {cc} (no fast half precision)"


def set_precision(mode: str, devs: list[Device]) -> tuple[str, str]:
    """Choose (see :func:`choose_precision`) and set the global dtype policy."""
    policy, why = choose_precision(mode, devs)
    keras.mixed_precision.set_global_policy(policy)
    return policy, why


def jit_setting(mode, kind: str) -> bool | str:
    """auto (XLA on GPU/TPU; off on CPU, where compiling costs a minute and gains little)
    | true | false."""
    if str(mode) == "auto":
        return False if kind == "cpu" else "auto"
    return bool(mode)
