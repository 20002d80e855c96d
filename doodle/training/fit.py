"""One member's fit: the input streams, per-epoch holdout evaluation and tracking, the
fit loop (what the train stage runs)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from doodle.config import MemberConfig, RuntimeConfig
from doodle.data.shards import open_shard, read_classes, read_header, train_shard_paths
from doodle.errors import InputError
from doodle.fileio import atomic_path, remove
from doodle.metrics import map_at_k, top_k
from doodle.training.checkpoint import StepCheckpoint, fingerprint, fit_segments, load_checkpoint
from doodle.training.dataset import DrawingDataset, member_dataset, sequence_features
from doodle.training.hardware import (
    Placement,
    accelerators,
    device_line,
    devices,
    distribution,
    set_precision,
)
from doodle.training.input_wait import InputWait
from doodle.training.multiworker import (
    LocalCopy,
    barrier,
    build_for_input,
    no_distribution,
    synchronize_batchnorm,
    worker_input,
)
from doodle.training.schedule import apply_average, averaged_weights, compile_model
from doodle.training.warm_start import warm_start


class HoldoutEval(keras.callbacks.Callback):
    """Per epoch: holdout MAP@3 / accuracy / top-3, learning rate and images per second.
    With a moving average of the weights (``train.ema``) the holdout is scored with the
    averaged weights, the ones the saved model holds; training goes on with the live ones."""

    def __init__(
        self,
        holdout: DrawingDataset | None,
        labels: np.ndarray | None,
        global_batch: int,
        local: LocalCopy | None = None,
    ):
        super().__init__()
        self.holdout, self.labels, self.global_batch = holdout, labels, global_batch
        self.local = local  # several processes: the chief predicts on its own copy

    def on_epoch_begin(self, epoch, logs=None):
        self._t0, self._n = time.perf_counter(), 0

    def on_train_batch_end(self, batch, logs=None):
        self._n = batch + 1

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        seconds = time.perf_counter() - self._t0
        logs["images_per_s"] = self._n * self.global_batch / max(seconds, 1e-9)
        logs["learning_rate"] = float(
            keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
        )
        if self.holdout is not None:
            averaged = averaged_weights(self.model)
            if self.local is not None:
                probs = self.local.predict(self.model, self.holdout, averaged)
            elif averaged is None:
                probs = self.model.predict(self.holdout, verbose=0)
            else:
                live = self.model.get_weights()
                self.model.set_weights(averaged)
                try:
                    probs = self.model.predict(self.holdout, verbose=0)
                finally:
                    self.model.set_weights(live)
            top = top_k(probs, 3)
            logs["val_map3"] = map_at_k(top, self.labels)
            logs["val_accuracy"] = float((top[:, 0] == self.labels).mean())
            logs["val_top3"] = float((top == self.labels[:, None]).any(1).mean())


class FollowEpochs(keras.callbacks.Callback):
    """Tell the training stream the epoch Keras begins; the first one from ``start``."""

    def __init__(self, stream: DrawingDataset, first: int, start: int):
        super().__init__()
        self.stream, self.first, self.start = stream, first, start

    def on_epoch_begin(self, epoch, logs=None):
        self.stream.set_epoch(epoch, self.start if epoch == self.first else 0)


class LiveLogger(keras.callbacks.Callback):
    """Epoch logs -> dvclive (curves for ``dvc plots show``, summary for ``dvc exp show``)."""

    def __init__(self, live):
        super().__init__()
        self.live = live

    def on_epoch_end(self, epoch, logs=None):
        for k, v in (logs or {}).items():
            self.live.log_metric(k, float(v))
        self.live.next_step()


@dataclass
class Streams:
    """The training stream factory and the holdout, from shards or TFRecords."""

    train: Callable[[int, int], object]  # (epoch, start_step) -> a dataset Keras can fit
    n_train: int
    holdout: object | None
    labels: np.ndarray | None
    fixed_steps: bool  # tf.data repeats forever: fit needs steps_per_epoch
    share: DrawingDataset | None = None  # this process's training stream (from shards)


def make_streams(
    cfg: MemberConfig,
    runtime: RuntimeConfig,
    shard_dir: Path,
    global_batch: int,
    n_classes: int,
    tfrec_dir: Path,
    placement: Placement,
    extra_train: list[Path],
) -> Streams:
    """PyDataset over the shards (default), or tf.data over data/tfrecord when
    ``input: tfrecord`` -- the same drawings through the same renderer. With several
    processes, this process's share of every batch; the holdout for the chief alone.
    ``extra_train``: more shards in the training stream (pseudo-labelled test drawings)."""
    steps = cfg.steps_per_epoch
    train_paths = train_shard_paths(shard_dir)
    if not train_paths:
        raise FileNotFoundError(f"{shard_dir}: no train-*.qds shards; run the shard stage")
    if extra_train and cfg.input == "tfrecord":
        raise InputError(
            f"{cfg.name}: pseudo-labels are read from shards; set tfrecord.input: shards"
        )
    train_paths = [*train_paths, *extra_train]
    stream = dict(
        batch_size=global_batch,
        training=True,
        seed=cfg.seed,
        augment=cfg.augment,
        shuffle_buffer=cfg.shuffle_buffer,
    )
    eval_batch, workers = runtime.eval_batch_size, runtime.workers
    n_train = int(sum(read_header(p)[0]["n"] for p in train_paths))
    holdout_path = Path(shard_dir) / "holdout.qds"
    has_holdout = holdout_path.is_file() and read_header(holdout_path)[0]["n"] > 0
    has_holdout = has_holdout and placement.chief
    labels = open_shard(holdout_path).label.astype(np.int64) if has_holdout else None

    if cfg.input == "tfrecord":
        if placement.processes > 1:
            raise InputError(
                "input: tfrecord reads whole batches in every process; train with several "
                "processes from the shards (input: shards)"
            )
        from doodle.data.tfrecord import split_files
        from doodle.training.tfdata import make_tf_dataset

        common = dict(
            img_size=cfg.img_size,
            encoding=cfg.encoding,
            line_width=cfg.line_width,
            n_classes=n_classes,
        )
        return Streams(
            train=lambda epoch, start: make_tf_dataset(
                split_files(tfrec_dir, "train"),
                skip_batches=epoch * steps + start,
                **stream,
                **common,
            ),
            n_train=n_train,
            labels=labels,
            fixed_steps=True,
            holdout=make_tf_dataset(
                split_files(tfrec_dir, "holdout"), batch_size=eval_batch, **common
            )
            if has_holdout
            else None,
        )

    def share(epoch: int = 0, start: int = 0) -> DrawingDataset:
        return member_dataset(
            cfg,
            train_paths,
            steps_per_epoch=steps,
            epoch=epoch,
            start_step=start,
            workers=workers,
            n_classes=n_classes,
            share=(placement.process, placement.processes),
            **stream,
        )

    def train(epoch: int, start: int):
        if placement.strategy is None:
            return share(epoch, start)
        # one endless tf.data stream for the rest of the run, from (epoch, start)
        return worker_input(placement.strategy, share(), epoch, start, workers)

    return Streams(
        train=train,
        share=share(),
        n_train=n_train,
        labels=labels,
        fixed_steps=placement.strategy is not None,
        holdout=member_dataset(
            cfg, [holdout_path], batch_size=eval_batch, workers=workers, n_classes=n_classes
        )
        if has_holdout
        else None,
    )


@dataclass(frozen=True)
class TrainPaths:
    """What a member's training reads and writes (the train stage says where)."""

    shards: Path  # data/shards
    tfrecord: Path  # data/tfrecord (input: tfrecord)
    model_dir: Path  # models/<member>: model.keras, checkpoints
    live_dir: Path  # dvclive/<member>
    init_model: Path | None  # finetune: models/<init_from>/model.keras (the warm start)
    pseudo: Path | None  # pseudo-labels: data/pseudo/<member>/pseudo.qds (doodle.training.pseudo)


