"""Fit every method on the holdout's fit rows, choose one there, measure it on the
held-apart score rows, and score the test set with it (the ensemble stage)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from doodle.config import METHODS, EnsembleConfig
from doodle.ensemble.balance import balance, balanced_subset
from doodle.ensemble.blend import blend, fit_blend_weights
from doodle.ensemble.members import load_member_predictions, member_names
from doodle.ensemble.stack import Stacker, stack_cv
from doodle.errors import InputError
from doodle.metrics import map3

logger = logging.getLogger(__name__)


def split_holdout(
    labels: np.ndarray, n_classes: int, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Split holdout rows into (fit, score, score_is_balanced), both sorted.

    The score rows are class-balanced like the competition's test set (the same number of
    rows from every class, ``fraction`` of the rarest class's count), so test balancing can
    be measured on them as it is applied to the test. When some class has too few holdout
    rows for that, they are a plain random ``fraction`` of the rows and balancing is off.
    """
    labels = np.asarray(labels)
    n = len(labels)
    rng = np.random.default_rng(seed)
    order = np.argsort(labels, kind="stable")
    present, starts, counts = np.unique(labels[order], return_index=True, return_counts=True)
    k = int(counts.min() * fraction) if len(present) == n_classes else 0
    if k >= 1:
        score = np.concatenate(
            [
                rng.choice(order[s : s + c], k, replace=False)
                for s, c in zip(starts, counts, strict=True)
            ]
        )
    else:
        score = rng.permutation(n)[: int(round(n * fraction))]
    score = np.sort(score).astype(np.int64)
    fit = np.setdiff1d(np.arange(n), score)
    if len(fit) < 2 or len(score) < 1:
        raise InputError(
            f"the holdout has {n} rows: too few to fit an ensemble on some and "
            "score it on others; raise shard.val_size"
        )
    return fit, score, k >= 1


def _rows(meta: dict, idx: np.ndarray) -> dict:
    """The metadata of the rows ``idx`` (classes stay whole)."""
    return {k: (v if k == "classes" else np.asarray(v)[idx]) for k, v in meta.items()}


@dataclass
class _Method:
    """A fitted second-level method: ``apply(member_probs, meta) -> scores (N, C)``."""

    apply: Callable[[Sequence[np.ndarray], dict], np.ndarray]
    choice_scores: np.ndarray  # on the fit rows: how it was judged
    label: str  # how honest that judgement is: in_sample | oof


def fit_methods(
    probs: list[np.ndarray], meta: dict, labels: np.ndarray, cfg: EnsembleConfig, final: str
) -> tuple[dict[str, _Method], int, np.ndarray]:
    """Fit every enabled method on the fit rows; returns (methods, best member, weights)."""
    member_fit = [map3(p, labels) for p in probs]
    best_i = int(np.argmax(member_fit))
    methods = {"best_member": _Method(lambda ps, _m: ps[best_i], probs[best_i], "in_sample")}
    weights = np.eye(len(probs))[best_i]
    if cfg.blend or final == "blend":
        weights = fit_blend_weights(probs, labels, seed=cfg.seed)
        methods["blend"] = _Method(
            lambda ps, _m: blend(ps, weights), blend(probs, weights), "in_sample"
        )
    if cfg.stack or final == "stack":
        kw = {
            "k": cfg.stack_top_k,
            "seed": cfg.seed,
            "model": cfg.stack_model,
            "features": cfg.stack_features,
        }
        oof, _ = stack_cv(probs, meta, labels, folds=cfg.stack_folds, **kw)
        st = Stacker(**kw).fit(probs, meta, labels)
        methods["stack"] = _Method(st.predict, oof, "oof")
    return methods, best_i, weights


def choose(
    methods: dict[str, _Method], labels: np.ndarray, cfg: EnsembleConfig, can_balance: bool
) -> tuple[str, bool, dict[str, float]]:
    """The final (method, balanced?) judged on the fit rows only; returns the figures used.

    With balancing, every method with and without it is compared on a class-balanced
    subset of the fit rows (the test set is balanced); otherwise on all fit rows. Ties go to
    the simpler method (``METHODS`` order).
    """
    final = cfg.final
    if final != "auto":
        return final.removesuffix("_balanced"), final.endswith("_balanced"), {}
    figures: dict[str, float] = {}
    use_balance = cfg.balance and can_balance
    rows = balanced_subset(labels, cfg.seed) if use_balance else np.arange(len(labels))
    for name in (m for m in METHODS if m in methods):
        s = methods[name].choice_scores[rows]
        figures[f"{name}_{methods[name].label}"] = map3(s, labels[rows])
        if use_balance:
            figures[f"{name}_balanced_{methods[name].label}"] = map3(balance(s), labels[rows])
    best = max(figures, key=figures.get)  # first max = simplest on ties
    base = next(m for m in METHODS if best.startswith(m + "_"))
    return base, "_balanced_" in best, figures


