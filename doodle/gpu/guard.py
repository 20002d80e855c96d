"""How a train or predict stage starts on a GPU box: lease its GPUs, show it only those,
load the backend, and stop before any work if the backend cannot use them.

Where nvidia-smi lists no GPU nothing happens here but a quiet backend start. Where it
lists some, :func:`start`

1. leases the GPUs ``runtime.gpus`` asks for (:mod:`doodle.gpu.lease`; a process started by
   the launcher uses the one GPU its parent leased for it), logs which, and sets
   ``CUDA_VISIBLE_DEVICES`` before the backend loads;
2. turns on memory on demand (TensorFlow's memory growth, JAX without preallocation), so
   that a GPU shared on purpose (a list in ``runtime.gpus``, another user) is not taken
   whole by the first process;
3. loads the backend with its CUDA start-up lines captured; if the backend sees a GPU
   they are replayed without the known noise, otherwise whole, followed by one line
   (:func:`unusable_line`: what nvidia-smi lists, what the backend sees, the likely cause,
   the install line that fixes it) and the stage stops, unless the CPU is asked for
   (``runtime.allow_cpu: true`` or ``DOODLE_ALLOW_CPU=1``).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass

from doodle.errors import ConfigError, DoodleError
from doodle.gpu import nvidia

ALLOW_CPU_ENV = "DOODLE_ALLOW_CPU"
OPT_IN = f"runtime.allow_cpu: true (-S runtime.allow_cpu=true) or {ALLOW_CPU_ENV}=1"


class GPUUnusable(DoodleError):
    """nvidia-smi lists a GPU this stage cannot use (and the CPU was not asked for)."""


@dataclass
class Start:
    """How this process started: what the driver lists, what it was given, why the CPU."""

    listed: list[nvidia.GPU]
    given: list[int]  # nvidia-smi indices this process may use (CUDA_VISIBLE_DEVICES)
    backend_gpus: int = 0
    cpu_reason: str = ""  # why the CPU ("" on a GPU)
    leased: bool = False


_STATE: Start | None = None


def current() -> Start | None:
    """How this process started (None when it did not start through :func:`start`)."""
    return _STATE


def cpu_allowed(runtime) -> str:
    """Which opt-in asks for the CPU (``runtime.allow_cpu`` / the variable), or ""."""
    if os.environ.get(ALLOW_CPU_ENV, "").strip().lower() not in ("", "0", "false", "no"):
        return f"{ALLOW_CPU_ENV}={os.environ[ALLOW_CPU_ENV]}"
    if runtime is not None and getattr(runtime, "allow_cpu", False):
        return "runtime.allow_cpu: true"
    return ""


def request(spec, listed: list[nvidia.GPU], stage: str, processes: int) -> tuple[list[int], int]:
    """(candidate indices, how many to lease) for ``runtime.gpus`` = ``spec``: auto leases
    one a process, a count that many, all every one, a list exactly those (predict: one
    of them); auto / all / a count choose among the GPUs CUDA_VISIBLE_DEVICES shows."""
    if isinstance(spec, list):
        missing = [i for i in spec if i not in {g.index for g in listed}]
        if missing:
            raise ConfigError(
                f"runtime.gpus: {spec}: nvidia-smi lists no GPU {', '.join(map(str, missing))} "
                f"(it lists {', '.join(str(g.index) for g in listed)})"
            )
        return list(spec), 1 if stage == "predict" else len(spec)
    visible = nvidia.visible_indices(listed)
    if stage == "predict":
        count = 1
    elif spec == "auto":
        count = processes
    elif spec == "all":
        count = len(visible)
        if processes > 1 and count != processes:
            raise ConfigError(
                f"runtime.gpus: all is {count} GPUs, but runtime.processes {processes} "
                f"trains one GPU each: set runtime.gpus: auto or {processes}"
            )
    else:
        count = int(spec)
    return visible, count


def _memory_on_demand() -> None:
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def _lease(stage: str, runtime, processes: int, listed, log) -> tuple[list[int], bool]:
    """Lease and show this process its GPUs; (indices, leased)."""
    from doodle.training.launch import launched

    if launched():  # the launcher's parent leased; this process got one GPU of them
        return nvidia.visible_indices(listed), False
    spec = getattr(runtime, "gpus", "auto")
    candidates, count = request(spec, listed, stage, processes)
    if count > len(candidates) or not candidates:
        shown = os.environ.get("CUDA_VISIBLE_DEVICES")
        hidden = f" (CUDA_VISIBLE_DEVICES={shown!r} shows {len(candidates)})" if shown else ""
        raise ConfigError(
            f"runtime.gpus: {spec} asks for {count} GPU{'s' * (count != 1)}, but nvidia-smi "
            f"lists {len(listed)}{hidden}"
        )
    from doodle.gpu.lease import acquire, describe

    what = f"runtime.gpus: {spec}" + (f", runtime.processes: {processes}" * (processes > 1))
    lease = acquire(candidates, count, stage, log, what)
    os.environ.update(nvidia.cuda_env(lease.indices))
    gpus = nvidia.by_index(listed, lease.indices)
    waited = ""
    if lease.waited_s:
        last = [h for h in lease.waited_for if h.get("gpu") in lease.indices and h.get("pid")]
        after = f" for {describe(last[0])}" if last else ""
        waited = f" after waiting {lease.waited_s:.0f}s{after}"
    log(
        f"{stage}: leased GPU {','.join(map(str, lease.indices))} "
        f"({'; '.join(g.name for g in gpus)}){waited}: "
        f"CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']} (pid {os.getpid()})"
    )
    return lease.indices, True


def _backend_gpus(backend: str) -> int:
    """GPUs the loaded backend finds (without creating a context on each)."""
    if backend == "tensorflow":
        import tensorflow as tf

        return len(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        try:
            return sum(d.platform in ("gpu", "cuda") for d in jax.devices())
        except RuntimeError:
            return 0
    return 0


def unusable_line(
    listed: list[nvidia.GPU], given: list[int], info: dict, opt_in: str = OPT_IN
) -> str:
    """The one line: what nvidia-smi lists, what the backend sees, why, the fix, the opt-in."""
    from doodle.gpu.backends import NAMES, built_with, likely_cause
    from doodle.gpu.install import fix_line

    shown = nvidia.by_index(listed, given) or listed
    return (
        f"nvidia-smi lists {nvidia.summary(listed)}, this process was given GPU "
        f"{','.join(str(g.index) for g in shown)}, but {NAMES[info['backend']]} "
        f"{info['version']} ({built_with(info)}) sees no GPU; likely cause: "
        f"{likely_cause(info)}; fix: {fix_line(info['backend'])}; to run on the CPU "
        f"anyway: {opt_in}"
    )


def start(
    stage: str, runtime=None, processes: int = 1, log: Callable[[str], None] | None = None
) -> Start:
    """Lease, load Keras and its backend, and check that the backend sees the GPUs (see the
    module's docstring). Raises :class:`GPUUnusable` (one line) or ConfigError."""
    global _STATE
    from doodle import cli

    log = log or (lambda line: print(line, flush=True))
    listed = nvidia.list_gpus()
    if not listed:
        cli.preload("keras")
        why = (
            "nvidia-smi lists no GPU" if nvidia.executable() else "no nvidia-smi, no NVIDIA driver"
        )
        _STATE = Start(listed, [], cpu_reason=why)
        return _STATE
    _memory_on_demand()
    allow = cpu_allowed(runtime)
    try:
        given, leased = _lease(stage, runtime, processes, listed, log)
    except ConfigError as e:
        if not allow:
            raise
        log(f"{stage}: {e}; on the CPU ({allow})")
        given, leased = [], False
        os.environ.update(nvidia.cuda_env([]))
    if cli.USER_LOG_LEVEL is None:  # the CUDA lines (warnings, errors) may say why
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "1"
        os.environ["ABSL_MIN_LOG_LEVEL"] = "1"
    lines: list[str] = []
    seen = 0
    try:
        with cli.captured_stderr() as lines:
            keras = importlib.import_module("keras")
            backend = keras.backend.backend()
            seen = _backend_gpus(backend)
    except BaseException:
        cli.replay(lines, filtered=False)
        raise
    _STATE = Start(listed, given, seen, leased=leased)
    if seen or not given:
        cli.replay(lines, filtered=cli.quiet())
        if not given:
            _STATE.cpu_reason = f"{allow}: no GPU given to this process"
        return _STATE
    cli.replay(lines, filtered=False)  # the backend's own account of its CUDA start-up
    from doodle.gpu.backends import inspect

    line = unusable_line(listed, given, inspect(backend))
    if not allow:
        raise GPUUnusable(line)
    _STATE.cpu_reason = f"{allow}: {info_name(backend)} cannot use the listed GPU"
    log(f"{stage}: running on the CPU ({allow}) although {line.split('; to run on the CPU')[0]}")
    return _STATE


def info_name(backend: str) -> str:
    from doodle.gpu.backends import NAMES

    return NAMES.get(backend, backend)
