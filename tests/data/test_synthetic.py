"""Tests for the procedural Quick, Draw! generator (doodle.data.synthetic)."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from benchmarks.shared_data import SHARED
from doodle.data import synthetic
from doodle.data.synthetic import CLASSES, write_synthetic


def generate_drawing(word: str, rng: np.random.Generator):
    """One drawing of ``word`` as write_synthetic makes it (no stray drawings)."""
    return synthetic._make(word, rng)[0]


CATEGORIES = SHARED / "kaggle_340_categories.txt"
TRAIN_HEADER = "countrycode,drawing,key_id,recognized,timestamp,word"
TEST_HEADER = "key_id,countrycode,drawing"
SOLUTION_HEADER = "key_id,word"
TIMESTAMP = re.compile(r"^2017-0[1-3]-\d\d \d\d:\d\d:\d\d\.\d{1,5}$")


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _first_line(path: Path) -> str:
    with open(path, "rb") as fh:
        return fh.readline().decode()


def _check_drawing(drawing: object) -> None:
    assert isinstance(drawing, list) and drawing
    xs: list[int] = []
    ys: list[int] = []
    for stroke in drawing:
        assert isinstance(stroke, list) and len(stroke) == 2
        x, y = stroke
        assert len(x) == len(y) >= 2
        for v in (*x, *y):
            assert type(v) is int and 0 <= v <= 255
        xs += x
        ys += y
    # Kaggle normalisation: top-left at 0, the larger side spans 0..255
    assert min(xs) == 0 and min(ys) == 0
    assert max(max(xs), max(ys)) == 255


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    dest = tmp_path_factory.mktemp("synthetic24")
    return dest, write_synthetic(dest, train_per_class=200, test_per_class=10, seed=7, n_classes=24)


def test_classes_are_real_quickdraw_names() -> None:
    assert len(CLASSES) >= 24
    assert len(set(CLASSES)) == len(CLASSES)
    if not CATEGORIES.exists():
        pytest.skip(f"needs the real data in ../shared/data: {CATEGORIES} is absent")
    names = set(CATEGORIES.read_text(encoding="utf-8").splitlines())
    assert len(names) == 340
    assert set(CLASSES) <= names, sorted(set(CLASSES) - names)


@pytest.mark.parametrize("word", CLASSES)
def test_generate_drawing_format(word: str) -> None:
    rng = np.random.default_rng(0)
    counts = []
    for _ in range(20):
        drawing = generate_drawing(word, rng)
        _check_drawing(drawing)
        counts.append(sum(len(s[0]) for s in drawing))
    assert 2 <= np.mean(counts) <= 80  # sparse, like simplified data


def test_generate_drawing_is_deterministic_and_varied() -> None:
    a = [generate_drawing("house", np.random.default_rng(3)) for _ in range(2)]
    assert a[0] == a[1]
    rng = np.random.default_rng(3)
    assert generate_drawing("house", rng) != generate_drawing("house", rng)


def test_points_per_drawing_are_in_simplified_range() -> None:
    rng = np.random.default_rng(1)
    counts = [sum(len(s[0]) for s in generate_drawing(w, rng)) for w in CLASSES for _ in range(30)]
    assert 15 <= np.mean(counts) <= 60


def test_layout_headers_and_rows(big: tuple[Path, dict]) -> None:
    dest, summary = big
    words = CLASSES[:24]
    assert summary == {"classes": 24, "train_rows": 24 * 200, "test_rows": 24 * 10}
    files = sorted(p.name for p in (dest / "train_simplified").iterdir())
    assert files == sorted(f"{w}.csv" for w in words)  # spaces kept, no temp files left
    assert sorted(p.name for p in dest.iterdir()) == [
        "test_simplified.csv",
        "test_solution.csv",
        "train_simplified",
    ]
    for word in words:
        path = dest / "train_simplified" / f"{word}.csv"
        assert _first_line(path) == TRAIN_HEADER + "\r\n"
        rows = _rows(path)
        assert len(rows) == 200
        assert {r["word"] for r in rows} == {word}
        assert {r["recognized"] for r in rows} <= {"True", "False"}
        assert sum(r["recognized"] == "True" for r in rows) > 150  # mostly True
        for r in rows[:20]:
            assert re.fullmatch(r"[A-Z]{2}", r["countrycode"])
            assert TIMESTAMP.match(r["timestamp"]), r["timestamp"]
            _check_drawing(json.loads(r["drawing"]))
    # the drawing column is quoted by the csv module, as in Kaggle's files
    assert ',"[[[' in (dest / "train_simplified" / "circle.csv").read_text().splitlines()[1]


def test_test_set_and_solution(big: tuple[Path, dict]) -> None:
    dest, _ = big
    assert _first_line(dest / "test_simplified.csv") == TEST_HEADER + "\r\n"
    assert _first_line(dest / "test_solution.csv") == SOLUTION_HEADER + "\r\n"
    test = _rows(dest / "test_simplified.csv")
    solution = _rows(dest / "test_solution.csv")
    assert [r["key_id"] for r in test] == [r["key_id"] for r in solution]
    for r in test:
        _check_drawing(json.loads(r["drawing"]))
        assert re.fullmatch(r"[A-Z]{2}", r["countrycode"])
    labels = Counter(r["word"] for r in solution)
    assert labels == {w.replace(" ", "_"): 10 for w in CLASSES[:24]}  # balanced
    assert all(" " not in w for w in labels)
    assert "stop_sign" in labels and "smiley_face" in labels
    first = [r["word"] for r in solution[:24]]
    assert len(set(first)) > 5  # shuffled, not grouped by class


def test_key_ids_unique_16_digits_and_fill_all_buckets(big: tuple[Path, dict]) -> None:
    dest, _ = big
    keys = [int(r["key_id"]) for p in (dest / "train_simplified").iterdir() for r in _rows(p)]
    keys += [int(r["key_id"]) for r in _rows(dest / "test_simplified.csv")]
    assert len(keys) == 24 * 210
    assert len(set(keys)) == len(keys)
    assert all(len(str(k)) == 16 and 4 * 10**15 <= k < 67 * 10**14 for k in keys)
    buckets = Counter((k // 10**7) % 100 for k in keys)
    assert len(buckets) == 100
    assert min(buckets.values()) >= 20  # ~50 expected per bucket


def test_deterministic_per_seed(tmp_path: Path) -> None:
    def snapshot(dest: Path) -> dict[str, bytes]:
        return {str(p.relative_to(dest)): p.read_bytes() for p in dest.rglob("*.csv")}

    runs = {}
    for name, seed in (("a", 11), ("b", 11), ("c", 12)):
        write_synthetic(
            tmp_path / name, train_per_class=15, test_per_class=4, seed=seed, n_classes=4
        )
        runs[name] = snapshot(tmp_path / name)
    assert len(runs["a"]) == 4 + 2
    assert runs["a"] == runs["b"]
    assert all(runs["a"][k] != runs["c"][k] for k in runs["a"])


def test_class_drawings_do_not_depend_on_n_classes(tmp_path: Path) -> None:
    write_synthetic(tmp_path / "two", 10, 0, seed=5, n_classes=2)
    write_synthetic(tmp_path / "three", 10, 0, seed=5, n_classes=3)
    for word in CLASSES[:2]:
        a = _rows(tmp_path / "two" / "train_simplified" / f"{word}.csv")
        b = _rows(tmp_path / "three" / "train_simplified" / f"{word}.csv")
        assert [r["drawing"] for r in a] == [r["drawing"] for r in b]


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_synthetic(tmp_path, 1, 1, seed=0, n_classes=0)
    with pytest.raises(ValueError):
        write_synthetic(tmp_path, 1, 1, seed=0, n_classes=len(CLASSES) + 1)
    with pytest.raises(ValueError):
        write_synthetic(tmp_path, -1, 1, seed=0, n_classes=2)
