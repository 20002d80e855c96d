"""DVC stage `source` (always runs, well under a second): a fingerprint of the data source
-> data/source.json. For a local source it lists each file's name, size and modification
time (nothing is read), so the download stage re-runs when a file is replaced and
nothing re-runs when none is."""

from pathlib import Path

from doodle.cli import run_stage  # first: quiet start-up, environment check
from doodle.config import load_params
from doodle.data.download import source_fingerprint
from doodle.fileio import write_json


def main() -> None:
    fingerprint = source_fingerprint(load_params().data)
    write_json(Path("data/source.json"), fingerprint)
    print(f"source: {fingerprint['source']}, {len(fingerprint.get('files', []))} file(s)")


if __name__ == "__main__":
    run_stage("source", main, ("data/source.json",))
