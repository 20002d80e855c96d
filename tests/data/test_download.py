import csv
import json
import os
import zipfile

import pytest

from doodle.data.download import SourceError, fetch_path
from doodle.data.files import LOCATION_FILE, locate, open_raw
from doodle.data.sharding import shard_dataset


def _shard_files(raw, tmp_path, name):
    """The shard stage's output files (bytes) for ``raw``."""
    out = tmp_path / name
    shard_dataset(raw, out, 3, 20, 0, tmp_path / f"{name}.json")
    return {
        p.name: p.read_bytes()
        for p in sorted(out.iterdir())
        if p.name not in ("report.json", "skipped_rows.csv", "dataset.json")
    }


def _contents(raw):
    """Each class's and the test file's text, however the location stores them."""
    data = open_raw(raw)
    out = {}
    for word, m in data.classes.items():
        with m.open_text() as f:
            out[word] = f.read()
    with data.test.open_text() as f:
        out["<test>"] = f.read()
    return out


def test_local_folder_is_read_in_place(synthetic_raw, tmp_path):
    summary = fetch_path(synthetic_raw, tmp_path / "raw", 100, "auto")
    assert summary["classes"] == 8 and summary["read_in_place"] == str(synthetic_raw)
    # data/raw holds a pointer and the description, no data
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["dataset.json", LOCATION_FILE]
    assert _contents(tmp_path / "raw") == _contents(synthetic_raw)


