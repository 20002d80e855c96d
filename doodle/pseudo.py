"""Pseudo-labels: test drawings labelled by a teacher member's test predictions.

A finetune member with ``pseudo_share > 0`` trains on its training shards plus the share
of the test set its teacher (the member it starts from, ``init_from``) is most confident
about, each labelled with the teacher's top class. Only the test *drawings* are read from
``test.qds``; its labels (known for the synthetic and sample sets) never are, and the
holdout is untouched, so every holdout figure stays honest. Kaggle allows this: the
labels come from the model's own predictions on the test set it scores.

The pseudo-labelled drawings are written as one ordinary shard, so the training stream,
its shuffling, augmentation and resume work on them unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from doodle.errors import InputError
from doodle.shard_format import open_shard, write_shard


def select(probs: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
    """(rows, labels): the ``share`` of rows with the highest top probability, in row
    order, and their top class. Ties keep row order (a stable sort)."""
    top = probs.argmax(1)
    confidence = probs[np.arange(len(probs)), top].astype(np.float32)
    n = int(round(share * len(probs)))
    rows = np.sort(np.argsort(-confidence, kind="stable")[:n])
    return rows, top[rows]


def write_pseudo_shard(teacher: Path, test_shard: Path, share: float, out: Path) -> dict:
    """Write ``out``: the test drawings chosen by :func:`select` from the teacher's test
    predictions (``data/predictions/<teacher>/test.npz``), with its labels. Returns a
    summary (rows, mean confidence)."""
    with np.load(teacher) as f:
        probs = f["probs"].astype(np.float32)
        keys = f["key_id"]
    shard = open_shard(test_shard)
    if len(keys) != len(shard) or not np.array_equal(keys, np.asarray(shard.key_id)):
        raise InputError(
            f"{teacher}: its {len(keys):,} key_ids are not {test_shard}'s {len(shard):,}; "
            "re-run the teacher's predict stage"
        )
    rows, labels = select(probs, share)
    write_shard(
        out,
        shard.drawings.take(rows),
        labels.astype(np.int16),
        np.asarray(shard.key_id)[rows],
        np.asarray(shard.countrycode)[rows],
        {"split": "pseudo", "teacher": str(teacher), "share": share},
    )
    confidence = probs[rows, labels].mean() if len(rows) else 0.0
    return {"rows": int(len(rows)), "of": int(len(keys)), "confidence": float(confidence)}
