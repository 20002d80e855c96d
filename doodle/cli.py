"""Shared wiring for the stage scripts: quiet start-up, logging, one-line summaries, and
expected errors as sentences.

Import this module first in a stage script: it silences TensorFlow's C++ start-up lines
before anything can import TensorFlow, and says how to enter the environment when the
script runs under a Python without the project's packages.
"""

from __future__ import annotations

import importlib.util
import os
import sys

# Before any TensorFlow import: hide the C++ INFO/WARNING/ERROR start-up lines (oneDNN
# notes, "failed call to cuInit" on machines without a GPU, absl's pre-init notice).
# A value the user set wins, so TF_CPP_MIN_LOG_LEVEL=0 brings them all back.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")  # newer TensorFlow logs through absl
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

_REQUIRED = ("yaml", "numpy", "tqdm", "keras")


def _require_environment() -> None:
    """Exit with the fix, not a ModuleNotFoundError, under the wrong interpreter."""
    missing = [m for m in _REQUIRED if importlib.util.find_spec(m) is None]
    if missing:
        sys.exit(
            f"error: {sys.executable} lacks the project's packages ({', '.join(missing)})."
            " Enter the environment first: `make install && source .venv/bin/activate`"
            " (dvc.yaml runs `python` from the PATH)."
        )


_require_environment()

import contextlib  # noqa: E402
import importlib  # noqa: E402
import logging  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

from doodle.errors import DoodleError  # noqa: E402
from doodle.fileio import human_bytes, tree_size  # noqa: E402

# Errors a user can cause and fix: they get one sentence, not a traceback. Anything else
# (TypeError, KeyError, AttributeError, ...) is a bug and shows its traceback.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    DoodleError,
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
)

log = logging.getLogger("doodle")


class StageFormatter(logging.Formatter):
    """Log records in the stages' own style: ``<stage>: message``, ``<stage>: warning:
    message`` and ``<stage>: error: message``, as the stages print their lines."""

    def __init__(self, stage: str):
        super().__init__("%(message)s")
        self.stage = stage

    def format(self, record: logging.LogRecord) -> str:
        level = "error: " if record.levelno >= logging.ERROR else ""
        if logging.WARNING <= record.levelno < logging.ERROR:
            level = "warning: "
        return f"{self.stage}: {level}{super().format(record)}"


def setup_logging(stage: str | None = None) -> None:
    """INFO and up to stderr, one line an event in the stage's style (:class:`StageFormatter`;
    ``stage`` defaults to the script's name); the libraries' Python-side chatter
    (TensorFlow, absl, matplotlib) only from WARNING up."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(StageFormatter(stage or Path(sys.argv[0]).stem))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    for name in ("tensorflow", "absl", "matplotlib", "h5py", "numba", "jax", "PIL"):
        logging.getLogger(name).setLevel(logging.WARNING)


# What TensorFlow writes to the C stderr while it loads, before its log level applies.
_NOISE = re.compile(
    r"All log messages before absl::InitializeLog|oneDNN custom operations"
    r"|Could not find cuda drivers|cuInit|Unable to register cu(DNN|FFT|BLAS)"
    r"|computation placer already registered|TF-TRT Warning"
)


@contextlib.contextmanager
def _filtered_stderr():
    """Capture the process's stderr (file descriptor 2, where C++ code writes) and replay
    it without the known start-up noise, so real errors still show."""
    if os.environ["TF_CPP_MIN_LOG_LEVEL"] != "3":  # the user asked to see everything
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            for line in tmp.read().decode(errors="replace").splitlines():
                if line.strip() and not _NOISE.search(line):
                    print(line, file=sys.stderr)


def preload(*modules: str) -> None:
    """Import heavy modules (``keras``, ``tensorflow``) with their start-up noise removed."""
    with _filtered_stderr():
        for m in modules:
            importlib.import_module(m)


def _sentence(e: BaseException) -> str:
    """The error as one line."""
    return " ".join(str(e).split())


def run_stage(
    name: str, main: Callable[[], object], outputs: tuple[str, ...] = (), uses_keras: bool = False
) -> None:
    """Run a stage's ``main``; print ``<stage>: done in Xs (outputs: size)`` or the error.

    ``uses_keras`` imports Keras first, quietly. Set ``DOODLE_TRACEBACK=1`` to see the full
    traceback of an expected error too.
    """
    setup_logging(name)
    t0 = time.time()
    try:
        if uses_keras:
            preload("keras")
        main()
    except KeyboardInterrupt:
        print(f"{name}: interrupted; no output was written", file=sys.stderr)
        sys.exit(130)
    except EXPECTED_ERRORS as e:
        if os.environ.get("DOODLE_TRACEBACK"):
            raise
        print(f"{name}: error: {_sentence(e)}", file=sys.stderr)
        sys.exit(1)
    sizes = ", ".join(f"{p} {human_bytes(tree_size(Path(p)))}" for p in outputs if Path(p).exists())
    print(f"{name}: done in {time.time() - t0:.1f}s" + (f" ({sizes})" if sizes else ""))
