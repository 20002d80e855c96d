"""TFRecord encoding benchmark: the hand-rolled protobuf encoder
(``doodle.data.tfrecord.encode_examples``) against building ``tf.train.Example`` objects, on the
same drawings, plus the GZIP write both share -- does the encoder matter on the full data?

Both produce the same ``tf.train.Example`` records (checked here, and in
``tests/test_tfrecord.py::test_encoding_is_a_tf_example``).
Each variant runs ``--rounds`` times over every drawing of the shards; the best round
counts (other load on the machine only slows a round down). One core.

    python benchmarks/bench_encode.py                      # the real sample, sharded
    python benchmarks/bench_encode.py --shards data/shards

Writes ``reports/bench_encode.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.shared_data import SHARED  # noqa: E402
from doodle.cli import preload  # noqa: E402  (quiet TensorFlow start-up)

FULL_DRAWINGS = 49_707_579 + 112_199  # Kaggle's train rows + test rows
SAMPLE = SHARED / "quickdraw-real-sample"


def tf_examples(shard) -> list[bytes]:
    """The obvious way: one ``tf.train.Example`` object per drawing, serialized."""
    import numpy as np
    import tensorflow as tf

    d, out = shard.drawings, []
    feature, bl, il = tf.train.Feature, tf.train.BytesList, tf.train.Int64List
    so, do = np.asarray(d.stroke_offsets), np.asarray(d.drawing_offsets)
    xy = np.asarray(d.xy)
    for i in range(len(shard)):
        s0, s1 = do[i], do[i + 1]
        ex = tf.train.Example(
            features=tf.train.Features(
                feature={
                    "xy": feature(bytes_list=bl(value=[xy[so[s0] : so[s1]].tobytes()])),
                    "stroke_lengths": feature(
                        int64_list=il(value=np.diff(so[s0 : s1 + 1]).tolist())
                    ),
                    "label": feature(int64_list=il(value=[int(shard.label[i])])),
                    "key_id": feature(int64_list=il(value=[int(shard.key_id[i])])),
                    "countrycode": feature(bytes_list=bl(value=[bytes(shard.countrycode[i])])),
                }
            )
        )
        out.append(ex.SerializeToString())
    return out


def ours(shard) -> list[bytes]:
    from doodle.data.tfrecord import encode_examples

    return encode_examples(shard.drawings, shard.label, shard.key_id, shard.countrycode)


def gzip_write(records: list[bytes], path: Path) -> None:
    import tensorflow as tf

    opts = tf.io.TFRecordOptions(compression_type="GZIP")
    with tf.io.TFRecordWriter(str(path), opts) as w:
        for r in records:
            w.write(r)


def best_seconds(fn, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--shards",
        type=Path,
        default=None,
        help="a shard folder (default: the real sample, sharded into a temp folder)",
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "bench_encode.json")
    args = ap.parse_args(argv)
    preload("tensorflow")
    from doodle.data.shards import open_shard, train_shard_paths

    with tempfile.TemporaryDirectory() as tmp:
        shard_dir = args.shards
        if shard_dir is None:
            from doodle.data.sharding import shard_dataset

            shard_dir = Path(tmp) / "shards"
            shard_dataset(
                SAMPLE,
                shard_dir,
                n_shards=1,
                val_size=0,
                seed=0,
                report_path=Path(tmp) / "report.json",
            )
        shards = [open_shard(p) for p in train_shard_paths(shard_dir)]
        n = sum(len(s) for s in shards)
        records = [r for s in shards for r in ours(s)]
        import tensorflow as tf

        theirs = [r for s in shards for r in tf_examples(s)]
        parse = tf.train.Example.FromString  # map entries may come in another byte order
        assert all(parse(a) == parse(b) for a, b in zip(records, theirs, strict=True))
        t_ours = best_seconds(lambda: [ours(s) for s in shards], args.rounds)
        t_tf = best_seconds(lambda: [tf_examples(s) for s in shards], args.rounds)
        t_write = best_seconds(lambda: gzip_write(records, Path(tmp) / "x.tfrec"), args.rounds)
    res = {
        "drawings": n,
        "ours_per_s": round(n / t_ours),
        "tf_example_per_s": round(n / t_tf),
        "gzip_write_per_s": round(n / t_write),
        "encode_speedup": round(t_tf / t_ours, 2),
        "conversion_speedup": round((t_tf + t_write) / (t_ours + t_write), 2),
    }
    for name, t in (("ours", t_ours), ("tf_example", t_tf)):
        # one core, encode + GZIP write, the whole competition: what the encoder saves
        res[f"full_data_minutes_one_core_{name}"] = round(FULL_DRAWINGS * (t + t_write) / n / 60)
    print(json.dumps(res, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    main()
