"""Stacking: a second-level model on each member's top-k candidate classes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from doodle.data.countries import country_index
from doodle.ensemble.blend import blend
from doodle.metrics import map3, top_k


class Stacker:
    """Second-level model scoring (drawing, candidate class) pairs.

    Candidates are the union of every member's top-``k`` classes. Features per pair: each
    member's probability, rank and probability relative to its top-1; the mean-blend
    probability and rank; max/mean/min/std over members; how many members have it in
    their top-k; the blend's top-1 probability; and the drawing's own ``features``
    (``ensemble.stack_features``): ``strokes`` (n_strokes, n_points), ``country`` (the
    drawing's country as an index of the fixed vocabulary, :mod:`doodle.data.countries`;
    a categorical feature of the gradient-boosting model). Target: candidate == true label.
    A drawing's classes are ranked by the model's probability; non-candidates get 0 and rank
    last. No feature reads a label.
    """

    def __init__(
        self,
        k: int = 5,
        model: str = "hgb",
        seed: int = 0,
        params: dict | None = None,
        features: Sequence[str] = ("strokes", "country"),
    ) -> None:
        if model not in ("hgb", "logreg"):
            raise ValueError(f"model must be 'hgb' or 'logreg', got {model!r}")
        unknown = set(features) - {"strokes", "country"}
        if unknown:
            raise ValueError(f"unknown stack features {sorted(unknown)}")
        self.k = k
        self.model = model
        self.seed = seed
        self.params = dict(params or {})
        self.drawing_features = tuple(features)
        self.fitted = None

    # -- features
    def _drawing_columns(self, meta: dict) -> list[np.ndarray]:
        """The per-drawing columns of ``drawing_features``, in order."""
        cols = []
        if "strokes" in self.drawing_features:
            cols += [
                np.asarray(meta["n_strokes"], np.float64),
                np.asarray(meta["n_points"], np.float64),
            ]
        if "country" in self.drawing_features:
            cols.append(country_index(meta["countrycode"]).astype(np.float64))
        return cols

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
        drawing = [col[rows] for col in self._drawing_columns(meta)]
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
                *drawing,
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
            if "country" in self.drawing_features:  # the last column: a category, not a size
                params.setdefault("categorical_features", [self.n_features - 1])
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
        self.n_features = x.shape[1]
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
    features: Sequence[str] = ("strokes", "country"),
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
    st = Stacker(k=k, model=model, seed=seed, params=params, features=features)
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
    features: Sequence[str] = ("strokes", "country"),
) -> np.ndarray:
    """Fit the stacker on the whole holdout and score the test set (N_test, C)."""
    st = Stacker(k=k, model=model, seed=seed, params=params, features=features)
    st.fit(member_probs_holdout, meta_holdout, labels)
    return st.predict(member_probs_test, meta_test)
