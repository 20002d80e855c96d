import numpy as np
import pytest

from doodle.data.shards import ShardError, open_shard, read_header, write_shard
from doodle.data.strokes import Drawings, pack


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


def test_times_round_trip_and_cost_two_bytes_a_point(tmp_path, tiny_drawings):
    raw, d = tiny_drawings
    n = len(d)
    args = (np.arange(n) % 3, 10**15 + np.arange(n), np.array(["US"] * n))
    plain = tmp_path / "plain.qds"
    write_shard(plain, d, *args)
    assert "t" not in read_header(plain)[0]["arrays"] and not open_shard(plain).has_time
    timed = tmp_path / "timed.qds"
    t = np.arange(len(d.xy), dtype=np.uint16) * 7
    write_shard(timed, Drawings(d.xy, d.stroke_offsets, d.drawing_offsets, t), *args)
    s = open_shard(timed)
    assert s.has_time and isinstance(s.drawings.t, np.memmap)
    assert np.array_equal(s.drawings.t, t) and np.array_equal(s.drawings.xy, d.xy)
    assert s.drawings.times(2) == [t[a:b].tolist() for a, b in _strokes_of(d, 2)]
    # The time array is the only difference: 2 bytes a point, padded to 64.
    extra = timed.stat().st_size - plain.stat().st_size
    assert 2 * len(d.xy) <= extra < 2 * len(d.xy) + 64 + 64
    with pytest.raises(ValueError, match="t has"):
        write_shard(
            tmp_path / "x.qds", Drawings(d.xy, d.stroke_offsets, d.drawing_offsets, t[:3]), *args
        )
    data = timed.read_bytes()
    timed.write_bytes(data[: -len(d.xy) - 64])  # half the time array: checked like the others
    with pytest.raises(ShardError, match="truncated"):
        read_header(timed)


def _strokes_of(d, i):
    return [
        (d.stroke_offsets[s], d.stroke_offsets[s + 1])
        for s in range(d.drawing_offsets[i], d.drawing_offsets[i + 1])
    ]
