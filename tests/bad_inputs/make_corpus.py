"""Write the bad-input corpus fixtures (``base/``, ``base_raw/`` and ``files/``) next to this
script. ``base_raw/`` is the same kind of good folder in Kaggle's raw layout (``train_raw/``,
``test_raw.csv`` + ``test_simplified.csv``); its fixtures are ``files/raw_*.csv``.

The files are committed; run ``python tests/bad_inputs/make_corpus.py`` to rebuild them after
changing this script. ``cases.yaml`` (hand-written) says which fixture goes where and what the
stage must do with it. Inputs that are big or binary (a 20,000-point drawing, a truncated zip,
a truncated shard, the cells of :data:`BIG_CELLS`) and file names that some systems cannot check
out (quotes) are made at test time by ``tests/data/test_bad_inputs.py`` instead.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRAIN_HEADER = "countrycode,drawing,key_id,recognized,timestamp,word"
TEST_HEADER = "key_id,countrycode,drawing"
CLASSES = ("apple", "cat", "dog")
ROWS_PER_CLASS = 8
HUGE_INT = "9" * 400  # an int json.loads reads, but no float can hold (float() overflows)
TOO_MANY_DIGITS = "9" * 5_000  # more digits than Python reads into an int (4,300)

# Drawing cells too big to commit, made at test time (a case's `cells:` names them).
BIG_CELLS = {
    # 200,000 levels deep: json.loads raises RecursionError, not JSONDecodeError (400 KB)
    "deep_nesting": lambda: "[" * 200_000 + "]" * 200_000,
    "too_many_digits": lambda: f"[[[10, {TOO_MANY_DIGITS}], [10, 20]]]",
    "raw_too_many_digits": lambda: f"[[[1.5, 2.5], [1, 2], [0, {TOO_MANY_DIGITS}]]]",
}


def drawing(i: int) -> list:
    """A small valid drawing (two strokes, integer coordinates 0..255), different per ``i``."""
    a = 10 + (i * 7) % 100
    return [
        [[a, a + 90, a + 90, a, a], [a, a, a + 90, a + 90, a]],
        [[a + 10, a + 80], [a + 45, a + 45 + i % 30]],
    ]


def cell(d: object) -> str:
    """A CSV cell holding ``d`` as Kaggle writes it: JSON with ', ' separators, quoted."""
    return '"' + json.dumps(d).replace('"', '""') + '"'


def key(c: int, i: int) -> int:
    """16-digit key_ids; ``(key // 10**7) % 2`` alternates, so both of 2 shards get rows."""
    return 5_000_000_000_000_000 + (c * 100 + i) * 10**7 + 12345


def train_row(
    c: int, i: int, word: str | None = None, draw: str | None = None, key_id: str | None = None
) -> str:
    word = CLASSES[c] if word is None else word
    draw = cell(drawing(c * 100 + i)) if draw is None else draw
    key_id = str(key(c, i)) if key_id is None else key_id
    return f"US,{draw},{key_id},True,2017-03-0{1 + i % 9} 10:00:0{i % 10}.5,{word}"


def test_key(i: int) -> int:
    return 6_000_000_000_000_000 + i * 10**7 + 777


def write(path: Path, lines: list[str], eol: str = "\n", bom: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = eol.join(lines) + (eol if lines else "")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))


def cat_file(bad: dict[int, str], n: int = 5, header: str = TRAIN_HEADER) -> list[str]:
    """cat.csv with ``n`` rows; row ``r`` (1-based) replaced by ``bad[r]`` (a raw CSV line)."""
    return [header] + [bad.get(r, train_row(1, 50 + r)) for r in range(1, n + 1)]


def cat_drawing(d: str) -> str:
    """A cat row whose drawing cell is the raw JSON text ``d``."""
    return train_row(1, 90, draw='"' + d.replace('"', '""') + '"')


def raw_drawing(i: int) -> list:
    """:func:`drawing` ``i`` as the app records it: float screen coordinates off the 0..255
    box (one negative), integer times in ms since the first point, a pause between strokes."""
    out, t = [], 0
    for xs, ys in drawing(i):
        ts = [t + 40 * k for k in range(len(xs))]
        t = ts[-1] + 300
        out.append([[x * 1.5 - 20.25 for x in xs], [y * 1.5 + 0.5 for y in ys], ts])
    return out


