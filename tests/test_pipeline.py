"""End-to-end: the real DVC DAG on tiny params in a temporary copy of the repo."""

import csv
import json

import numpy as np
import pytest

from doodle.shards import read_classes
from doodle.submission import validate_submission
from tests.conftest import REAL_SAMPLE
from tests.pipeline_utils import dvc, make_repo, stages_run

pytestmark = pytest.mark.e2e

ALL_STAGES = ["download", "shard", "tfrecord", "train@base", "predict@base", "ensemble"]


def _test_keys(repo):
    with open(repo / "data/raw/test_simplified.csv", newline="") as f:
        return [int(r["key_id"]) for r in csv.DictReader(f)]


def _check_submission(repo, n_rows):
    keys = _test_keys(repo)
    assert len(keys) == n_rows
    classes = read_classes(repo / "data/shards")
    assert validate_submission(repo / "submission.csv", keys, classes) == []
    with open(repo / "submission.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == n_rows
    assert all(len(r["word"].split()) == 3 for r in rows)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = make_repo(tmp_path_factory.mktemp("repo"))
    out = dvc("repro", cwd=repo).stdout
    assert stages_run(out) == ALL_STAGES
    return repo


def test_repro_gives_a_valid_submission(repo):
    _check_submission(repo, 6 * 4)
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert 0.0 <= metrics["holdout_map3"] <= 1.0
    shard = json.loads((repo / "reports/shard.json").read_text())
    assert shard["classes"] == 6 and shard["skipped_total"] == 0
    assert (repo / "models/base/model.keras").is_file()
    pred = np.load(repo / "data/predictions/base/test.npz")
    assert pred["probs"].dtype == np.float16 and pred["probs"].shape == (24, 6)
    shown = dvc("metrics", "show", "--json", cwd=repo).stdout
    assert "holdout_map3" in shown


def test_second_repro_runs_nothing(repo):
    out = dvc("repro", cwd=repo).stdout
    assert stages_run(out) == []


def test_exp_run_img_size_and_arch_reruns_only_training_side(repo):
    out = dvc("exp", "run", "-S", "img_size=48", "-S", "arch=efficientnetb0", cwd=repo).stdout
    assert stages_run(out) == ["train@base", "predict@base", "ensemble"], out
    _check_submission(repo, 24)
    import keras

    model = keras.models.load_model(repo / "models/base/model.keras")
    assert model.input_shape == (None, 48, 48, 1) and "efficientnetb0" in model.name
    table = json.dumps(json.loads(dvc("exp", "show", "--json", cwd=repo).stdout))
    for key in ("holdout_map3", "img_size", "val_map3", "efficientnetb0"):
        assert key in table, key
    plots = dvc("plots", "show", "--json", cwd=repo).stdout
    assert "dvclive/base/plots/metrics" in plots and "reports/samples.png" in plots


def test_exp_run_tfrecord_input_path(repo):
    out = dvc("exp", "run", "-S", "img_size=32", "-S", "arch=mobilenetv2",
              "-S", "tfrecord.enabled=true", "-S", "tfrecord.input=tfrecord", cwd=repo).stdout
    assert stages_run(out) == ["tfrecord", "train@base", "predict@base", "ensemble"], out
    assert sorted(p.name.split("-n")[0] for p in (repo / "data/tfrecord").glob("*.tfrec")) == [
        "holdout", "test", "train-000", "train-001", "train-002", "train-003"]
    _check_submission(repo, 24)


@pytest.mark.skipif(not REAL_SAMPLE.is_dir(), reason="real sample not available")
def test_real_sample_flows_through_every_stage(tmp_path):
    repo = make_repo(tmp_path, {"data": {"source": str(REAL_SAMPLE)},
                                "shard": {"n_shards": 10, "val_size": 200}})
    out = dvc("repro", cwd=repo).stdout
    assert stages_run(out) == ALL_STAGES
    _check_submission(repo, 1695)
    assert json.loads((repo / "reports/shard.json").read_text())["classes"] == 339


def test_submit_validates_and_needs_credentials(repo, tmp_path):
    import subprocess
    import sys

    from tests.pipeline_utils import env

    ok = subprocess.run([sys.executable, "stages/submit.py", "--dry-run"], cwd=repo, env=env(),
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "is valid" in ok.stdout
    bad = repo / "bad.csv"
    lines = (repo / "submission.csv").read_text().splitlines()
    lines[3] = lines[3].rsplit(" ", 1)[0]  # row 3 now has 2 labels
    bad.write_text("\n".join(lines) + "\n")
    p = subprocess.run([sys.executable, "stages/submit.py", "--dry-run", "--file", "bad.csv"],
                       cwd=repo, env=env(), capture_output=True, text=True)
    assert p.returncode == 1 and "row 3" in p.stderr and "Traceback" not in p.stderr
    # no credentials anywhere: a sentence naming the accepted forms, nothing submitted
    clean = {k: v for k, v in env().items()
             if not k.startswith("KAGGLE") and k != "XDG_CONFIG_HOME"}
    clean["HOME"] = str(tmp_path)  # no ~/.kaggle or ~/.config/kaggle to be found
    p = subprocess.run([sys.executable, "stages/submit.py"], cwd=repo, env=clean,
                       capture_output=True, text=True)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert "KAGGLE_API_TOKEN" in p.stderr and "kaggle.json" in p.stderr
