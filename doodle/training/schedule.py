"""The learning-rate schedule, the compiled model (optimizer, loss, metrics) and the moving
average of the weights (``train.ema``).

**Weight averaging.** ``train.ema: d`` turns on the Keras optimizer's own exponential moving
average of the trainable weights (``use_ema``, ``ema_momentum = d``), updated inside every
compiled train step (the first step copies the weights). The averages are optimizer
variables, so step checkpoints hold them and a resumed run continues the same average. Keras
would copy the averages into the model at the end of every ``fit`` call; a resumed run calls
``fit`` more than once (doodle.training.checkpoint.fit_segments), so that copy is deferred
(:func:`defer_average`): training always continues from the live weights, the holdout is
scored with the averages (:func:`averaged_weights`), and the model is saved holding them
(:func:`apply_average`). BatchNorm's moving statistics are not averaged (they are not
trainable), as in Keras.
"""

from __future__ import annotations

import keras
import numpy as np

from doodle.config import MemberConfig
from doodle.models.build import build_model
from doodle.training.hardware import jit_setting


def lr_schedule(lr: float, total_steps: int, warmup_steps: int):
    """One-cycle: linear warm-up from lr/10 to lr, then cosine decay to ~0."""
    warmup_steps = min(max(0, warmup_steps), max(0, total_steps - 1))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=lr / 10 if warmup_steps else lr,
        decay_steps=max(1, total_steps - warmup_steps),
        alpha=0.01,
        warmup_target=lr if warmup_steps else None,
        warmup_steps=warmup_steps,
    )


def compile_model(
    cfg: MemberConfig, n_classes: int, kind: str, lr: float, seq_features: int
) -> keras.Model:
    """The member's model with AdamW on the one-cycle schedule (and the weights' moving
    average with ``cfg.ema``), label smoothing and the accuracy / top-3 metrics (call inside
    the distribution scope). ``seq_features``: a point family's input width
    (:func:`doodle.training.dataset.sequence_features`)."""
    epochs, steps = cfg.epochs, cfg.steps_per_epoch
    model = build_model(
        cfg.arch,
        cfg.img_size,
        cfg.channels,
        n_classes,
        alpha=cfg.alpha,
        weights=cfg.weights,
        dropout=cfg.dropout,
        bn_momentum=cfg.bn_momentum,
        seq_len=cfg.seq_len,
        seq_features=seq_features,
        grid_size=cfg.grid_size,
        grid_reduce=cfg.grid_reduce,
        country=cfg.country,
    )
    optimizer = keras.optimizers.AdamW(
        learning_rate=lr_schedule(lr, epochs * steps, int(cfg.warmup_epochs * steps)),
        weight_decay=cfg.weight_decay,
        use_ema=cfg.ema is not None,
        ema_momentum=0.99 if cfg.ema is None else cfg.ema,
    )
    if cfg.ema is not None:
        defer_average(optimizer)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
        metrics=[
            keras.metrics.CategoricalAccuracy(name="accuracy"),
            keras.metrics.TopKCategoricalAccuracy(3, name="top3"),
        ],
        jit_compile=jit_setting(cfg.jit, kind),
        steps_per_execution=cfg.steps_per_execution,
    )
    return model


# -- the weights' moving average ----------------------------------------------------------------
# Where Keras keeps the averages (one per trainable variable, in their order): a private
# attribute, checked by tests/training/test_averaging.py against the installed Keras.
AVERAGES = "_model_variables_moving_average"


def defer_average(optimizer: keras.optimizers.Optimizer) -> None:
    """Keep Keras from copying the averages into the model when a ``fit`` call ends (it
    would, per call: a resumed run would then train on from the averages)."""

    def keep_live_weights(var_list) -> None:
        return None

    optimizer.finalize_variable_values = keep_live_weights


def _averages(model: keras.Model) -> list | None:
    opt = getattr(model, "optimizer", None)
    opt = getattr(opt, "inner_optimizer", opt)  # under a LossScaleOptimizer (fp16)
    if opt is None or not getattr(opt, "use_ema", False) or not opt.built:
        return None
    return list(getattr(opt, AVERAGES))


def averaged_weights(model: keras.Model) -> list[np.ndarray] | None:
    """``model.get_weights()`` with every trainable weight replaced by its moving average
    (None without one): the weights the saved model will hold."""
    averages = _averages(model)
    if averages is None:
        return None
    by_var = {id(v): a for v, a in zip(model.trainable_variables, averages, strict=True)}
    return [
        keras.ops.convert_to_numpy(by_var[id(v)] if id(v) in by_var else v) for v in model.weights
    ]


def apply_average(model: keras.Model) -> bool:
    """Copy the moving averages into the trainable weights (before saving); False when the
    model has none."""
    averages = _averages(model)
    if averages is None:
        return False
    for v, a in zip(model.trainable_variables, averages, strict=True):
        v.assign(a)
    return True
