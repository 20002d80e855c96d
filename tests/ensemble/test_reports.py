"""doodle.ensemble.reports: the samples grid and the per-class holdout report."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from matplotlib.image import imread

from doodle.data.shards import open_shard, read_classes, train_shard_paths, write_shard
from doodle.data.strokes import pack
from doodle.ensemble.reports import holdout_report, per_class_report, sample_tiles, samples_grid
from doodle.fileio import write_json
from doodle.metrics import confused_pairs
from doodle.rendering.raster import render
from tests.conftest import random_drawings

ROOT = Path(__file__).resolve().parents[2]
PNG_LIMIT = 500_000
VIEW = dict(img_size=64, encoding="grey", line_width=6.0)  # a member's settings


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def check_png(path: Path) -> np.ndarray:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size < PNG_LIMIT
    assert not [p for p in path.parent.iterdir() if ".tmp-" in p.name], "temp file left"
    return imread(path)


def test_sample_tiles_are_the_first_drawings_of_each_class(synthetic_shards: Path) -> None:
    files = train_shard_paths(synthetic_shards)
    chosen, tiles, found = sample_tiles(
        files, 8, **(VIEW | {"img_size": 32}), per_class=3, max_classes=4
    )
    assert chosen.tolist() == [0, 2, 5, 7]  # evenly spread over the class list
    assert found.tolist() == [3, 3, 3, 3]
    first = open_shard(files[0])
    for row, c in enumerate(chosen):
        idx = np.flatnonzero(np.asarray(first.label) == c)[:3]
        assert len(idx) == 3  # 60 a class over 4 shards: the first shard has enough
        np.testing.assert_array_equal(tiles[row], render(first.drawings, idx, 32, "grey", 6.0))
        assert tiles[row].max() > 0


def test_samples_grid_png(synthetic_shards: Path, tmp_path: Path) -> None:
    classes = read_classes(synthetic_shards)
    out = samples_grid(synthetic_shards, None, tmp_path / "reports" / "samples.png", **VIEW)
    img = check_png(out)
    assert img.shape[0] > 8 * 64 and img.shape[1] > 6 * 64  # 8 rows of 6 tiles, 1:1
    # The same grid from an explicit file list and class list is the same picture.
    again = samples_grid(train_shard_paths(synthetic_shards), classes, tmp_path / "b.png", **VIEW)
    assert out.read_bytes() == again.read_bytes()
    rgb = samples_grid(
        synthetic_shards / "holdout.qds",
        classes,
        tmp_path / "c.png",
        32,
        "order3",
        6.0,
        per_class=2,
        max_classes=3,
    )
    assert check_png(rgb).shape[2] in (3, 4)


def test_samples_grid_stays_small_for_big_renders(synthetic_shards: Path, tmp_path: Path) -> None:
    out = samples_grid(synthetic_shards, None, tmp_path / "big.png", 256, "order3", 6.0)
    check_png(out)


def test_samples_grid_with_missing_classes(tmp_path: Path, synthetic_shards: Path) -> None:
    """A class without drawings gets an empty row (its count shown), not an error."""
    classes = [*read_classes(synthetic_shards), "never seen"]
    _, tiles, found = sample_tiles(
        [synthetic_shards / "holdout.qds"], len(classes), 32, "grey", 6.0, per_class=6
    )
    assert found[-1] == 0 and tiles[-1].max() == 0
    check_png(samples_grid(synthetic_shards / "holdout.qds", classes, tmp_path / "m.png", **VIEW))


def test_samples_are_drawn_with_the_members_line_width(synthetic_shards: Path) -> None:
    files = train_shard_paths(synthetic_shards)
    _, thin, _ = sample_tiles(files, 8, 32, "grey", 2.0, per_class=2, max_classes=2)
    _, wide, _ = sample_tiles(files, 8, 32, "grey", 12.0, per_class=2, max_classes=2)
    assert (thin > 0).sum() < (wide > 0).sum()


def test_samples_show_the_best_image_members_view() -> None:
    """An lstm member sees points: the picture then shows the best image member's view."""
    from doodle.config import parse_params
    from doodle.ensemble.reports import shown_member

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["members"] = {
        "seq": {"arch": "lstm"},
        "small": {"arch": "cnn", "img_size": 48, "line_width": 4},
        "big": {"arch": "cnn", "img_size": 96, "encoding": "order3"},
    }
    params = parse_params(raw)
    metrics = {"best_member": "seq", "members": {"seq": 0.9, "small": 0.7, "big": 0.8}}
    assert shown_member(params, metrics).name == "big"
    assert shown_member(params, metrics | {"best_member": "small"}).name == "small"
    raw["members"] = {"seq": {"arch": "lstm"}}
    only = parse_params(raw)
    assert shown_member(only, {"best_member": "seq", "members": {"seq": 0.9}}).name == "seq"


