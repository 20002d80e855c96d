"""The pushed kernel's own script run here as Kaggle runs it (tests/kaggle_standin.py:
Kaggle's folders in a temporary directory, the competition's data mounted read-only by a
link, the variables Kaggle sets, no credentials, no network): on the real sample in
../shared/data, and through the stand-in Kaggle on synthetic data in the same layout, from
`make kaggle-run` to `make kaggle-pull`, `dvc exp show`, `make submit RUN=...` and
`dvc exp apply`. Tiny settings (presets/tiny.args): the plumbing, not the skill."""

import csv
import io
import json
import os
import subprocess
import tarfile

import pytest

from doodle.kaggle import kernels as K
from doodle.kaggle.submission import check_submission
from tests.conftest import REAL_SAMPLE, ROOT
from tests.kaggle_standin import (
    COMPETITION,
    USERNAME,
    LikeKaggle,
    client_env,
    kernel_repo,
    kernel_secrets,
    make,
    run_in,
    run_script,
    secrets,
    standin_for,
    tiny_args,
)

pytestmark = pytest.mark.e2e

# What every completed run leaves in its output (besides dvclive/ and more of reports/).
OUTPUT = {
    "doodle-run.json",
    "doodle-code.tar.gz",
    "params.yaml",
    "dvc.lock",
    "submission.csv",
    "reports/metrics.json",
    "reports/holdout_submission.csv",
    "reports/samples.png",
    "dvclive/base/metrics.json",
    "models/base/model.keras",
    "data/raw/dataset.json",
    "data/shards/test.qds",
    "data/shards/classes.json",
    "data/shards/dataset.json",
    "data/predictions/members/base/test.npz",
}


