"""Reading drawing cells: the precise path's reasons, the compiled scanner against it cell by
cell, and the funnel: every way a cell can fail (nesting, huge numbers, anything json.loads or
the checks raise) is a DrawingError with a reason, in both forms, never an exception."""

import json

import numpy as np
import pytest

from doodle.data.cells import (
    BAD_JSON,
    EMPTY_DRAWING,
    EMPTY_STROKE,
    NON_INTEGER,
    NON_NUMERIC,
    NOT_A_DRAWING,
    OUT_OF_RANGE,
    XY_MISMATCH,
    DrawingError,
    parse_drawing,
    parse_many,
    parse_raw_drawing,
    read_cell,
)
from doodle.data.rawcells import parse_raw_many
from doodle.data.strokes import pack


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


# -- the funnel: every failure is a reason, in both forms --------------------------------------
DEEP = "[" * 200_000 + "]" * 200_000  # json.loads raises RecursionError, not JSONDecodeError
DIGITS = "9" * 5_000  # json.loads raises ValueError: more than 4,300 digits for an int
BIG_INT = "9" * 400  # read as an int; float(int) would raise OverflowError


@pytest.mark.parametrize(
    "cell, reason, words",
    [
        (DEEP, BAD_JSON, "nested too deeply"),
        ("[[[" + DIGITS + "], [1]]]", BAD_JSON, "4300"),
        ("[[[" + BIG_INT + "], [1]]]", OUT_OF_RANGE, "outside 0..255"),
        ("[[[1e400], [1]]]", NON_NUMERIC, "inf"),
        ("[[[NaN], [1]]]", NON_NUMERIC, "nan"),
        ("[[[-Infinity], [1]]]", NON_NUMERIC, "-inf"),
        (None, BAD_JSON, "TypeError"),
        ("[[[[[[[1]]]]], [1]]]", NON_NUMERIC, "[[[[...]]]]"),  # a short repr of a list
    ],
)
def test_simplified_cells_that_break_the_reader_are_reasons(cell, reason, words):
    with pytest.raises(DrawingError) as e:
        parse_drawing(cell)
    assert e.value.reason == reason and words in str(e.value), str(e.value)[:300]
    good = "[[[1, 2], [3, 4]]]"
    drawings, errors = parse_many([good, cell, good])
    assert [e and e.reason for e in errors] == [None, reason, None]
    assert drawings.n_strokes.tolist() == [1, 0, 1]


@pytest.mark.parametrize(
    "cell, reason, words",
    [
        (DEEP, BAD_JSON, "nested too deeply"),
        ("[[[1, 2], [3, 4], [0, " + DIGITS + "]]]", BAD_JSON, "4300"),
        ("[[[" + BIG_INT + ", 2], [3, 4], [0, 1]]]", OUT_OF_RANGE, "beyond 1e+09"),
        ("[[[1, 2], [3, 4], [0, -" + BIG_INT + "]]]", OUT_OF_RANGE, "time value"),
        ("[[[1, 2], [3, 4], [0, 1e400]]]", NON_NUMERIC, "time value inf"),
        ("[[[1, 2e9], [3, 4], [0, 1]]]", OUT_OF_RANGE, "x value"),  # the scanner's limit
        ("[[[1, 2], [3, 4], [0, 2000000000000000]]]", OUT_OF_RANGE, "time value"),
    ],
)
def test_raw_cells_that_break_the_reader_are_reasons(cell, reason, words):
    with pytest.raises(DrawingError) as e:
        parse_raw_drawing(cell)
    assert e.value.reason == reason and words in str(e.value), str(e.value)[:300]
    good = "[[[1, 5], [2, 6], [0, 9]]]"
    parsed = parse_raw_many([good, cell, good])
    assert [e and e.reason for e in parsed.errors] == [None, reason, None]
    assert parsed.drawings.n_strokes.tolist() == [1, 0, 1]


def test_whatever_a_check_raises_is_the_cells_reason():
    """The funnel, not a list of exception types: an error no check foresaw is still a
    DrawingError of that cell (here a check that fails on a value with ZeroDivisionError)."""

    def check(data):
        return 1 / data

    with pytest.raises(DrawingError) as e:
        read_cell("0", check)
    assert e.value.reason == NOT_A_DRAWING and "ZeroDivisionError" in str(e.value)
    assert read_cell("4", check) == 0.25
    with pytest.raises(KeyboardInterrupt):  # only errors: an interrupt still stops the run

        def interrupted(data):
            raise KeyboardInterrupt

        read_cell("1", interrupted)


def test_huge_cells_among_good_ones_keep_every_good_drawing_in_place():
    """A chunk of good cells with a 40 MB garbage cell, a 200,000-deep one and a 5,000-digit
    one: the good drawings come out exactly, the bad ones are blank in their places."""
    good = [json.dumps([[[i % 256, 9], [3, 4]]]) for i in range(50)]
    bad = {7: "x" * 40_000_000, 20: DEEP, 33: "[[[" + DIGITS + "], [1]]]"}
    cells = [bad.get(i, c) for i, c in enumerate(good)]
    drawings, errors = parse_many(cells)
    assert [i for i, e in enumerate(errors) if e is not None] == sorted(bad)
    assert all(errors[i].reason == BAD_JSON for i in bad)
    for i in range(50):
        want = [] if i in bad else [([i % 256, 9], [3, 4])]
        assert drawings.strokes(i) == want
