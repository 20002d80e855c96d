"""Shared wiring for the stage scripts: one-line summaries and errors as sentences."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from doodle.fileio import human_bytes, tree_size

# Errors that describe bad input or set-up: the user gets the sentence, not a traceback.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    FileNotFoundError, ValueError, KeyError, OSError, RuntimeError, yaml.YAMLError)


def _sentence(e: BaseException) -> str:
    """The error as one line: a KeyError without its repr quotes, a bare key explained."""
    if isinstance(e, KeyError) and len(e.args) == 1 and isinstance(e.args[0], str):
        key = e.args[0]
        return key if " " in key else f"missing key {key!r} (is params.yaml complete?)"
    if isinstance(e, yaml.YAMLError):
        return "invalid YAML: " + " ".join(str(e).split())
    return " ".join(str(e).split()) if "\n" in str(e) else str(e)


def run_stage(name: str, main: Callable[[], object], outputs: tuple[str, ...] = ()) -> None:
    """Run a stage's ``main``; print ``<stage>: done in Xs (outputs: size)`` or the error.

    Set ``DOODLE_TRACEBACK=1`` to see the full traceback of an error.
    """
    t0 = time.time()
    try:
        main()
    except KeyboardInterrupt:
        print(f"{name}: interrupted; no output was written", file=sys.stderr)
        sys.exit(130)
    except EXPECTED_ERRORS as e:
        if os.environ.get("DOODLE_TRACEBACK"):
            raise
        print(f"{name}: error: {_sentence(e)}", file=sys.stderr)
        sys.exit(1)
    sizes = ", ".join(f"{p} {human_bytes(tree_size(Path(p)))}" for p in outputs
                      if Path(p).exists())
    print(f"{name}: done in {time.time() - t0:.1f}s" + (f" ({sizes})" if sizes else ""))
