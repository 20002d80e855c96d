"""Write the Kaggle submission CSV and check one before it is uploaded.

Format: header ``key_id,word``; ``word`` holds the 3 best labels separated by single
spaces, with the spaces inside a label written as underscores (``The_Eiffel_Tower``).
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from doodle.data.layout import COMPETITION_TEST_ROWS, DATASET_FILE
from doodle.errors import InputError, SubmitRefused
from doodle.fileio import atomic_path

logger = logging.getLogger(__name__)

HEADER = ["key_id", "word"]
N_LABELS = 3
_INT_RE = re.compile(r"-?[0-9]+")


def to_label(word: str) -> str:
    """Class word -> submission label (spaces become underscores)."""
    return word.replace(" ", "_")


def format_rows(top: np.ndarray, classes: Sequence[str]) -> list[str]:
    """One ``"w1 w2 w3"`` string per row of top-k class indices."""
    labels = [to_label(str(w)) for w in classes]
    return [" ".join(labels[i] for i in row) for row in np.asarray(top).tolist()]


def write_submission(
    path: Path, key_ids: np.ndarray, top: np.ndarray, classes: Sequence[str]
) -> None:
    """Write ``key_id,word`` rows atomically (a temp file renamed into place)."""
    path = Path(path)
    key_ids = np.asarray(key_ids)
    top = np.asarray(top)
    if top.ndim != 2 or len(key_ids) != len(top):
        raise ValueError(f"key_ids {key_ids.shape} and top {top.shape} do not line up")
    rows = format_rows(top, classes)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(HEADER) + "\n")
        # Labels never contain commas or quotes, so plain joins are valid CSV.
        f.writelines(f"{k},{w}\n" for k, w in zip(key_ids.tolist(), rows, strict=True))


@dataclass
class Problem:
    """One validation finding; ``row`` is the data row (header = 0), None for file-wide."""

    row: int | None
    message: str

    def __str__(self) -> str:
        where = "file" if self.row is None else f"row {self.row}"
        return f"{where}: {self.message}"


def validate_submission(
    path: Path,
    test_key_ids: Iterable[int],
    classes: Sequence[str],
    max_problems: int = 20,
) -> list[Problem]:
    """Check a submission CSV against the test key_ids and class list; [] when valid.

    Row problems are listed first (at most ``max_problems``, then a count of the rest),
    followed by file-wide problems such as missing key_ids.
    """
    path = Path(path)
    if isinstance(test_key_ids, np.ndarray):
        test_key_ids = test_key_ids.tolist()  # python ints hash much faster than np.int64
    expected = {int(k) for k in test_key_ids}
    valid_labels = {to_label(str(w)) for w in classes}

    row_problems: list[Problem] = []
    n_row_problems = 0

    def report(row: int, message: str) -> None:
        nonlocal n_row_problems
        n_row_problems += 1
        if len(row_problems) < max_problems:
            row_problems.append(Problem(row, message))

    seen: dict[int, int] = {}  # key_id -> first row
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                return [Problem(None, f"file is empty: {path}")]
            rows: Iterable[tuple[int, list[str]]] = enumerate(reader, start=1)
            if header != HEADER:
                hint = ""
                if header and _INT_RE.fullmatch(header[0].strip()):
                    hint = " (the header row seems to be missing)"
                    # Still check the first line as data, so its key_id is not called missing.
                    rows = _chain_first((0, header), rows)
                report(0, f"header must be 'key_id,word', got {','.join(header)!r}{hint}")
            for row, fields in rows:
                _check_row(row, fields, expected, valid_labels, seen, report)
    except FileNotFoundError:
        return [Problem(None, f"file not found: {path}")]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        return [Problem(None, f"cannot read {path}: {e}")]

    problems = row_problems
    if n_row_problems > len(row_problems):
        problems.append(Problem(None, f"{n_row_problems - len(row_problems)} more row problems"))
    if not seen and not n_row_problems:
        problems.append(Problem(None, "no data rows"))
    missing = expected.difference(seen)
    if missing:
        examples = ", ".join(str(k) for k in sorted(missing)[:5])
        problems.append(
            Problem(None, f"{len(missing)} test key_ids missing from the file, e.g. {examples}")
        )
    return problems


def _chain_first(
    first: tuple[int, list[str]], rest: Iterable[tuple[int, list[str]]]
) -> Iterable[tuple[int, list[str]]]:
    yield first
    yield from rest


def _check_row(
    row: int,
    fields: list[str],
    expected: set[int],
    valid_labels: set[str],
    seen: dict[int, int],
    report,
) -> None:
    """Validate one data row, calling ``report(row, message)`` for each finding."""
    if not fields:
        report(row, "empty line")
        return
    if len(fields) != 2:
        report(row, f"expected 2 columns (key_id,word), got {len(fields)}")
        return
    key_text, word = fields
    if not _INT_RE.fullmatch(key_text.strip()):
        report(row, f"key_id {key_text!r} is not an integer")
    else:
        key = int(key_text)
        if key not in expected:
            report(row, f"key_id {key} is not in the test set")
        elif key in seen:
            report(row, f"duplicate key_id {key} (first in row {seen[key]})")
        else:
            seen[key] = row

    labels = word.split(" ")
    if "" in labels:
        report(row, f"empty label (leading, trailing or double space) in {word!r}")
        labels = [w for w in labels if w]
    if len(labels) != N_LABELS:
        spaced = _spaced_labels(word, valid_labels)
        hint = f" (write {', '.join(spaced)} with underscores)" if spaced else ""
        report(
            row, f"expected {N_LABELS} space-separated labels, got {len(labels)}: {word!r}{hint}"
        )
        if spaced:
            return  # the pieces of a spaced label are not worth reporting one by one
    for label in labels:
        if label not in valid_labels:
            report(row, f"unknown label {label!r}")
    dupes = sorted({w for w in labels if labels.count(w) > 1})
    if dupes:
        report(row, f"duplicate label(s) {', '.join(dupes)} in {word!r}")


def _spaced_labels(word: str, valid_labels: set[str]) -> list[str]:
    """Multi-word labels written with raw spaces inside ``word`` (e.g. 'The Eiffel Tower')."""
    padded = f" {word} "
    return sorted(
        repr(label.replace("_", " "))
        for label in valid_labels
        if "_" in label and f" {label.replace('_', ' ')} " in padded
    )


def check_submission(path: Path, shard_dir: Path) -> int:
    """Validate ``path`` against the test set and classes in ``shard_dir``; returns the row
    count, or raises InputError after printing every problem (file and row)."""
    from doodle.data.shards import open_shard, read_classes

    keys = open_shard(Path(shard_dir) / "test.qds").key_id
    problems = validate_submission(path, keys, read_classes(shard_dir))
    for p in problems:
        logger.error("%s: %s", path, p)
    if problems:
        raise InputError(
            f"{path}: not valid ({len(problems)} problem(s) shown above); nothing was submitted"
        )
    return len(keys)


def read_dataset_info(folder: Path) -> dict:
    """What the data is, as the download stage recorded it (the shard stage keeps a copy)."""
    path = Path(folder) / DATASET_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: re-run the pipeline (dvc repro) so that "
            "the download stage records what the data is"
        )
    return json.loads(path.read_text())


def submission_guard(shard_dir: Path, force: bool = False) -> dict:
    """Refuse (SubmitRefused, one line) to upload a submission that cannot be scored by
    the competition: built from synthetic data, or from a test set that is not Kaggle's
    (another row count). ``force`` only logs the reason. Returns the dataset description."""
    info = read_dataset_info(shard_dir)
    reason = None
    if info["kind"] == "synthetic":
        reason = (
            "submission.csv was built from synthetic data (data.source: synthetic); "
            "Kaggle would score it as noise"
        )
    elif info["test_rows"] != COMPETITION_TEST_ROWS:
        reason = (
            f"submission.csv was built from a test set of {info['test_rows']:,} rows "
            f"({info['origin']}), not the competition's {COMPETITION_TEST_ROWS:,}"
        )
    if reason and not force:
        raise SubmitRefused(f"{reason}. Nothing was sent; --force uploads anyway.")
    if reason:
        logger.warning("%s; uploading anyway (--force)", reason)
    return info


def git_revision() -> str:
    """The short git revision of the working directory's checkout ("unknown-rev" if none)."""
    import subprocess

    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown-rev"


def read_metrics(metrics_path: Path) -> dict | None:
    """reports/metrics.json with its headline (``final``, ``holdout_map3``, ``rows.score``),
    or None when it is missing or lacks them."""
    try:
        m = json.loads(Path(metrics_path).read_text())
        float(m["holdout_map3"]), m["final"], m["rows"]["score"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return m


def submission_message(metrics_path: Path) -> str:
    """'doodle <rev>: blend_balanced, holdout MAP@3 0.9123 (888 held-apart rows)'."""
    m = read_metrics(metrics_path)
    if m is None:
        score = "holdout MAP@3 unknown"
    else:
        score = (
            f"{m['final']}, holdout MAP@3 {float(m['holdout_map3']):.4f} "
            f"({m['rows']['score']} held-apart rows)"
        )
    return f"doodle {git_revision()}: {score}"
