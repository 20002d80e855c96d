"""Safe writes: every output goes to a temporary path and is renamed into place at the end.

A stage killed at any moment leaves the old output or none, never a partial one that DVC
would then cache.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from doodle.errors import DoodleError


class DiskSpaceError(DoodleError, OSError):
    """Not enough free disk space for an output."""


def _tmp_sibling(path: Path) -> Path:
    # Same folder, so the final rename is atomic (same filesystem); dot-prefixed and
    # unique so concurrent runs and leftover temp files never clash with real outputs.
    return path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path next to ``path``; on success rename it to ``path``, else delete it.

    Works for files and folders alike (whatever the body creates at the temp path).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A run killed earlier (SIGKILL, power loss) left its temp sibling: drop it, or every
    # interrupted run of a big stage would leave another full copy on the disk.
    for stale in path.parent.glob(f".{glob.escape(path.name)}.tmp-*"):
        remove(stale)
    tmp = _tmp_sibling(path)
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            # A folder cannot be replaced atomically by rename over it: move the old one
            # aside first, then swap, then drop the old one.
            old = _tmp_sibling(path)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        remove(tmp)


def remove(path: Path) -> None:
    """Remove a file or folder if it exists."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def check_disk_space(path: Path, needed_bytes: int, what: str) -> None:
    """Fail early, with the figures, when ``path``'s filesystem lacks ``needed_bytes``."""
    path = Path(path)
    probe = path
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if needed_bytes > free:
        raise DiskSpaceError(
            f"{what} needs about {human_bytes(needed_bytes)} in {path} but only "
            f"{human_bytes(free)} is free; free some space or point the output elsewhere"
        )


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def tree_size(path: Path) -> int:
    """Total bytes of a file or folder."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def write_json(path: Path, obj) -> None:
    """Write JSON atomically (indented, newline-terminated)."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=2) + "\n")


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    """Write a CSV (header, then rows) atomically; returns ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes (read in 1 MB blocks)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
