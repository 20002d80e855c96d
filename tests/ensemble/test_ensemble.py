"""Blend weights, test balancing, honest stacking and the ensemble driver on tiny data."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from doodle.config import EnsembleConfig
from doodle.ensemble.balance import balance, balanced_subset
from doodle.ensemble.blend import blend, fit_blend_weights
from doodle.ensemble.choose import run_ensemble, split_holdout
from doodle.ensemble.members import load_member_predictions
from doodle.ensemble.stack import Stacker, stack_cv, stack_fit_predict
from doodle.metrics import map3

FAST = {"max_iter": 30}  # keep the gradient boosting small: these tests must be quick


@pytest.fixture(autouse=True)
def one_openmp_thread():
    # On tiny data OpenMP start-up and spinning cost more than the fits themselves, badly so
    # on a busy CI box; one thread keeps the stacking tests at a few seconds.
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def member(rng, labels, n_classes, signal) -> np.ndarray:
    """Noisy probabilities whose true-class logit is boosted by ``signal`` (scalar or per row)."""
    z = rng.normal(size=(len(labels), n_classes))
    z[np.arange(len(labels)), labels] += signal
    return softmax(z)


def save_npz(path: Path, probs, key_id, label, classes, rng) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(key_id)
    np.savez(
        path,
        probs=probs.astype(np.float16),
        key_id=np.asarray(key_id, dtype=np.int64),
        label=np.asarray(label, dtype=np.int64),
        classes=np.array(classes, dtype=str),
        n_strokes=rng.integers(1, 10, n).astype(np.int32),
        n_points=rng.integers(5, 100, n).astype(np.int32),
        countrycode=rng.choice(["US", "GB", "DE"], n).astype("U2"),
    )
    return path


# --------------------------------------------------------------------------- loading


def test_load_checks_alignment_and_names_files(tmp_path):
    rng = np.random.default_rng(0)
    classes = ["a", "b", "c"]
    probs = softmax(rng.normal(size=(4, 3)))
    a = save_npz(tmp_path / "m1" / "holdout.npz", probs, [1, 2, 3, 4], [0, 1, 2, 0], classes, rng)
    b = save_npz(tmp_path / "m2" / "holdout.npz", probs, [1, 3, 2, 4], [0, 1, 2, 0], classes, rng)
    with pytest.raises(ValueError, match="same key_ids in the same order") as info:
        load_member_predictions([a, b])
    assert str(a) in str(info.value) and str(b) in str(info.value)

    c = save_npz(
        tmp_path / "m3" / "holdout.npz", probs, [1, 2, 3, 4], [0, 1, 2, 0], ["a", "b", "d"], rng
    )
    with pytest.raises(ValueError, match="different class lists"):
        load_member_predictions([a, c])

    out, meta = load_member_predictions([a, a])
    assert len(out) == 2 and out[0].dtype == np.float32 and out[0].shape == (4, 3)
    assert meta["classes"] == classes and meta["key_id"].tolist() == [1, 2, 3, 4]


# --------------------------------------------------------------------------- blending


def test_blend_is_weighted_sum():
    a = np.array([[1.0, 0.0]], dtype=np.float32)
    b = np.array([[0.2, 0.8]], dtype=np.float32)
    np.testing.assert_allclose(blend([a, b], [0.25, 0.75]), [[0.4, 0.6]], rtol=1e-6)


def test_blend_weights_favour_the_accurate_member():
    rng = np.random.default_rng(0)
    n, c = 600, 20
    labels = rng.integers(0, c, n)
    accurate = member(rng, labels, c, 2.5)
    noisy = member(rng, labels, c, 0.5)
    w = fit_blend_weights([accurate, noisy], labels)
    assert w.sum() == pytest.approx(1.0) and (w >= 0).all()
    assert w[0] > w[1]
    best = max(map3(accurate, labels), map3(noisy, labels))
    assert map3(blend([accurate, noisy], w), labels) >= best


def test_blend_weights_single_member():
    assert fit_blend_weights([np.eye(3, dtype=np.float32)], np.arange(3)).tolist() == [1.0]


# --------------------------------------------------------------------------- balancing


def test_balance_hand_computed_two_classes():
    # Class 0 is top-1 for 5 of 6 rows, target 3 +- 1. Iteration 1 moves the class-0 vs
    # class-1 log ratio by -0.2 (two clipped steps of 0.1): 0.55 * e^-0.2 = 0.4503 > 0.45,
    # nothing flips; iteration 2 (ratio e^-0.4) flips the 0.55/0.45 row only -> counts 4/2.
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4], [0.55, 0.45], [0.3, 0.7]])
    out = balance(p)
    assert out.argmax(axis=1).tolist() == [0, 0, 0, 0, 1, 1]
    np.testing.assert_allclose(out[:, 1], p[:, 1], rtol=1e-6)  # the under-predicted class kept
    np.testing.assert_allclose(out[:, 0], p[:, 0] * np.exp(-0.4), rtol=1e-5)


def test_balance_equalises_counts_and_helps_a_biased_model():
    rng = np.random.default_rng(1)
    c, per_class = 20, 60
    labels = np.repeat(np.arange(c), per_class)
    z = rng.normal(size=(len(labels), c))
    z[np.arange(len(labels)), labels] += 2.0
    z += np.linspace(-1.5, 1.5, c)  # the model prefers high-index classes
    probs = softmax(z)
    before = np.bincount(probs.argmax(axis=1), minlength=c)
    out = balance(probs)
    after = np.bincount(out.argmax(axis=1), minlength=c)
    assert out.shape == probs.shape
    assert np.abs(before - per_class).max() > 30
    assert np.abs(after - per_class).max() <= 3  # tol 5% of 60
    assert map3(out, labels) > map3(probs, labels) + 0.02


def test_balance_rejects_negative_scores():
    with pytest.raises(ValueError):
        balance(np.array([[-1.0, 0.5], [0.2, 0.3]]))


def test_balanced_subset():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    idx = balanced_subset(labels, seed=3)
    assert np.bincount(labels[idx]).tolist() == [2, 2, 2]
    assert idx.tolist() == sorted(set(idx.tolist()))
    np.testing.assert_array_equal(idx, balanced_subset(labels, seed=3))


# --------------------------------------------------------------------------- stacking


def complementary_members(n=800, c=20, seed=0):
    """Three members, each sharp on a different n_strokes range and weak elsewhere."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    n_strokes = rng.integers(1, 16, n)
    groups = [n_strokes < 6, (n_strokes >= 6) & (n_strokes < 11), n_strokes >= 11]
    members = [member(rng, labels, c, np.where(g, 4.0, 0.8)) for g in groups]
    meta = {
        "n_strokes": n_strokes,
        "n_points": n_strokes * 7,
        "countrycode": rng.choice(["US", "GB"], n),
    }
    return members, meta, labels


