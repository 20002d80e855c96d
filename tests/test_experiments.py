"""The README's experiment loop, typed as printed in an activated environment, in a
temporary copy of the repo on tiny params: every experiment keeps its params and scores,
and `dvc plots diff` draws two experiments' curves; the queued sweep runs two at a time."""

import csv
import json
import threading

import pytest

from tests.pipeline_utils import WATCH, doc_block, dvc, make_repo, shell, stages_run

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A repo with its data stages run (download, shard): the README's lines then train.
    (A full baseline `dvc repro` would cost another training run and prove nothing more:
    tests/test_pipeline.py runs the whole pipeline and its re-run rules.)"""
    # a 120-row holdout and a few steps at a high learning rate: different params give
    # different headline scores. No step checkpoints (resume is tested in test_training.py):
    # each costs a model save.
    repo = make_repo(
        tmp_path_factory.mktemp("exprepo"),
        {
            "data": {"synthetic": {"train_per_class": 100}},
            "shard": {"val_size": 120},
            "train": {"steps_per_epoch": 6, "learning_rate": 0.01, "warmup_epochs": 0.0},
            "runtime": {"checkpoint_every": 100},
        },
    )
    shell("dvc repro shard", repo)
    return repo


def _run_watching_queue(line, repo) -> tuple[str, int]:
    """Run ``line``; also return how many queue workspaces (``.dvc/tmp/exps/tmp*``: one per
    running queued experiment) existed at once, at most."""
    peak, stop = 0, threading.Event()

    def watch():
        nonlocal peak
        while not stop.wait(0.5):
            peak = max(peak, len(list((repo / ".dvc/tmp/exps").glob("tmp*"))))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        return shell(line, repo).stdout, peak
    finally:
        stop.set()
        watcher.join()


def test_readme_exp_lines_as_typed(repo, tmp_path):
    """The README's dvc lines, typed in an activated shell; every experiment row keeps its
    params and scores, and `dvc plots diff` draws two experiments' curves."""
    lines = doc_block("runs the dvc lines of the next block")
    assert lines[0] == "dvc exp run -S img_size=128"
    outputs, peaks = [], []
    for line in lines:
        out, peak = _run_watching_queue(line, repo)
        outputs.append(out)
        peaks.append(peak)
    # the sweep's two experiments ran at once, each in its own temporary copy of the repo
    assert "--run-all -j 2" in lines[2] and peaks[2] == 2, peaks
    # the data stages are up to date: never re-run by a change of img_size
    assert stages_run(outputs[0]) == [
        WATCH,
        "tfrecord",
        "train@base",
        "predict@base",
        "ensemble",
    ], outputs[0]

    table = json.loads(dvc("exp", "show", "--json", cwd=repo).stdout)
    rows = [r["data"] for exp in table[1]["experiments"] for r in exp["revs"]]
    assert len(rows) == 3  # a single run and a 2-point sweep
    for row in rows:
        metrics = row["metrics"]["reports/metrics.json"]["data"]
        # the headline is the submitted method's figure on the held-apart rows
        assert metrics["holdout_map3"] == metrics["holdout"][metrics["final"]], metrics
        live = row["metrics"]["dvclive/base/metrics.json"]["data"]
        # the input wait of every experiment's run, beside images_per_s
        assert {"val_map3", "input_wait", "step_time_s"} <= set(live), live
    sizes = sorted(r["params"]["params.yaml"]["data"]["img_size"] for r in rows)
    assert sizes == [48, 96, 128]
    scores = {r["metrics"]["reports/metrics.json"]["data"]["holdout_map3"] for r in rows}
    assert len(scores) >= 2  # different params, different scores
    # the README's show line sorts by the headline (as CSV here, to read it back)
    shown = list(csv.DictReader(shell(lines[-1] + " --csv", repo).stdout.splitlines()))
    exp_scores = [float(r["holdout_map3"]) for r in shown if r["typ"].startswith("branch")]
    assert len(exp_scores) == 3 and exp_scores == sorted(exp_scores, reverse=True)

    names = [exp["name"] for exp in table[1]["experiments"]][:2]
    out = tmp_path / "plots"
    shell(f"dvc plots diff {names[0]} {names[1]} -o {out}", repo)
    html = (out / "index.html").read_text()
    assert "dvclive/base/plots/metrics" in html and names[0] in html and names[1] in html
