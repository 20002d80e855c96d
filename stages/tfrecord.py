"""DVC stage `tfrecord`: data/shards -> data/tfrecords (GZIP TFRecords of strokes, optional).

DVC cannot make a stage conditional, so this one always runs: with ``tfrecord.enabled: false``
it writes only ``data/tfrecords/manifest.json`` (no TensorFlow import, well under a second).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from doodle.cli import run_stage  # noqa: E402
from doodle.config import load_params  # noqa: E402


def main() -> None:
    from doodle.tfrecord import convert_shards, summary_line

    cfg = load_params().get("tfrecord") or {}
    out = Path("data/tfrecords")
    manifest = convert_shards(Path("data/shards"), out, enabled=bool(cfg.get("enabled", False)),
                              workers=int(cfg.get("workers", 1)))
    print(summary_line(manifest, out))


if __name__ == "__main__":
    run_stage("tfrecord", main, ("data/tfrecords",))
