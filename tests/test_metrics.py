"""MAP@3 and top-k on hand-computed cases."""

import numpy as np
import pytest

from doodle.metrics import confused_pairs, map3, map_at_k, per_class_map3, top_k


def test_top_k_order_best_first():
    probs = np.array([[0.1, 0.5, 0.2, 0.15, 0.05], [0.3, 0.0, 0.0, 0.4, 0.3]])
    np.testing.assert_array_equal(top_k(probs, 3), [[1, 2, 3], [3, 0, 4]])


def test_top_k_ties_go_to_lower_index():
    # All equal: the answer must be 0,1,2 whatever argpartition happens to pick.
    probs = np.full((4, 50), 0.02, dtype=np.float16)
    np.testing.assert_array_equal(top_k(probs, 3), np.tile([0, 1, 2], (4, 1)))
    # Tie at the k-th place between index 4 and index 7 (index 9 wins outright).
    probs = np.zeros((1, 10))
    probs[0, [9, 4, 7, 2]] = [0.9, 0.3, 0.3, 0.3]
    np.testing.assert_array_equal(top_k(probs, 3), [[9, 2, 4]])


def test_top_k_matches_stable_argsort_on_random_float16():
    rng = np.random.default_rng(1)
    probs = (rng.integers(0, 20, size=(300, 40)) / 20).astype(np.float16)  # many ties
    expected = np.argsort(-probs, axis=1, kind="stable")[:, :3]
    np.testing.assert_array_equal(top_k(probs, 3), expected)


def test_top_k_k_larger_than_classes():
    assert top_k(np.array([[0.2, 0.8]]), 3).tolist() == [[1, 0]]


def test_map_at_k_ranks_1_2_3_and_miss():
    top = np.array([[5, 1, 2], [1, 5, 2], [1, 2, 5], [1, 2, 3]])
    labels = np.array([5, 5, 5, 5])
    assert map_at_k(top, labels) == pytest.approx((1 + 1 / 2 + 1 / 3 + 0) / 4)


def test_map_at_k_repeated_label_counts_once():
    assert map_at_k(np.array([[7, 7, 7]]), np.array([7])) == 1.0


def test_map3_from_probs():
    probs = np.array(
        [
            [0.7, 0.2, 0.1, 0.0],  # label 0 first -> 1
            [0.7, 0.2, 0.1, 0.0],  # label 2 third -> 1/3
            [0.1, 0.2, 0.3, 0.4],  # label 0 fourth -> 0
        ]
    )
    assert map3(probs, np.array([0, 2, 0])) == pytest.approx((1 + 1 / 3) / 3)


def test_per_class_map3():
    probs = np.array(
        [
            [0.6, 0.3, 0.1],  # true 0, rank 1 -> 1
            [0.3, 0.6, 0.1],  # true 0, rank 2 -> 1/2
            [0.1, 0.3, 0.6],  # true 2, rank 1 -> 1
        ]
    )
    out = per_class_map3(probs, np.array([0, 0, 2]), n_classes=4)
    assert out[0] == pytest.approx(0.75)
    assert np.isnan(out[1]) and np.isnan(out[3])
    assert out[2] == pytest.approx(1.0)


def test_confused_pairs_counts_and_order():
    classes = ["cat", "dog", "The Eiffel Tower"]
    eye = np.eye(3)
    # top-1 predictions: true cat->dog twice, dog->cat once, tower->cat once, one correct.
    probs = eye[[1, 1, 0, 0, 2]]
    labels = np.array([0, 0, 1, 2, 2])
    pairs = confused_pairs(probs, labels, classes, n=2)
    assert pairs == [
        {"true": "cat", "pred": "dog", "count": 2},
        {"true": "dog", "pred": "cat", "count": 1},
    ]
