"""Submission formatting, atomic writing and validation of malformed files."""

from pathlib import Path

import numpy as np
import pytest

from doodle.kaggle.submission import (
    Problem,
    format_rows,
    to_label,
    validate_submission,
    write_submission,
)

CLASSES = ["The Eiffel Tower", "airplane", "apple", "cat"]
KEYS = [101, 102, 103]
GOOD_ROWS = [
    "101,The_Eiffel_Tower airplane apple",
    "102,cat apple airplane",
    "103,apple cat The_Eiffel_Tower",
]


def write_lines(tmp_path: Path, lines: list[str], name: str = "sub.csv") -> Path:
    path = tmp_path / name
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_to_label_and_format_rows():
    assert to_label("The Eiffel Tower") == "The_Eiffel_Tower"
    assert to_label("cat") == "cat"
    top = np.array([[0, 1, 2], [3, 2, 1]])
    assert format_rows(top, CLASSES) == [
        "The_Eiffel_Tower airplane apple",
        "cat apple airplane",
    ]


def test_write_then_validate_round_trip(tmp_path):
    path = tmp_path / "out" / "submission.csv"
    top = np.array([[0, 1, 2], [3, 2, 1], [2, 3, 0]])
    write_submission(path, np.array(KEYS, dtype=np.int64), top, CLASSES)
    assert path.read_text().splitlines() == ["key_id,word", *GOOD_ROWS]
    assert validate_submission(path, np.array(KEYS), CLASSES) == []
    assert [p.name for p in path.parent.iterdir()] == ["submission.csv"]  # no temp left over


def test_write_rejects_misaligned_inputs(tmp_path):
    with pytest.raises(ValueError):
        write_submission(tmp_path / "s.csv", np.array([1, 2]), np.zeros((3, 3), int), CLASSES)


@pytest.mark.parametrize(
    ("lines", "row", "fragment"),
    [
        (["key_id,label", *GOOD_ROWS], 0, "header must be 'key_id,word'"),
        (["key_id,word", "abc,cat apple airplane", *GOOD_ROWS], 1, "'abc' is not an integer"),
        (["key_id,word", *GOOD_ROWS, "999,cat apple airplane"], 4, "999 is not in the test set"),
        (["key_id,word", *GOOD_ROWS, "102,cat apple airplane"], 4, "duplicate key_id 102"),
        (["key_id,word", "101,cat apple", *GOOD_ROWS[1:]], 1, "expected 3 space-separated"),
        (
            ["key_id,word", *GOOD_ROWS[:2], "103,cat apple airplane The_Eiffel_Tower"],
            3,
            "got 4",
        ),
        (["key_id,word", *GOOD_ROWS[:2], "103,cat apple dog"], 3, "unknown label 'dog'"),
        (
            ["key_id,word", "101,The Eiffel Tower airplane apple", *GOOD_ROWS[1:]],
            1,
            "'The Eiffel Tower' with underscores",
        ),
        (["key_id,word", "101,cat cat apple", *GOOD_ROWS[1:]], 1, "duplicate label(s) cat"),
        (["key_id,word", "101,cat  apple airplane", *GOOD_ROWS[1:]], 1, "empty label"),
        (["key_id,word", "101,cat apple,airplane", *GOOD_ROWS[1:]], 1, "expected 2 columns"),
    ],
)
def test_malformed_rows_are_reported_with_row_number(tmp_path, lines, row, fragment):
    problems = validate_submission(write_lines(tmp_path, lines), KEYS, CLASSES)
    assert problems, "a malformed file must not validate"
    hits = [p for p in problems if fragment in p.message]
    assert hits, f"no problem mentions {fragment!r}: {problems}"
    assert hits[0].row == row


def test_missing_row_reports_count_and_example(tmp_path):
    path = write_lines(tmp_path, ["key_id,word", GOOD_ROWS[0], GOOD_ROWS[2]])
    assert validate_submission(path, KEYS, CLASSES) == [
        Problem(None, "1 test key_ids missing from the file, e.g. 102")
    ]


def test_missing_header_is_detected_and_first_line_still_checked(tmp_path):
    problems = validate_submission(write_lines(tmp_path, GOOD_ROWS), KEYS, CLASSES)
    assert len(problems) == 1
    assert problems[0].row == 0 and "header row seems to be missing" in problems[0].message


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert validate_submission(empty, KEYS, CLASSES) == [Problem(None, f"file is empty: {empty}")]
    header_only = write_lines(tmp_path, ["key_id,word"], "header.csv")
    messages = [p.message for p in validate_submission(header_only, KEYS, CLASSES)]
    assert messages == ["no data rows", "3 test key_ids missing from the file, e.g. 101, 102, 103"]
    missing = tmp_path / "nope.csv"
    assert validate_submission(missing, KEYS, CLASSES) == [
        Problem(None, f"file not found: {missing}")
    ]


def test_unreadable_bytes_reported(tmp_path):
    path = tmp_path / "bin.csv"
    path.write_bytes(b"key_id,word\n101,\xff\xfe cat apple\n")
    problems = validate_submission(path, KEYS, CLASSES)
    assert len(problems) == 1 and problems[0].row is None
    assert problems[0].message.startswith("cannot read")


def test_max_problems_caps_the_list(tmp_path):
    lines = ["key_id,word"] + [f"{900 + i},cat apple airplane" for i in range(10)] + GOOD_ROWS
    problems = validate_submission(write_lines(tmp_path, lines), KEYS, CLASSES, max_problems=3)
    assert [p.row for p in problems] == [1, 2, 3, None]
    assert problems[-1].message == "7 more row problems"


def test_submission_message_names_revision_and_score(tmp_path, monkeypatch):
    import json
    import subprocess

    from doodle.kaggle.submission import submission_message

    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "f").write_text("x")
    subprocess.run(["git", "add", "f"], cwd=tmp_path, check=True)
    subprocess.run(
        ["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "m"],
        cwd=tmp_path,
        check=True,
    )
    rev = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    metrics = tmp_path / "metrics.json"
    metrics.write_text(
        json.dumps({"holdout_map3": 0.912986, "final": "blend_balanced", "rows": {"score": 888}})
    )
    monkeypatch.chdir(tmp_path)
    assert submission_message(metrics) == (
        f"doodle {rev}: blend_balanced, holdout MAP@3 0.9130 (888 held-apart rows)"
    )
    assert submission_message(tmp_path / "missing.json").endswith("holdout MAP@3 unknown")
