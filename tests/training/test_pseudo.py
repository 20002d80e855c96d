"""Pseudo-labels (doodle.training.pseudo): the confident share of the test drawings, labelled by the
mean of the teachers' probabilities; the test labels are never read; the same teachers give
the same bytes (so DVC leaves a finetune member alone when pseudo@ re-runs)."""

import json

import numpy as np
import pytest

from doodle.data.shards import open_shard, write_shard
from doodle.data.strokes import pack
from doodle.errors import InputError
from doodle.training.pseudo import SHARD, SUMMARY, select, write_pseudo_labels

CLASSES = ["cat", "dog", "fish"]
N = 8


@pytest.fixture
def test_shard(tmp_path):
    """Eight test drawings whose labels are all 2 (so a pseudo-label that copied them,
    instead of the teachers' votes, would show)."""
    d = pack([[([i, i + 10], [0, 5])] for i in range(N)])
    path = tmp_path / "test.qds"
    key_ids = 10**12 + np.arange(N)
    write_shard(path, d, np.full(N, 2), key_ids, np.array(["US"] * N), {"split": "test"})
    return path


def _teacher(tmp_path, name, probs, key_ids=None, classes=CLASSES):
    path = tmp_path / name / "test.npz"
    path.parent.mkdir()
    keys = 10**12 + np.arange(N) if key_ids is None else key_ids
    np.savez(path, probs=np.asarray(probs, np.float16), key_id=keys, classes=np.array(classes))
    return path


def test_select_keeps_the_most_confident_share_in_row_order():
    probs = np.array([[0.5, 0.5, 0], [0.1, 0.9, 0], [0.8, 0.1, 0.1], [0.4, 0.3, 0.3]])
    rows, labels = select(probs, 0.5)
    assert rows.tolist() == [1, 2] and labels.tolist() == [1, 0]
    assert select(probs, 0.0)[0].size == 0
    assert select(probs, 1.0)[0].tolist() == [0, 1, 2, 3]


def test_two_teachers_vote_by_their_mean(tmp_path, test_shard):
    # teacher a is sure of class 0 everywhere, b of class 1 on the even rows only: the
    # mean picks 1 where b is surer than a, 0 elsewhere
    a = np.tile([0.6, 0.3, 0.1], (N, 1))
    b = np.where(np.arange(N)[:, None] % 2 == 0, [0.0, 1.0, 0.0], [0.5, 0.2, 0.3])
    teachers = {"a": _teacher(tmp_path, "a", a), "b": _teacher(tmp_path, "b", b)}
    out = tmp_path / "pseudo"
    s = write_pseudo_labels(teachers, test_shard, 1.0, out)
    shard = open_shard(out / SHARD)
    mean = (a.astype(np.float16).astype(np.float32) + b.astype(np.float16)) / 2
    assert shard.label.tolist() == mean.argmax(1).tolist() == [1, 0] * (N // 2)
    assert shard.label.tolist() != [2] * N  # not the test labels
    assert s["teachers"] == ["a", "b"] and s["rows"] == N and s["of"] == N
    assert json.loads((out / SUMMARY).read_text()) == s
    # half the share: the 4 most confident rows (the even ones: mean top 0.65 vs 0.55)
    write_pseudo_labels(teachers, test_shard, 0.5, out)
    half = open_shard(out / SHARD)
    assert half.key_id.tolist() == (10**12 + np.arange(0, N, 2)).tolist()
    assert half.drawings.strokes(1) == open_shard(test_shard).drawings.strokes(2)


def test_same_teachers_same_bytes_and_no_share_no_shard(tmp_path, test_shard):
    teachers = {"a": _teacher(tmp_path, "a", np.eye(3)[np.arange(N) % 3] * 0.9 + 0.03)}
    first, second = tmp_path / "one", tmp_path / "two"
    write_pseudo_labels(teachers, test_shard, 0.5, first)
    write_pseudo_labels(teachers, test_shard, 0.5, second)
    for name in (SHARD, SUMMARY):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    none = tmp_path / "none"
    s = write_pseudo_labels({}, test_shard, 0.0, none)
    assert sorted(p.name for p in none.iterdir()) == [SUMMARY] and s["rows"] == 0


def test_teachers_that_do_not_match_the_test_set_are_one_line_errors(tmp_path, test_shard):
    good = _teacher(tmp_path, "good", np.full((N, 3), 1 / 3))
    stale = _teacher(tmp_path, "stale", np.full((N - 1, 3), 1 / 3), 10**12 + np.arange(N - 1))
    with pytest.raises(InputError, match="stale/test.npz: its 7 key_ids are not the test shard"):
        write_pseudo_labels({"stale": stale}, test_shard, 0.5, tmp_path / "out")
    other = _teacher(tmp_path, "other", np.full((N, 3), 1 / 3), classes=["a", "b", "c"])
    with pytest.raises(InputError, match="other/test.npz: its class list differs"):
        write_pseudo_labels({"good": good, "other": other}, test_shard, 0.5, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half-written
