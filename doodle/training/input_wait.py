"""The input wait: how much of a training run the fit loop spent waiting for its next batch.

Per epoch, beside ``images_per_s`` (dvclive, so ``dvclive/<member>/metrics.json``) and in
the train stage's summary line:

* ``input_wait`` -- the share of the epoch's training wall time (from the first batch asked
  for to the last step done; the holdout evaluation after it left out) during which the
  loop had no batch to work on. Above ``WARN_SHARE`` the loader is the bottleneck: the
  stage prints one warning line naming the knobs that help (``runtime.workers``,
  ``img_size``).
* ``step_time_s`` -- the mean seconds a step took without that wait (the step itself and
  its callbacks, step checkpoints included).

How it is measured, honestly on both engines. Keras 3 takes a PyDataset's batch inside
the step, after ``on_train_batch_begin``, so no gap between callbacks shows the wait:

* TensorFlow: ``GetNext`` in the compiled step (a ``tf.function``), from ``tf.data``'s
  ``from_generator`` over the PyDataset (prefetched with one worker, fed by Keras'
  thread pool with more); the TFRecord and multi-worker pipelines are ``tf.data`` too.
* JAX: ``next()`` on the batch iterator in Python, inside the train function; on a GPU
  (one device, no distribution) Keras fetches one batch ahead to start its copy to the
  device early, so step ``k`` also waits for batch ``k + 1``.

So the loaders stamp when each training batch is ready (:func:`batch_ready`, called by
``DrawingDataset.batch_at`` and the TFRecord renderer, in whatever thread renders it,
keyed by the global step ``epoch * steps_per_epoch + step``). A step cannot start before
the batches it takes exist. For step ``k`` beginning (``on_train_batch_begin``) at ``b_k``
and ending at ``e_k``, its batches ready at ``r_k`` (the latest of batch ``k`` and, with
JAX's one-ahead fetch, batch ``k + 1`` of the same epoch)::

    wait_k = clip(max(b_k, r_k) - e_(k-1), 0, e_k - e_(k-1))      (e_(-1): the epoch's start)

The stamps callback runs last (after step checkpoints: a save is not counted as waiting).
What it cannot see: the conversion of a ready numpy batch to a tensor (counted as step
time; about a millisecond for 4 MB); with ``steps_per_execution`` > 1, the batches after
the first of each group (a lower bound); Keras' progress bar, updated after the stamps
(microseconds, counted as wait). A step whose batch carries no stamp (a loader that does
not call :func:`batch_ready`) is left out of the figures, never counted as no wait.

Several processes: each measures its own wait; every epoch the processes exchange their
figures (one tiny collective) and ``input_wait`` / ``step_time_s`` are the worst process's,
so the chief's dvclive holds the worst; each process's summary line gives its own too.
"""

from __future__ import annotations

import math
import os
import time

import keras
import numpy as np

WARN_SHARE = 0.10  # above this share of a step's wall time spent waiting: warn

_active: dict[int, float] | None = None  # the ready stamps of the run being measured


def batch_ready(step: int) -> None:
    """A loader has the training batch of global step ``step`` ready (no-op unless a fit
    with :class:`InputWait` is running). Called from loader threads."""
    ready = _active
    if ready is not None:
        ready[int(step)] = time.perf_counter()


def cpu_cores() -> int:
    """Cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class _Epoch:
    """One epoch's running sums."""

    def __init__(self, epoch: int):
        self.epoch = epoch
        self.wall = self.wait = 0.0
        self.steps = self.unmeasured = 0

    def add(self, wall: float, wait: float | None) -> None:
        if wait is None:
            self.unmeasured += 1
            return
        self.wall += wall
        self.wait += min(max(wait, 0.0), wall)
        self.steps += 1

    def figures(self) -> tuple[float, float]:
        """(share waited, seconds a step without the wait); NaN when nothing was measured."""
        if not self.steps or self.wall <= 0:
            return math.nan, math.nan
        return self.wait / self.wall, (self.wall - self.wait) / self.steps


class _Stamps(keras.callbacks.Callback):
    """The time stamps of one ``fit`` call; must be the last callback."""

    def __init__(self, owner: InputWait, first: int, start: int, lookahead: int | None = None):
        super().__init__()
        self.owner, self.first, self.start = owner, first, start
        self.lookahead = keras_lookahead() if lookahead is None else lookahead
        self.ready: dict[int, float] = {}

    def on_train_begin(self, logs=None):
        global _active
        self.ready.clear()
        _active = self.ready

    def on_train_end(self, logs=None):
        global _active
        _active = None
        self.ready.clear()

    def on_epoch_begin(self, epoch, logs=None):
        self.offset = epoch * self.owner.steps + (self.start if epoch == self.first else 0)
        steps = (self.params or {}).get("steps") or self.owner.steps
        self.last_key = self.offset + int(steps) - 1  # the one-ahead fetch stops there
        self.owner.current = _Epoch(epoch)
        self.prev_end = time.perf_counter()  # the first batch is asked for now

    def on_train_batch_begin(self, batch, logs=None):
        self.begin, self.first_batch = time.perf_counter(), batch

    def on_train_batch_end(self, batch, logs=None):
        end = time.perf_counter()
        first_key = self.offset + self.first_batch
        for k in range(first_key + 1, self.offset + batch + 1):  # the rest of a group
            self.ready.pop(k, None)
        ready = self.ready.pop(first_key, None)
        ahead = min(first_key + self.lookahead, self.last_key)
        if ready is not None and ahead > first_key:
            later = self.ready.get(ahead)  # taken now, trained on next step
            ready = None if later is None else max(ready, later)
        wait = None if ready is None else max(self.begin, ready) - self.prev_end
        self.owner.current.add(end - self.prev_end, wait)
        self.prev_end = end


