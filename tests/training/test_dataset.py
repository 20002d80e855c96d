import numpy as np
import pytest

from doodle.data.shards import open_shard, train_shard_paths
from doodle.rendering.augment import NO_AUGMENT, Augment, flip_affines, random_affines
from doodle.rendering.raster import render
from doodle.training.dataset import DrawingDataset

IMAGE = dict(encoding="grey", line_width=6.0)  # how the evaluation streams render
AUG = Augment(flip=0.5, scale=0.1, shift=0.05, rotate=8, stroke_dropout=0.1)


def _train(shards, **kw):
    args = dict(
        batch_size=16,
        img_size=32,
        encoding="grey",
        line_width=6.0,
        n_classes=8,
        training=True,
        seed=3,
        augment=AUG,
        shuffle_buffer=50,
        steps_per_epoch=6,
    )
    return DrawingDataset(train_shard_paths(shards), **(args | kw))


def test_training_batches_shapes_and_one_hot(synthetic_shards):
    ds = _train(synthetic_shards)
    assert ds.num_batches == 6
    x, y = ds[0]
    assert x.dtype == np.uint8 and x.shape == (16, 32, 32, 1)
    assert y.shape == (16, 8) and np.allclose(y.sum(1), 1)
    assert x.max() > 0


def test_deterministic_and_order_independent(synthetic_shards):
    a, b = _train(synthetic_shards), _train(synthetic_shards)
    forward = [a[i] for i in range(6)]
    backward = [b[i] for i in reversed(range(6))][::-1]
    for (xa, ya), (xb, yb) in zip(forward, backward, strict=True):
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
    c = _train(synthetic_shards, seed=4)
    assert not np.array_equal(c[0][0], forward[0][0])


def test_epochs_differ_and_resume_offset_matches(synthetic_shards):
    ds = _train(synthetic_shards)
    first = ds[2]
    ds.set_epoch(1)
    assert not np.array_equal(ds[2][0], first[0])
    # a run resumed at epoch 1, step 4 sees exactly the batch an uninterrupted run saw
    resumed = _train(synthetic_shards, epoch=1, start_step=4)
    assert resumed.num_batches == 2
    assert np.array_equal(resumed[0][0], ds[4][0])


def test_stream_covers_every_drawing_once_per_pass(synthetic_shards):
    ds = _train(synthetic_shards, augment=NO_AUGMENT, batch_size=10)
    n = ds.total
    steps = n // 10
    ds = _train(synthetic_shards, augment=NO_AUGMENT, batch_size=10, steps_per_epoch=steps)
    seen = []
    for i in range(steps):
        s, r = ds.locate(i)
        seen += list(zip(s.tolist(), r.tolist(), strict=True))
    assert len(set(seen)) == len(seen) == steps * 10
    # and mixes shards inside a batch (shuffle buffer spans shard boundaries)
    ds = _train(synthetic_shards, shuffle_buffer=10_000)
    assert len(np.unique(ds.locate(0)[0])) > 1


def test_eval_mode_keeps_order_without_augmentation(synthetic_shards):
    path = synthetic_shards / "holdout.qds"
    ds = DrawingDataset([path], batch_size=16, img_size=32, n_classes=8, **IMAGE)
    assert ds.num_batches == 3  # 40 rows: 16 + 16 + 8
    (x_last,) = ds[2]
    assert x_last.shape[0] == 8
    shard = open_shard(path)
    want = render(shard.drawings, np.arange(32, 40), 32, "grey", IMAGE["line_width"])
    assert np.array_equal(x_last, want)
    assert np.array_equal(ds.column("key_id"), shard.key_id)
    flipped = DrawingDataset([path], batch_size=16, img_size=32, n_classes=8, flip=True, **IMAGE)
    want_flip = render(
        shard.drawings, np.arange(16), 32, "grey", IMAGE["line_width"], affine=flip_affines(16)
    )
    assert np.array_equal(flipped[0][0], want_flip)


def test_random_affines_identity_when_off():
    rng = np.random.default_rng(0)
    assert random_affines(rng, 4, NO_AUGMENT) is None
    m = random_affines(
        rng, 1000, Augment(flip=1.0, scale=0.0, shift=0.0, rotate=0.0, stroke_dropout=0.0)
    )
    # a pure flip maps x -> 255 - x and keeps y
    assert np.allclose(m[:, 0, 0], -1) and np.allclose(m[:, 0, 2], 255)
    assert np.allclose(m[:, 1, 1], 1) and np.allclose(m[:, 1, 2], 0)


