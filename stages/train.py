"""DVC stage `train@<member>`: data/shards -> models/<member>/model.keras (+ dvclive/<member>)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from doodle.cli import run_stage  # noqa: E402
from doodle.config import load_params, member_config  # noqa: E402

MEMBER = sys.argv[1] if len(sys.argv) > 1 else "base"


def main() -> None:
    from doodle.training import train_member  # imports Keras: after argument checks

    params = load_params()
    cfg = member_config(params, MEMBER)
    cfg["input"] = (params.get("tfrecord") or {}).get("input", "shards")
    train_member(cfg, Path("data/shards"), Path("models") / MEMBER, Path("dvclive") / MEMBER)


if __name__ == "__main__":
    run_stage("train", main, (f"models/{MEMBER}/model.keras",))
