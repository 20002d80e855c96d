"""Shared fixtures: tiny real-format datasets built in temp folders."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.shared_data import SHARED  # noqa: E402  (../shared/data, found upwards)

REAL_SAMPLE = SHARED / "quickdraw-real-sample"
RAW_SAMPLE = SHARED / "quickdraw-real-raw-sample"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # as the stages set it

# JAX's persistent compilation cache, one per test process and inherited by every stage it
# starts: the JAX tests compile the same tiny graphs again in each subprocess. The first
# compile of each graph is still made and tested; the repeats are read back.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _jax_cache = tempfile.mkdtemp(prefix="doodle-tests-jax-")
    atexit.register(shutil.rmtree, _jax_cache, ignore_errors=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _jax_cache
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"

from doodle.data.strokes import pack  # noqa: E402


def random_drawings(rng: np.random.Generator, n: int, max_strokes: int = 4):
    """n random drawings as lists of (xs, ys) strokes."""
    out = []
    for _ in range(n):
        strokes = []
        for _ in range(int(rng.integers(1, max_strokes + 1))):
            k = int(rng.integers(1, 8))
            strokes.append((rng.integers(0, 256, k).tolist(), rng.integers(0, 256, k).tolist()))
        out.append(strokes)
    return out


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def tiny_drawings(rng):
    raw = random_drawings(rng, 50)
    return raw, pack(raw)


@pytest.fixture(scope="session")
def synthetic_raw(tmp_path_factory) -> Path:
    """A small synthetic dataset in Kaggle's layout (8 classes)."""
    from doodle.data.synthetic import write_synthetic

    dest = tmp_path_factory.mktemp("raw")
    write_synthetic(dest, train_per_class=60, test_per_class=5, seed=1, n_classes=8)
    return dest


@pytest.fixture(scope="session")
def synthetic_shards(synthetic_raw, tmp_path_factory) -> Path:
    from doodle.data.sharding import shard_dataset

    out = tmp_path_factory.mktemp("shards") / "shards"
    shard_dataset(
        synthetic_raw, out, n_shards=4, val_size=40, seed=0, report_path=out.parent / "shard.json"
    )
    return out


pytest_plugins = ["tests.skip_policy"]


def pytest_collection_modifyitems(config, items):
    """Heaviest first, so that `make test`'s two workers (`--dist loadfile`: whole files) are
    not left with one long file running alone at the end: end-to-end files (they start
    stage subprocesses), then training ones, then the rest; the order is derived from the
    markers, not listed by hand."""

    def weight(item) -> int:
        return -2 * bool(item.get_closest_marker("e2e")) - bool(item.get_closest_marker("slow"))

    items.sort(key=weight)  # stable: the order within each group is kept


@pytest.fixture(scope="session")
def synthetic_raw_layout(synthetic_raw, tmp_path_factory) -> Path:
    """The same drawings in Kaggle's raw layout (float coordinates, times), made up."""
    from tests.pipeline_utils import to_raw_layout

    return to_raw_layout(synthetic_raw, tmp_path_factory.mktemp("raw_layout") / "raw")


@pytest.fixture(scope="session")
def timed_shards(synthetic_raw_layout, tmp_path_factory) -> Path:
    """Shards with per-point times, made from ``synthetic_raw_layout``."""
    from doodle.data.sharding import shard_dataset

    out = tmp_path_factory.mktemp("timed") / "shards"
    shard_dataset(
        synthetic_raw_layout,
        out,
        n_shards=4,
        val_size=40,
        seed=0,
        report_path=out.parent / "r.json",
    )
    return out