def raw_row(c: int, i: int, draw: str | None = None) -> str:
    return train_row(c, i, draw=cell(raw_drawing(c * 100 + i)) if draw is None else draw)


def raw_cat_file(bad: dict[int, str], n: int = 5) -> list[str]:
    """train_raw/cat.csv with ``n`` rows; row ``r`` has the raw drawing JSON ``bad[r]``."""
    return [TRAIN_HEADER] + [
        raw_row(1, 50 + r, '"' + bad[r].replace('"', '""') + '"' if r in bad else None)
        for r in range(1, n + 1)
    ]


def write_raw(out: Path) -> None:
    """``base_raw/`` and the ``files/raw_*.csv`` fixtures."""
    base = out / "base_raw"
    for c, word in enumerate(CLASSES):
        write(
            base / "train_raw" / f"{word}.csv",
            [TRAIN_HEADER] + [raw_row(c, i) for i in range(ROWS_PER_CLASS)],
        )
    write(
        base / "test_raw.csv",
        [TEST_HEADER] + [f"{test_key(i)},GB,{cell(raw_drawing(500 + i))}" for i in range(6)],
    )
    write(
        base / "test_simplified.csv",
        [TEST_HEADER] + [f"{test_key(i)},GB,{cell(drawing(500 + i))}" for i in range(6)],
    )
    write(
        base / "test_solution.csv",
        ["key_id,word"] + [f"{test_key(i)},{CLASSES[i % 3]}" for i in range(6)],
    )
    f = out / "files"
    write(f / "raw_xy_mismatch.csv", raw_cat_file({2: "[[[1.5, 2.5, 3.5], [1, 2], [0, 5, 9]]]"}))
    write(f / "raw_t_mismatch.csv", raw_cat_file({3: "[[[1.5, 2.5, 3.5], [1, 2, 3], [0, 5]]]"}))
    write(f / "raw_empty_stroke.csv", raw_cat_file({1: "[[[1, 9], [1, 9], [0, 8]], [[], [], []]]"}))
    write(f / "raw_empty_drawing.csv", raw_cat_file({4: "[]"}))
    write(f / "raw_two_lists.csv", raw_cat_file({2: "[[[10, 20, 30], [10, 20, 30]]]"}))
    write(f / "raw_bad_json.csv", raw_cat_file({5: "[[[1.5, 2.5], [1, 2], [0, 5]]"}))
    write(
        f / "raw_non_numeric.csv",
        raw_cat_file(
            {1: '[[["1.5", 2.5], [1, 2], [0, 5]]]', 3: "[[[1.5, 2.5], [1, 2], [0, true]]]"}
        ),
    )
    write(f / "raw_nan.csv", raw_cat_file({2: "[[[1.5, NaN], [1, 2], [0, 5]]]"}))
    write(f / "raw_out_of_range.csv", raw_cat_file({4: "[[[1.5, 2e12], [1, 2], [0, 5]]]"}))
    write(
        f / "raw_number_forms.csv",
        raw_cat_file(
            {
                1: "[[[-33.507999420166016, 1.5e2, 2E+1], [0.000125, -0, 7], [0, 16.0, 33]]]",
                2: "[[[414.48199462890625, 410], [5.0000000000000000000000001, 5], [0, 1e1]]]",
            }
        ),
    )
    write(
        f / "raw_time_backwards.csv",
        raw_cat_file({3: "[[[10, 40, 80, 120], [10, 12, 30, 60], [0, 50, 30, 90]]]"}),
    )
    write(f / "raw_time_clamped.csv", raw_cat_file({2: "[[[10, 200], [10, 200], [0, 70000]]]"}))
    write(f / "raw_huge_int.csv", raw_cat_file({1: f"[[[{HUGE_INT}, 2.5], [1, 2], [0, 5]]]"}))
    write(f / "raw_overflow.csv", raw_cat_file({3: "[[[1.5, 2.5], [1, 2], [0, 1e400]]]"}))
    write(
        f / "raw_test_one_key_missing.csv",
        [TEST_HEADER] + [f"{test_key(i)},GB,{cell(raw_drawing(500 + i))}" for i in range(5)],
    )
    write(
        f / "raw_test_bad_drawings.csv",
        [TEST_HEADER]
        + [f"{test_key(i)},GB,{cell(raw_drawing(500 + i))}" for i in (0, 3, 4, 5)]
        + [
            f'{test_key(1)},GB,"[[[1, 2], [3, 4]]]"',
            f'{test_key(2)},GB,"[[[1, 2], [3, 4], [0, 7]]"',
        ],
    )


