import numpy as np
import pytest

from doodle.shard_format import ShardError, open_shard, write_shard
from doodle.strokes import pack


def _write(tmp_path, raw):
    d = pack(raw)
    n = len(d)
    path = tmp_path / "train-000.qds"
    write_shard(
        path, d, np.arange(n) % 3, 10**15 + np.arange(n), np.array(["US"] * n), {"split": "train"}
    )
    return path, d


def test_round_trip_is_memory_mapped(tmp_path, tiny_drawings):
    raw, _ = tiny_drawings
    path, d = _write(tmp_path, raw)
    s = open_shard(path)
    assert isinstance(s.drawings.xy, np.memmap)
    assert len(s) == len(raw)
    assert np.array_equal(s.drawings.xy, d.xy)
    assert np.array_equal(s.drawings.stroke_offsets, d.stroke_offsets)
    assert s.label.dtype == np.int16 and s.label[4] == 1
    assert s.key_id[3] == 10**15 + 3
    assert s.countrycode[0] == b"US"
    assert s.meta == {"split": "train"}
    assert s.drawings.strokes(9) == [(list(x), list(y)) for x, y in raw[9]]
    assert not list(tmp_path.glob(".*tmp*")), "temp files left behind"


def test_truncated_shard_is_a_clear_error(tmp_path, tiny_drawings):
    path, _ = _write(tmp_path, tiny_drawings[0])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ShardError, match="truncated"):
        open_shard(path)
    path.write_bytes(b"garbage")
    with pytest.raises(ShardError, match="not a shard"):
        open_shard(path)


def test_empty_shard(tmp_path):
    path = tmp_path / "e.qds"
    write_shard(path, pack([]), np.zeros(0), np.zeros(0), np.zeros(0, "S2"))
    assert len(open_shard(path)) == 0


def test_length_mismatch_rejected(tmp_path, tiny_drawings):
    with pytest.raises(ValueError, match="label"):
        write_shard(
            tmp_path / "x.qds", tiny_drawings[1], np.zeros(3), np.zeros(50), np.zeros(50, "S2")
        )
