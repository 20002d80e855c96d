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
# A value the user set wins, so TF_CPP_MIN_LOG_LEVEL=0 brings them all back. On a machine
# whose driver lists a GPU, the train and predict stages lower it again before the backend
# loads (doodle.gpu.guard): there the CUDA lines may say why the GPU is idle.
USER_LOG_LEVEL = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
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
def captured_stderr():
    """Capture the process's stderr (file descriptor 2, where C++ code writes) while the
    block runs; the list it yields holds the captured lines afterwards (not replayed)."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines += [ln for ln in tmp.read().decode(errors="replace").splitlines() if ln.strip()]


def replay(lines: list[str], filtered: bool = True) -> None:
    """Write captured lines to stderr; ``filtered``: without the known start-up noise, so
    that real errors still show."""
    for line in lines:
        if not (filtered and _NOISE.search(line)):
            print(line, file=sys.stderr)


def quiet() -> bool:
    """Whether start-up noise is filtered (not when the user set TF_CPP_MIN_LOG_LEVEL)."""
    return USER_LOG_LEVEL is None or USER_LOG_LEVEL == "3"


def preload(*modules: str) -> None:
    """Import heavy modules (``keras``, ``tensorflow``) with their start-up noise removed."""
    if not quiet():  # the user asked to see everything
        for m in modules:
            importlib.import_module(m)
        return
    try:
        with captured_stderr() as lines:
            for m in modules:
                importlib.import_module(m)
    finally:
        replay(lines)


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
