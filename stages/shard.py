"""DVC stage `shard`: data/raw -> data/shards (stroke shards, holdout, test, class list)."""

from pathlib import Path

from doodle.cli import run_stage  # first: quiet start-up, environment check
from doodle.config import load_params
from doodle.data.sharding import shard_dataset


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