def no_secrets(files: dict[str, bytes], *texts: str) -> None:
    """No credential in ``files`` (the code archive's files looked into too) nor ``texts``."""
    files = dict(files)
    if "doodle-code.tar.gz" in files:  # compressed: a grep would not see into it
        with tarfile.open(fileobj=io.BytesIO(files["doodle-code.tar.gz"])) as tar:
            files |= {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    for secret in (*secrets(), *kernel_secrets()):
        assert not any(secret.encode() in b for b in files.values()), secret
        assert not any(secret in t for t in texts), secret


def first_drawings(data, n: int = 3) -> list[str]:
    with open(data / "test_simplified.csv", newline="") as f:
        return [row["drawing"] for _, row in zip(range(n), csv.DictReader(f), strict=False)]


@pytest.mark.slow
@pytest.mark.skipif(
    not REAL_SAMPLE.is_dir(), reason="needs the real data in ../shared/data (quickdraw-real-sample)"
)
def test_the_kernels_script_runs_on_the_real_sample_as_kaggle_mounts_it(tmp_path):
    prep = K.prepare(ROOT, "tiny", [], USERNAME, "env", tmp_path / "push")
    work = tmp_path / "kaggle"
    code, lines, files = run_script(prep.script.read_text(), REAL_SAMPLE, work)
    assert code == 0, "\n".join(lines[-40:])
    assert OUTPUT <= set(files), sorted(OUTPUT - set(files))
    mount = work / "input" / COMPETITION
    assert f"doodle-kernel: the competition's data: {mount} (read in place)" in lines
    assert any("nothing to install" in ln for ln in lines)
    run = json.loads(files["doodle-run.json"])
    assert (run["status"], run["run_type"], run["error"]) == ("complete", "Batch", None)
    assert (
        run["base"]
        == subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    )
    # the data stayed where it was mounted: no copy of it and no shard of it came back
    location = json.loads(files["data/raw/location.json"])
    assert location["path"] == str(mount)
    assert sorted(n for n in files if n.startswith("data/shards/")) == [
        "data/shards/classes.json",
        "data/shards/dataset.json",
        "data/shards/test.qds",
    ]
    for drawing in first_drawings(REAL_SAMPLE):
        assert not any(drawing.encode() in b for b in files.values())
    no_secrets(files, *lines)
    # the output is what kaggle-pull and make submit read
    out = work / "working"
    assert check_submission(out / "submission.csv", out / "data" / "shards") == 1695
    metrics = json.loads(files["reports/metrics.json"])
    assert 0.0 <= metrics["holdout_map3"] <= 1.0 and metrics["rows"]["score"] > 0
    print(f"holdout MAP@3 {metrics['holdout_map3']:.5f} on {metrics['rows']['score']} rows")


def exp_rows(repo) -> dict[str, dict]:
    """``dvc exp show --json``: experiment name -> its data (params, metrics)."""
    p = run([ROOT / ".venv" / "bin" / "dvc", "exp", "show", "--json"], repo)
    rows = {}
    for baseline in json.loads(p.stdout):
        for exp in baseline.get("experiments") or []:
            for rev in exp.get("revs", []):
                rows[rev.get("name") or rev["rev"]] = rev["data"]
    return rows


def run(argv, repo, check=True) -> subprocess.CompletedProcess:
    env = dict(os.environ) | {"COLUMNS": "300"}  # a wide terminal: DVC sizes tables to it
    p = subprocess.run([str(a) for a in argv], cwd=repo, env=env, capture_output=True, text=True)
    if check:
        assert p.returncode == 0, p.stdout + p.stderr
    return p


@pytest.mark.slow
def test_push_follow_pull_show_submit_apply_on_synthetic_data(tmp_path):
    from doodle.data.synthetic import write_synthetic

    data = tmp_path / "competition"
    write_synthetic(data, train_per_class=60, test_per_class=5, seed=1, n_classes=6)
    repo = kernel_repo(tmp_path / "repo")
    with standin_for({}) as server:
        server.kernel_runner = LikeKaggle(data, tmp_path / "kaggle")
        env = client_env(server, tmp_path / "home")
        p = run_in(repo, make("kaggle-run", f"ARGS={tiny_args()}"), env)
        assert p.returncode == 0, p.stdout + p.stderr
        kernel = f"{USERNAME}/{K.default_slug(repo)}"
        name = f"kaggle-{kernel.split('/')[1]}-v1"
        assert f"kaggle-run: pushed {kernel} version 1 (NvidiaTeslaT4, stops itself at 11.5 h" in (
            p.stdout
        )
        assert f"kaggle-run: https://www.kaggle.com/code/{kernel}" in p.stdout.splitlines()
        p = run_in(repo, make("kaggle-status"), env)
        assert f"kaggle-status: {kernel}/1: queued" in p.stdout, p.stdout + p.stderr
        p = run_in(repo, make("kaggle-status", "ARGS=--wait"), env, timeout=600)
        assert p.returncode == 0, p.stdout + p.stderr
        states = [ln.split(": ")[2].split(" ")[0] for ln in p.stdout.splitlines() if "/1: " in ln]
        assert states == ["running", "complete"]
        p = run_in(repo, make("kaggle-pull"), env)
        assert p.returncode == 0, p.stdout + p.stderr
        out = p.stdout.splitlines()
        head = K.git("rev-parse", "HEAD", repo=repo)[:7]
        recorded = f"kaggle-pull: experiment {name} of commit {head}: holdout MAP@3 "
        assert any(ln.startswith(recorded) for ln in out), out
        assert any(ln.endswith("in the DVC cache; left on Kaggle: data/shards") for ln in out)
        follow = f"make show lists it; make submit RUN={name} uploads its submission.csv"
        assert f"kaggle-pull: {follow}" in out
        no_secrets({}, p.stdout, p.stderr)
        server.calls.clear()  # a second pull: nothing downloaded again, nothing recorded twice
        p = run_in(repo, make("kaggle-pull"), env)
        assert p.returncode == 0 and f"experiment {name} (already recorded)" in p.stdout
        assert [c.kind for c in server.calls if c.kind != "rpc"] == []
        assert server.unexpected == []
    folder = repo / "data" / "kaggle" / "runs" / name
    run_json = json.loads((folder / "doodle-run.json").read_text())
    assert run_json["status"] == "complete"
    files = folder.rglob("*")
    no_secrets({f.relative_to(folder).as_posix(): f.read_bytes() for f in files if f.is_file()})

    rows = exp_rows(repo)
    assert name in rows, sorted(rows)
    params = rows[name]["params"]["params.yaml"]["data"]
    assert (params["img_size"], params["data"]["source"]) == (32, "local")
    assert params["data"]["local"]["path"].endswith(f"input/{COMPETITION}")
    metrics = rows[name]["metrics"]["reports/metrics.json"]["data"]
    assert metrics == json.loads((folder / "reports" / "metrics.json").read_text())
    shown = run(["make", "--no-print-directory", "-o", ".venv/.runtime", "show"], repo)
    assert name in shown.stdout

    p = run_in(repo, make("submit", f"RUN={name}", "ARGS=--dry-run"), env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"submit: {folder.relative_to(repo)}/submission.csv is valid (30 rows)" in p.stdout

    # an upload: the guard reads the run's own test set; --force sends it, recorded as usual
    with standin_for({}) as server:
        server.expected_upload = (folder / "submission.csv").read_bytes()
        env = client_env(server, tmp_path / "home2")
        p = run_in(repo, make("submit", f"RUN={name}"), env)
        assert p.returncode != 0 and server.submissions == []
        assert "submission.csv was built from a test set of 30 rows" in p.stderr
        p = run_in(repo, make("submit", f"RUN={name}", "ARGS=--force --no-wait"), env)
        assert p.returncode == 0, p.stdout + p.stderr
        [sent] = server.submissions
    with open(repo / "reports" / "submissions.csv", newline="") as f:
        [row] = list(csv.DictReader(f))
    base = run_json["base"][:7]
    assert (row["ref"], row["revision"], row["status"]) == (str(sent["ref"]), base, "pending")
    said = f"doodle {name} ({base}): {metrics['final']}, holdout MAP@3 "
    assert row["message"].startswith(said)
    assert row["holdout_map3"] == f"{metrics['holdout_map3']:.5f}"

    # dvc exp apply brings back what came back; the shards stayed on Kaggle, and DVC says so
    p = run([ROOT / ".venv" / "bin" / "dvc", "exp", "apply", name], repo, check=False)
    assert "data/shards" in p.stderr
    assert (repo / "submission.csv").read_bytes() == (folder / "submission.csv").read_bytes()
    model = "models/base/model.keras"
    assert (repo / model).read_bytes() == (folder / model).read_bytes()
    assert (repo / "params.yaml").read_bytes() == (folder / "params.yaml").read_bytes()
    assert (repo / "dvc.lock").read_bytes() == (folder / "dvc.lock").read_bytes()


def test_a_kernel_that_errors_shows_why_on_status_and_pull(tmp_path):
    empty = tmp_path / "not-the-competition"  # what is mounted holds no test file
    empty.mkdir()
    repo = kernel_repo(tmp_path / "repo")
    with standin_for({}) as server:
        server.kernel_runner = LikeKaggle(empty, tmp_path / "kaggle")
        env = client_env(server, tmp_path / "home")
        assert run_in(repo, make("kaggle-run", f"ARGS={tiny_args()}"), env).returncode == 0
        kernel = f"{USERNAME}/{K.default_slug(repo)}/1"
        p = run_in(repo, make("kaggle-status", "ARGS=--wait"), env, timeout=300)
        assert p.returncode != 0 and "Traceback" not in p.stderr
        assert "  | doodle-kernel: error: the competition's data is not under" in p.stdout
        [error] = [ln for ln in p.stderr.splitlines() if "error:" in ln]
        assert error.startswith(
            f"kaggle-status: error: {kernel} error: the competition's data is not under "
        )
        assert f"https://www.kaggle.com/competitions/{COMPETITION}/rules" in error
        p = run_in(repo, make("kaggle-pull"), env)
        assert p.returncode != 0 and "Traceback" not in p.stderr
        [error] = [ln for ln in p.stderr.splitlines() if "error:" in ln]
        assert error.startswith(f"kaggle-pull: error: {kernel} error: the competition's data")
        assert server.unexpected == []
    folder = repo / "data" / "kaggle" / "runs" / f"kaggle-{kernel.split('/')[1]}-v1"
    assert json.loads((folder / "doodle-run.json").read_text())["status"] == "error"
    assert "the competition's data is not under" in (folder / "kernel.log").read_text()
    refs = run(["git", "for-each-ref", "refs/exps"], repo).stdout
    assert refs == ""  # nothing recorded
