"""Training one ensemble member: hardware, precision, schedule, checkpoints, tracking.

Backend-agnostic Keras 3 (TensorFlow by default, JAX with ``KERAS_BACKEND=jax``).

Resume: every ``checkpoint_every`` steps and at each epoch end the weights and optimizer
state are saved with the (epoch, step) they belong to. A run killed at any point restarts
from the last checkpoint when ``dvc repro`` runs again: the optimizer step, and so the
learning-rate schedule, is restored, and the data stream (a pure function of seed, epoch
and step) continues with the very batch that was next.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from doodle.config import MemberConfig, RuntimeConfig
from doodle.dataset import DrawingDataset
from doodle.fileio import atomic_path, remove
from doodle.metrics import map_at_k, top_k
from doodle.model import build_model
from doodle.shards import open_shard, read_classes, read_header, train_shard_paths

# Settings that change what a checkpoint means; a checkpoint made under others is discarded.
_RESUME_KEYS = ("arch", "img_size", "channels", "alpha", "seed", "batch_size", "epochs",
                "steps_per_epoch", "learning_rate", "warmup_epochs", "weight_decay",
                "label_smoothing", "line_width", "augment", "shuffle_buffer", "weights",
                "dropout", "mixed_precision", "scale_lr", "input", "bn_momentum")


# -- hardware -------------------------------------------------------------------------------
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
        return (strategy.scope(), strategy.num_replicas_in_sync,
                f"{type(strategy).__name__} x{strategy.num_replicas_in_sync}")
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
    policy = {"off": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16",
              "auto": "float32" if kind == "cpu" else "mixed_bfloat16"}.get(str(mode))
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


# -- schedule -------------------------------------------------------------------------------
def lr_schedule(lr: float, total_steps: int, warmup_steps: int):
    """One-cycle: linear warm-up from lr/10 to lr, then cosine decay to ~0."""
    warmup_steps = min(max(0, warmup_steps), max(0, total_steps - 1))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=lr / 10 if warmup_steps else lr,
        decay_steps=max(1, total_steps - warmup_steps), alpha=0.01,
        warmup_target=lr if warmup_steps else None, warmup_steps=warmup_steps)


# -- callbacks ------------------------------------------------------------------------------
class StepCheckpoint(keras.callbacks.Callback):
    """Weights + optimizer state every ``every`` steps and at each epoch end."""

    def __init__(self, folder: Path, every: int, steps: int, fingerprint: str, epoch: int,
                 start_step: int):
        super().__init__()
        self.folder, self.every, self.steps = Path(folder), int(every), int(steps)
        self.fingerprint = fingerprint
        self.epoch, self.start_step = epoch, start_step

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self._saved = self.start_step

    def on_train_batch_end(self, batch, logs=None):
        # With steps_per_execution > 1 Keras calls this every few steps: save whenever a
        # multiple of `every` was crossed, not only when hit exactly.
        step = self.start_step + batch + 1
        if self.every > 0 and step // self.every > self._saved // self.every \
                and step < self.steps:
            self.save(self.epoch, step)

    def on_epoch_end(self, epoch, logs=None):
        self.start_step = 0
        self.save(epoch + 1, 0)

    def save(self, epoch: int, step: int) -> None:
        # Weights under a new name first, then the state file that points at them: a kill
        # at any moment leaves a state file naming a complete weights file.
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"ckpt-e{epoch:04d}-s{step:06d}.weights.h5"
        with atomic_path(self.folder / name) as tmp:
            self.model.save_weights(str(tmp) + ".weights.h5")
            os.replace(str(tmp) + ".weights.h5", tmp)
        self._saved = step
        state = {"epoch": epoch, "step": step, "weights": name, "fingerprint": self.fingerprint}
        with atomic_path(self.folder / "state.json") as tmp:
            tmp.write_text(json.dumps(state))
        for old in self.folder.glob("ckpt-*.weights.h5"):
            if old.name != name:
                old.unlink()


def load_checkpoint(folder: Path, fingerprint: str) -> dict | None:
    """The last checkpoint's state if it belongs to this config, else None (and clear it)."""
    state_file = Path(folder) / "state.json"
    if not state_file.is_file():
        return None
    try:
        state = json.loads(state_file.read_text())
    except json.JSONDecodeError:
        state = {}
    if state.get("fingerprint") != fingerprint or not (Path(folder) / state["weights"]).is_file():
        print(f"train: ignoring checkpoint in {folder} (made with other settings)")
        remove(folder)
        return None
    return state


