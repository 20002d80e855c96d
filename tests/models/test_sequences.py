"""Point sequences for the stroke-sequence family: features, padding, truncation and the
augmentation shared with the renderer."""

import numpy as np
import pytest

from doodle.data.strokes import pack
from doodle.models.sequences import FEATURES, TIME_FEATURES, encode
from doodle.rendering.augment import flip_affines

# two strokes: (10,20)->(30,20)->(30,60), then a one-point dot at (200,100)
DRAWING = [([10, 30, 30], [20, 20, 60]), ([200], [100])]


def test_features_of_each_point_and_padding():
    seq = encode(pack([DRAWING]), None, 6)
    assert seq.shape == (1, 6, len(FEATURES)) and seq.dtype == np.float32
    x, y, dx, dy, pen_up = seq[0].T
    assert np.allclose(x[:4] * 128 + 127.5, [10, 30, 30, 200])
    assert np.allclose(y[:4] * 128 + 127.5, [20, 20, 60, 100])
    assert np.allclose(dx[:4] * 32, [0, 20, 0, 170]) and np.allclose(dy[:4] * 32, [0, 0, 40, 40])
    assert pen_up[:4].tolist() == [0, 0, 1, 1]  # each stroke's last point
    assert not seq[0, 4:].any()  # padding rows are all zero...
    assert np.abs(seq[0, :4]).sum(1).min() > 0  # ...and no real point is


def test_long_drawings_truncated_with_the_pen_up_at_the_end():
    seq = encode(pack([DRAWING]), None, 2)
    assert np.allclose(seq[0, :, 0] * 128 + 127.5, [10, 30])
    assert seq[0, :, 4].tolist() == [0, 1]
    with pytest.raises(ValueError, match="seq_len"):
        encode(pack([DRAWING]), None, 1)


def test_flip_mirrors_x_and_keeps_y():
    d = pack([DRAWING, [([0, 255], [0, 255])]])
    plain, flipped = encode(d, None, 5), encode(d, None, 5, affine=flip_affines(2))
    for f in (0, 2):  # x and dx mirrored
        assert np.allclose(flipped[..., f], -plain[..., f])
    for f in (1, 3, 4):  # y, dy and pen-up unchanged
        assert np.allclose(flipped[..., f], plain[..., f])


def test_stroke_dropout_drops_whole_strokes_and_never_all():
    d = pack([DRAWING])
    kept = {
        encode(d, None, 6, drop_prob=0.5, drop_seed=np.array([s], np.uint64))[0, :, 4].sum()
        for s in range(40)
    }
    assert kept == {1.0, 2.0}  # one stroke or both, never none
    assert np.array_equal(
        encode(d, None, 6, drop_prob=1.0, drop_seed=np.array([3], np.uint64)),
        encode(d, None, 6, drop_prob=1.0, drop_seed=np.array([3], np.uint64)),
    )


def test_drawings_with_times_get_the_time_since_the_previous_point():
    d = pack([DRAWING])
    d.t = np.array([0, 120, 400, 15_000], np.uint16)  # a 14.6 s pause before the dot
    seq = encode(d, None, 6)
    assert seq.shape == (1, 6, len(TIME_FEATURES)) and TIME_FEATURES[-1] == "dt"
    assert np.array_equal(seq[..., :5], encode(pack([DRAWING]), None, 6))  # the rest as before
    assert np.allclose(seq[0, :4, 5], [0, 0.12, 0.28, 10.0])  # seconds, capped at 10
    assert not seq[0, 4:].any()
    dropped = encode(d, None, 6, drop_prob=0.99, drop_seed=np.array([5], np.uint64))
    kept = dropped[0, : int(np.abs(dropped[0]).sum(1).astype(bool).sum())]
    assert kept[0, 5] == 0  # the first point kept has no previous one
