"""Where the shared real-drawing samples are: ``$DOODLE_SHARED_DATA``, else the first
``shared/data`` folder found going up from the repository (``<repo>/../shared/data`` for a
clone beside it, ``<repo>/../../shared/data`` for a worktree one level deeper)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    """The shared data folder (it may not exist: callers skip or fall back then)."""
    if os.environ.get("DOODLE_SHARED_DATA"):
        return Path(os.environ["DOODLE_SHARED_DATA"]).expanduser()
    for parent in ROOT.parents:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared" / "data"
    return ROOT.parent / "shared" / "data"


SHARED = shared_data()
