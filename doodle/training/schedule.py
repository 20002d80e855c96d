"""The learning-rate schedule and the compiled model: optimizer, loss, metrics."""

from __future__ import annotations

import keras

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
    """The member's model with AdamW on the one-cycle schedule, label smoothing and the
    accuracy / top-3 metrics (call inside the distribution scope). ``seq_features``: the
    sequence family's input width (:func:`doodle.training.dataset.sequence_features`)."""
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
    )
    optimizer = keras.optimizers.AdamW(
        learning_rate=lr_schedule(lr, epochs * steps, int(cfg.warmup_epochs * steps)),
        weight_decay=cfg.weight_decay,
    )
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
