"""DVC stage `train@<member>`: data/shards -> models/<member>/model.keras (+ dvclive/<member>)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from doodle.cli import run_stage  # noqa: E402  (first: quiet start-up, environment check)
from doodle.config import load_params  # noqa: E402

MEMBER = sys.argv[1] if len(sys.argv) > 1 else "base"


def main() -> None:
    params = load_params()
    cfg = params.member(MEMBER)  # checked before Keras is imported
    from doodle.training.fit import train_member

    train_member(
        cfg, params.runtime, Path("data/shards"), Path("models") / MEMBER, Path("dvclive") / MEMBER
    )


if __name__ == "__main__":
    run_stage("train", main, (f"models/{MEMBER}/model.keras",), uses_keras=True)