def train_member(cfg: MemberConfig, runtime: RuntimeConfig, paths: TrainPaths) -> dict:
    """Train one member; writes ``model_dir/model.keras``; returns a summary."""
    from dvclive import Live

    shard_dir, model_dir = paths.shards, paths.model_dir
    classes = read_classes(shard_dir)
    placement = distribution(cfg.distribute)  # first: a multi-worker run sets TF up itself
    kind, _ = accelerators()
    devs = devices()
    policy, why = set_precision(cfg.mixed_precision, devs)
    print(device_line(cfg.name, placement, devs, policy, why), flush=True)
    keras.utils.set_random_seed(cfg.seed)
    replicas, chief = placement.replicas, placement.chief
    global_batch = cfg.batch_size * replicas
    lr = cfg.learning_rate * (replicas if cfg.scale_lr else 1)
    epochs, steps = cfg.epochs, cfg.steps_per_epoch
    extra = [paths.pseudo] * cfg.pseudo_repeat if paths.pseudo else []
    data = make_streams(
        cfg, runtime, shard_dir, global_batch, len(classes), paths.tfrecord, placement, extra
    )
    inputs = [p for p in (paths.init_model, paths.pseudo) if p is not None]
    if cfg.weights not in (None, "imagenet"):
        inputs.append(Path(cfg.weights))
    fp = fingerprint(cfg, shard_dir, global_batch, inputs)
    seq_features = sequence_features(train_shard_paths(shard_dir), cfg)  # + times if any
    ckpt_dir = model_dir / "checkpoints"
    # Every process resumes from the chief's checkpoint (on several hosts: a copy of it).
    state = load_checkpoint(ckpt_dir, fp, clear_stale=chief)
    with placement.scope:
        model = compile_model(cfg, len(classes), kind, lr, seq_features)
        model.run_eagerly = runtime.eager
        if placement.strategy is not None:
            synchronize_batchnorm(model, True)
        if data.share is not None:
            # Built from the shapes, so fit reads no set-up batch: on JAX with workers > 1,
            # Keras' enqueuer would keep that read's queued batches and serve them as the
            # next epoch's, shifting every epoch by one (the input-wait stamps showed it).
            build_for_input(model, data.share)
        epoch0, step0 = 0, 0
        if paths.init_model is not None and not state:
            warm_start(model, paths.init_model, cfg.init_from)
        if state:
            model.optimizer.build(model.trainable_variables)
            model.load_weights(ckpt_dir / state["weights"])
            epoch0, step0 = int(state["epoch"]), int(state["step"])
            done = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
            print(
                f"train: resuming {cfg.name} at epoch {epoch0}, step {step0} "
                f"(optimizer step {done})"
            )

    shape = f"{cfg.img_size}px x{cfg.channels}"
    if cfg.sequence:
        shape = f"{cfg.seq_len} points x{seq_features}"
    if cfg.arch == "strokegrid":
        shape += f" on a {cfg.grid_size}x{cfg.grid_size} grid ({cfg.grid_reduce})"
    if cfg.country:
        shape += ", + country"
    if cfg.ema is not None:
        shape += f", weights' moving average {cfg.ema:g}"
    local = None
    if placement.processes > 1:
        # After the model (the same seed gives the same initial weights), and in every
        # process: on JAX, drawing its initial weights is a collective step.
        local = LocalCopy(lambda: compile_model(cfg, len(classes), kind, lr, seq_features))
    share = f" ({global_batch // placement.processes} a process)" * (placement.processes > 1)
    print(
        f"train: {cfg.name}: {cfg.arch} {shape}, {model.count_params():,} params, "
        f"global batch {global_batch}{share}, "
        f"lr {lr:g}, "
        f"{epochs} epochs x {steps} steps, {data.n_train:,} train drawings, "
        f"{0 if data.labels is None else len(data.labels):,} holdout "
        f"({epochs * steps * global_batch / data.n_train:.2f} passes over the data)"
    )
    if cfg.input == "tfrecord":
        print(f"train: {cfg.name} reads {paths.tfrecord} through tf.data")
    if cfg.init_from:
        print(f"train: {cfg.name} starts from {cfg.init_from}'s model ({paths.init_model})")
    if paths.pseudo:
        print(
            f"train: {cfg.name} adds {len(open_shard(paths.pseudo)):,} test drawings "
            f"pseudo-labelled by {' + '.join(cfg.pseudo_from)} ({paths.pseudo}), each "
            f"{cfg.pseudo_repeat}x a pass"
        )
    wait = InputWait(steps, placement)  # every process measures its own wait
    callbacks: list[keras.callbacks.Callback] = [
        HoldoutEval(data.holdout, data.labels, global_batch, local),
        wait,
    ]
    live = None
    if chief:  # the others train in lock-step and write nothing
        live = Live(str(paths.live_dir), resume=state is not None, save_dvc_exp=False, dvcyaml=None)
        callbacks += [
            LiveLogger(live),
            StepCheckpoint(ckpt_dir, runtime.checkpoint_every, steps, fp, epoch0, step0),
        ]
    t0 = time.time()
    history: dict[str, list] = {}
    for first, start, end in fit_segments(epochs, epoch0, step0):
        # shuffle=False: the stream already shuffles, and Keras' batch-order shuffle would
        # make a resumed epoch repeat some batches and skip others.
        stream = data.train(first, start)
        follow = [FollowEpochs(stream, first, start)] if isinstance(stream, DrawingDataset) else []
        h = model.fit(
            stream,
            shuffle=False,
            steps_per_epoch=(steps - start) if data.fixed_steps else None,
            initial_epoch=first,
            epochs=end,
            callbacks=follow + callbacks + [wait.stamps(first, start)],  # stamps last
            verbose=runtime.verbose if chief else 0,
        )
        for k, v in h.history.items():
            history.setdefault(k, []).extend(v)
    # the saved model holds the averaged weights (every process copies them: the same
    # assignment everywhere, as distributed variables expect)
    averaged = apply_average(model)
    if chief:
        live.end()
        synchronize_batchnorm(model, False)
        if averaged:
            print(f"train: {cfg.name} saves the moving average of its weights (ema {cfg.ema:g})")
        with atomic_path(model_dir / "model.keras") as tmp, no_distribution():
            model.save(str(tmp) + ".keras")  # Keras insists on the suffix
            os.replace(str(tmp) + ".keras", tmp)
        remove(ckpt_dir)  # finished: the next run with other settings starts fresh
    barrier(placement)
    summary = {
        "name": cfg.name,
        "seconds": round(time.time() - t0, 1),
        "where": placement.where,
        "policy": policy,
        **{k: float(v[-1]) for k, v in history.items()},
    }
    print(
        f"train: {cfg.name} done in {summary['seconds']:.0f}s; "
        + ", ".join(
            f"{k}={v:.4f}"
            for k, v in summary.items()
            if k in ("loss", "accuracy", "top3", "val_map3", "images_per_s")
        )
        + f"; {wait.summary()}"
    )
    warning = wait.warning(cfg.name, runtime.workers, None if cfg.sequence else cfg.img_size)
    if warning and chief:
        print(warning)
    return summary
