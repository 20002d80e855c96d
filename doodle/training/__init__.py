"""Training one ensemble member: hardware, precision, schedule, checkpoints, tracking.

Modules: ``hardware`` (devices, distribution, precision, XLA), ``schedule`` (learning rate,
optimizer, loss and metrics: the compiled model), ``checkpoint`` (step checkpoints and
resume), ``input_wait`` (how long the fit loop waits for its batches), ``fit`` (the input
streams, per-epoch evaluation and tracking, the fit loop: what the train stage runs).

Backend-agnostic Keras 3 (TensorFlow by default, JAX with ``KERAS_BACKEND=jax``).

Resume: every ``checkpoint_every`` steps and at each epoch end the weights and optimizer
state are saved with the (epoch, step) they belong to. A run killed at any point restarts
from the last checkpoint when ``dvc repro`` runs again: the optimizer step, and so the
learning-rate schedule, is restored, and the data stream (a pure function of seed, epoch
and step) continues with the very batch that was next.
"""
