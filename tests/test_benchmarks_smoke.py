"""Smoke tests of the benchmark drivers: they run on tiny data and return their keys.

No timing is asserted: these figures mean nothing at this size.
"""

from __future__ import annotations

import csv
import importlib.util
import json

import numpy as np

from benchmarks.bench_loader import bench_loader, loader_scaling, write_csv_from_shards
from benchmarks.run_all import bench_shard, expand_raw, unique_key_ids
from doodle.data.shards import open_shard, read_classes, train_shard_paths

SHARD_KEYS = [
    "shard_drawings_per_s_small",
    "shard_peak_rss_mb_small",
    "shard_rows_small",
    "shard_drawings_per_s_large",
    "shard_peak_rss_mb_large",
    "shard_rows_large",
    "shard_peak_rss_mb_large_fixed_shards",
    "shard_rss_ratio_large_vs_small",
    "shard_rss_ratio_large_fixed_shards_vs_small",
    "shard_peak_rss_mb_large_more_classes",
    "shard_rss_ratio_large_more_classes_vs_small",
]
LOADER_KEYS = [
    "loader_ratio_vs_from_generator",
    "pydataset_batches_per_s",
    "from_generator_batches_per_s",
    "pydataset_images_per_s",
    "pydataset_direct_batches_per_s",
    "pydataset_enqueuer_batches_per_s",
    "loader_ratio_per_cpu_s",
    "sequence_loader_per_s",
]
SCALING_KEYS = [
    f"scaling_{what}_{size}{w}"
    for size in (64, 128)
    for what, w in (("images_per_s", "_w1"), ("images_per_s", "_w2"), ("images_per_cpu_s", ""))
] + ["scaling_ratio_64_w2_vs_w1", "scaling_ratio_128_w2_vs_w1"]
RENDER_KEYS = [
    "render_per_core_64",
    "render_per_core_128",
    "baseline_render_per_core_64",
    "agreement_mad_64",
]


