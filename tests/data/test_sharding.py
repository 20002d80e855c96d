import csv
import json

import numpy as np
import pytest

from doodle.data.sharding import ShardStageError, shard_dataset, shard_of
from doodle.data.shards import open_shard, read_classes, train_shard_paths
from tests.conftest import REAL_SAMPLE


def test_shard_of_is_the_source_documents_rule():
    keys = np.array([5_123_456_789_012_345, 4_000_000_070_000_000, 6_700_000_009_999_999])
    assert shard_of(keys, 100).tolist() == [(int(k) // 10**7) % 100 for k in keys]
    assert shard_of(keys, 100).tolist() == [78, 7, 0]


def test_every_drawing_lands_in_its_shard(synthetic_shards, synthetic_raw):
    classes = read_classes(synthetic_shards)
    assert classes == sorted(p.stem for p in (synthetic_raw / "train_simplified").glob("*.csv"))
    paths = train_shard_paths(synthetic_shards)
    assert len(paths) == 4
    for i, p in enumerate(paths):
        s = open_shard(p)
        assert (shard_of(s.key_id, 4) == i).all()
    hold = open_shard(synthetic_shards / "holdout.qds")
    assert len(hold) == 40 and (shard_of(hold.key_id, 4) == 3).all()


def test_rows_preserved_and_drawings_intact(synthetic_shards, synthetic_raw):
    # Every kept CSV row is in exactly one shard, with its exact strokes and label.
    rows = {}
    for f in (synthetic_raw / "train_simplified").glob("*.csv"):
        with open(f, newline="") as fh:
            for r in csv.DictReader(fh):
                rows[int(r["key_id"])] = (r["word"], json.loads(r["drawing"]))
    classes = read_classes(synthetic_shards)
    seen = 0
    for p in train_shard_paths(synthetic_shards) + [synthetic_shards / "holdout.qds"]:
        s = open_shard(p)
        for i in range(0, len(s), 7):
            word, drawing = rows[int(s.key_id[i])]
            assert classes[s.label[i]] == word
            assert [[list(x), list(y)] for x, y in s.drawings.strokes(i)] == drawing
        seen += len(s)
    assert seen == len(rows)
    report = json.loads((synthetic_shards.parent / "shard.json").read_text())
    assert report["train_rows"] + report["holdout_rows"] == len(rows)
    assert report["skipped_total"] == 0


def test_shards_are_shuffled_and_mixed(synthetic_shards):
    s = open_shard(train_shard_paths(synthetic_shards)[0])
    # every class present, and not sorted by class (the class files were read in order)
    assert len(np.unique(s.label)) == len(read_classes(synthetic_shards))
    assert (np.diff(s.label.astype(int)) != 0).mean() > 0.5


def test_deterministic_for_a_seed(synthetic_raw, tmp_path):
    a = shard_dataset(synthetic_raw, tmp_path / "a", 4, 40, 3, tmp_path / "a.json")
    b = shard_dataset(synthetic_raw, tmp_path / "b", 4, 40, 3, tmp_path / "b.json")
    assert a["train_rows"] == b["train_rows"]
    for name in ("train-001.qds", "holdout.qds", "test.qds"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    c = shard_dataset(synthetic_raw, tmp_path / "c", 4, 40, 4, tmp_path / "c.json")
    assert c["train_rows"] == a["train_rows"]
    assert (tmp_path / "c" / "train-001.qds").read_bytes() != (
        tmp_path / "a" / "train-001.qds"
    ).read_bytes()


def test_test_set_keeps_order_and_labels(synthetic_shards, synthetic_raw):
    t = open_shard(synthetic_shards / "test.qds")
    with open(synthetic_raw / "test_simplified.csv", newline="") as f:
        keys = [int(r["key_id"]) for r in csv.DictReader(f)]
    assert t.key_id.tolist() == keys
    assert (t.label >= 0).all()


def test_bad_rows_counted_and_listed(tmp_path, synthetic_raw):
    import shutil

    raw = tmp_path / "raw"
    shutil.copytree(synthetic_raw, raw)
    f = sorted((raw / "train_simplified").glob("*.csv"))[0]
    word = f.stem
    with open(f, "a", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["US", "[[[1,2],[3]]]", 4123456789012345, True, "", word])
        w.writerow(["US", "not json", 4123456789012346, True, "", word])
        w.writerow(["US", "[[[1,2],[3,4]]]", "abc", True, "", word])
        w.writerow(["US", "[[[1,2],[3,4]]]", 4123456789012347, True, "", "no such class"])
    report = shard_dataset(raw, tmp_path / "s", 4, 40, 0, tmp_path / "r.json")
    assert report["skipped"] == {
        "xy_length_mismatch": 1,
        "bad_json": 1,
        "bad_key_id": 1,
        "unknown_class": 1,
    }
    with open(tmp_path / "s" / "skipped_rows.csv", newline="") as fh:
        listed = list(csv.DictReader(fh))
    assert [(r["reason"], r["row"]) for r in listed] == [
        ("xy_length_mismatch", "61"),
        ("bad_json", "62"),
        ("bad_key_id", "63"),
        ("unknown_class", "64"),
    ]
    assert all(r["file"] == str(f) for r in listed)


def test_nothing_usable_fails(tmp_path):
    (tmp_path / "raw" / "train_simplified").mkdir(parents=True)
    (tmp_path / "raw" / "train_simplified" / "cat.csv").write_text(
        "countrycode,drawing,key_id,recognized,timestamp,word\nUS,[],4123456789012345,True,,cat\n"
    )
    (tmp_path / "raw" / "test_simplified.csv").write_text("key_id,countrycode,drawing\n")
    with pytest.raises(ShardStageError, match="no usable"):
        shard_dataset(tmp_path / "raw", tmp_path / "s", 2, 10, 0, tmp_path / "r.json")
    assert not (tmp_path / "s").exists(), "a failed stage must leave no output"


@pytest.mark.skipif(not REAL_SAMPLE.is_dir(), reason="needs the real data in ../shared/data")
def test_real_sample(tmp_path):
    report = shard_dataset(REAL_SAMPLE, tmp_path / "s", 20, 100, 0, tmp_path / "r.json")
    assert report["classes"] == 339
    assert report["rows_read"] == 5085 and report["skipped_total"] == 0
    assert report["test_rows"] == 1695 and report["test_labelled"] == 1695


def _messy_copy(raw, dest):
    """``raw`` with a bad row, a repeated key_id (across two classes) and a chunk boundary
    in the middle of a class file, so every code path of the parallel stage is taken."""
    import shutil

    shutil.copytree(raw, dest)
    files = sorted((dest / "train_simplified").glob("*.csv"))
    with open(files[0], newline="") as f:
        first = list(csv.DictReader(f))[0]
    with open(files[1], "a", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [first["countrycode"], first["drawing"], first["key_id"], "True", "", files[1].stem]
        )  # duplicate key_id
        w.writerow(["US", "[[[1,2],[3]]]", "5000000000000001", "True", "", files[1].stem])
    return dest


@pytest.mark.parametrize("source", ["folder", "zip"])
def test_worker_count_never_changes_a_byte(synthetic_raw, tmp_path, monkeypatch, source):
    """1 and 2 worker processes write byte-identical output (shards, holdout, test, report,
    skipped rows), from a folder or streamed out of a zip."""
    import zipfile

    import doodle.data.sharding

    raw = _messy_copy(synthetic_raw, tmp_path / "raw")
    if source == "zip":
        z = tmp_path / "data.zip"
        with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in sorted(raw.rglob("*.csv")):
                zf.write(p, p.relative_to(raw).as_posix())
        raw = z
    # In-process (1 worker): several chunks per class file; spawned workers keep the
    # default. Chunking must not show in the output either.
    monkeypatch.setattr(doodle.data.sharding, "CHUNK_ROWS", 25)
    outs = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        report = shard_dataset(raw, out, 4, 40, 0, tmp_path / f"w{workers}.json", workers=workers)
        outs[workers] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    assert report["skipped"] == {"duplicate_key_id": 1, "xy_length_mismatch": 1}
    assert sorted(outs[1]) == sorted(outs[2]) and "report.json" in outs[1]
    for name in outs[1]:
        assert outs[1][name] == outs[2][name], name
    assert not list(tmp_path.glob("w*/.spill"))


def _csv_rows(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_raw_layout_shards_hold_simplified_drawings_and_their_times(
    synthetic_raw_layout, timed_shards
):
    from doodle.data.rawcells import parse_raw_many

    rows = {}
    for f in (synthetic_raw_layout / "train_raw").glob("*.csv"):
        for r in _csv_rows(f):
            rows[int(r["key_id"])] = r["drawing"]
    report = json.loads((timed_shards / "report.json").read_text())
    assert report["layout"] == "raw" and report["train_rows"] + report["holdout_rows"] == len(rows)
    for p in train_shard_paths(timed_shards) + [timed_shards / "holdout.qds"]:
        s = open_shard(p)
        assert s.has_time
        idx = list(range(0, len(s), 9))
        want = parse_raw_many([rows[int(s.key_id[i])] for i in idx]).drawings
        for k, i in enumerate(idx):
            assert s.drawings.strokes(i) == want.strokes(k)
            assert s.drawings.times(i) == want.times(k)
            flat = [t for ts in s.drawings.times(i) for t in ts]
            assert flat[0] == 0 and (np.diff(flat) >= 0).all()


def test_raw_test_drawings_follow_test_simplified_order(synthetic_raw_layout, tmp_path):
    """test.qds holds test_simplified.csv's key_ids in its order, each with the drawing of
    test_raw.csv that has its key_id (the raw file shuffled here)."""
    import random
    import shutil

    from doodle.data.rawcells import parse_raw_many

    raw = shutil.copytree(synthetic_raw_layout, tmp_path / "raw")
    rows = _csv_rows(raw / "test_raw.csv")
    random.Random(1).shuffle(rows)
    with open(raw / "test_raw.csv", "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    shard_dataset(raw, tmp_path / "s", 2, 10, 0, tmp_path / "r.json")
    test = open_shard(tmp_path / "s" / "test.qds")
    keys = [int(r["key_id"]) for r in _csv_rows(raw / "test_simplified.csv")]
    assert test.key_id.tolist() == keys and test.has_time
    by_key = {int(r["key_id"]): r["drawing"] for r in rows}
    want = parse_raw_many([by_key[k] for k in keys]).drawings
    assert all(test.drawings.strokes(i) == want.strokes(i) for i in range(len(keys)))
    labels = {int(r["key_id"]): r["word"] for r in _csv_rows(raw / "test_solution.csv")}
    classes = read_classes(tmp_path / "s")
    assert [classes[c].replace(" ", "_") for c in test.label] == [labels[k] for k in keys]


def test_raw_worker_count_never_changes_a_byte(synthetic_raw_layout, tmp_path, monkeypatch):
    import doodle.data.sharding

    monkeypatch.setattr(doodle.data.sharding, "CHUNK_BYTES", 4096)  # several chunks per file
    outs = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        shard_dataset(synthetic_raw_layout, out, 4, 40, 0, tmp_path / "r.json", workers=workers)
        outs[workers] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    assert "repaired_rows.csv" in outs[1] and sorted(outs[1]) == sorted(outs[2])
    for name in outs[1]:
        assert outs[1][name] == outs[2][name], name