def _probs(labels: np.ndarray, ranks: np.ndarray, n_classes: int) -> np.ndarray:
    """Scores that put each row's true label at ``ranks`` (1..n; the others after it)."""
    probs = np.zeros((len(labels), n_classes), np.float32)
    for i, (y, r) in enumerate(zip(labels, ranks, strict=True)):
        others = [c for c in range(n_classes) if c != y]
        order = others[: r - 1] + [y] + others[r - 1 :]
        probs[i, order] = np.linspace(1.0, 0.1, n_classes)
    return probs


def test_per_class_report(tmp_path: Path) -> None:
    classes = ["apple", "banana", 'it\'s "odd", ok', "zebra"]
    labels = np.array([0, 0, 1, 1, 1, 3, 3, 3, 3])  # no row of class 2
    ranks = np.array([1, 1, 2, 2, 4, 1, 4, 4, 4])
    probs = _probs(labels, ranks, 4)
    out = per_class_report(probs, labels, classes, tmp_path / "reports")

    rows = read_csv(out["per_class_csv"])
    assert [r["class"] for r in rows] == ["zebra", "banana", "apple"]  # worst first
    assert [float(r["map3"]) for r in rows] == pytest.approx([0.25, 1 / 3, 1.0], abs=1e-4)
    assert [int(r["count"]) for r in rows] == [4, 3, 2]

    pairs = read_csv(out["pairs_csv"])
    want = confused_pairs(probs, labels, classes, n=20)
    assert [(p["true"], p["pred"], int(p["count"])) for p in pairs] == [
        (w["true"], w["pred"], w["count"]) for w in want
    ]
    assert pairs and all(p["pair"] == f"{p['true']} -> {p['pred']}" for p in pairs)
    n_true = {c: int((labels == i).sum()) for i, c in enumerate(classes)}
    assert all(
        float(p["share"]) == pytest.approx(int(p["count"]) / n_true[p["true"]], abs=1e-4)
        for p in pairs
    )
    for key in ("per_class_png", "pairs_png"):
        check_png(out[key])