def test_stack_cv_beats_members_on_complementary_errors():
    members, meta, labels = complementary_members()
    oof, score = stack_cv(members, meta, labels, k=5, folds=4, seed=0, params=FAST)
    best = max(map3(p, labels) for p in members)
    assert oof.shape == members[0].shape
    assert score == pytest.approx(map3(oof, labels))
    assert score >= best - 0.01
    # Candidates are the union of the members' top-5: at most 15 non-zero scores per row.
    assert ((oof > 0).sum(axis=1) <= 15).all() and ((oof > 0).sum(axis=1) >= 5).all()


def test_stack_cv_is_out_of_fold():
    # Members carry no information: an honest OOF score must stay near chance
    # (MAP@3 of random guessing among 10 classes = (1 + 1/2 + 1/3) / 10 = 0.183).
    rng = np.random.default_rng(5)
    n, c = 600, 10
    labels = rng.integers(0, c, n)
    members = [softmax(rng.normal(size=(n, c))) for _ in range(2)]
    meta = {
        "n_strokes": rng.integers(1, 9, n),
        "n_points": rng.integers(5, 80, n),
        "countrycode": np.array(["US"] * n),
    }
    _, score = stack_cv(members, meta, labels, k=5, folds=5, seed=0, params=FAST)
    assert score < 0.25


def test_stack_small_holdout_single_member_and_logreg():
    rng = np.random.default_rng(2)
    n, c = 30, 24
    labels = rng.integers(0, c, n)
    probs = member(rng, labels, c, 1.5)
    meta = {"n_strokes": np.ones(n), "n_points": np.ones(n), "countrycode": np.array(["US"] * n)}
    oof, score = stack_cv([probs], meta, labels, k=5, folds=5, seed=0, params=FAST)
    assert oof.shape == (n, c) and score == pytest.approx(map3(oof, labels))  # the oof figure
    test = stack_fit_predict(
        [probs],
        meta,
        labels,
        [probs[:7]],
        {k: v[:7] for k, v in meta.items()},
        k=3,
        seed=0,
        model="logreg",
    )
    assert test.shape == (7, c)
    with pytest.raises(ValueError):
        Stacker(model="xgboost")


# --------------------------------------------------------------------------- driver


