"""Fill numba's on-disk cache (``doodle/__pycache__``) with every kernel signature the stages
compile: the parse scanners (simplified and raw, with the simplifier), the renderer (train and
predict, every encoding, in-memory and memory-mapped arrays) and the point encoders of the
lstm and strokegrid families (with and without times).

``tests/pipeline_utils.make_repo`` runs this once per test process (``warm_jit_cache``) and
copies the package with this cache into each temporary repo, whose stages then load the
kernels instead of compiling them.
Run by hand: ``python tests/warm_jit.py``."""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def warm() -> None:
    from doodle.config import load_params
    from doodle.data.download import fetch_path
    from doodle.data.sharding import shard_dataset
    from doodle.data.shards import train_shard_paths
    from doodle.data.synthetic import write_synthetic
    from doodle.rendering.raster import warmup
    from doodle.training.dataset import member_dataset
    from tests.pipeline_utils import to_raw_layout

    warmup()
    base = load_params(ROOT / "params.yaml").member("base")
    with tempfile.TemporaryDirectory() as tmp:
        raw, shards = Path(tmp) / "raw", Path(tmp) / "shards"
        write_synthetic(raw, train_per_class=8, test_per_class=2, seed=0, n_classes=3)
        shard_dataset(raw, shards, n_shards=2, val_size=6, seed=0, report_path=Path(tmp) / "r.json")
        timed_raw, timed = Path(tmp) / "timed_raw", Path(tmp) / "timed"
        fetch_path(to_raw_layout(raw, Path(tmp) / "raw_layout"), timed_raw, 0, "raw")
        shard_dataset(timed_raw, timed, 2, 6, 0, Path(tmp) / "r2.json")
        runs = [(shards, "mobilenet", e) for e in ("grey", "order3")]
        runs += [(shards, "lstm", "grey"), (shards, "strokegrid", "grey")]
        runs += [(timed, "mobilenet", e) for e in ("grey", "order3", "time3")]
        runs += [(timed, "lstm", "grey"), (timed, "strokegrid", "time3")]
        for folder, arch, encoding in runs:
            cfg = dataclasses.replace(base, arch=arch, encoding=encoding)
            common = dict(batch_size=4, n_classes=3)
            paths = train_shard_paths(folder)
            member_dataset(
                cfg,
                paths,
                training=True,
                seed=0,
                augment=cfg.augment,
                shuffle_buffer=8,
                **common,
            )[0]
            member_dataset(cfg, [folder / "holdout.qds"], **common)[0]
            member_dataset(cfg, [folder / "test.qds"], flip=True, **common)[0]


if __name__ == "__main__":
    warm()
