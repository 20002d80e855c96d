"""Second-level fusion of member predictions: weighted blend, stacking and test balancing.

Every member writes one ``.npz`` per split (see ``load_member_predictions``); the holdout
files carry labels and are used to fit blend weights / the stacker and to choose the final
method, the test files are scored with the chosen method.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from doodle.metrics import map3, top_k

logger = logging.getLogger(__name__)

META_KEYS = ("key_id", "label", "classes", "n_strokes", "n_points", "countrycode")
METHODS = ("best_member", "blend", "stack")  # simplest first: ties go to the simpler one
DEFAULT_CFG: dict = {
    "blend": True,
    "stack": True,
    "stack_top_k": 5,
    "stack_folds": 5,
    "stack_model": "hgb",
    "stack_params": {},
    "balance": True,
    "final": "auto",
    "seed": 0,
}


# --------------------------------------------------------------------------- loading


def load_member_predictions(paths: Sequence[Path]) -> tuple[list[np.ndarray], dict]:
    """Load each member's ``probs`` as float32 plus the metadata shared by all members.

    Raises ValueError (naming the files) when members disagree on classes, key_ids or labels.
    """
    if not paths:
        raise ValueError("no prediction files given")
    probs_list: list[np.ndarray] = []
    meta: dict = {}
    first: Path | None = None
    for path in map(Path, paths):
        with np.load(path, allow_pickle=False) as z:
            missing = sorted({"probs", *META_KEYS} - set(z.files))
            if missing:
                raise ValueError(f"{path}: missing arrays {missing}")
            probs = z["probs"].astype(np.float32)
            m = {key: z[key] for key in META_KEYS}
        m["classes"] = [str(c) for c in m["classes"]]
        n = len(m["key_id"])
        if probs.shape != (n, len(m["classes"])):
            raise ValueError(
                f"{path}: probs shape {probs.shape} != (n_key_ids={n}, "
                f"n_classes={len(m['classes'])})"
            )
        if first is None:
            first, meta = path, m
        else:
            if m["classes"] != meta["classes"]:
                raise ValueError(f"{path} and {first} have different class lists")
            if not np.array_equal(m["key_id"], meta["key_id"]):
                raise ValueError(
                    f"{path} and {first} do not hold the same key_ids in the same order "
                    f"({n} vs {len(meta['key_id'])} rows); re-run the predict stages"
                )
            if not np.array_equal(m["label"], meta["label"]):
                raise ValueError(f"{path} and {first} have different labels")
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


def _member_names(paths: Sequence[Path]) -> list[str]:
    names: list[str] = []
    for p in paths:
        name = Path(p).parent.name or Path(p).stem
        base, i = name, 2
        while name in names:
            name, i = f"{base}_{i}", i + 1
        names.append(name)
    return names


def run_ensemble(
    holdout_paths: Sequence[Path], test_paths: Sequence[Path], cfg: dict
) -> tuple[dict, np.ndarray, np.ndarray, list[str]]:
    """Evaluate best member / blend / stack on the holdout, pick one, score the test.

    Returns (metrics, test_scores (N_test, C), test_key_ids, classes). ``holdout_map3`` is
    the chosen method's MAP@3 on the full holdout (without balancing, which only makes sense
    on class-balanced data); ``final_balanced_subset_map3`` is the chosen variant's MAP@3 on
    the class-balanced subset. ``final: auto`` picks the variant (method, with or without
    balancing) that scores best on the balanced subset, or with ``balance: false`` the
    method that scores best on the full holdout.
    Blend weights are fitted and ``best_member`` chosen on the same holdout, so their scores
    are slightly optimistic; the stack score is out-of-fold.
    """
    cfg = {**DEFAULT_CFG, **(cfg or {})}
    seed = int(cfg["seed"])
    final = str(cfg["final"])
    base = final.removesuffix("_balanced")
    if base not in ("auto", *METHODS) or final == "auto_balanced":
        raise ValueError(
            f"ensemble.final must be auto, best_member, blend or stack (optionally with "
            f"'_balanced'), got {final!r}"
        )
    if len(holdout_paths) != len(test_paths):
        raise ValueError(f"{len(holdout_paths)} holdout files but {len(test_paths)} test files")

    hold, hmeta = load_member_predictions(holdout_paths)
    test, tmeta = load_member_predictions(test_paths)
    if hmeta["classes"] != tmeta["classes"]:
        raise ValueError(f"{holdout_paths[0]} and {test_paths[0]} have different class lists")
    labels = np.asarray(hmeta["label"], dtype=np.int64)
    if (labels < 0).any():
        raise ValueError(f"{holdout_paths[0]}: holdout labels must be >= 0")
    names = _member_names(holdout_paths)

    members = {name: map3(p, labels) for name, p in zip(names, hold, strict=True)}
    best_i = int(np.argmax(list(members.values())))
    logger.info("members MAP@3: %s", members)

    methods: dict[str, np.ndarray] = {"best_member": hold[best_i]}
    weights: np.ndarray | None = None
    if cfg["blend"] or base == "blend":
        weights = fit_blend_weights(hold, labels, seed=seed)
        methods["blend"] = blend(hold, weights)
    stack_kw = {
        "k": int(cfg["stack_top_k"]),
        "seed": seed,
        "model": cfg["stack_model"],
        "params": cfg["stack_params"],
    }
    if cfg["stack"] or base == "stack":
        methods["stack"], _ = stack_cv(
            hold, hmeta, labels, folds=int(cfg["stack_folds"]), **stack_kw
        )
    scores = {name: map3(s, labels) for name, s in methods.items()}
    logger.info("holdout MAP@3: %s", scores)

    subset = balanced_subset(labels, seed)
    bal: dict = {"n": int(len(subset))}
    for name, s in methods.items():
        bal[name] = map3(s[subset], labels[subset])
        bal[f"{name}_balanced"] = map3(balance(s[subset]), labels[subset])

    if base == "auto" and cfg["balance"]:
        # The test set is class-balanced, so the balanced subset is the test-like yardstick:
        # compare every method with and without balancing there. (Picking the method on the
        # full holdout first can miss e.g. blend_balanced > stack_balanced, because the
        # stack leaves non-candidates at 0 where balancing cannot lift them.)
        variants = [v for name in methods for v in (name, f"{name}_balanced")]
        best = max(variants, key=lambda v: bal[v])  # first max = simplest on ties
        base, use_balance = best.removesuffix("_balanced"), best.endswith("_balanced")
    elif base == "auto":
        base = max(methods, key=lambda name: scores[name])  # first max = simplest on ties
        use_balance = False
    else:
        use_balance = final.endswith("_balanced")
    final_name = f"{base}_balanced" if use_balance else base
    logger.info("final method: %s", final_name)

    if base == "best_member":
        test_scores = test[best_i].copy()
    elif base == "blend":
        test_scores = blend(test, weights)
    else:
        test_scores = stack_fit_predict(hold, hmeta, labels, test, tmeta, **stack_kw)
    if use_balance:
        test_scores = balance(test_scores)

    metrics = {
        "holdout_map3": scores[base],
        "final": final_name,
        "best_member": names[best_i],
        "members": members,
        "blend": scores.get("blend"),
        "blend_weights": None if weights is None else [float(w) for w in weights],
        "stack": scores.get("stack"),
        "balanced_subset": bal,
        "final_balanced_subset_map3": bal[final_name],
        "n_holdout": int(len(labels)),
        "n_test": int(len(tmeta["key_id"])),
    }
    return metrics, test_scores.astype(np.float32), tmeta["key_id"], list(hmeta["classes"])