def keras_lookahead() -> int:
    """Batches Keras' fit loop fetches ahead of the step it runs: 1 on JAX with one
    accelerator and no distribution (``JAXEpochIterator._one_batch_ahead_iterator``)."""
    if keras.backend.backend() != "jax" or keras.distribution.distribution() is not None:
        return 0
    import jax

    return 0 if jax.default_backend() == "cpu" else 1


class InputWait(keras.callbacks.Callback):
    """Per epoch: ``input_wait`` and ``step_time_s`` into the logs (place it before the
    dvclive logger), the worst process's when there are several. Each ``fit`` call also
    takes ``stamps(first, start)`` as its *last* callback."""

    def __init__(self, steps_per_epoch: int, placement=None):
        super().__init__()
        self.steps = int(steps_per_epoch)
        self.placement = placement
        self.processes = getattr(placement, "processes", 1)
        self.current: _Epoch | None = None
        self.own: tuple[float, float] = (math.nan, math.nan)  # this process, last epoch
        self.worst: tuple[float, float, int] = (math.nan, math.nan, 0)  # + which process
        self.epoch = -1

    def stamps(
        self, first: int = 0, start: int = 0, lookahead: int | None = None
    ) -> keras.callbacks.Callback:
        """The stamps callback of a ``fit`` call starting at epoch ``first``, step
        ``start`` (a resumed epoch starts mid-way); ``lookahead``: batches Keras fetches
        ahead of the step it runs (default: :func:`keras_lookahead`)."""
        return _Stamps(self, first, start, lookahead)

    def restart_epoch(self) -> None:
        """Count this epoch's figures from now on (a benchmark, after its warm-up steps)."""
        if self.current is not None:
            self.current = _Epoch(self.current.epoch)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        if self.current is None:
            return
        self.epoch = epoch
        self.own = self.current.figures()
        rows = gather_rows(self.placement, list(self.own))
        shares = np.where(np.isnan(rows[:, 0]), -1.0, rows[:, 0])
        p = int(np.argmax(shares))
        self.worst = (float(rows[p, 0]), float(rows[p, 1]), p)
        if not math.isnan(self.worst[0]):
            logs["input_wait"] = self.worst[0]
            logs["step_time_s"] = self.worst[1]

    # -- what the train stage prints -----------------------------------------------------
    def summary(self) -> str:
        """The summary line's phrase, e.g. ``input wait 3.1% (0.052 s a step without it)``."""
        share, step, p = self.worst
        if math.isnan(share):
            return "input wait not measured"
        text = f"input wait {share:.1%} ({step:.3g} s a step without it)"
        if self.processes > 1:
            text += (
                f", worst of {self.processes} processes (process {p}); "
                f"this process {self.own[0]:.1%}"
            )
        return text

    def warning(self, name: str, workers: int, img_size: int | None) -> str | None:
        """One line when the last epoch waited more than ``WARN_SHARE``, naming the knobs."""
        share = self.worst[0]
        if math.isnan(share) or share <= WARN_SHARE:
            return None
        cores = cpu_cores()
        if self.processes > 1:
            where = f"process {self.worst[2]}, "
        else:
            where = ""
        knobs = []
        if workers < cores:
            knobs.append(f"raise runtime.workers (now {workers}; {cores} cores here)")
        else:
            knobs.append(f"runtime.workers ({workers}) already covers the {cores} cores here")
        if img_size is not None:
            knobs.append(f"lower img_size (now {img_size}: rendering grows with the pixels)")
        return (
            f"train: warning: {name} waited for its input {share:.0%} of the time in epoch "
            f"{self.epoch + 1} ({where}above {WARN_SHARE:.0%}): the loader cannot keep up "
            f"with the model; " + "; ".join(knobs)
        )


def gather_rows(placement, row: list[float]) -> np.ndarray:
    """Every training process's ``row`` (shape ``(processes, len(row))``, in process order);
    a collective step: every process must call it at the same point."""
    processes = getattr(placement, "processes", 1)
    mine = np.asarray(row, np.float32)
    if processes <= 1:
        return mine[None, :]
    if getattr(placement, "strategy", None) is not None:
        return _gather_tf(placement, mine)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(mine)).reshape(processes, -1)


def _gather_tf(placement, mine: np.ndarray) -> np.ndarray:
    """MultiWorkerMirroredStrategy has SUM but no gather of host values: each process sums
    a table holding only its own row."""
    import tensorflow as tf

    strategy, processes = placement.strategy, placement.processes
    table = np.zeros((processes, len(mine)), np.float32)
    table[placement.process] = mine
    local = max(1, strategy.num_replicas_in_sync // processes)  # replicas in this process

    @tf.function  # eagerly, MultiWorkerMirroredStrategy warns of its overhead
    def exchange():
        return strategy.reduce("SUM", strategy.run(lambda: tf.constant(table)), axis=None)

    return exchange().numpy() / local
