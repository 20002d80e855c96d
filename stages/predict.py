"""DVC stage `predict@<member>`: model + shards -> data/predictions/<member>/{holdout,test}.npz."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from doodle.cli import run_stage  # noqa: E402
from doodle.config import load_params, member_config  # noqa: E402

MEMBER = sys.argv[1] if len(sys.argv) > 1 else "base"


def main() -> None:
    from doodle.predict import predict_member

    params = load_params()
    cfg = member_config(params, MEMBER) | params.get("predict", {})
    cfg["input"] = (params.get("tfrecord") or {}).get("input", "shards")
    predict_member(Path("models") / MEMBER / "model.keras", Path("data/shards"),
                   Path("data/predictions") / MEMBER, cfg)


if __name__ == "__main__":
    run_stage("predict", main, (f"data/predictions/{MEMBER}",))
