import csv
import json
import zipfile

import pytest

from doodle.sources import SourceError, fetch_path, from_path


def _files(root):
    """Data files (not the dataset.json the download stage adds)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and p.name != "dataset.json")


def test_copy_kaggle_layout(synthetic_raw, tmp_path):
    summary = from_path(synthetic_raw, tmp_path / "out")
    assert summary["classes"] == 8
    assert _files(tmp_path / "out") == _files(synthetic_raw)


def test_flat_zip_of_the_layout(synthetic_raw, tmp_path):
    z = tmp_path / "data.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in synthetic_raw.rglob("*.csv"):
            zf.write(p, str(p.relative_to(synthetic_raw)))
    fetch_path(z, tmp_path / "raw", 100)
    assert _files(tmp_path / "raw") == _files(synthetic_raw)


def test_kaggle_competition_zip_with_nested_train_zip(synthetic_raw, tmp_path):
    # Kaggle's archive: train_simplified.zip (class files at its root) beside the test file
    inner = tmp_path / "train_simplified.zip"
    with zipfile.ZipFile(inner, "w") as zf:
        for p in (synthetic_raw / "train_simplified").glob("*.csv"):
            zf.write(p, p.name)
    outer = tmp_path / "quickdraw-doodle-recognition.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.write(inner, "train_simplified.zip")
        zf.write(synthetic_raw / "test_simplified.csv", "test_simplified.csv")
        zf.writestr("sample_submission.csv", "key_id,word\n")
    fetch_path(outer, tmp_path / "raw", 100)
    got = _files(tmp_path / "raw")
    assert got == [f for f in _files(synthetic_raw) if f != "test_solution.csv"]


def test_ndjson_folder_converted_with_a_test_split(tmp_path):
    src = tmp_path / "ndjson"
    src.mkdir()
    for word in ("cat", "hot air balloon"):
        with open(src / f"full_simplified_{word}.ndjson", "w") as f:
            for i in range(10):
                f.write(json.dumps({"word": word, "countrycode": "US", "recognized": True,
                                    "timestamp": "2017-01-01 00:00:00.0",
                                    "key_id": str(5_000_000_000_000_000 + i + 100 * len(word)),
                                    "drawing": [[[0, 10 + i], [0, 20]]]}) + "\n")
    summary = fetch_path(src, tmp_path / "raw", 3)
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
        fetch_path(tmp_path / "nope", tmp_path / "raw", 100)
    assert not (tmp_path / "raw").exists()


def test_dataset_json_describes_the_data(synthetic_raw, tmp_path):
    """The download stage records what the data is: the submit guard reads it."""
    import dataclasses
    import hashlib

    from doodle.config import load_params
    from doodle.sources import fetch
    from tests.conftest import ROOT

    summary = fetch_path(synthetic_raw, tmp_path / "raw", 100)
    info = json.loads((tmp_path / "raw" / "dataset.json").read_text())
    test = synthetic_raw / "test_simplified.csv"
    with open(test, newline="") as f:
        n_rows = len(list(csv.DictReader(f)))
    assert info == {"kind": "local", "origin": str(synthetic_raw), "test_rows": n_rows,
                    "test_sha256": hashlib.sha256(test.read_bytes()).hexdigest(),
                    "test_labelled": True, "classes": 8}
    assert summary["test_rows"] == n_rows
    data = load_params(ROOT / "params.yaml").data  # synthetic, as params.yaml ships
    small = dataclasses.replace(data.synthetic, classes=2, train_per_class=3, test_per_class=1)
    fetch(dataclasses.replace(data, synthetic=small), tmp_path / "syn")
    assert json.loads((tmp_path / "syn" / "dataset.json").read_text())["kind"] == "synthetic"
