"""DVC stage `shard`: data/raw -> data/shards (stroke shards, holdout, test, class list)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from doodle.cli import run_stage  # noqa: E402  (first: quiet start-up, environment check)
from doodle.config import load_params  # noqa: E402
from doodle.sharding import shard_dataset  # noqa: E402


def main() -> None:
    cfg = load_params().shard
    shard_dataset(
        Path("data/raw"),
        Path("data/shards"),
        n_shards=cfg.n_shards,
        val_size=cfg.val_size,
        seed=cfg.seed,
        report_path=Path("reports/shard.json"),
        workers=cfg.workers,
    )


if __name__ == "__main__":
    run_stage("shard", main, ("data/shards",))
