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
from contextlib import nullcontext
from pathlib import Path

import keras
import numpy as np

from doodle.augment import Augment
from doodle.dataset import DrawingDataset
from doodle.fileio import atomic_path, remove
from doodle.metrics import map_at_k, top_k
from doodle.model import build_model
from doodle.shards import read_classes, read_header, train_shard_paths

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

    def on_train_batch_end(self, batch, logs=None):
        step = self.start_step + batch + 1
        if self.every > 0 and step % self.every == 0 and step < self.steps:
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
def fingerprint(cfg: dict, n_train: int, n_classes: int) -> str:
    key = {k: cfg.get(k) for k in _RESUME_KEYS} | {"n_train": n_train, "n_classes": n_classes,
                                                    "backend": keras.backend.backend()}
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def train_member(cfg: dict, shard_dir: Path, model_dir: Path, live_dir: Path) -> dict:
    """Train one member; writes ``model_dir/model.keras``; returns a summary."""
    from dvclive import Live

    shard_dir, model_dir = Path(shard_dir), Path(model_dir)
    classes = read_classes(shard_dir)
    kind, _ = accelerators()
    policy = set_precision(cfg.get("mixed_precision", "auto"), kind)
    keras.utils.set_random_seed(int(cfg["seed"]))
    scope, replicas, where = distribution(cfg.get("distribute", "auto"))
    global_batch = int(cfg["batch_size"]) * replicas
    lr = float(cfg["learning_rate"]) * (replicas if cfg.get("scale_lr", True) else 1)
    epochs, steps = int(cfg["epochs"]), int(cfg["steps_per_epoch"])
    train_paths = train_shard_paths(shard_dir)
    if not train_paths:
        raise FileNotFoundError(f"{shard_dir}: no train-*.qds shards; run the shard stage")
    common = dict(img_size=int(cfg["img_size"]), channels=int(cfg.get("channels", 1)),
                  line_width=float(cfg.get("line_width", 6)), n_classes=len(classes),
                  workers=int(cfg.get("workers", 2)))

    def train_data(epoch: int, start_step: int) -> DrawingDataset:
        return DrawingDataset(train_paths, batch_size=global_batch, training=True,
                              seed=int(cfg["seed"]), augment=Augment.from_params(
                                  cfg.get("augment")), steps_per_epoch=steps,
                              shuffle_buffer=int(cfg.get("shuffle_buffer", 50_000)),
                              epoch=epoch, start_step=start_step, **common)

    use_tfrec = cfg.get("input", "shards") == "tfrecord"
    if use_tfrec:  # tf.data over data/tfrecords: same drawings, same renderer
        from doodle.tfrecord import make_tf_dataset, split_files

        tfrec_dir = Path(cfg.get("tfrecord_dir", "data/tfrecords"))
        tf_common = {k: v for k, v in common.items() if k != "workers"}

        def tf_train_data(epoch: int, start_step: int):
            return make_tf_dataset(split_files(tfrec_dir, "train"), batch_size=global_batch,
                                   training=True, seed=int(cfg["seed"]),
                                   augment=Augment.from_params(cfg.get("augment")),
                                   shuffle_buffer=int(cfg.get("shuffle_buffer", 50_000)),
                                   skip_batches=epoch * steps + start_step, **tf_common)

    train0 = train_data(0, 0)
    holdout_path = shard_dir / "holdout.qds"
    holdout = labels = None
    if holdout_path.is_file() and read_header(holdout_path)[0]["n"]:
        holdout = DrawingDataset([holdout_path], batch_size=int(cfg.get("eval_batch_size", 512)),
                                 **common)
        labels = holdout.column("label").astype(np.int64)
        if use_tfrec:
            holdout = make_tf_dataset(split_files(tfrec_dir, "holdout"),
                                      batch_size=int(cfg.get("eval_batch_size", 512)),
                                      **tf_common)
    fp = fingerprint(cfg, train0.total, len(classes))
    ckpt_dir = model_dir / "checkpoints"
    state = load_checkpoint(ckpt_dir, fp)

    with scope:
        model = build_model(cfg["arch"], common["img_size"], common["channels"], len(classes),
                            alpha=float(cfg.get("alpha", 1.0)), weights=cfg.get("weights"),
                            dropout=float(cfg.get("dropout", 0.0)),
                            bn_momentum=cfg.get("bn_momentum", 0.9))
        optimizer = keras.optimizers.AdamW(
            learning_rate=lr_schedule(lr, epochs * steps,
                                      int(float(cfg.get("warmup_epochs", 0)) * steps)),
            weight_decay=float(cfg.get("weight_decay", 0.0)))
        model.compile(optimizer=optimizer,
                      loss=keras.losses.CategoricalCrossentropy(
                          label_smoothing=float(cfg.get("label_smoothing", 0.0))),
                      metrics=[keras.metrics.CategoricalAccuracy(name="accuracy"),
                               keras.metrics.TopKCategoricalAccuracy(3, name="top3")],
                      jit_compile=jit_setting(cfg.get("jit", "auto"), kind),
                      steps_per_execution=int(cfg.get("steps_per_execution", 1)))
        epoch0, step0 = 0, 0
        if state:
            optimizer.build(model.trainable_variables)
            model.load_weights(ckpt_dir / state["weights"])
            epoch0, step0 = int(state["epoch"]), int(state["step"])
            print(f"train: resuming {cfg['name']} at epoch {epoch0}, step {step0} "
                  f"(optimizer step {int(keras.ops.convert_to_numpy(optimizer.iterations))})")

    print(f"train: {cfg['name']}: {cfg['arch']} {common['img_size']}px x{common['channels']}, "
          f"{model.count_params():,} params, {where}, policy {policy}, global batch "
          f"{global_batch}, lr {lr:g}, {epochs} epochs x {steps} steps, {train0.total:,} "
          f"train drawings, {0 if labels is None else len(labels):,} holdout")
    live = Live(str(live_dir), resume=state is not None, save_dvc_exp=False, dvcyaml=None)
    checkpoint = StepCheckpoint(ckpt_dir, int(cfg.get("checkpoint_every", 0)), steps, fp,
                                epoch0, step0)
    callbacks = [HoldoutEval(holdout, labels, global_batch), LiveLogger(live), checkpoint]
    t0 = time.time()
    history: dict[str, list] = {}
    # A resumed run first finishes its partial epoch, then runs the remaining ones.
    segments = []
    if epoch0 < epochs and step0:
        segments.append((epoch0, step0))
        epoch0 += 1
    if epoch0 < epochs:
        segments.append((epoch0, 0))
    for i, (e, s) in enumerate(segments):
        end = e + 1 if (s and i == 0) else epochs
        # shuffle=False: the stream already shuffles, and Keras' batch-order shuffle would
        # make a resumed epoch repeat some batches and skip others.
        h = model.fit(tf_train_data(e, s) if use_tfrec else train_data(e, s),
                      steps_per_epoch=(steps - s) if use_tfrec else None, shuffle=False,
                      initial_epoch=e, epochs=end, callbacks=callbacks,
                      verbose=int(cfg.get("verbose", 1)))
        for k, v in h.history.items():
            history.setdefault(k, []).extend(v)
    live.end()
    model_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(model_dir / "model.keras") as tmp:
        model.save(str(tmp) + ".keras")
        os.replace(str(tmp) + ".keras", tmp)
    remove(ckpt_dir)  # finished: the next run with other settings starts fresh
    summary = {"name": cfg["name"], "seconds": round(time.time() - t0, 1), "where": where,
               "policy": policy, **{k: float(v[-1]) for k, v in history.items()}}
    print(f"train: {cfg['name']} done in {summary['seconds']:.0f}s; "
          + ", ".join(f"{k}={v:.4f}" for k, v in summary.items()
                      if k in ("loss", "accuracy", "top3", "val_map3", "images_per_s")))
    return summary
