"""Second-level fusion of member predictions: weighted blend, stacking and test balancing.

Every member writes one ``.npz`` per split (see ``load_member_predictions``). The labelled
holdout is split in two (``split_holdout``): the *fit* rows fit the blend weights and the
stacker and choose the final method; the *score* rows are held apart and only measure the
chosen method, fitted as it is submitted. The test files are scored with that same method.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from doodle.config import METHODS, EnsembleConfig
from doodle.errors import InputError
from doodle.metrics import map3, top_k

logger = logging.getLogger(__name__)

META_KEYS = ("key_id", "label", "classes", "n_strokes", "n_points", "countrycode")


# --------------------------------------------------------------------------- loading


def load_member_predictions(paths: Sequence[Path]) -> tuple[list[np.ndarray], dict]:
    """Load each member's ``probs`` as float32 plus the metadata shared by all members.

    Raises ValueError (naming the files) when members disagree on classes, key_ids or labels.
    """
    if not paths:
        raise InputError("no prediction files given")
    probs_list: list[np.ndarray] = []
    meta: dict = {}
    first: Path | None = None
    for path in map(Path, paths):
        with np.load(path, allow_pickle=False) as z:
            missing = sorted({"probs", *META_KEYS} - set(z.files))
            if missing:
                raise InputError(f"{path}: missing arrays {missing}")
            probs = z["probs"].astype(np.float32)
            m = {key: z[key] for key in META_KEYS}
        m["classes"] = [str(c) for c in m["classes"]]
        n = len(m["key_id"])
        if probs.shape != (n, len(m["classes"])):
            raise InputError(
                f"{path}: probs shape {probs.shape} != (n_key_ids={n}, "
                f"n_classes={len(m['classes'])})"
            )
        if first is None:
            first, meta = path, m
        else:
            if m["classes"] != meta["classes"]:
                raise InputError(f"{path} and {first} have different class lists")
            if not np.array_equal(m["key_id"], meta["key_id"]):
                raise InputError(
                    f"{path} and {first} do not hold the same key_ids in the same order "
                    f"({n} vs {len(meta['key_id'])} rows); re-run the predict stages"
                )
            if not np.array_equal(m["label"], meta["label"]):
                raise InputError(f"{path} and {first} have different labels")
        probs_list.append(probs)
    return probs_list, meta


# --------------------------------------------------------------------------- blending


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


# --------------------------------------------------------------------------- balancing


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


# --------------------------------------------------------------------------- stacking


class Stacker:
    """Second-level model scoring (drawing, candidate class) pairs.

    Candidates are the union of every member's top-``k`` classes. Features per pair: each
    member's probability, rank and probability relative to its top-1; the mean-blend
    probability and rank; max/mean/min/std over members; how many members have it in
    their top-k; and drawing-level features (blend top-1 probability, n_strokes, n_points,
    country code). Target: candidate == true label. A drawing's classes are ranked by the
    model's probability; non-candidates get 0 and rank last.
    """

    def __init__(
        self, k: int = 5, model: str = "hgb", seed: int = 0, params: dict | None = None
    ) -> None:
        if model not in ("hgb", "logreg"):
            raise ValueError(f"model must be 'hgb' or 'logreg', got {model!r}")
        self.k = k
        self.model = model
        self.seed = seed
        self.params = dict(params or {})
        self.countries: np.ndarray | None = None
        self.fitted = None

    # -- features
    def fit_encoders(self, meta: dict) -> Stacker:
        """Learn the country-code vocabulary (label-free, so fine to fit on all rows)."""
        self.countries = np.unique(np.asarray(meta["countrycode"]).astype(str))
        return self

    def _country_codes(self, countrycode: np.ndarray) -> np.ndarray:
        cc = np.asarray(countrycode).astype(str)
        vocab = self.countries if self.countries is not None else np.unique(cc)
        if vocab.size == 0:
            return np.full(len(cc), -1.0)
        pos = np.clip(np.searchsorted(vocab, cc), 0, len(vocab) - 1)
        return np.where(vocab[pos] == cc, pos, -1).astype(np.float64)

    def features(
        self, member_probs: Sequence[np.ndarray], meta: dict
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Candidate pairs and their features: (rows, cls, X, blend_prob)."""
        n, c = member_probs[0].shape
        k = min(self.k, c)
        r_cap = min(c, max(2 * k, 10))  # ranks beyond this are all "r_cap + 1"
        tops = [top_k(p, r_cap) for p in member_probs]

        cand = np.concatenate([t[:, :k] for t in tops], axis=1)
        cand.sort(axis=1)
        keep = np.ones(cand.shape, dtype=bool)
        keep[:, 1:] = cand[:, 1:] != cand[:, :-1]
        rows = np.broadcast_to(np.arange(n)[:, None], cand.shape)[keep]
        cls = cand[keep]

        def rank_of(top: np.ndarray) -> np.ndarray:
            # A dense (N, C) rank table is cheaper than comparing every pair with top rows.
            table = np.full((n, c), r_cap + 1, dtype=np.int16)
            np.put_along_axis(table, top, np.arange(1, r_cap + 1, dtype=np.int16)[None], 1)
            return table[rows, cls]

        probs = np.stack([p[rows, cls] for p in member_probs], axis=1).astype(np.float64)
        ranks = np.stack([rank_of(t) for t in tops], axis=1).astype(np.float64)
        top1 = np.stack(
            [p[np.arange(n), t[:, 0]][rows] for p, t in zip(member_probs, tops, strict=True)],
            axis=1,
        ).astype(np.float64)
        # Uniform weights, not the fitted blend weights: those saw the holdout labels.
        mean_all = blend(member_probs, np.full(len(member_probs), 1.0 / len(member_probs)))
        blend_top = top_k(mean_all, r_cap)
        blend_p = mean_all[rows, cls].astype(np.float64)
        blend_top1 = mean_all[np.arange(n), blend_top[:, 0]][rows].astype(np.float64)
        drawing = np.stack(
            [
                np.asarray(meta["n_strokes"], dtype=np.float64)[rows],
                np.asarray(meta["n_points"], dtype=np.float64)[rows],
                self._country_codes(meta["countrycode"])[rows],
            ],
            axis=1,
        )
        x = np.column_stack(
            [
                probs,
                ranks,
                probs / np.maximum(top1, 1e-12),
                blend_p,
                rank_of(blend_top),
                probs.max(axis=1),
                probs.mean(axis=1),
                probs.min(axis=1),
                probs.std(axis=1),
                (ranks <= k).sum(axis=1),
                blend_top1,
                drawing,
            ]
        ).astype(np.float32)
        return rows, cls, x, blend_p

    # -- model
    def _new_model(self):
        if self.model == "hgb":
            from sklearn.ensemble import HistGradientBoostingClassifier

            params = {
                "max_iter": 200,
                "learning_rate": 0.1,
                "max_leaf_nodes": 31,
                "l2_regularization": 1.0,
                "random_state": self.seed,
                **self.params,
            }
            return HistGradientBoostingClassifier(**params)
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        params = {"max_iter": 1000, "C": 1.0, **self.params}
        return make_pipeline(StandardScaler(), LogisticRegression(**params))

    def fit_xy(self, x: np.ndarray, y: np.ndarray):
        """Fit a fresh model on pair features; None when y has one class (nothing to learn)."""
        if np.unique(y).size < 2:
            return None
        return self._new_model().fit(x, y)

    @staticmethod
    def score_xy(model, x: np.ndarray, blend_p: np.ndarray) -> np.ndarray:
        """Pair scores; the tiny blend term only breaks ties between equal model outputs."""
        base = blend_p if model is None else model.predict_proba(x)[:, 1]
        return np.maximum(base, 1e-9) + 1e-6 * blend_p

    @staticmethod
    def to_matrix(n: int, c: int, rows: np.ndarray, cls: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Scatter pair scores into an (n, c) matrix with 0 for non-candidates."""
        out = np.zeros((n, c), dtype=np.float32)
        out[rows, cls] = s
        return out

    # -- public
    def fit(self, member_probs: Sequence[np.ndarray], meta: dict, labels: np.ndarray) -> Stacker:
        """Fit on a labelled set (the holdout)."""
        self.fit_encoders(meta)
        rows, cls, x, _ = self.features(member_probs, meta)
        self.fitted = self.fit_xy(x, cls == np.asarray(labels)[rows])
        return self

    def predict(self, member_probs: Sequence[np.ndarray], meta: dict) -> np.ndarray:
        """Scores (N, C): model probability for candidates, 0 elsewhere."""
        n, c = member_probs[0].shape
        rows, cls, x, blend_p = self.features(member_probs, meta)
        return self.to_matrix(n, c, rows, cls, self.score_xy(self.fitted, x, blend_p))


def stack_cv(
    member_probs: Sequence[np.ndarray],
    meta: dict,
    labels: np.ndarray,
    k: int = 5,
    folds: int = 5,
    seed: int = 0,
    model: str = "hgb",
    params: dict | None = None,
) -> tuple[np.ndarray, float]:
    """Out-of-fold stacker scores on the holdout (N, C) and their MAP@3.

    Folds are drawn over drawings (all candidate rows of a drawing share a fold), so no
    drawing is scored by a model that saw it. Uses fewer folds when there are few rows.
    """
    labels = np.asarray(labels)
    n, c = member_probs[0].shape
    folds = min(folds, n)
    if folds < 2:
        raise ValueError(f"stack_cv needs at least 2 holdout rows, got {n}")
    st = Stacker(k=k, model=model, seed=seed, params=params).fit_encoders(meta)
    rows, cls, x, blend_p = st.features(member_probs, meta)
    y = cls == labels[rows]
    fold = (np.random.default_rng(seed).permutation(n) % folds)[rows]
    s = np.zeros(len(rows))
    for f in range(folds):
        test = fold == f
        fitted = st.fit_xy(x[~test], y[~test])
        s[test] = st.score_xy(fitted, x[test], blend_p[test])
    oof = st.to_matrix(n, c, rows, cls, s)
    return oof, map3(oof, labels)


def stack_fit_predict(
    member_probs_holdout: Sequence[np.ndarray],
    meta_holdout: dict,
    labels: np.ndarray,
    member_probs_test: Sequence[np.ndarray],
    meta_test: dict,
    k: int = 5,
    seed: int = 0,
    model: str = "hgb",
    params: dict | None = None,
) -> np.ndarray:
    """Fit the stacker on the whole holdout and score the test set (N_test, C)."""
    st = Stacker(k=k, model=model, seed=seed, params=params)
    st.fit(member_probs_holdout, meta_holdout, labels)
    return st.predict(member_probs_test, meta_test)


# --------------------------------------------------------------------------- pipeline


def split_holdout(labels: np.ndarray, n_classes: int, fraction: float, seed: int
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
        score = np.concatenate([rng.choice(order[s : s + c], k, replace=False)
                                for s, c in zip(starts, counts, strict=True)])
    else:
        score = rng.permutation(n)[: int(round(n * fraction))]
    score = np.sort(score).astype(np.int64)
    fit = np.setdiff1d(np.arange(n), score)
    if len(fit) < 2 or len(score) < 1:
        raise InputError(f"the holdout has {n} rows: too few to fit an ensemble on some and "
                         "score it on others; raise shard.val_size")
    return fit, score, k >= 1


def _rows(meta: dict, idx: np.ndarray) -> dict:
    """The metadata of the rows ``idx`` (classes stay whole)."""
    return {k: (v if k == "classes" else np.asarray(v)[idx]) for k, v in meta.items()}


@dataclass
class _Method:
    """A fitted second-level method: ``apply(member_probs, meta) -> scores (N, C)``."""

    apply: Callable[[Sequence[np.ndarray], dict], np.ndarray]
    choice_scores: np.ndarray   # on the fit rows: how it was judged
    label: str                  # how honest that judgement is: in_sample | oof


def fit_methods(probs: list[np.ndarray], meta: dict, labels: np.ndarray,
                cfg: EnsembleConfig, final: str) -> tuple[dict[str, _Method], int, np.ndarray]:
    """Fit every enabled method on the fit rows; returns (methods, best member, weights)."""
    member_fit = [map3(p, labels) for p in probs]
    best_i = int(np.argmax(member_fit))
    methods = {"best_member": _Method(lambda ps, _m: ps[best_i], probs[best_i], "in_sample")}
    weights = np.eye(len(probs))[best_i]
    if cfg.blend or final == "blend":
        weights = fit_blend_weights(probs, labels, seed=cfg.seed)
        methods["blend"] = _Method(lambda ps, _m: blend(ps, weights), blend(probs, weights),
                                   "in_sample")
    if cfg.stack or final == "stack":
        kw = {"k": cfg.stack_top_k, "seed": cfg.seed, "model": cfg.stack_model}
        oof, _ = stack_cv(probs, meta, labels, folds=cfg.stack_folds, **kw)
        st = Stacker(**kw).fit(probs, meta, labels)
        methods["stack"] = _Method(st.predict, oof, "oof")
    return methods, best_i, weights


def choose(methods: dict[str, _Method], labels: np.ndarray, cfg: EnsembleConfig,
           can_balance: bool) -> tuple[str, bool, dict[str, float]]:
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
    test_scores: np.ndarray        # (N_test, C), the submitted method
    test_key_ids: np.ndarray
    classes: list[str]
    score_key_ids: np.ndarray      # the held-apart holdout rows ...
    score_scores: np.ndarray       # ... scored exactly as the test set is
    score_labels: np.ndarray


def run_ensemble(holdout_paths: Sequence[Path], test_paths: Sequence[Path],
                 cfg: EnsembleConfig, names: Sequence[str] | None = None) -> EnsembleResult:
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
    names = list(names) if names is not None else _member_names(holdout_paths)
    n_classes = len(hmeta["classes"])

    fit, score, balanced_rows = split_holdout(labels, n_classes, cfg.score_fraction, cfg.seed)
    fit_probs, score_probs = [p[fit] for p in hold], [p[score] for p in hold]
    fit_meta, score_meta = _rows(hmeta, fit), _rows(hmeta, score)
    methods, best_i, weights = fit_methods(fit_probs, fit_meta, labels[fit], cfg, final)
    base, use_balance, figures = choose(methods, labels[fit], cfg, balanced_rows)
    if use_balance and not balanced_rows:
        logger.warning("balancing asked for, but the holdout is too small for a class-"
                       "balanced score set: it is measured on unbalanced rows")
    final_name = f"{base}_balanced" if use_balance else base
    logger.info("choice on %d fit rows: %s -> %s", len(fit),
                {k: round(v, 4) for k, v in figures.items()}, final_name)

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
        "rows": {"fit": int(len(fit)), "score": int(len(score)),
                 "score_balanced": bool(balanced_rows), "test": int(len(tmeta["key_id"]))},
    }
    test_labels = np.asarray(tmeta["label"], dtype=np.int64)
    if len(test_labels) and (test_labels >= 0).all():
        metrics["test_map3"] = map3(test_scores, test_labels)
    logger.info("held-apart MAP@3 (%d rows): %s", len(score),
                {k: round(v, 4) for k, v in held.items()})
    return EnsembleResult(metrics, test_scores.astype(np.float32), tmeta["key_id"],
                          list(hmeta["classes"]), hmeta["key_id"][score],
                          score_scores.astype(np.float32), labels[score])


def _member_names(paths: Sequence[Path]) -> list[str]:
    names: list[str] = []
    for p in paths:
        name = Path(p).parent.name or Path(p).stem
        base, i = name, 2
        while name in names:
            name, i = f"{base}_{i}", i + 1
        names.append(name)
    return names
