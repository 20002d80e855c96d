"""Loading the members' prediction files (one ``.npz`` per member and split)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from doodle.errors import InputError

META_KEYS = ("key_id", "label", "classes", "n_strokes", "n_points", "countrycode")


def load_member_predictions(paths: Sequence[Path]) -> tuple[list[np.ndarray], dict]:
    """Load each member's ``probs`` as float32 plus the metadata shared by all members.

    Raises ValueError (naming the files) when members disagree on classes, key_ids or labels.
    """
    if not paths:
        raise InputError("no prediction files given")
    probs_list: list[np.ndarray] = []
    meta: dict = {}
    first: Path | None = None
    for path in map(Path, paths):
        with np.load(path, allow_pickle=False) as z:
            missing = sorted({"probs", *META_KEYS} - set(z.files))
            if missing:
                raise InputError(f"{path}: missing arrays {missing}")
            probs = z["probs"].astype(np.float32)
            m = {key: z[key] for key in META_KEYS}
        m["classes"] = [str(c) for c in m["classes"]]
        n = len(m["key_id"])
        if probs.shape != (n, len(m["classes"])):
            raise InputError(
                f"{path}: probs shape {probs.shape} != (n_key_ids={n}, "
                f"n_classes={len(m['classes'])})"
            )
        if first is None:
            first, meta = path, m
        else:
            if m["classes"] != meta["classes"]:
                raise InputError(f"{path} and {first} have different class lists")
            if not np.array_equal(m["key_id"], meta["key_id"]):
                raise InputError(
                    f"{path} and {first} do not hold the same key_ids in the same order "
                    f"({n} vs {len(meta['key_id'])} rows); re-run the predict stages"
                )
            if not np.array_equal(m["label"], meta["label"]):
                raise InputError(f"{path} and {first} have different labels")
        probs_list.append(probs)
    return probs_list, meta


def member_names(paths: Sequence[Path]) -> list[str]:
    names: list[str] = []
    for p in paths:
        name = Path(p).parent.name or Path(p).stem
        base, i = name, 2
        while name in names:
            name, i = f"{base}_{i}", i + 1
        names.append(name)
    return names
