"""The record of every upload to Kaggle: ``reports/submissions.csv``, the holdout MAP@3 a
submission was sent with beside the scores Kaggle gave it.

``stages/submit.py`` appends one row per upload (status ``pending``) and fills in the
scores once Kaggle has scored it; ``stages/submissions.py`` (``make submissions``) asks
Kaggle for the scores still pending and prints the record. The file is small text kept in
git, so that how well the holdout predicts the leaderboard can be followed over time.
Every change rewrites it whole, atomically (temp file, then rename), under a lock on its
folder, so two uploads at once cannot lose a row.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path

from doodle.fileio import write_csv

RECORD = Path("reports/submissions.csv")
COLUMNS = (
    "submitted_at",  # UTC, ISO 8601
    "competition",
    "ref",  # Kaggle's submission id
    "revision",  # git revision of the code
    "method",  # the submitted ensemble method (reports/metrics.json: final)
    "holdout_map3",  # MAP@3 on the held-apart holdout rows, as quoted at upload
    "holdout_rows",
    "status",  # pending | complete | error
    "public_score",
    "private_score",
    "file_sha256",  # of the uploaded file (first 16 hex digits)
    "message",  # the description sent with it
)
STATUSES = ("pending", "complete", "error")


def file_digest(path: Path) -> str:
    """The first 16 hex digits of the file's SHA-256."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def new_row(
    competition: str,
    ref: int | None,
    revision: str,
    metrics: dict | None,
    file: Path,
    message: str,
    now: datetime | None = None,
) -> dict[str, str]:
    """The row of an upload just made (``metrics``: reports/metrics.json, or None)."""
    now = now or datetime.now(timezone.utc)
    m = metrics or {}
    holdout = m.get("holdout_map3")
    return {
        "submitted_at": now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "competition": competition,
        "ref": "" if ref is None else str(ref),
        "revision": revision,
        "method": str(m.get("final", "")),
        "holdout_map3": "" if holdout is None else f"{float(holdout):.5f}",
        "holdout_rows": str((m.get("rows") or {}).get("score", "")),
        "status": "pending",
        "public_score": "",
        "private_score": "",
        "file_sha256": file_digest(file),
        "message": message,
    }


def read(path: Path = RECORD) -> list[dict[str, str]]:
    """The record's rows (every column present, "" where a value is unknown); [] if none."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [{c: (row.get(c) or "") for c in COLUMNS} for row in csv.DictReader(f)]


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on ``folder`` (flock on its descriptor: no lock file is left)."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _rewrite(path: Path, change) -> list[dict[str, str]]:
    """Apply ``change(rows)`` (in place) to the record under the lock; write it back."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.parent):
        rows = read(path)
        change(rows)
        write_csv(path, COLUMNS, ([r.get(c, "") for c in COLUMNS] for r in rows))
    return rows


def append(row: dict[str, str], path: Path = RECORD) -> int:
    """Add ``row`` at the end; returns the number of rows now recorded."""
    return len(_rewrite(path, lambda rows: rows.append({c: row.get(c, "") for c in COLUMNS})))


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:.5f}"


def apply(submissions: Iterable, path: Path = RECORD) -> int:
    """Take the status and scores of Kaggle's ``submissions`` (kaggle_api.Submission) into
    the rows of the same ref; returns how many rows changed."""
    by_ref = {str(s.ref): s for s in submissions}
    changed = 0

    def change(rows: list[dict[str, str]]) -> None:
        nonlocal changed
        for row in rows:
            s = by_ref.get(row["ref"])
            if s is None:
                continue
            new = {
                "status": s.status,
                "public_score": _score(s.public_score),
                "private_score": _score(s.private_score),
            }
            if any(row[k] != v for k, v in new.items()):
                row.update(new)
                changed += 1

    _rewrite(path, change)
    return changed


def pending(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [r for r in rows if r["status"] == "pending" and r["ref"]]


def _float(text: str) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def gap(row: dict[str, str]) -> float | None:
    """Public score minus holdout MAP@3, when both are known."""
    public, holdout = _float(row["public_score"]), _float(row["holdout_map3"])
    return None if public is None or holdout is None else public - holdout


def table(rows: list[dict[str, str]], message_width: int = 48) -> str:
    """The record as aligned columns, oldest first."""
    header = (
        "submitted (UTC)",
        "ref",
        "revision",
        "method",
        "holdout",
        "public",
        "private",
        "pub-hold",
        "status",
        "message",
    )
    lines = [header]
    for r in rows:
        g = gap(r)
        message = r["message"]
        if len(message) > message_width:
            message = message[: message_width - 3] + "..."
        lines.append(
            (
                r["submitted_at"].replace("T", " ").rstrip("Z"),
                r["ref"] or "-",
                r["revision"] or "-",
                r["method"] or "-",
                r["holdout_map3"] or "-",
                r["public_score"] or "-",
                r["private_score"] or "-",
                "-" if g is None else f"{g:+.5f}",
                r["status"],
                message,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def summary(rows: list[dict[str, str]]) -> str:
    """How far the public score lands from the holdout MAP@3, over the scored rows."""
    gaps = [g for g in (gap(r) for r in rows) if g is not None]
    waiting = len(pending(rows))
    tail = f"; {waiting} still pending" if waiting else ""
    if not gaps:
        return f"{len(rows)} submission(s), none with both scores yet{tail}"
    mean = sum(gaps) / len(gaps)
    return (
        f"{len(rows)} submission(s), {len(gaps)} with both scores: public - holdout "
        f"{mean:+.5f} on average (from {min(gaps):+.5f} to {max(gaps):+.5f}){tail}"
    )
