"""Pseudo-labels: test drawings labelled by teacher members' test predictions.

A finetune member with ``pseudo_share > 0`` trains on its training shards plus the share
of the test set its teachers (``pseudo_from``: one member or a list; by default the member
it starts from) are most confident about, each labelled with their top class. Several
teachers vote by averaging their probabilities. Only the test *drawings* are read from
``test.qds``; its labels (known for the synthetic and sample sets) never are, and the
holdout is untouched, so every holdout figure stays honest. Kaggle allows this: the
labels come from the models' own predictions on the test set it scores.

The stage ``pseudo@<member>`` writes the chosen drawings as one ordinary shard
(``data/pseudo/<member>/pseudo.qds``), so the training stream, its shuffling, augmentation
and resume work on them unchanged, plus a ``summary.json``. Both are a function of the
teachers' predictions and the share alone (no times, no paths), so when the stage re-runs
with the same teachers the bytes are the same and DVC leaves the finetune member alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from doodle.data.shards import open_shard, write_shard
from doodle.errors import InputError
from doodle.fileio import atomic_path, write_json

SHARD, SUMMARY = "pseudo.qds", "summary.json"


def select(probs: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
    """(rows, labels): the ``share`` of rows with the highest top probability, in row
    order, and their top class. Ties keep row order (a stable sort)."""
    top = probs.argmax(1)
    confidence = probs[np.arange(len(probs)), top].astype(np.float32)
    n = int(round(share * len(probs)))
    rows = np.sort(np.argsort(-confidence, kind="stable")[:n])
    return rows, top[rows]


def teacher_probs(teachers: Sequence[Path], key_ids: np.ndarray) -> tuple[np.ndarray, list]:
    """The mean of the teachers' test probabilities (float32) and their class list; every
    teacher must hold the test set's ``key_ids`` in order and the same classes."""
    total, classes = None, None
    for path in teachers:
        with np.load(path, allow_pickle=False) as f:
            probs, keys = f["probs"].astype(np.float32), f["key_id"]
            names = [str(c) for c in f["classes"]]
        if len(keys) != len(key_ids) or not np.array_equal(keys, key_ids):
            raise InputError(
                f"{path}: its {len(keys):,} key_ids are not the test shard's {len(key_ids):,}; "
                "re-run the teacher's predict stage"
            )
        if classes is not None and names != classes:
            raise InputError(f"{path}: its class list differs from {teachers[0]}'s")
        total, classes = (probs if total is None else total + probs), names
    if total is None:
        raise InputError("pseudo-labels need at least one teacher")
    return total / len(teachers), classes


def write_pseudo_labels(
    teachers: dict[str, Path], test_shard: Path, share: float, out_dir: Path
) -> dict:
    """Write ``out_dir``: ``summary.json`` and, when ``share > 0``, ``pseudo.qds`` (the
    test drawings chosen by :func:`select` from the teachers' mean probabilities, with
    their top class). ``teachers`` maps each teacher's name to its ``test.npz``. Returns
    the summary (teachers, share, rows kept, of how many, mean confidence)."""
    summary: dict = {"teachers": list(teachers), "share": share, "rows": 0, "of": 0}
    with atomic_path(Path(out_dir)) as tmp:
        tmp.mkdir(parents=True)
        if share:
            shard = open_shard(test_shard)
            key_ids = np.asarray(shard.key_id)
            probs, _ = teacher_probs(list(teachers.values()), key_ids)
            rows, labels = select(probs, share)
            write_shard(
                tmp / SHARD,
                shard.drawings.take(rows),
                labels.astype(np.int16),
                key_ids[rows],
                np.asarray(shard.countrycode)[rows],
                {"split": "pseudo", "teachers": list(teachers), "share": share},
            )
            confidence = float(probs[rows, labels].mean()) if len(rows) else 0.0
            summary |= {"rows": int(len(rows)), "of": int(len(key_ids))}
            summary["confidence"] = round(confidence, 6)
        write_json(tmp / SUMMARY, summary)
    return summary
