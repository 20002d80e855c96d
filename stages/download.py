"""DVC stage `download`: params `data` -> data/raw (Kaggle's layout + dataset.json)."""

from pathlib import Path

from doodle.cli import run_stage  # first: quiet start-up, environment check
from doodle.config import load_params
from doodle.data.download import fetch


def main() -> None:
    summary = fetch(load_params().data, Path("data/raw"))
    print("download: " + ", ".join(f"{k}={v}" for k, v in summary.items()))


if __name__ == "__main__":
    run_stage("download", main, ("data/raw",))
