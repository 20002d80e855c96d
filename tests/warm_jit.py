"""Fill numba's on-disk cache (``doodle/__pycache__``) with every kernel signature the stages
compile: the parse scanner, the renderer (train and predict, grey and 3 channels, in-memory
and memory-mapped arrays) and the sequence encoder.

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
    from doodle.dataset import member_dataset
    from doodle.render import warmup
    from doodle.shard_format import train_shard_paths
    from doodle.sharding import shard_dataset
    from doodle.synthetic import write_synthetic

    warmup()
    base = load_params(ROOT / "params.yaml").member("base")
    with tempfile.TemporaryDirectory() as tmp:
        raw, shards = Path(tmp) / "raw", Path(tmp) / "shards"
        write_synthetic(raw, train_per_class=8, test_per_class=2, seed=0, n_classes=3)
        shard_dataset(raw, shards, n_shards=2, val_size=6, seed=0, report_path=Path(tmp) / "r.json")
        paths = train_shard_paths(shards)
        for arch, channels in (("mobilenet", 1), ("mobilenet", 3), ("lstm", 1)):
            cfg = dataclasses.replace(base, arch=arch, channels=channels)
            common = dict(batch_size=4, n_classes=3)
            member_dataset(cfg, paths, training=True, augment=cfg.augment, **common)[0]
            member_dataset(cfg, [shards / "holdout.qds"], **common)[0]
            member_dataset(cfg, [shards / "test.qds"], flip=True, **common)[0]


if __name__ == "__main__":
    warm()
