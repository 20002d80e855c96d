"""The record of uploads (reports/submissions.csv): rows appended and updated atomically,
Kaggle's scores taken in by ref, the table and the holdout-vs-public summary."""

import threading
from datetime import datetime, timezone
from pathlib import Path

from doodle.kaggle import submissions as submission_log
from doodle.kaggle.api import Submission
from doodle.kaggle.submissions import COLUMNS, append, apply, new_row, pending, read, summary, table

METRICS = {"final": "stack_balanced", "holdout_map3": 0.9012345, "rows": {"score": 17000}}
WHEN = datetime(2024, 5, 1, 12, 0, 3, tzinfo=timezone.utc)


def scored(ref: int, public: float | None, status: str = "complete") -> Submission:
    private = None if public is None else public - 0.001
    return Submission(ref, status, public, private, "", None, "")


def test_rows_are_appended_then_scored_by_ref(tmp_path):
    record = tmp_path / "reports" / "submissions.csv"
    sub = tmp_path / "submission.csv"
    sub.write_text("key_id,word\n1,a b c\n")
    row = new_row("comp", 11, "abc1234", METRICS, sub, "img 128", now=WHEN)
    assert row == {
        "submitted_at": "2024-05-01T12:00:03Z",
        "competition": "comp",
        "ref": "11",
        "revision": "abc1234",
        "method": "stack_balanced",
        "holdout_map3": "0.90123",
        "holdout_rows": "17000",
        "status": "pending",
        "public_score": "",
        "private_score": "",
        "file_sha256": submission_log.file_digest(sub),
        "message": "img 128",
    }
    assert append(row, record) == 1
    unknown = new_row("comp", 12, "abc1234", None, sub, "no metrics", now=WHEN)
    assert unknown["holdout_map3"] == "" and unknown["method"] == ""
    assert append(unknown, record) == 2
    assert record.read_text().splitlines()[0] == ",".join(COLUMNS)
    assert [r["ref"] for r in pending(read(record))] == ["11", "12"]

    # Kaggle's list: 11 scored, 12 still pending, 99 not ours
    subs = [scored(11, 0.89), scored(12, None, "pending"), scored(99, 0.5)]
    assert apply(subs, record) == 1
    assert apply(subs, record) == 0  # nothing new
    rows = read(record)
    assert (rows[0]["status"], rows[0]["public_score"], rows[0]["private_score"]) == (
        "complete",
        "0.89000",
        "0.88900",
    )
    assert rows[1]["status"] == "pending" and len(rows) == 2
    assert sorted(p.name for p in record.parent.iterdir()) == ["submissions.csv"]  # no temp


def test_table_and_summary_put_the_holdout_beside_the_public_score(tmp_path):
    record = tmp_path / "submissions.csv"
    sub = tmp_path / "s.csv"
    sub.write_text("x")
    for ref, holdout in ((1, 0.90), (2, 0.92), (3, 0.93)):
        metrics = METRICS | {"holdout_map3": holdout}
        append(new_row("comp", ref, "r", metrics, sub, f"m{ref}", now=WHEN), record)
    apply([scored(1, 0.89), scored(2, 0.925)], record)
    rows = read(record)
    lines = table(rows).splitlines()
    assert lines[0].split() == [
        "submitted",
        "(UTC)",
        "ref",
        "revision",
        "method",
        "holdout",
        "public",
        "private",
        "pub-hold",
        "status",
        "message",
    ]
    assert lines[1].split()[2:] == [
        "1",
        "r",
        "stack_balanced",
        "0.90000",
        "0.89000",
        "0.88900",
        "-0.01000",
        "complete",
        "m1",
    ]
    assert lines[3].split()[6:9] == ["-", "-", "-"]  # not scored yet
    assert summary(rows) == (
        "3 submission(s), 2 with both scores: public - holdout -0.00250 on average "
        "(from -0.01000 to +0.00500); 1 still pending"
    )
    assert summary([]) == "0 submission(s), none with both scores yet"


def test_an_older_record_with_fewer_columns_still_reads(tmp_path):
    record = tmp_path / "submissions.csv"
    record.write_text("submitted_at,ref,status\n2024-01-01T00:00:00Z,5,pending\n")
    [row] = read(record)
    assert set(row) == set(COLUMNS) and row["ref"] == "5" and row["public_score"] == ""
    apply([scored(5, 0.8)], record)
    assert read(record)[0]["public_score"] == "0.80000"
    assert record.read_text().splitlines()[0] == ",".join(COLUMNS)


def test_uploads_at_once_lose_no_row(tmp_path):
    record = tmp_path / "submissions.csv"
    sub = tmp_path / "s.csv"
    sub.write_text("x")
    rows = [new_row("comp", i, "r", METRICS, sub, f"m{i}", now=WHEN) for i in range(16)]
    threads = [threading.Thread(target=append, args=(r, record)) for r in rows]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(int(r["ref"]) for r in read(record)) == list(range(16))


def test_the_project_tracks_an_empty_record():
    path = Path(__file__).resolve().parents[2] / submission_log.RECORD
    assert path.read_text().splitlines() == [",".join(COLUMNS)]
