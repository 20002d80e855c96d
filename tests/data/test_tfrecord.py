"""TFRecord path: shard -> GZIP TFRecord round trip, names, the disabled stage, and images
identical to the DrawingDataset path."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from doodle.data.shards import open_shard, write_shard
from doodle.data.strokes import pack
from doodle.data.tfrecord import (
    MANIFEST,
    convert_shards,
    count_in_name,
    encode_examples,
    split_files,
)
from doodle.fileio import write_json
from doodle.rendering.augment import NO_AUGMENT, Augment

ROOT = Path(__file__).resolve().parents[2]
N_CLASSES = 5


def _drawings(rng: np.random.Generator, n: int) -> list:
    out = []
    for _ in range(n):
        strokes = []
        for _ in range(int(rng.integers(1, 6))):
            k = int(rng.choice([1, 2, int(rng.integers(3, 12)), 140]))  # dots, long strokes
            strokes.append((rng.integers(0, 256, k).tolist(), rng.integers(0, 256, k).tolist()))
        out.append(strokes)
    return out


def _write(path: Path, rng: np.random.Generator, n: int, labelled: bool = True) -> None:
    label = rng.integers(0, N_CLASSES, n) if labelled else np.full(n, -1)
    key_id = rng.integers(4_500_000_000_000_000, 6_750_000_000_000_000, n)
    cc = rng.choice(np.array([b"US", b"GB", b"", b"DE"], dtype="S2"), n)
    write_shard(path, pack(_drawings(rng, n)), label, key_id, cc)


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tfrec") / "shards"
    d.mkdir()
    rng = np.random.default_rng(11)
    for i, n in enumerate((37, 0, 50)):
        _write(d / f"train-{i:03d}.qds", rng, n)
    _write(d / "holdout.qds", rng, 23)
    _write(d / "test.qds", rng, 29, labelled=False)
    write_json(d / "classes.json", [f"c{i}" for i in range(N_CLASSES)])
    return d


@pytest.fixture(scope="module")
def tfrec_dir(shard_dir) -> Path:
    out = shard_dir.parent / "tfrecords"
    manifest = convert_shards(shard_dir, out, enabled=True, progress=False)
    assert manifest["rows"] == 37 + 50 + 23 + 29
    return out


def test_encoding_is_a_tf_example():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    raw = _drawings(rng, 4)
    d = pack(raw)
    label = np.array([3, -1, 0, 339])
    key = np.array([5_123_456_789_012_345, 1, 0, 2**62])
    cc = np.array([b"US", b"", b"G", b"FR"], dtype="S2")
    F = tf.train.Feature
    for i, rec in enumerate(encode_examples(d, label, key, cc)):
        s0, s1 = d.stroke_offsets[d.drawing_offsets[i : i + 2]]
        pts = d.xy[s0:s1]
        want = tf.train.Example(
            features=tf.train.Features(
                feature={
                    "xy": F(bytes_list=tf.train.BytesList(value=[pts.tobytes()])),
                    "stroke_lengths": F(
                        int64_list=tf.train.Int64List(value=[len(s[0]) for s in raw[i]])
                    ),
                    "label": F(int64_list=tf.train.Int64List(value=[int(label[i])])),
                    "key_id": F(int64_list=tf.train.Int64List(value=[int(key[i])])),
                    "countrycode": F(bytes_list=tf.train.BytesList(value=[bytes(cc[i])])),
                }
            )
        )
        assert tf.train.Example.FromString(rec) == want


def test_round_trip_names_gzip_manifest(shard_dir, tfrec_dir):
    from doodle.training.tfdata import read_records

    names = sorted(p.name for p in tfrec_dir.iterdir())
    assert names == sorted(
        [
            "classes.json",
            MANIFEST,
            "holdout-n23.tfrec",
            "test-n29.tfrec",
            "train-000-n37.tfrec",
            "train-001-n0.tfrec",
            "train-002-n50.tfrec",
        ]
    )
    assert not list(tfrec_dir.parent.glob(".*tmp-*"))  # written via a temp folder
    for split, shard in (("train", None), ("holdout", "holdout"), ("test", "test")):
        files = split_files(tfrec_dir, split)
        shards = [shard_dir / f"{shard}.qds"] if shard else sorted(shard_dir.glob("train-*.qds"))
        assert [count_in_name(f) for f in files] == [len(open_shard(s)) for s in shards]
        for f in files:
            if count_in_name(f):
                assert f.read_bytes()[:2] == b"\x1f\x8b"  # GZIP
        rec = read_records(files)
        srcs = [open_shard(s) for s in shards]
        assert np.array_equal(rec.drawings.xy, np.concatenate([s.drawings.xy for s in srcs]))
        assert np.array_equal(rec.n_strokes, np.concatenate([s.drawings.n_strokes for s in srcs]))
        assert np.array_equal(rec.n_points, np.concatenate([s.drawings.n_points for s in srcs]))
        so = np.concatenate(
            [[0], np.cumsum(np.concatenate([np.diff(s.drawings.stroke_offsets) for s in srcs]))]
        )
        assert np.array_equal(rec.drawings.stroke_offsets, so)
        for col in ("label", "key_id", "countrycode"):
            assert np.array_equal(
                getattr(rec, col), np.concatenate([np.asarray(getattr(s, col)) for s in srcs])
            )
    manifest = json.loads((tfrec_dir / MANIFEST).read_text())
    assert manifest["enabled"] and manifest["compression"] == "GZIP"
    assert {f["name"]: f["rows"] for f in manifest["files"]}["train-002-n50.tfrec"] == 50


def _eval_pair(shard_dir, tfrec_dir, split, **kw):
    from doodle.training.dataset import DrawingDataset
    from doodle.training.tfdata import make_tf_dataset

    args = (
        dict(batch_size=8, img_size=kw.pop("img_size", 48), n_classes=N_CLASSES, line_width=6.0)
        | {"encoding": "grey"}
        | kw
    )
    py = DrawingDataset([shard_dir / f"{split}.qds"], **args)
    tfd = make_tf_dataset(split_files(tfrec_dir, split), **args)
    return [py[i][0] for i in range(py.num_batches)], [b.numpy() for b in tfd]


@pytest.mark.parametrize(
    "split,kw",
    [
        ("holdout", {}),
        ("test", {"encoding": "order3", "img_size": 64}),
        ("holdout", {"flip": True}),
    ],
)
def test_identical_images_to_pydataset(shard_dir, tfrec_dir, split, kw):
    py, tfb = _eval_pair(shard_dir, tfrec_dir, split, **kw)
    assert len(py) == len(tfb) == 3 + (split == "test")  # partial last batch kept
    for a, b in zip(py, tfb, strict=True):
        assert a.dtype == b.dtype == np.uint8 and a.shape == b.shape
        assert np.array_equal(a, b)


def test_eval_length_from_names_and_wrong_count_caught(tfrec_dir, tmp_path):
    import tensorflow as tf

    from doodle.training.tfdata import make_tf_dataset

    kw = dict(batch_size=8, img_size=32, n_classes=N_CLASSES, encoding="grey", line_width=6.0)
    files = split_files(tfrec_dir, "holdout")
    assert int(make_tf_dataset(files, **kw).cardinality()) == 3  # ceil(23 / 8), for Keras
    bad = tmp_path / "holdout-n24.tfrec"  # a name that over-counts (e.g. a truncated copy)
    bad.write_bytes(files[0].read_bytes())
    with pytest.raises(tf.errors.OpError, match="24"):
        list(make_tf_dataset([bad], **kw))


def test_eval_columns_in_order(shard_dir, tfrec_dir):
    from doodle.training.dataset import DrawingDataset
    from doodle.training.tfdata import TFRecordIndex

    py = DrawingDataset(
        [shard_dir / "test.qds"],
        batch_size=8,
        img_size=32,
        n_classes=N_CLASSES,
        encoding="grey",
        line_width=6.0,
    )
    idx = TFRecordIndex(split_files(tfrec_dir, "test"))
    assert idx.total == py.total == 29
    for col in ("label", "key_id", "countrycode"):
        assert np.array_equal(idx.column(col), py.column(col))
        assert idx.column(col).dtype == py.column(col).dtype
    assert np.array_equal(idx.n_strokes(), py.n_strokes())
    assert np.array_equal(idx.n_points(), py.n_points())


def test_training_stream_deterministic_and_resumable(tfrec_dir):
    from doodle.training.tfdata import make_tf_dataset

    aug = Augment(flip=0.5, scale=0.1, shift=0.05, rotate=8, stroke_dropout=0.2)
    files = split_files(tfrec_dir, "train")

    def first(n, **kw):
        ds = make_tf_dataset(
            files,
            **(
                dict(
                    batch_size=16,
                    img_size=32,
                    encoding="grey",
                    line_width=6.0,
                    n_classes=N_CLASSES,
                    training=True,
                    seed=5,
                    augment=aug,
                    shuffle_buffer=40,
                )
                | kw
            ),
        )
        return [(x.numpy(), y.numpy()) for x, y in ds.take(n)]

    a = first(8)  # 8 x 16 > 87 drawings: crosses a pass over the files
    x, y = a[0]
    assert x.shape == (16, 32, 32, 1) and x.dtype == np.uint8
    assert y.shape == (16, N_CLASSES) and np.allclose(y.sum(1), 1)
    for (xa, ya), (xb, yb) in zip(a, first(8), strict=True):
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
    resumed = first(2, skip_batches=5)
    assert all(np.array_equal(a[5 + i][0], r[0]) for i, r in enumerate(resumed))
    assert not np.array_equal(first(1, seed=6)[0][0], x)


def test_training_rejects_unlabelled(tfrec_dir):
    import tensorflow as tf

    from doodle.training.tfdata import make_tf_dataset

    ds = make_tf_dataset(
        split_files(tfrec_dir, "test"),
        batch_size=4,
        img_size=32,
        encoding="grey",
        line_width=6.0,
        n_classes=N_CLASSES,
        training=True,
        seed=0,
        augment=NO_AUGMENT,
        shuffle_buffer=8,
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="unlabelled"):
        next(iter(ds))


def test_disabled_writes_only_the_marker_without_tensorflow(shard_dir, tmp_path):
    code = (
        "import sys, json; from pathlib import Path; "
        "from doodle.data.tfrecord import convert_shards, summary_line; "
        f"m = convert_shards(Path({str(shard_dir)!r}), Path({str(tmp_path / 'tfr')!r}), "
        "enabled=False); print(summary_line(m, Path('x'))); "
        "assert 'tensorflow' not in sys.modules"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().startswith("tfrecord: disabled") and len(out.strip().splitlines()) == 1
    assert [p.name for p in (tmp_path / "tfr").iterdir()] == [MANIFEST]
    assert json.loads((tmp_path / "tfr" / MANIFEST).read_text())["enabled"] is False
    with pytest.raises(FileNotFoundError, match="tfrecord.enabled"):
        split_files(tmp_path / "tfr", "train")


def test_no_module_level_tensorflow_import_outside_tfrecord():
    for path in (ROOT / "doodle").glob("*.py"):
        for node in ast.parse(path.read_text()).body:  # module level only
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n.split(".")[0] == "tensorflow" for n in names), path.name
