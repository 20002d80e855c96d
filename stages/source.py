"""DVC stage `source` (always runs, well under a second): a fingerprint of the data source
-> data/source.json. For a local source it lists each file's name, size and modification
time (nothing is read), so the download stage re-runs when a file is replaced and
nothing re-runs when none is."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from doodle.cli import run_stage  # noqa: E402  (first: quiet start-up, environment check)
from doodle.config import load_params  # noqa: E402
from doodle.download import source_fingerprint  # noqa: E402
from doodle.fileio import write_json  # noqa: E402


def main() -> None:
    fingerprint = source_fingerprint(load_params().data)
    write_json(Path("data/source.json"), fingerprint)
    print(f"source: {fingerprint['source']}, {len(fingerprint.get('files', []))} file(s)")


if __name__ == "__main__":
    run_stage("source", main, ("data/source.json",))
