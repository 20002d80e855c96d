"""End to end on Kaggle's raw layout: the README's raw-data `dvc exp run` line, as printed
(with the real raw sample's path), in a copy of the repo on tiny params: a time3 member and a
stroke-sequence member train on drawings simplified from the raw files, with times, and the
submission holds exactly test_simplified.csv's key_ids; the same line on simplified-only data
stops in one line that says which files to use."""

import csv
import json
import subprocess
import zipfile

import pytest

from tests.conftest import RAW_SAMPLE, REAL_SAMPLE
from tests.pipeline_utils import (
    activated_env,
    check_submission,
    doc_block,
    make_repo,
    shell,
    stages_run,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not RAW_SAMPLE.is_dir(), reason="needs the real data in ../shared/data (the raw sample)"
    ),
]
MARKER = "tests/data/test_raw_data.py runs the next block"
PLACEHOLDERS = {
    "/data/quickdraw-real-raw-sample": RAW_SAMPLE,
    "/data/quickdraw-real-sample": REAL_SAMPLE,
}


def readme_lines() -> list[str]:
    """The README's raw-data lines with the placeholders replaced by the shared samples."""
    out = []
    for line in doc_block(MARKER):
        line = line.split("#")[0].strip()
        for placeholder, path in PLACEHOLDERS.items():
            line = line.replace(f"={placeholder} ", f"={path} ")
        out.append(line)
    return out


def _keys(path) -> list[int]:
    with open(path, newline="") as f:
        return [int(r["key_id"]) for r in csv.DictReader(f)]


def _input_shape(model_file) -> list:
    """The input shape saved in a .keras file (read from its config, no Keras import)."""
    with zipfile.ZipFile(model_file) as z:
        config = json.loads(z.read("config.json"))
    return config["config"]["layers"][0]["config"]["batch_shape"]


@pytest.mark.slow
def test_time3_and_sequence_members_on_the_raw_sample(tmp_path):
    line = readme_lines()[0]
    assert str(RAW_SAMPLE) in line and "train.encoding=time3" in line
    assert "data.local.layout=raw" in line and "++members.seq.arch=lstm" in line
    # tiny: 48 points a drawing for the sequence member (its LSTM dominates the run's time)
    repo = make_repo(tmp_path, {"shard": {"n_shards": 4, "val_size": 60}, "train": {"seq_len": 48}})
    out = shell(line, repo).stdout
    assert {"shard", "train@base", "train@seq", "predict@base", "predict@seq", "ensemble"} <= set(
        stages_run(out)
    )
    report = json.loads((repo / "data/shards/report.json").read_text())
    assert report["layout"] == "raw" and report["rows_read"] == 6688
    assert report["repaired"] == {"time_backwards": 5} and report["skipped_total"] == 0
    assert (repo / "data/shards/repaired_rows.csv").read_text().count("time_backwards") == 5
    # the sequence member reads the time-delta feature: 6 features a point; time3: 3 channels
    assert _input_shape(repo / "models/seq/model.keras") == [None, 48, 6]
    assert _input_shape(repo / "models/base/model.keras")[-1] == 3
    # the submission: exactly test_simplified.csv's key_ids, in its order, predicted from
    # test_raw.csv's drawings
    keys = _keys(RAW_SAMPLE / "test_simplified.csv")
    check_submission(repo, len(keys))
    assert _keys(repo / "submission.csv") == keys
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert set(metrics["members"]) == {"base", "seq"} and "test_map3" in metrics


def test_time3_on_simplified_only_data_stops_in_one_line(tmp_path):
    line = readme_lines()[1]
    assert str(REAL_SAMPLE) in line and "train.encoding=time3" in line
    repo = make_repo(tmp_path, {"shard": {"n_shards": 4, "val_size": 60}})
    p = subprocess.run(
        ["bash", "-c", line],
        cwd=repo,
        env=activated_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode != 0, p.stdout[-2000:]
    text = p.stdout + p.stderr
    assert "Traceback" not in text
    errors = [ln for ln in text.splitlines() if ln.startswith("train: error: ")]
    assert len(errors) == 1, text[-3000:]
    assert "encoding time3 draws per-point times" in errors[0]
    assert "data/shards/train-000.qds has none" in errors[0]
    assert "train_raw" in errors[0] and "data.local.layout=raw" in errors[0]
    assert not (repo / "models/base/model.keras").exists()
