"""Test balancing: lower the most-predicted classes until predicted counts are equal
(the competition's test classes are equal-sized)."""

from __future__ import annotations

import numpy as np


def balance(
    scores: np.ndarray,
    n_iter: int = 300,
    step: float = 0.5,
    max_delta: float = 0.1,
    tol: float = 0.05,
) -> np.ndarray:
    """Rescale class columns so that predicted top-1 counts are about equal (1st place trick).

    The test set has ~N/C drawings per class, so a class that is top-1 for many more rows
    is over-predicted. Each iteration moves every class's log-factor by
    ``step * log(target / count)`` (clipped to +-``max_delta``), one vectorised argmax over
    the full matrix per iteration; it stops once every count is within
    ``max(tol * N/C, 1)`` of N/C, else keeps the most balanced factors seen (steps are
    halved when 10 iterations bring no improvement, as counts can cycle). The factors are
    finally shifted so that all are <= 1, i.e. the over-predicted classes are lowered.
    Scores must be non-negative (probabilities), as columns are scaled multiplicatively.
    """
    scores = np.asarray(scores, dtype=np.float32)
    n, c = scores.shape
    if n == 0 or c < 2:
        return scores.copy()
    if (scores < 0).any():
        raise ValueError("balance() needs non-negative scores (probabilities)")
    target = n / c
    band = max(tol * target, 1.0)
    log_f = np.zeros(c)
    best_f, best_dev, since_best = log_f.copy(), np.inf, 0
    buf = np.empty_like(scores)
    for _ in range(n_iter):
        np.multiply(scores, np.exp(log_f).astype(np.float32), out=buf)
        counts = np.bincount(buf.argmax(axis=1), minlength=c)
        dev = np.abs(counts - target).max()
        if dev < best_dev:
            best_f, best_dev, since_best = log_f.copy(), dev, 0
        if dev <= band:
            break
        since_best += 1
        if since_best >= 10:
            # Counts are integers, so fixed steps can cycle around the target: refine.
            step, max_delta, since_best = step / 2, max_delta / 2, 0
        delta = step * (np.log(target) - np.log(np.maximum(counts, 0.5)))
        log_f += np.clip(delta, -max_delta, max_delta)
    best_f -= best_f.max()
    return np.multiply(scores, np.exp(best_f).astype(np.float32), out=buf)


def balanced_subset(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Sorted indices of a class-balanced sample: min-count rows drawn from every class.

    Balancing assumes equal class sizes (true for the test set), so it can only be judged
    honestly on a holdout sample with that property.
    """
    labels = np.asarray(labels)
    if labels.size == 0:
        return np.empty(0, dtype=np.int64)
    order = np.argsort(labels, kind="stable")
    _, starts, counts = np.unique(labels[order], return_index=True, return_counts=True)
    m = counts.min()
    rng = np.random.default_rng(seed)
    picks = [
        rng.choice(order[s : s + n], m, replace=False) for s, n in zip(starts, counts, strict=True)
    ]
    return np.sort(np.concatenate(picks)).astype(np.int64)
