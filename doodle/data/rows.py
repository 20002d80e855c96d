"""Kaggle's CSV files read row by row: a row that cannot be used is counted per reason
and listed (file, row, reason) in the skip log, never lost silently.

Rows are numbered as data rows (row 1 is the first line after the header), so "row 5" is
line 6 of the file.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from doodle.data.files import ZIP_ERRORS, Member
from doodle.errors import InputError

# Why a row was skipped (the ``reason`` column of skipped_rows.csv).
BAD_CSV_ROW = "bad_csv_row"
BAD_KEY_ID = "bad_key_id"
UNKNOWN_CLASS = "unknown_class"
WORD_MISMATCH = "word_mismatch"  # a class, but not the class of the row's file
DUPLICATE_KEY_ID = "duplicate_key_id"
TRAIN_REQUIRED = ["countrycode", "drawing", "key_id", "word"]
TEST_REQUIRED = ["key_id", "countrycode", "drawing"]


class SkipLog:
    """Counts skipped rows per file and reason and lists each one (file, row, reason),
    written in row order on :meth:`close` (drawings are checked a chunk at a time, after
    the row's other fields)."""

    HEADER = ["file", "row", "reason", "detail"]

    def __init__(self, path: Path, header: bool = True):
        self.counts: dict[str, Counter] = {}
        self.path, self.header = Path(path), header
        self._rows: list[tuple[str, int, str, str]] = []

    def skip(self, file: str, row: int, reason: str, detail: str = "") -> None:
        self.counts.setdefault(file, Counter())[reason] += 1
        self._rows.append((file, row, reason, detail[:200]))

    def close(self) -> None:
        with open(self.path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            if self.header:
                w.writerow(self.HEADER)
            w.writerows(sorted(self._rows, key=lambda r: r[1]))  # stable: row, then order


def read_csv_rows(
    source: Member | Path, required: list[str], log: SkipLog
) -> Iterator[tuple[int, dict]]:
    """Yield ``(row_number, {column: value})`` for a Kaggle CSV (row 1 = first data row).

    ``source`` is a file or a zip member. Handles a UTF-8 BOM and CRLF endings; rows with
    the wrong field count are skipped and logged. A missing column, an undecodable file or
    a damaged archive raises :class:`InputError`.
    """
    member = source if isinstance(source, Member) else Member(str(source))
    name = member.name
    try:
        with member.open_text() as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise InputError(f"{name}: empty file (no header row)")
            header = [h.strip() for h in header]
            missing = [c for c in required if c not in header]
            if missing:
                raise InputError(
                    f"{name}: missing column(s) {missing}; header is {header}, expected {required}"
                )
            idx = {c: header.index(c) for c in required}
            while True:
                # Row numbers are file lines minus the header line, so "row 5" is line 6.
                row_no = reader.line_num
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as e:
                    log.skip(name, row_no, BAD_CSV_ROW, str(e))
                    continue
                if reader.line_num > row_no + 1:
                    # Kaggle rows are one line each: an unbalanced quote joined several lines
                    # into one record. List every line so none is lost without a trace.
                    span = f"lines {row_no + 1}-{reader.line_num}"
                    for r in range(row_no, reader.line_num):
                        log.skip(
                            name, r, BAD_CSV_ROW, f"{span} form one record (unbalanced quote?)"
                        )
                    continue
                if len(row) != len(header):
                    if row:  # blank lines are not rows
                        log.skip(
                            name,
                            row_no,
                            BAD_CSV_ROW,
                            f"{len(row)} fields, header has {len(header)}",
                        )
                    continue
                yield row_no, {c: row[i] for c, i in idx.items()}
    except UnicodeDecodeError as e:
        raise InputError(f"{name}: not UTF-8 text ({e})") from None
    except ZIP_ERRORS as e:
        raise InputError(f"{name}: corrupt or truncated zip ({e}); download it again") from None
    except OSError as e:
        raise InputError(f"{name}: unreadable ({e})") from None


def shown(text: str, limit: int = 40) -> str:
    """``repr`` of a cell for a message, cut to ``limit`` characters (a cell can be megabytes)."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text):,} characters)"


def parse_key_id(text: str) -> int:
    try:
        key = int(text)
    except ValueError:  # not an integer, or thousands of digits
        raise ValueError(f"key_id {shown(text)} is not an integer") from None
    if key < 0 or key >= 2**63:
        raise ValueError(f"key_id {shown(text)} out of range")
    return key
