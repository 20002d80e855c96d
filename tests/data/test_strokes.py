import json

import numpy as np
import pytest

from doodle.data.strokes import (
    BAD_JSON,
    EMPTY_DRAWING,
    EMPTY_STROKE,
    NON_INTEGER,
    NON_NUMERIC,
    NOT_A_DRAWING,
    OUT_OF_RANGE,
    XY_MISMATCH,
    DrawingError,
    concat,
    concat_ranges,
    parse_drawing,
)


def test_parse_valid_and_round_trip():
    text = "[[[0,10,255],[5,6,7]],[[3],[4]]]"
    strokes = parse_drawing(text)
    assert strokes == [([0, 10, 255], [5, 6, 7]), ([3], [4])]
    assert json.dumps([list(s) for s in strokes], separators=(",", ":")) == text


def test_parse_accepts_integral_floats_and_ignores_time_row():
    assert parse_drawing("[[[1.0,2],[3,4],[0,17]]]") == [([1.0, 2], [3, 4])]


@pytest.mark.parametrize(
    "text,reason",
    [
        ("[[[1,2],[3,4]]", BAD_JSON),
        ('{"a": 1}', NOT_A_DRAWING),
        ("[]", EMPTY_DRAWING),
        ("[[[],[]]]", EMPTY_STROKE),
        ("[[[1,2,3],[1,2]]]", XY_MISMATCH),
        ('[[[1,"a"],[1,2]]]', NON_NUMERIC),
        ("[[[1,true],[1,2]]]", NON_NUMERIC),
        ("[[[1.5,2],[1,2]]]", NON_INTEGER),
        ("[[[-1,2],[1,2]]]", OUT_OF_RANGE),
        ("[[[1,2],[1,256]]]", OUT_OF_RANGE),
        ("[[1,2]]", NOT_A_DRAWING),
    ],
)
def test_parse_rejects_with_reason(text, reason):
    with pytest.raises(DrawingError) as e:
        parse_drawing(text)
    assert e.value.reason == reason


def test_parse_never_evaluates_code():
    with pytest.raises(DrawingError) as e:
        parse_drawing("__import__('os').system('echo pwned')")
    assert e.value.reason == BAD_JSON


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


def test_json_from_kaggle_sample_parses():
    text = json.dumps([[[10, 20], [30, 40]]])
    assert parse_drawing(text)[0] == ([10, 20], [30, 40])


ODD_CELLS = [
    "[]",
    "[[[1,2],[3]]]",
    "[[[1.0,2],[3,4]]]",
    "[[[1.5,2],[3,4]]]",
    "[[[300],[3]]]",
    "[[[-1],[3]]]",
    "x",
    "",
    "[[[],[]]]",
    '[[["a"],[1]]]',
    "[[[1],[2],[3]]]",
    "[[[1],[2],[0.5, 7]]] ",
    "[[[01],[2]]]",
    "[[[1],[2]]] x",
    "  [[ [ 1 , 2 ] , [3,4] ]]  ",
    "[[[1],[2]],]",
    "[[[true],[2]]]",
    "[[[1],[2]]",
    "[[1,2]]",
    "[[[255, 0],[0, 255]]]",
    "[[[1e2],[2]]]",
    '[[[1],[2],["t"]]]',
    "[[[2560],[1]]]",
    "[[[1],[2]]]\n",
]


def test_parse_many_matches_parse_drawing_cell_by_cell(rng):
    """The compiled scanner gives what parse_drawing gives: the same points for every cell
    it accepts, the same error reason for every cell that is bad, on random drawings in
    Kaggle's spacing and on every odd cell above, interleaved."""
    from doodle.data.strokes import pack, parse_many
    from tests.conftest import random_drawings

    good = [json.dumps([[list(xs), list(ys)] for xs, ys in d]) for d in random_drawings(rng, 200)]
    cells = [c for pair in zip(good, ODD_CELLS * 9, strict=False) for c in pair] + good
    got, errors = parse_many(cells)
    want, reasons = [], []
    for c in cells:
        try:
            want.append(parse_drawing(c))
            reasons.append(None)
        except DrawingError as e:
            want.append([])
            reasons.append(e.reason)
    assert [e and e.reason for e in errors] == reasons
    ref = pack(want)
    for field in ("xy", "stroke_offsets", "drawing_offsets"):
        assert np.array_equal(getattr(got, field), getattr(ref, field)), field
    assert reasons.count(None) > len(good)  # the odd list holds cells JSON accepts too