def test_sequence_dataset_same_stream_as_images(synthetic_shards):
    """The sequence family reads the same drawings, labels and augmentation draws."""
    from doodle.models.sequences import FEATURES
    from doodle.training.dataset import SequenceDataset

    args = dict(
        batch_size=16,
        n_classes=8,
        training=True,
        seed=3,
        augment=AUG,
        shuffle_buffer=50,
        steps_per_epoch=6,
    )
    seq = SequenceDataset(train_shard_paths(synthetic_shards), seq_len=40, **args)
    img = _train(synthetic_shards)
    x, y = seq[1]
    assert x.dtype == np.float32 and x.shape == (16, 40, len(FEATURES))
    assert np.array_equal(y, img[1][1])
    assert np.array_equal(seq[1][0], x)  # deterministic
    assert not np.array_equal(seq[2][0], x)


def test_process_shares_split_each_global_batch(synthetic_shards, tmp_path, monkeypatch):
    """Two processes' shares of every batch, side by side, are the one-process batch: the
    same drawings, augmentation and labels, none in both shares; each logs what it read."""
    from doodle.training.dataset import SequenceDataset

    for cls, kw in ((DrawingDataset, IMAGE | {"img_size": 32}), (SequenceDataset, {"seq_len": 24})):
        args = dict(
            batch_size=16, n_classes=8, training=True, seed=3, augment=AUG, shuffle_buffer=50
        )
        paths = train_shard_paths(synthetic_shards)
        monkeypatch.delenv("DOODLE_READ_LOG", raising=False)
        one = cls(paths, steps_per_epoch=6, **args, **kw)
        monkeypatch.setenv("DOODLE_READ_LOG", str(tmp_path / cls.__name__))
        shares = [cls(paths, steps_per_epoch=6, share=(p, 2), **args, **kw) for p in (0, 1)]
        for epoch, step in ((0, 0), (0, 5), (3, 2)):
            one.set_epoch(epoch)
            x, y = one[step]
            parts = [s.batch_at(epoch, step) for s in shares]
            assert parts[0][0].shape[0] == 8
            assert np.array_equal(np.concatenate([p[0] for p in parts]), x)
            assert np.array_equal(np.concatenate([p[1] for p in parts]), y)
    # the read logs: per step, the two shares are disjoint and together the whole batch
    import json

    logs = [
        [json.loads(line) for line in open(tmp_path / "DrawingDataset" / f"reads-{p}.jsonl")]
        for p in (0, 1)
    ]
    assert len(logs[0]) == 3
    for a, b in zip(logs[0], logs[1], strict=True):
        assert (a["epoch"], a["step"]) == (b["epoch"], b["step"])
        assert len(set(a["key_id"]) | set(b["key_id"])) == 16
    with pytest.raises(ValueError, match="split evenly"):
        _train(synthetic_shards, share=(0, 3))


def test_time3_reads_times_and_refuses_shards_without(synthetic_shards, timed_shards):
    from doodle.errors import InputError

    x, _ = _train(timed_shards, encoding="time3")[0]
    assert x.shape == (16, 32, 32, 3) and x.any()
    order3 = _train(timed_shards, encoding="order3")[0][0]
    assert ((x > 0).any(-1) == (order3 > 0).any(-1)).all()  # same ink, other colours
    with pytest.raises(InputError) as err:
        _train(synthetic_shards, encoding="time3")
    msg = str(err.value)
    assert "\n" not in msg and "train-000.qds has none" in msg
    assert "train_raw" in msg and "data.local.layout=raw" in msg and "data.kaggle.layout=raw" in msg


def test_sequence_features_follow_the_shards(synthetic_shards, timed_shards):
    from doodle.models.sequences import FEATURES, TIME_FEATURES
    from doodle.training.dataset import SequenceDataset, sequence_features

    for shards, features in ((synthetic_shards, FEATURES), (timed_shards, TIME_FEATURES)):
        paths = train_shard_paths(shards)
        assert sequence_features(paths) == len(features)
        seq = SequenceDataset(paths, seq_len=24, batch_size=8, n_classes=8)
        assert seq.sample_shape == (24, len(features)) and seq[0][0].shape == (8, 24, len(features))
    dt = SequenceDataset(train_shard_paths(timed_shards), seq_len=24, batch_size=8, n_classes=8)
    assert (dt[0][0][:, 1:, 5] > 0).any()  # real time steps (the made-up ones: 5-900 ms)
