"""End-to-end: the real DVC DAG on tiny params in a temporary copy of the repo, driven the way
a user drives it (the README's own command lines, in an activated environment)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from tests.pipeline_utils import (
    ALL_STAGES,
    WATCH,
    check_headline,
    check_submission,
    dvc,
    env,
    make_repo,
    stages_run,
    status,
)

pytestmark = pytest.mark.e2e


def _set(repo, dotted: str, value) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    *parents, last = dotted.split(".")
    node = params
    for p in parents:
        node = node[p]
    node[last] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = make_repo(tmp_path_factory.mktemp("repo"))
    out = dvc("repro", cwd=repo).stdout
    assert stages_run(out) == ALL_STAGES
    return repo


def test_repro_gives_a_valid_submission_and_an_honest_headline(repo):
    check_submission(repo, 6 * 4)
    m = check_headline(repo)
    assert m["rows"]["fit"] + m["rows"]["score"] == 40  # shard.val_size of presets/tiny.args
    from doodle.summary import summary

    assert f"holdout MAP@3 {m['holdout_map3']:.4f}" in summary(repo)  # make run's last lines
    # metrics stay small: the shard stage's per-file counts live in data/shards/report.json
    shard = json.loads((repo / "reports/shard.json").read_text())
    assert shard["classes"] == 6 and shard["skipped_total"] == 0 and "files" not in shard
    assert "files" in json.loads((repo / "data/shards/report.json").read_text())
    shown = json.loads(dvc("metrics", "show", "--json", cwd=repo).stdout)
    files = next(iter(shown.values()))["data"]
    assert set(files) == {"reports/shard.json", "reports/metrics.json", "dvclive/base/metrics.json"}
    pred = np.load(repo / "data/predictions/members/base/test.npz")
    assert pred["probs"].dtype == np.float16 and pred["probs"].shape == (24, 6)
    info = json.loads((repo / "data/shards/dataset.json").read_text())
    assert info["kind"] == "synthetic" and info["test_rows"] == 24


def test_second_repro_runs_nothing(repo):
    out = dvc("repro", cwd=repo).stdout
    assert stages_run(out) == [WATCH]  # the fingerprint alone, unchanged: nothing follows


@pytest.mark.parametrize(
    "key, value",
    [
        ("runtime.workers", 2),
        ("runtime.verbose", 0),
        ("runtime.eval_batch_size", 7),
        ("runtime.predict_batch_size", 9),
        ("runtime.checkpoint_every", 1),
        ("runtime.tfrecord_workers", 1),
        ("runtime.eager", False),
        ("runtime.processes", 2),
        ("shard.workers", 1),
        ("data.kaggle.competition", "another"),  # not the active source
        ("data.local.ndjson_test_per_class", 3),
    ],
)
def test_runtime_only_knobs_rerun_nothing(repo, key, value):
    before = (repo / "params.yaml").read_text()
    try:
        _set(repo, key, value)
        assert status(repo) == {}, key
    finally:
        (repo / "params.yaml").write_text(before)


def test_tfrecord_toggle_reruns_only_the_tfrecord_stage(repo):
    before = (repo / "params.yaml").read_text()
    try:
        _set(repo, "tfrecord.enabled", True)
        assert list(status(repo)) == ["tfrecord"]
    finally:
        (repo / "params.yaml").write_text(before)


def test_submit_refuses_synthetic_data_without_network(repo, tmp_path):
    def submit(*args, home=None):
        e = env()
        if home:  # no credentials anywhere: a call to Kaggle would fail on them
            e = {k: v for k, v in e.items() if not k.startswith("KAGGLE")} | {"HOME": home}
        return subprocess.run(
            [sys.executable, "-m", "stages.submit", *args],
            cwd=repo,
            env=e,
            capture_output=True,
            text=True,
            timeout=120,
        )

    ok = submit("--dry-run")
    assert ok.returncode == 0 and "is valid (24 rows)" in ok.stdout
    p = submit(home=str(tmp_path))
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines() == [
        "submit: error: submission.csv was built from synthetic data (data.source: "
        "synthetic); Kaggle would score it as noise. Nothing was sent; --force uploads "
        "anyway."
    ]
    # --force gets past the guard, to the credentials check (and no further, offline)
    p = submit("--force", home=str(tmp_path))
    assert p.returncode == 1 and "KAGGLE_API_TOKEN" in p.stderr and "Traceback" not in p.stderr
    # a broken submission is named by row, nothing is sent
    lines = (repo / "submission.csv").read_text().splitlines()
    lines[3] = lines[3].rsplit(" ", 1)[0]  # row 3 now has 2 labels
    (repo / "bad.csv").write_text("\n".join(lines) + "\n")
    p = submit("--dry-run", "--file", "bad.csv")
    assert p.returncode == 1 and "row 3" in p.stderr and "Traceback" not in p.stderr


def test_exp_run_tfrecord_input(repo):
    """One experiment: the image member reads TFRecords through tf.data (members of the
    stroke-sequence family read the shards: tests/test_jax_pipeline.py, test_raw_data.py)."""
    out = dvc(
        "exp",
        "run",
        "-S",
        "img_size=32",
        "-S",
        "tfrecord.enabled=true",
        "-S",
        "tfrecord.input=tfrecord",
        cwd=repo,
    ).stdout
    assert sorted(stages_run(out)) == sorted(
        [WATCH, "tfrecord", "train@base", "predict@base", "ensemble"]
    ), out
    assert sorted(p.name.split("-n")[0] for p in (repo / "data/tfrecord").glob("*.tfrec")) == [
        "holdout",
        "test",
        "train-000",
        "train-001",
        "train-002",
        "train-003",
    ]
    assert "train: base reads data/tfrecord through tf.data" in out
    # the input wait is measured on the tf.data path too (the TFRecord renderer stamps)
    assert out.count("; input wait ") == 1 and "input wait not measured" not in out, out
    live = json.loads((repo / "dvclive/base/metrics.json").read_text())
    assert 0 <= live["input_wait"] < 1 and live["step_time_s"] > 0, live
    check_submission(repo, 24)
    metrics = check_headline(repo)
    assert sorted(metrics["members"]) == ["base"]


def test_a_renderer_edit_reruns_no_data_stage_and_a_sharding_edit_does(repo):
    """dvc.yaml's deps follow what each stage runs: the renderer belongs to training and the
    reports, never to download or shard (last in this file: the edit costs the copy's
    compiled renderer)."""
    for module in ("doodle/rendering/raster.py", "doodle/data/sharding.py"):
        path = repo / module
        text = path.read_text()
        path.write_text(text + "\n# an edit\n")
        try:
            stale = status(repo)
        finally:
            path.write_text(text)
        assert "download" not in stale, stale
        if module == "doodle/rendering/raster.py":
            assert "shard" not in stale and {"train@base", "ensemble"} <= set(stale), stale
        else:
            assert "shard" in stale, stale
    assert status(repo) == {}