def test_per_class_report_limits_and_checks(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n_classes = 60
    labels = rng.integers(0, n_classes, 3000)
    probs = rng.random((3000, n_classes)).astype(np.float32)
    probs[np.arange(3000), labels] += rng.random(3000)  # better than chance, unevenly
    out = per_class_report(probs, labels, [f"class {i}" for i in range(n_classes)], tmp_path)
    assert len(read_csv(out["per_class_csv"])) == n_classes
    assert len(read_csv(out["pairs_csv"])) == 20
    scores = [float(r["map3"]) for r in read_csv(out["per_class_csv"])]
    assert scores == sorted(scores)
    with pytest.raises(ValueError, match="probs shape"):
        per_class_report(probs[:, :5], labels, ["a"] * n_classes, tmp_path)


def test_per_class_report_without_mistakes(tmp_path: Path) -> None:
    labels = np.array([0, 1, 2])
    out = per_class_report(np.eye(3, dtype=np.float32), labels, ["a", "b", "c"], tmp_path)
    assert read_csv(out["pairs_csv"]) == []
    check_png(out["pairs_png"])


def _write_member(folder: Path, probs: np.ndarray, labels: np.ndarray, classes: list[str]) -> None:
    """A prediction file in the predict stage's format (doodle.predict.save_predictions)."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(probs)
    for split in ("holdout", "test"):
        np.savez(
            folder / f"{split}.npz",
            probs=probs.astype(np.float16),
            key_id=np.arange(n, dtype=np.int64) + 10**15,
            label=labels.astype(np.int64) if split == "holdout" else np.full(n, -1),
            classes=np.array(classes, dtype=str),
            n_strokes=np.full(n, 3, np.int32),
            n_points=np.full(n, 30, np.int32),
            countrycode=np.full(n, "US", dtype="U2"),
        )


def test_holdout_report_reads_a_member_file(tmp_path: Path) -> None:
    labels = np.array([0, 1, 1, 2])
    probs = _probs(labels, np.array([1, 2, 1, 3]), 3)
    _write_member(tmp_path / "pred" / "base", probs, labels, ["a", "b", "c"])
    out = holdout_report(tmp_path / "pred" / "base" / "holdout.npz", tmp_path / "reports")
    rows = read_csv(out["per_class_csv"])
    assert [(r["class"], float(r["map3"])) for r in rows] == [
        ("c", pytest.approx(1 / 3, abs=1e-4)),
        ("b", 0.75),
        ("a", 1.0),
    ]


@pytest.mark.e2e  # runs the ensemble stage script in a subprocess
def test_ensemble_stage_writes_the_per_class_report(tmp_path: Path) -> None:
    """The real ensemble stage: reports of the best member's holdout next to metrics.json."""
    rng = np.random.default_rng(1)
    classes = ["apple", "banana", "cat", "dog"]
    labels = np.repeat(np.arange(4), 10)
    good = _probs(labels, rng.choice([1, 1, 1, 2], 40), 4)
    poor = _probs(labels, rng.choice([1, 2, 3, 4], 40), 4)
    _write_member(tmp_path / "data" / "predictions" / "members" / "good", good, labels, classes)
    _write_member(tmp_path / "data" / "predictions" / "members" / "poor", poor, labels, classes)
    shards = tmp_path / "data" / "shards"  # the training drawings for reports/samples.png
    shards.mkdir()
    write_json(shards / "classes.json", classes)
    drawings = pack(random_drawings(rng, 12))
    write_shard(
        shards / "train-000.qds", drawings, np.arange(12) % 4, np.arange(12), np.array([b"US"] * 12)
    )
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["members"] = {"poor": {}, "good": {}}
    params["ensemble"].update(blend=False, stack=False, balance=False, final="auto")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    p = subprocess.run(
        [sys.executable, str(ROOT / "stages" / "ensemble.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    rows = read_csv(tmp_path / "reports" / "per_class_map3.csv")
    want = per_class_report(good, labels, classes, tmp_path / "want")
    assert rows == read_csv(want["per_class_csv"])  # the best member's holdout ("good")
    for name in ("per_class_map3.png", "confused_pairs.png", "samples.png"):
        check_png(tmp_path / "reports" / name)
    assert read_csv(tmp_path / "reports" / "confused_pairs.csv") == read_csv(want["pairs_csv"])


def test_dvc_yaml_declares_the_plots() -> None:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]

    def plots(stage: str) -> dict:
        return {
            k: v
            for entry in stages[stage].get("plots", [])
            if isinstance(entry, dict)
            for k, v in entry.items()
        }

    def images(stage: str) -> list[str]:  # plain entries: cached by DVC, kept by experiments
        return [e for e in stages[stage].get("plots", []) if isinstance(e, str)]

    assert images("shard") == []  # the shard stage draws nothing: a renderer edit never re-shards
    assert images("ensemble") == [
        "reports/per_class_map3.png",
        "reports/confused_pairs.png",
        "reports/samples.png",
    ]
    ens = plots("ensemble")
    headers = {
        "reports/per_class_map3.csv": ["class", "map3", "count"],
        "reports/confused_pairs.csv": ["true", "pred", "count", "share", "pair"],
    }
    for path, header in headers.items():
        spec = ens[path]
        assert spec["cache"] is False and spec["x"] in header and spec["y"] in header
    assert not [d for d in stages["shard"]["deps"] if d.startswith("doodle/ensemble")]
    assert {"doodle/ensemble", "data/shards"} <= set(stages["ensemble"]["deps"])