def main(out: Path = HERE) -> None:
    """Write ``base/``, ``base_raw/`` and ``files/`` under ``out``."""
    base = out / "base"
    for c, word in enumerate(CLASSES):
        write(
            base / "train_simplified" / f"{word}.csv",
            [TRAIN_HEADER] + [train_row(c, i) for i in range(ROWS_PER_CLASS)],
        )
    test_rows = [f"{test_key(i)},GB,{cell(drawing(500 + i))}" for i in range(6)]
    write(base / "test_simplified.csv", [TEST_HEADER] + test_rows)
    write(
        base / "test_solution.csv",
        ["key_id,word"] + [f"{test_key(i)},{CLASSES[i % 3]}" for i in range(6)],
    )

    f = out / "files"
    good_json = json.dumps(drawing(1))
    # -- CSV structure -----------------------------------------------------------------------
    write(f / "csv_extra_field.csv", cat_file({2: train_row(1, 2, draw=good_json)}))
    write(f / "csv_unclosed_quote.csv", cat_file({4: train_row(1, 4, draw='"' + good_json)}))
    write(f / "csv_stray_quote.csv", cat_file({3: train_row(1, 3, draw=cell(drawing(3)) + "x")}))
    write(f / "utf8_bom.csv", cat_file({}), bom=True)
    write(f / "crlf.csv", cat_file({}), eol="\r\n")
    write(
        f / "test_bom_crlf.csv",
        [TEST_HEADER] + [f"{test_key(i)},GB,{cell(drawing(500 + i))}" for i in range(6)],
        eol="\r\n",
        bom=True,
    )
    write(f / "blank_lines.csv", cat_file({3: ""}))
    write(
        f / "missing_column.csv",
        [",".join(TRAIN_HEADER.split(",")[:-1])]
        + [train_row(1, i).rsplit(",", 1)[0] for i in range(3)],
    )
    write(
        f / "renamed_column.csv", cat_file({}, header=TRAIN_HEADER.replace("drawing", "drawings"))
    )
    write(
        f / "reordered_columns.csv",
        ["word,key_id,drawing,countrycode"]
        + [f"cat,{key(1, 60 + i)},{cell(drawing(160 + i))},FR" for i in range(3)],
    )
    write(
        f / "test_missing_column.csv",
        ["key_id,countrycode"] + [f"{test_key(i)},GB" for i in range(3)],
    )
    write(f / "empty.csv", [])
    write(f / "header_only.csv", [TRAIN_HEADER])
    write(f / "test_header_only.csv", [TEST_HEADER])
    (f / "latin1.csv").write_bytes(
        ("\n".join(cat_file({2: train_row(1, 2, word="caf\xe9")})) + "\n").encode("latin-1")
    )
    # -- drawings ----------------------------------------------------------------------------
    write(
        f / "bad_json.csv",
        cat_file({2: cat_drawing("[[[1, 2], [3, 4]]"), 4: cat_drawing("not json at all")}),
    )
    write(
        f / "not_a_drawing.csv",
        cat_file({1: cat_drawing('{"x": [1, 2]}'), 3: cat_drawing("[[1, 2, 3]]")}),
    )
    write(f / "empty_drawing.csv", cat_file({2: cat_drawing("[]")}))
    write(f / "empty_stroke.csv", cat_file({3: cat_drawing("[[[10, 20], [10, 20]], [[], []]]")}))
    write(f / "xy_mismatch.csv", cat_file({5: cat_drawing("[[[10, 20, 30], [10, 20]]]")}))
    write(f / "coord_negative.csv", cat_file({1: cat_drawing("[[[10, -1], [10, 20]]]")}))
    write(f / "coord_above_255.csv", cat_file({2: cat_drawing("[[[10, 20], [10, 256]]]")}))
    write(f / "coord_float.csv", cat_file({3: cat_drawing("[[[10.5, 20.25], [10, 20]]]")}))
    write(f / "coord_integral_float.csv", cat_file({3: cat_drawing("[[[10.0, 20.0], [1, 2]]]")}))
    write(
        f / "coord_raw_data.csv",
        cat_file({4: cat_drawing("[[[-12.3, 40.7, 130.1], [310.5, 290.0, 280.2], [0, 31, 77]]]")}),
    )
    write(f / "coord_huge_int.csv", cat_file({2: cat_drawing(f"[[[10, {HUGE_INT}], [10, 20]]]")}))
    write(f / "coord_overflow.csv", cat_file({4: cat_drawing("[[[10, 20], [1e400, 20]]]")}))
    write(
        f / "coord_non_numeric.csv",
        cat_file(
            {2: cat_drawing('[[["10", 20], [10, 20]]]'), 4: cat_drawing("[[[true, 20], [10, 20]]]")}
        ),
    )
    write(
        f / "test_bad_drawings.csv",
        [TEST_HEADER]
        + [
            f"{test_key(0)},GB,{cell(drawing(500))}",
            f'{test_key(1)},GB,"[[[1, 2], [3]]]"',
            f'{test_key(2)},GB,"[]"',
            f"{test_key(3)},GB,not json",
        ],
    )
    # -- labels and ids ----------------------------------------------------------------------
    write(f / "unknown_class.csv", cat_file({3: train_row(1, 3, word="kitten")}))
    write(f / "word_mismatch.csv", cat_file({4: train_row(1, 4, word="dog")}))
    write(
        f / "key_id_non_numeric.csv",
        cat_file({2: train_row(1, 2, key_id="abc"), 4: train_row(1, 4, key_id="")}),
    )
    write(
        f / "key_id_out_of_range.csv",
        cat_file({1: train_row(1, 1, key_id="-5"), 5: train_row(1, 5, key_id="1" * 25)}),
    )
    # dog.csv whose row 2 reuses a key_id of cat.csv (base) and row 4 repeats its own row 3.
    write(
        f / "key_id_duplicate_train.csv",
        [TRAIN_HEADER]
        + [
            train_row(2, 0),
            train_row(2, 1, key_id=str(key(1, 3))),
            train_row(2, 2),
            train_row(2, 2),
        ],
    )
    write(
        f / "test_duplicate_key_id.csv",
        [TEST_HEADER] + [f"{test_key(i % 4)},GB,{cell(drawing(500 + i))}" for i in range(6)],
    )
    write(
        f / "test_non_numeric_key_id.csv",
        [TEST_HEADER]
        + [
            f"{test_key(0)},GB,{cell(drawing(500))}",
            f"{test_key(1)},GB,{cell(drawing(501))}",
            f"k-17,GB,{cell(drawing(502))}",
        ],
    )
    write(
        f / "solution_unknown_class.csv",
        ["key_id,word"]
        + [f"{test_key(i)},{'kitten' if i == 4 else CLASSES[i % 3]}" for i in range(6)],
    )
    (f / "solution_latin1.csv").write_bytes(
        ("key_id,word\n" + "".join(f"{test_key(i)},caf\xe9\n" for i in range(6))).encode("latin-1")
    )
    # -- class names -------------------------------------------------------------------------
    for word, name in (
        ("The Eiffel Tower", "class_spaces.csv"),
        ('it\'s "quoted", too', "class_quotes.csv"),
        ("café crème 日本", "class_non_ascii.csv"),
    ):
        write(
            f / name,
            [TRAIN_HEADER]
            + [
                train_row(
                    0,
                    70 + i,
                    word='"' + word.replace('"', '""') + '"',
                    key_id=str(7_000_000_000_000_000 + hash_word(word) * 10**9 + i * 10**7),
                )
                for i in range(4)
            ],
        )

    write_raw(out)


def hash_word(word: str) -> int:
    """A stable small number per word (Python's hash() is salted per process)."""
    return sum(ord(ch) * (k + 1) for k, ch in enumerate(word)) % 997


if __name__ == "__main__":
    main()
