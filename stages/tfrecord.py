"""DVC stage `tfrecord`: data/shards -> data/tfrecord (GZIP TFRecords of strokes, optional).

DVC cannot make a stage conditional, so this one always runs: with ``tfrecord.enabled: false``
it writes only ``data/tfrecord/manifest.json`` (no TensorFlow import, well under a second).
Only stages that read TFRecords (``tfrecord.input: tfrecord``) depend on its output.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from doodle.cli import run_stage  # noqa: E402  (first: quiet start-up, environment check)
from doodle.config import load_params  # noqa: E402


def main() -> None:
    from doodle.tfrecord import convert_shards, summary_line

    params = load_params()
    out = Path("data/tfrecord")
    manifest = convert_shards(
        Path("data/shards"),
        out,
        enabled=params.tfrecord.enabled,
        workers=params.runtime.tfrecord_workers,
    )
    print(summary_line(manifest, out))


if __name__ == "__main__":
    run_stage("tfrecord", main, ("data/tfrecord",))
