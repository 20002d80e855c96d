"""The stroke format: packing, slicing, concatenating."""

import numpy as np

from doodle.data.strokes import concat, concat_ranges


def test_pack_layout(tiny_drawings):
    raw, d = tiny_drawings
    assert len(d) == len(raw)
    assert d.xy.dtype == np.uint8 and d.xy.shape[1] == 2
    assert d.drawing_offsets[-1] == sum(len(s) for s in raw)
    assert d.stroke_offsets[-1] == len(d.xy)
    for i in (0, 7, 49):
        assert d.strokes(i) == [(list(x), list(y)) for x, y in raw[i]]
    assert d.n_strokes.tolist() == [len(s) for s in raw]
    assert d.n_points.tolist() == [sum(len(x) for x, _ in s) for s in raw]


def test_take_matches_python_gather(tiny_drawings):
    raw, d = tiny_drawings
    idx = np.array([5, 0, 49, 5, 12])
    sub = d.take(idx)
    assert [sub.strokes(i) for i in range(len(idx))] == [d.strokes(i) for i in idx]
    assert len(d.take(np.array([], dtype=np.int64))) == 0


def test_concat_ranges_and_concat(tiny_drawings):
    got = concat_ranges(np.array([3, 10, 0]), np.array([2, 0, 3]))
    assert got.tolist() == [3, 4, 0, 1, 2]
    raw, d = tiny_drawings
    both = concat([d.take(np.arange(10)), d.take(np.arange(10, 50))])
    assert [both.strokes(i) for i in range(50)] == [d.strokes(i) for i in range(50)]