class HoldoutEval(keras.callbacks.Callback):
    """Per epoch: holdout MAP@3 / accuracy / top-3, learning rate and images per second."""

    def __init__(self, holdout: DrawingDataset | None, labels: np.ndarray | None,
                 global_batch: int):
        super().__init__()
        self.holdout, self.labels, self.global_batch = holdout, labels, global_batch

    def on_epoch_begin(self, epoch, logs=None):
        self._t0, self._n = time.perf_counter(), 0

    def on_train_batch_end(self, batch, logs=None):
        self._n = batch + 1

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        seconds = time.perf_counter() - self._t0
        logs["images_per_s"] = self._n * self.global_batch / max(seconds, 1e-9)
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(
            self.model.optimizer.learning_rate))
        if self.holdout is not None:
            probs = self.model.predict(self.holdout, verbose=0)
            top = top_k(probs, 3)
            logs["val_map3"] = map_at_k(top, self.labels)
            logs["val_accuracy"] = float((top[:, 0] == self.labels).mean())
            logs["val_top3"] = float((top == self.labels[:, None]).any(1).mean())


class LiveLogger(keras.callbacks.Callback):
    """Epoch logs -> dvclive (curves for ``dvc plots show``, summary for ``dvc exp show``)."""

    def __init__(self, live):
        super().__init__()
        self.live = live

    def on_epoch_end(self, epoch, logs=None):
        for k, v in (logs or {}).items():
            self.live.log_metric(k, float(v))
        self.live.next_step()


# -- the whole thing ------------------------------------------------------------------------
def fingerprint(cfg: MemberConfig, shard_dir: Path, global_batch: int) -> str:
    """What a checkpoint belongs to: the settings that shape training, the global batch
    (the stream position is step x global batch), and the data (class list and every
    shard's header, so re-sharded data never resumes a stale checkpoint)."""
    shard_dir = Path(shard_dir)
    data = [(shard_dir / "classes.json").read_text()]
    data += [json.dumps(read_header(p)[0], sort_keys=True)
             for p in train_shard_paths(shard_dir)]
    key = {k: getattr(cfg, k) for k in _RESUME_KEYS} | {
        "global_batch": global_batch, "backend": keras.backend.backend(),
        "data": hashlib.sha256("\n".join(data).encode()).hexdigest()}
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class Streams:
    """The training stream factory and the holdout, from shards or TFRecords."""

    train: Callable[[int, int], object]  # (epoch, start_step) -> a dataset Keras can fit
    n_train: int
    holdout: object | None
    labels: np.ndarray | None
    fixed_steps: bool  # tf.data repeats forever: fit needs steps_per_epoch


def make_streams(cfg: MemberConfig, runtime: RuntimeConfig, shard_dir: Path, global_batch: int,
                 n_classes: int, tfrec_dir: Path = Path("data/tfrecord")) -> Streams:
    """PyDataset over the shards (default), or tf.data over data/tfrecord when
    ``input: tfrecord`` -- the same drawings through the same renderer."""
    steps = cfg.steps_per_epoch
    train_paths = train_shard_paths(shard_dir)
    if not train_paths:
        raise FileNotFoundError(f"{shard_dir}: no train-*.qds shards; run the shard stage")
    common = dict(img_size=cfg.img_size, channels=cfg.channels, line_width=cfg.line_width,
                  n_classes=n_classes)
    stream = dict(batch_size=global_batch, training=True, seed=cfg.seed, augment=cfg.augment,
                  shuffle_buffer=cfg.shuffle_buffer)
    eval_batch, workers = runtime.eval_batch_size, runtime.workers
    n_train = int(sum(read_header(p)[0]["n"] for p in train_paths))
    holdout_path = Path(shard_dir) / "holdout.qds"
    has_holdout = holdout_path.is_file() and read_header(holdout_path)[0]["n"] > 0
    labels = (open_shard(holdout_path).label.astype(np.int64) if has_holdout else None)

    if cfg.input == "tfrecord":
        from doodle.tfrecord import make_tf_dataset, split_files

        return Streams(
            train=lambda epoch, start: make_tf_dataset(
                split_files(tfrec_dir, "train"), skip_batches=epoch * steps + start,
                **stream, **common),
            n_train=n_train, labels=labels, fixed_steps=True,
            holdout=make_tf_dataset(split_files(tfrec_dir, "holdout"), batch_size=eval_batch,
                                    **common) if has_holdout else None)
    return Streams(
        train=lambda epoch, start: DrawingDataset(
            train_paths, steps_per_epoch=steps, epoch=epoch, start_step=start,
            workers=workers, **stream, **common),
        n_train=n_train, labels=labels, fixed_steps=False,
        holdout=DrawingDataset([holdout_path], batch_size=eval_batch, workers=workers,
                               **common) if has_holdout else None)


