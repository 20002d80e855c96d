"""DVC stage `download`: params `data` -> data/raw (Kaggle's layout + dataset.json)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from doodle.cli import run_stage  # noqa: E402  (first: quiet start-up, environment check)
from doodle.config import load_params  # noqa: E402
from doodle.download import fetch  # noqa: E402


def main() -> None:
    summary = fetch(load_params().data, Path("data/raw"))
    print("download: " + ", ".join(f"{k}={v}" for k, v in summary.items()))


if __name__ == "__main__":
    run_stage("download", main, ("data/raw",))