def write_members(tmp_path, n_members=2, n_hold=240, n_test=96, c=24, seed=0):
    rng = np.random.default_rng(seed)
    classes = sorted(f"word {i:02d}" if i % 5 == 0 else f"w{i:02d}" for i in range(c))
    hold_labels = rng.integers(0, c, n_hold)
    test_labels = np.repeat(np.arange(c), n_test // c)
    hold_keys = np.arange(n_hold) + 1000
    test_keys = np.arange(len(test_labels)) + 5000
    holdout, test = [], []
    for m in range(n_members):
        signal = 2.0 + m
        hz = member(rng, hold_labels, c, signal)
        tz = member(rng, test_labels, c, signal)
        holdout.append(
            save_npz(
                tmp_path / f"model{m}" / "holdout.npz",
                hz,
                hold_keys,
                hold_labels,
                classes,
                np.random.default_rng(m),
            )
        )
        test.append(
            save_npz(
                tmp_path / f"model{m}" / "test.npz",
                tz,
                test_keys,
                np.full(len(test_keys), -1),
                classes,
                np.random.default_rng(m),
            )
        )
    return holdout, test, classes, test_keys


CFG = EnsembleConfig(
    blend=True,
    stack=True,
    stack_model="hgb",
    stack_top_k=5,
    stack_folds=3,
    stack_features=("strokes", "country"),
    balance=True,
    final="auto",
    score_fraction=0.5,
    seed=0,
)


def test_split_holdout_balanced_score_rows_when_possible():
    labels = np.repeat(np.arange(4), [10, 7, 12, 9])
    fit, score, balanced = split_holdout(labels, 4, 0.5, seed=0)
    assert balanced and np.bincount(labels[score]).tolist() == [3, 3, 3, 3]  # 7 * 0.5 -> 3
    assert np.intersect1d(fit, score).size == 0
    assert np.union1d(fit, score).tolist() == list(range(len(labels)))
    # A class absent from the holdout: no class-balanced score set; a random half instead.
    fit, score, balanced = split_holdout(labels, 5, 0.5, seed=0)
    assert not balanced and len(score) == 19 and np.intersect1d(fit, score).size == 0
    with pytest.raises(ValueError, match="raise shard.val_size"):
        split_holdout(np.array([0, 1]), 2, 0.5, seed=0)


def test_headline_is_the_submitted_method_on_held_apart_rows(tmp_path):
    holdout, test, classes, test_keys = write_members(tmp_path)
    r = run_ensemble(holdout, test, CFG)
    m = r.metrics
    assert m["final"].removesuffix("_balanced") in ("best_member", "blend", "stack")
    # the headline re-derives from the very scores the stage writes for the held-apart rows
    assert m["holdout_map3"] == map3(r.score_scores, r.score_labels)
    assert m["holdout_map3"] == m["holdout"][m["final"]]
    assert m["rows"]["fit"] + m["rows"]["score"] == 240 and m["rows"]["score_balanced"]
    assert set(m["members"]) == {"model0", "model1"}
    assert sum(m["blend_weights"].values()) == pytest.approx(1.0, abs=1e-3)
    assert all(k.endswith(("_in_sample", "_oof")) for k in m["choice"])  # labelled so
    assert r.test_scores.shape == (len(test_keys), len(classes))
    assert r.test_key_ids.tolist() == test_keys.tolist() and r.classes == classes
    assert "test_map3" not in m  # the test labels are unknown (-1)

    # Nothing about the held-apart rows may influence what is submitted: scramble the
    # members' predictions on exactly those rows and the choice, the weights and the test
    # scores stay the same, while the headline moves.
    score_keys = set(r.score_key_ids.tolist())
    for path in holdout:
        with np.load(path) as z:
            arrays = dict(z)
        rows = np.isin(arrays["key_id"], list(score_keys))
        arrays["probs"][rows] = np.random.default_rng(9).permutation(arrays["probs"][rows])
        np.savez(path, **arrays)
    r2 = run_ensemble(holdout, test, CFG)
    assert r2.metrics["final"] == m["final"] and r2.metrics["choice"] == m["choice"]
    assert r2.metrics["blend_weights"] == m["blend_weights"]
    np.testing.assert_array_equal(r2.test_scores, r.test_scores)
    assert r2.metrics["holdout_map3"] < m["holdout_map3"]


def test_auto_choice_is_the_best_fit_row_figure(tmp_path):
    holdout, test, _, _ = write_members(tmp_path)
    m = run_ensemble(holdout, test, CFG).metrics
    best = max(m["choice"], key=m["choice"].get)
    assert best.startswith(m["final"] + "_") and ("_balanced_" in best) == m["final"].endswith(
        "_balanced"
    )
    m = run_ensemble(holdout, test, dataclasses.replace(CFG, balance=False)).metrics
    assert not m["final"].endswith("_balanced")
    assert not any("_balanced" in k for k in m["choice"])


def test_one_member_explicit_final_and_known_test_labels(tmp_path):
    holdout, test, classes, _ = write_members(tmp_path, n_members=1)
    for path in test:  # labelled test rows, as with synthetic or ndjson data
        with np.load(path) as z:
            arrays = dict(z)
        arrays["label"] = np.repeat(np.arange(len(classes)), 4)
        np.savez(path, **arrays)
    cfg = dataclasses.replace(
        CFG, blend=False, stack=False, balance=False, final="blend_balanced", seed=1
    )
    r = run_ensemble(holdout, test, cfg)
    assert r.metrics["final"] == "blend_balanced" and r.metrics["choice"] == {}
    assert r.metrics["blend_weights"] == {"model0": 1.0} and "stack" not in r.metrics["holdout"]
    # Balanced test scores: the 96 test rows spread over 24 classes, about 4 each.
    counts = np.bincount(r.test_scores.argmax(axis=1), minlength=len(classes))
    assert np.abs(counts - 4).max() <= 1
    labels = np.repeat(np.arange(len(classes)), 4)
    assert r.metrics["test_map3"] == map3(r.test_scores, labels)
    r = run_ensemble(holdout, test, dataclasses.replace(cfg, final="best_member"))
    assert r.metrics["final"] == "best_member" and "blend" not in r.metrics["holdout"]