def test_unique_key_ids_are_unique_16_digit_and_spread():
    keys = unique_key_ids(10_000, np.random.default_rng(0))
    assert len(np.unique(keys)) == 10_000
    assert keys.min() >= 10**15 and keys.max() < 10**16
    buckets = np.bincount((keys // 10**7) % 20, minlength=20)
    assert buckets.min() > 0.8 * buckets.mean()


def test_expand_raw_cycles_rows_with_fresh_keys(synthetic_raw, tmp_path):
    n = expand_raw(synthetic_raw, tmp_path / "big", per_class=150)
    files = sorted((tmp_path / "big" / "train_simplified").glob("*.csv"))
    assert n == 150 * len(files) == 150 * 8
    with open(files[0], newline="") as f:
        rows = list(csv.DictReader(f))
    with open(synthetic_raw / "train_simplified" / files[0].name, newline="") as f:
        base = list(csv.DictReader(f))
    assert len(rows) == 150
    assert [r["drawing"] for r in rows[:60]] == [r["drawing"] for r in base]
    assert rows[60]["drawing"] == base[0]["drawing"]
    assert len({r["key_id"] for r in rows}) == 150
    assert (tmp_path / "big" / "test_simplified.csv").is_file()


def test_expand_raw_class_copies_are_distinct_classes(synthetic_raw, tmp_path):
    n = expand_raw(synthetic_raw, tmp_path / "wide", per_class=20, class_copies=3)
    files = sorted((tmp_path / "wide" / "train_simplified").glob("*.csv"))
    assert n == 20 * 8 * 3 and len(files) == 24
    for f in files:
        with open(f, newline="") as fh:
            assert {r["word"] for r in csv.DictReader(fh)} == {f.stem}


def test_bench_shard_returns_its_keys(tmp_path):
    res = bench_shard(
        tmp_path,
        n_classes=3,
        small_per_class=40,
        large_per_class=160,
        small_shards=2,
        large_shards=8,
        base_per_class=10,
        test_per_class=2,
        val_size=5,
        log=lambda _: None,
    )
    for key in SHARD_KEYS:
        assert key in res, key
    assert res["shard_rows_small"] == 120 and res["shard_rows_large"] == 480
    assert res["shard_rows_large_more_classes"] == 480
    assert res["shard_classes_large_more_classes"] == 12
    assert res["shard_n_shards_large_fixed_shards"] == 2
    assert 0 < res["shard_peak_rss_mb_small"] < 4096
    assert not any(p.name.startswith(("raw-", "shards-")) for p in tmp_path.iterdir())


def test_loader_csv_holds_the_shards_drawings(synthetic_shards, tmp_path):
    paths = train_shard_paths(synthetic_shards)
    classes = read_classes(synthetic_shards)
    n = write_csv_from_shards(paths, classes, tmp_path / "d.csv")
    assert n == sum(len(open_shard(p)) for p in paths)
    with open(tmp_path / "d.csv", newline="") as f:
        first = next(csv.DictReader(f))
    s = open_shard(paths[0])
    assert json.loads(first["drawing"]) == [list(map(list, st)) for st in s.drawings.strokes(0)]
    assert int(first["y"]) == s.label[0] and first["word"] == classes[s.label[0]]


def test_bench_loader_returns_its_keys(synthetic_shards, tmp_path):
    res = bench_loader(
        synthetic_shards,
        tmp_path / "d.csv",
        batch_size=16,
        img_size=32,
        seconds=0.3,
        rounds=1,
        log=lambda _: None,
    )
    for key in LOADER_KEYS:
        assert key in res, key
    assert res["loader_measured_with"].startswith("keras OrderedEnqueuer")
    assert "loader_errors" not in res


def test_bench_loader_runs_without_tensorflow(synthetic_shards, tmp_path, monkeypatch):
    # A JAX-only GPU box has no TensorFlow: the tf.data variants are skipped, not fatal.
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "tensorflow" else find_spec(name, *a),
    )
    res = bench_loader(
        synthetic_shards,
        tmp_path / "d.csv",
        batch_size=16,
        img_size=32,
        seconds=0.2,
        rounds=1,
        log=lambda _: None,
    )
    assert res["loader_baseline"] == "baseline_python_only"
    assert "loader_ratio_vs_python_generator" in res
    assert "from_generator_batches_per_s" not in res
    assert "pydataset_keras_tf_batches_per_s" not in res


def test_loader_scaling_measures_each_size_and_worker_count(synthetic_shards):
    res = loader_scaling(
        synthetic_shards,
        sizes=(32, 48),
        workers=(1, 2),
        batch_size=16,
        seconds=0.2,
        rounds=1,
        log=lambda _: None,
    )
    for size in (32, 48):
        for w in (1, 2):
            assert res[f"scaling_images_per_s_{size}_w{w}"] > 0
        assert res[f"scaling_images_per_cpu_s_{size}"] == res[f"scaling_images_per_cpu_s_{size}_w1"]
        assert f"scaling_ratio_{size}_w2_vs_w1" in res
    assert res["scaling_drawings"] == sum(
        len(open_shard(p)) for p in train_shard_paths(synthetic_shards)
    )


def test_run_all_quick_writes_report(tmp_path, capsys):
    from benchmarks.run_all import main

    out = tmp_path / "bench.json"
    rc = main(
        ["--quick", "--seconds", "0.2", "--out", str(out), "--workdir", str(tmp_path / "work")]
    )
    report = json.loads(out.read_text())
    for key in SHARD_KEYS + LOADER_KEYS + SCALING_KEYS + ["machine", "targets", "notes"]:
        assert key in report, key
    assert report["machine"]["nproc"] >= 1
    assert rc == 0 and report["failed"] == [], report["failed"]  # every section is required
    for key in RENDER_KEYS:
        assert key in report, key
    printed = capsys.readouterr().out
    assert "| Figure | Value |" in printed and "loader_ratio_vs_from_generator" in printed


def test_fulldata_bench_makes_a_kaggle_zip_and_measures_the_stages(tmp_path):
    """The full-data benchmark's zip is Kaggle's layout with uneven, real-like class files,
    and a download + shard run of it (2 workers) reads every drawing."""
    import zipfile

    from benchmarks.bench_data import N_CLASSES, make_zip, run_stage

    info = make_zip(tmp_path / "data", 3_400, test_rows=50)
    z = tmp_path / "data" / "train_simplified.zip"
    names = zipfile.ZipFile(z).namelist()
    assert len(names) == N_CLASSES and all(n.startswith("train_simplified/") for n in names)
    assert info["smallest_class"] < info["largest_class"] and info["drawings"] == 3_400
    res = run_stage(z, tmp_path / "work", workers=2, n_shards=4)
    assert res["rows"] == 3_400 and res["workers"] == 2
    assert res["peak_disk_bytes"] > 0 and res["peak_worker_rss_mb"] > 0
    assert not (tmp_path / "work").exists()


def test_quality_bench_reference_loader_summary_and_picture(synthetic_shards, tmp_path):
    """The quality benchmark's parts that do not train: the reference recipe's loader is
    the cv2 renderer on the pipeline's own stream, and the summary/picture read the runs."""
    from benchmarks.bench_quality import draw, markdown, reference_dataset_class, summarise
    from benchmarks.reference import reference_strokes_image
    from doodle.rendering.augment import NO_AUGMENT
    from doodle.training.dataset import DrawingDataset

    paths = train_shard_paths(synthetic_shards)
    stream = dict(
        img_size=32,
        encoding="grey",
        line_width=6.0,
        batch_size=8,
        n_classes=8,
        training=True,
        seed=1,
        augment=NO_AUGMENT,
        shuffle_buffer=50,
        steps_per_epoch=3,
    )
    ref = reference_dataset_class()(paths, **stream)
    x, y = ref[1]
    assert x.dtype == np.uint8 and x.shape == (8, 32, 32, 1)
    ours = DrawingDataset(paths, **stream)
    assert np.array_equal(y, ours[1][1])  # the same drawings in the same order
    shard_idx, row = ref.locate(1)
    drawing = ref.shards[shard_idx[0]].drawings.strokes(int(row[0]))
    assert np.array_equal(x[0, :, :, 0], reference_strokes_image(drawing, 32))

    runs = [
        {
            "recipe": r,
            "seed": s,
            "images_per_s": 10.0,
            "curve": [
                {"images": i, "accuracy": a + s / 10, "map3": a + s / 10 + 0.1}
                for i, a in ((100, 0.2), (200, 0.4))
            ],
        }
        for r in ("default", "lstm")
        for s in (0, 1)
    ]
    summary = summarise(runs)
    assert summary["lstm"]["seeds"] == 2 and summary["lstm"]["images"] == 200
    assert summary["default"]["map3_mean"] == 0.55 and summary["default"]["map3_spread"] == 0.1
    draw("tiny", runs, tmp_path / "q.png")
    assert (tmp_path / "q.png").read_bytes()[:4] == b"\x89PNG"
    for r in runs:
        for point in r["curve"]:
            point["train_accuracy"] = 0.5
    entry = {"budget": 200, "seeds": 2, "summary": summary, "runs": runs}
    text = markdown({"sets": {"tiny": entry}})
    assert "| default | 0.4500 | 0.5500 | 0.1000 | 10 |" in text


def test_quality_bench_variants_override_the_default_recipe():
    from benchmarks import bench_quality as bq

    name, over = bq.parse_variant("wide=line_width:8,augment.flip:0,encoding:order3")
    assert (name, over) == ("wide", {"line_width": 8, "augment.flip": 0, "encoding": "order3"})
    bq.VARIANTS[name] = over
    try:
        cfg = bq.member("wide", seed=1, steps=40, points=4)
    finally:
        del bq.VARIANTS[name]
    assert (cfg.line_width, cfg.channels, cfg.augment.flip) == (8.0, 3, 0.0)
    assert (cfg.seed, cfg.epochs, cfg.steps_per_epoch) == (1, 4, 10)
    assert cfg.augment.scale == bq.member("default", 1, 40, 4).augment.scale


def test_raw_bench_projection_shows_its_arithmetic():
    from benchmarks.bench_data import projection

    runs = [
        {
            "layout": "simplified",
            "workers": 1,
            "drawings_per_cpu_s": 40_000.0,
            "csv_bytes_per_drawing": 455.0,
            "shard_bytes_per_drawing": 140.0,
            "time_bytes_per_drawing": 0.0,
        },
        {
            "layout": "raw",
            "workers": 1,
            "drawings_per_cpu_s": 10_000.0,
            "csv_bytes_per_drawing": 4000.0,
            "shard_bytes_per_drawing": 222.0,
            "time_bytes_per_drawing": 82.0,
        },
    ]
    p = projection(runs, cores=2)
    n = 49_707_579 + 112_199
    assert p["drawings"] == n
    assert p["raw_16_cores_min"] == round(n / (10_000 * 16) / 60, 1)
    assert p["simplified_8_cores_min"] == round(n / (40_000 * 8) / 60, 1)
    assert p["time_array_gb"] == round(82 * n / 1e9, 2) and "cores" in p["arithmetic"]
