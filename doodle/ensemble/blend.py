"""A weighted blend of member probabilities and its weights, fitted by MAP@3."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from doodle.metrics import map3


def blend(member_probs: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Weighted sum of member probabilities (float32)."""
    weights = np.asarray(weights, dtype=np.float64)
    if len(weights) != len(member_probs) or not member_probs:
        raise ValueError(f"{len(member_probs)} members but {len(weights)} weights")
    out = np.zeros(member_probs[0].shape, dtype=np.float32)
    for p, w in zip(member_probs, weights, strict=True):
        if w:
            out += np.float32(w) * p
    return out


def fit_blend_weights(
    member_probs: Sequence[np.ndarray],
    labels: np.ndarray,
    step: float = 0.1,
    min_step: float = 0.025,
    max_sweeps: int = 20,
    seed: int = 0,
) -> np.ndarray:
    """Non-negative weights summing to 1 that maximise MAP@3 of the blend on ``labels``.

    Coordinate ascent on the simplex: move ``step`` of weight from one member to another
    whenever that raises MAP@3, sweep until nothing helps, then halve the step down to
    ``min_step``. It starts from the best of the uniform blend and every single member, so
    the result is never worse than the best member on the fitting data. ``seed`` only
    shuffles the order in which moves are tried.
    """
    m = len(member_probs)
    if m == 0:
        raise ValueError("no members to blend")
    if m == 1:
        return np.array([1.0])
    labels = np.asarray(labels)

    def score(w: np.ndarray) -> float:
        return map3(blend(member_probs, w), labels)

    starts = [np.full(m, 1.0 / m), *np.eye(m)]
    start_scores = [score(w) for w in starts]
    best = int(np.argmax(start_scores))  # argmax keeps the uniform start on ties
    w, s = starts[best].copy(), start_scores[best]
    rng = np.random.default_rng(seed)
    pairs = [(i, j) for i in range(m) for j in range(m) if i != j]
    while step >= min_step - 1e-12:
        for _ in range(max_sweeps):
            improved = False
            for p in rng.permutation(len(pairs)):
                i, j = pairs[p]
                d = min(step, w[j])
                if d <= 1e-12:
                    continue
                cand = w.copy()
                cand[i] += d
                cand[j] -= d
                cs = score(cand)
                if cs > s + 1e-12:
                    w, s, improved = cand, cs, True
            if not improved:
                break
        step /= 2
    w = np.clip(w, 0.0, None)
    return w / w.sum()