def compile_model(cfg: MemberConfig, n_classes: int, kind: str, lr: float) -> keras.Model:
    """The member's model with AdamW on the one-cycle schedule, label smoothing and the
    accuracy / top-3 metrics (call inside the distribution scope)."""
    epochs, steps = cfg.epochs, cfg.steps_per_epoch
    model = build_model(cfg.arch, cfg.img_size, cfg.channels, n_classes, alpha=cfg.alpha,
                        weights=cfg.weights, dropout=cfg.dropout, bn_momentum=cfg.bn_momentum)
    optimizer = keras.optimizers.AdamW(
        learning_rate=lr_schedule(lr, epochs * steps, int(cfg.warmup_epochs * steps)),
        weight_decay=cfg.weight_decay)
    model.compile(optimizer=optimizer,
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
                  metrics=[keras.metrics.CategoricalAccuracy(name="accuracy"),
                           keras.metrics.TopKCategoricalAccuracy(3, name="top3")],
                  jit_compile=jit_setting(cfg.jit, kind),
                  steps_per_execution=cfg.steps_per_execution)
    return model


def fit_segments(epochs: int, epoch0: int, step0: int) -> list[tuple[int, int, int]]:
    """``(initial_epoch, start_step, end_epoch)`` of each ``fit`` call: a run resumed
    mid-epoch first finishes that epoch (from ``step0``), then runs the remaining ones."""
    segments = []
    if epoch0 < epochs and step0:
        segments.append((epoch0, step0, epoch0 + 1))
        epoch0 += 1
    if epoch0 < epochs:
        segments.append((epoch0, 0, epochs))
    return segments


def train_member(cfg: MemberConfig, runtime: RuntimeConfig, shard_dir: Path, model_dir: Path,
                 live_dir: Path, tfrec_dir: Path = Path("data/tfrecord")) -> dict:
    """Train one member; writes ``model_dir/model.keras``; returns a summary."""
    from dvclive import Live

    shard_dir, model_dir = Path(shard_dir), Path(model_dir)
    classes = read_classes(shard_dir)
    kind, _ = accelerators()
    policy = set_precision(cfg.mixed_precision, kind)
    keras.utils.set_random_seed(cfg.seed)
    scope, replicas, where = distribution(cfg.distribute)
    global_batch = cfg.batch_size * replicas
    lr = cfg.learning_rate * (replicas if cfg.scale_lr else 1)
    epochs, steps = cfg.epochs, cfg.steps_per_epoch
    data = make_streams(cfg, runtime, shard_dir, global_batch, len(classes), tfrec_dir)
    fp = fingerprint(cfg, shard_dir, global_batch)
    ckpt_dir = model_dir / "checkpoints"
    state = load_checkpoint(ckpt_dir, fp)

    with scope:
        model = compile_model(cfg, len(classes), kind, lr)
        epoch0, step0 = 0, 0
        if state:
            model.optimizer.build(model.trainable_variables)
            model.load_weights(ckpt_dir / state["weights"])
            epoch0, step0 = int(state["epoch"]), int(state["step"])
            done = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
            print(f"train: resuming {cfg.name} at epoch {epoch0}, step {step0} "
                  f"(optimizer step {done})")

    print(f"train: {cfg.name}: {cfg.arch} {cfg.img_size}px "
          f"x{cfg.channels}, {model.count_params():,} params, {where}, policy "
          f"{policy}, global batch {global_batch}, lr {lr:g}, {epochs} epochs x {steps} "
          f"steps, {data.n_train:,} train drawings, "
          f"{0 if data.labels is None else len(data.labels):,} holdout")
    live = Live(str(live_dir), resume=state is not None, save_dvc_exp=False, dvcyaml=None)
    callbacks = [HoldoutEval(data.holdout, data.labels, global_batch), LiveLogger(live),
                 StepCheckpoint(ckpt_dir, runtime.checkpoint_every, steps, fp,
                                epoch0, step0)]
    t0 = time.time()
    history: dict[str, list] = {}
    for first, start, end in fit_segments(epochs, epoch0, step0):
        # shuffle=False: the stream already shuffles, and Keras' batch-order shuffle would
        # make a resumed epoch repeat some batches and skip others.
        h = model.fit(data.train(first, start), shuffle=False,
                      steps_per_epoch=(steps - start) if data.fixed_steps else None,
                      initial_epoch=first, epochs=end, callbacks=callbacks,
                      verbose=runtime.verbose)
        for k, v in h.history.items():
            history.setdefault(k, []).extend(v)
    live.end()
    with atomic_path(model_dir / "model.keras") as tmp:
        model.save(str(tmp) + ".keras")  # Keras insists on the suffix
        os.replace(str(tmp) + ".keras", tmp)
    remove(ckpt_dir)  # finished: the next run with other settings starts fresh
    summary = {"name": cfg.name, "seconds": round(time.time() - t0, 1), "where": where,
               "policy": policy, **{k: float(v[-1]) for k, v in history.items()}}
    print(f"train: {cfg.name} done in {summary['seconds']:.0f}s; "
          + ", ".join(f"{k}={v:.4f}" for k, v in summary.items()
                      if k in ("loss", "accuracy", "top3", "val_map3", "images_per_s")))
    return summary
