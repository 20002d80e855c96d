"""DVC stage `tfrecord`: data/shards -> data/tfrecord (GZIP TFRecords of strokes, optional).

DVC cannot make a stage conditional, so this one always runs: with ``tfrecord.enabled: false``
it writes only ``data/tfrecord/manifest.json`` (no TensorFlow import, well under a second).
Only stages that read TFRecords (``tfrecord.input: tfrecord``) depend on its output.
"""

from pathlib import Path

from doodle.cli import run_stage  # first: quiet start-up, environment check
from doodle.config import load_params


def main() -> None:
    from doodle.data.tfrecord import convert_shards, summary_line

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