def _zip(folder, dest, arcname=lambda rel: rel, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(dest, "w", compression) as zf:
        for p in sorted(folder.rglob("*.csv")):
            zf.write(p, arcname(p.relative_to(folder).as_posix()))
    return dest


def test_flat_zip_of_the_layout_streams_the_same_rows(synthetic_raw, tmp_path):
    z = _zip(synthetic_raw, tmp_path / "data.zip")
    fetch_path(z, tmp_path / "raw", 100, "auto")
    assert _contents(tmp_path / "raw") == _contents(synthetic_raw)
    assert _shard_files(tmp_path / "raw", tmp_path, "z") == _shard_files(
        synthetic_raw, tmp_path, "f"
    )
    assert not list(tmp_path.rglob("raw/**/*.csv"))  # nothing extracted


def test_kaggle_competition_zip_with_nested_train_zip(synthetic_raw, tmp_path):
    # Kaggle's archive: train_simplified.zip (class files at its root) beside the test file
    inner = _zip(synthetic_raw / "train_simplified", tmp_path / "train_simplified.zip")
    outer = tmp_path / "quickdraw-doodle-recognition.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.write(inner, "train_simplified.zip")
        zf.write(synthetic_raw / "test_simplified.csv", "test_simplified.csv")
        zf.writestr("sample_submission.csv", "key_id,word\n")
    data = locate(outer, "auto")
    assert data.solution is None and len(data.classes) == 8
    assert data.classes["stop sign"].name == f"{outer}:train_simplified.zip:stop sign.csv"
    want = _contents(synthetic_raw)
    assert _contents(outer) == want
    # nested and deflated: every class read would inflate it from the start; say how to fix
    squeezed = tmp_path / "squeezed.zip"
    with zipfile.ZipFile(squeezed, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(inner, "train_simplified.zip")
    with pytest.raises(SourceError, match="stored compressed, so it cannot be read in place"):
        fetch_path(squeezed, tmp_path / "raw", 100, "auto")


def test_train_zip_with_the_test_file_beside_it(synthetic_raw, tmp_path):
    """What the kaggle source downloads: train_simplified.zip + test_simplified.csv (or
    Kaggle's zipped test_simplified.csv.zip) in one folder."""
    folder = tmp_path / "dl"
    folder.mkdir()
    _zip(synthetic_raw / "train_simplified", folder / "train_simplified.zip")
    with zipfile.ZipFile(folder / "test_simplified.csv.zip", "w") as zf:
        zf.write(synthetic_raw / "test_simplified.csv", "test_simplified.csv")
    assert _contents(folder) == _contents(synthetic_raw)
    # the bare zip, given as the path, finds the test file beside it
    (folder / "test_simplified.csv").write_bytes(
        (synthetic_raw / "test_simplified.csv").read_bytes()
    )
    os.unlink(folder / "test_simplified.csv.zip")
    assert _contents(folder / "train_simplified.zip") == _contents(synthetic_raw)


@pytest.mark.parametrize(
    "bad, message",
    [
        ("no_train", "no train_simplified/<word>.csv class files"),
        ("no_test", "test_simplified.csv is missing"),
        ("not_zip", "not a zip file"),
    ],
)
def test_zip_without_the_layout_is_a_sentence(synthetic_raw, tmp_path, bad, message):
    z = tmp_path / "data.zip"
    if bad == "no_train":
        with zipfile.ZipFile(z, "w") as zf:
            zf.write(synthetic_raw / "test_simplified.csv", "test_simplified.csv")
            zf.writestr("other/cat.csv", "x\n")
    elif bad == "no_test":
        _zip(synthetic_raw / "train_simplified", z, lambda rel: f"train_simplified/{rel}")
    else:
        z.write_text("not a zip")
    with pytest.raises(SourceError, match=message) as err:
        fetch_path(z, tmp_path / "raw", 100, "auto")
    assert str(z) in str(err.value)
    assert not (tmp_path / "raw").exists()


def test_ndjson_folder_converted_with_a_test_split(tmp_path):
    src = tmp_path / "ndjson"
    src.mkdir()
    for word in ("cat", "hot air balloon"):
        with open(src / f"full_simplified_{word}.ndjson", "w") as f:
            for i in range(10):
                f.write(
                    json.dumps(
                        {
                            "word": word,
                            "countrycode": "US",
                            "recognized": True,
                            "timestamp": "2017-01-01 00:00:00.0",
                            "key_id": str(5_000_000_000_000_000 + i + 100 * len(word)),
                            "drawing": [[[0, 10 + i], [0, 20]]],
                        }
                    )
                    + "\n"
                )
    summary = fetch_path(src, tmp_path / "raw", 3, "auto")
    assert summary["classes"] == 2 and summary["test_rows"] == 6
    raw = tmp_path / "raw"
    with open(raw / "train_simplified" / "hot air balloon.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 7 and rows[0]["word"] == "hot air balloon"
    with open(raw / "test_solution.csv", newline="") as f:
        words = {r["word"] for r in csv.DictReader(f)}
    assert words == {"cat", "hot_air_balloon"}


def test_missing_source_is_a_sentence(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        fetch_path(tmp_path / "nope", tmp_path / "raw", 100, "auto")
    assert not (tmp_path / "raw").exists()


def test_dataset_json_describes_the_data(synthetic_raw, tmp_path):
    """The download stage records what the data is: the submit guard reads it."""
    import dataclasses
    import hashlib

    from doodle.config import load_params
    from doodle.data.download import fetch
    from tests.conftest import ROOT

    summary = fetch_path(synthetic_raw, tmp_path / "raw", 100, "auto")
    info = json.loads((tmp_path / "raw" / "dataset.json").read_text())
    test = synthetic_raw / "test_simplified.csv"
    with open(test, newline="") as f:
        n_rows = len(list(csv.DictReader(f)))
    assert info == {
        "kind": "local",
        "origin": str(synthetic_raw),
        "test_rows": n_rows,
        "test_sha256": hashlib.sha256(test.read_bytes()).hexdigest(),
        "test_labelled": True,
        "classes": 8,
    }
    assert summary["test_rows"] == n_rows
    data = load_params(ROOT / "params.yaml").data  # synthetic, as params.yaml ships
    small = dataclasses.replace(data.synthetic, classes=2, train_per_class=3, test_per_class=1)
    fetch(dataclasses.replace(data, synthetic=small), tmp_path / "syn")
    assert json.loads((tmp_path / "syn" / "dataset.json").read_text())["kind"] == "synthetic"


def test_source_fingerprint_sees_replaced_files_without_reading_them(synthetic_raw, tmp_path):
    import dataclasses
    import shutil

    from doodle.config import load_params
    from doodle.data.download import source_fingerprint
    from tests.conftest import ROOT

    data = load_params(ROOT / "params.yaml").data
    assert source_fingerprint(data) == {"source": "synthetic"}
    src = tmp_path / "src"
    shutil.copytree(synthetic_raw, src)
    local = dataclasses.replace(
        data, source="local", local=dataclasses.replace(data.local, path=str(src))
    )
    first = source_fingerprint(local)
    assert len(first["files"]) == 8 + 2  # class files, test, solution
    assert source_fingerprint(local) == first
    f = src / "train_simplified" / "circle.csv"
    f.write_text(f.read_text() + "\n")  # one byte more, same name
    assert source_fingerprint(local) != first
    kaggle = dataclasses.replace(
        data,
        source="kaggle",
        kaggle=dataclasses.replace(data.kaggle, download_dir=str(tmp_path / "dl")),
    )
    empty = source_fingerprint(kaggle)
    assert empty["files"] == [] and empty["path"].endswith("quickdraw-doodle-recognition")
    (tmp_path / "dl" / "quickdraw-doodle-recognition").mkdir(parents=True)
    (tmp_path / "dl" / "quickdraw-doodle-recognition" / "test_simplified.csv").write_text("x")
    assert len(source_fingerprint(kaggle)["files"]) == 1


def test_competition_zip_with_both_layouts(synthetic_raw, synthetic_raw_layout, tmp_path):
    """Kaggle's archive holds both train zips and both test files: auto and simplified read
    the simplified files, raw the raw ones (a deflated nested zip only blocks its layout)."""
    simp = _zip(synthetic_raw / "train_simplified", tmp_path / "train_simplified.zip")
    raw = _zip(synthetic_raw_layout / "train_raw", tmp_path / "train_raw.zip")
    outer = tmp_path / "quickdraw-doodle-recognition.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.write(simp, "train_simplified.zip")
        zf.write(raw, "train_raw.zip", compress_type=zipfile.ZIP_DEFLATED)  # not readable
        for name in ("test_simplified.csv", "test_raw.csv"):
            zf.write(synthetic_raw_layout / name, name)
    for layout in ("auto", "simplified"):
        data = locate(outer, layout)
        assert data.layout == "simplified" and data.test_raw is None
        assert data.classes["stop sign"].name.endswith("train_simplified.zip:stop sign.csv")
    with pytest.raises(SourceError, match="its train_raw.zip is stored compressed.*test_raw"):
        fetch_path(outer, tmp_path / "x", 100, "raw")
    with zipfile.ZipFile(outer, "w") as zf:  # the raw train zip stored, as Kaggle's is
        zf.write(simp, "train_simplified.zip")
        zf.write(raw, "train_raw.zip")
        for name in ("test_simplified.csv", "test_raw.csv"):
            zf.write(synthetic_raw_layout / name, name)
    summary = fetch_path(outer, tmp_path / "data_raw", 100, "raw")
    assert summary["layout"] == "raw" and summary["classes"] == 8
    where = json.loads((tmp_path / "data_raw" / LOCATION_FILE).read_text())
    assert where["layout"] == "raw" and [f["path"] for f in where["files"]] == [str(outer)]
    data = open_raw(tmp_path / "data_raw")  # what the shard stage reads
    assert data.layout == "raw" and data.test.name.endswith(":test_simplified.csv")
    assert data.test_drawings.name.endswith(":test_raw.csv")
    assert data.classes["stop sign"].name.endswith("train_raw.zip:stop sign.csv")
    info = json.loads((tmp_path / "data_raw" / "dataset.json").read_text())
    assert info["layout"] == "raw" and info["test_rows"] == 40  # test_simplified.csv's rows


def test_raw_folder_fingerprint_is_the_raw_files(synthetic_raw_layout, tmp_path):
    """A raw folder's location records the raw files (and test_simplified.csv): the other
    layout's files, if any, change nothing."""
    summary = fetch_path(synthetic_raw_layout, tmp_path / "r", 100, "auto")
    assert summary["layout"] == "raw"
    where = json.loads((tmp_path / "r" / LOCATION_FILE).read_text())
    names = sorted(os.path.relpath(f["path"], synthetic_raw_layout) for f in where["files"])
    assert names == sorted(
        ["test_raw.csv", "test_simplified.csv", "test_solution.csv"]
        + [f"train_raw/{p.name}" for p in (synthetic_raw_layout / "train_raw").glob("*.csv")]
    )


def test_kaggle_source_fetches_the_raw_files_by_name(synthetic_raw_layout, tmp_path, monkeypatch):
    import dataclasses

    from doodle.config import load_params
    from doodle.data.download import fetch
    from doodle.kaggle import api as kaggle_api
    from tests.conftest import ROOT

    asked = []

    def download_files(competition, names, folder):
        asked.append(tuple(names))
        return synthetic_raw_layout  # what the download folder then holds

    monkeypatch.setattr(kaggle_api, "download_files", download_files)
    data = load_params(ROOT / "params.yaml").data
    for layout in ("simplified", "raw"):
        cfg = dataclasses.replace(
            data, source="kaggle", kaggle=dataclasses.replace(data.kaggle, layout=layout)
        )
        if layout == "simplified":
            with pytest.raises(SourceError, match="it holds Kaggle's raw files"):
                fetch(cfg, tmp_path / layout)
        else:
            assert fetch(cfg, tmp_path / layout)["layout"] == "raw"
    assert asked == [
        ("train_simplified.zip", "test_simplified.csv"),
        ("train_raw.zip", "test_raw.csv", "test_simplified.csv"),
    ]