@dataclass
class EnsembleResult:
    """What the ensemble stage writes: the submission's scores and their honest measure."""

    metrics: dict
    test_scores: np.ndarray  # (N_test, C), the submitted method
    test_key_ids: np.ndarray
    classes: list[str]
    score_key_ids: np.ndarray  # the held-apart holdout rows ...
    score_scores: np.ndarray  # ... scored exactly as the test set is
    score_labels: np.ndarray


def run_ensemble(
    holdout_paths: Sequence[Path],
    test_paths: Sequence[Path],
    cfg: EnsembleConfig,
    names: Sequence[str] | None = None,
) -> EnsembleResult:
    """Fit and choose on part of the holdout, measure on the rest, score the test set.

    ``metrics["holdout_map3"]`` is the MAP@3 of the submitted method -- fitted on the fit
    rows, balanced or not as chosen -- on the held-apart score rows, which took no part in
    fitting or choosing. ``metrics["holdout"]`` gives every method's figure on the same
    rows (for comparison only: nothing is chosen on them); ``metrics["choice"]`` the fit-row
    figures the choice was made on (labelled in-sample or out-of-fold).
    """
    final = cfg.final.removesuffix("_balanced")
    if len(holdout_paths) != len(test_paths):
        raise InputError(f"{len(holdout_paths)} holdout files but {len(test_paths)} test files")
    hold, hmeta = load_member_predictions(holdout_paths)
    test, tmeta = load_member_predictions(test_paths)
    if hmeta["classes"] != tmeta["classes"]:
        raise InputError(f"{holdout_paths[0]} and {test_paths[0]} have different class lists")
    labels = np.asarray(hmeta["label"], dtype=np.int64)
    if (labels < 0).any():
        raise InputError(f"{holdout_paths[0]}: holdout labels must be >= 0")
    names = list(names) if names is not None else member_names(holdout_paths)
    n_classes = len(hmeta["classes"])

    fit, score, balanced_rows = split_holdout(labels, n_classes, cfg.score_fraction, cfg.seed)
    fit_probs, score_probs = [p[fit] for p in hold], [p[score] for p in hold]
    fit_meta, score_meta = _rows(hmeta, fit), _rows(hmeta, score)
    methods, best_i, weights = fit_methods(fit_probs, fit_meta, labels[fit], cfg, final)
    base, use_balance, figures = choose(methods, labels[fit], cfg, balanced_rows)
    if use_balance and not balanced_rows:
        logger.warning(
            "balancing asked for, but the holdout is too small for a class-"
            "balanced score set: it is measured on unbalanced rows"
        )
    final_name = f"{base}_balanced" if use_balance else base
    logger.info(
        "choice on %d fit rows: %s -> %s",
        len(fit),
        {k: round(v, 4) for k, v in figures.items()},
        final_name,
    )

    on_score = {name: m.apply(score_probs, score_meta) for name, m in methods.items()}
    held: dict[str, float] = {}
    for name, s in on_score.items():
        held[name] = map3(s, labels[score])
        if balanced_rows:
            held[f"{name}_balanced"] = map3(balance(s), labels[score])
    score_scores = on_score[base]
    test_scores = methods[base].apply(test, tmeta)
    if use_balance:
        score_scores, test_scores = balance(score_scores), balance(test_scores)

    metrics = {
        "holdout_map3": map3(score_scores, labels[score]),
        "final": final_name,
        "members": {n: map3(p, labels[score]) for n, p in zip(names, score_probs, strict=True)},
        "holdout": held,
        "choice": figures,
        "best_member": names[best_i],
        "blend_weights": dict(zip(names, (round(float(w), 4) for w in weights), strict=True)),
        "rows": {
            "fit": int(len(fit)),
            "score": int(len(score)),
            "score_balanced": bool(balanced_rows),
            "test": int(len(tmeta["key_id"])),
        },
    }
    test_labels = np.asarray(tmeta["label"], dtype=np.int64)
    if len(test_labels) and (test_labels >= 0).all():
        metrics["test_map3"] = map3(test_scores, test_labels)
    logger.info(
        "held-apart MAP@3 (%d rows): %s", len(score), {k: round(v, 4) for k, v in held.items()}
    )
    return EnsembleResult(
        metrics,
        test_scores.astype(np.float32),
        tmeta["key_id"],
        list(hmeta["classes"]),
        hmeta["key_id"][score],
        score_scores.astype(np.float32),
        labels[score],
    )
