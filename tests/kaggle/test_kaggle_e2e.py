"""End to end with the installed kaggle client and the stand-in Kaggle on 127.0.0.1
(tests/kaggle_standin.py): the download stage (killed mid-transfer, then resumed, then
reusing its cache), then `make submit` (upload, wait, public score beside the holdout,
the record) and `make submissions`, and `make submit`'s one-line errors."""

import csv
import subprocess
import sys
import time

import pytest

from doodle.kaggle.submissions import COLUMNS, file_digest
from tests.kaggle_standin import (
    COMPETITION,
    SUBMITTED,
    TEST_ROWS,
    client_env,
    competition_files,
    kaggle_repo,
    make,
    prepare_submission,
    run_in,
    secrets,
    standin_for,
)

pytestmark = pytest.mark.e2e

DOWNLOAD = [sys.executable, "-m", "stages.download"]


@pytest.fixture(scope="module")
def files():
    return competition_files()


@pytest.fixture(scope="module")
def repo(tmp_path_factory, files):
    """A repo whose data came through the download stage from the stand-in, sharded, with
    a submission.csv of the competition's size and the ensemble's metrics."""
    base = tmp_path_factory.mktemp("kaggle-e2e")
    repo = kaggle_repo(base / "repo", base / "cache")
    with standin_for(files) as server:
        p = run_in(repo, DOWNLOAD, client_env(server, base / "home"))
    assert p.returncode == 0, p.stderr
    prepare_submission(repo)
    return repo


def record(repo) -> list[dict]:
    path = repo / "reports" / "submissions.csv"
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == COLUMNS
        return list(reader)


def no_secrets(*texts: str) -> None:
    for secret in secrets():
        assert not any(secret in t for t in texts)


def test_download_stage_resumes_after_a_kill_then_reuses_its_cache(tmp_path, files):
    import json

    cache = tmp_path / "cache"
    repo = kaggle_repo(tmp_path / "repo", cache)
    part = cache / COMPETITION / ".partial" / "train_simplified.zip"
    with standin_for(files) as server:
        env = client_env(server, tmp_path / "home")
        proc = subprocess.Popen(DOWNLOAD, cwd=repo, env=env, stdout=subprocess.PIPE, text=True)

        def kill():  # the machine goes down once part of the file is on disk
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not (part.is_file() and part.stat().st_size):
                time.sleep(0.01)
            proc.kill()

        server.interrupt("train_simplified.zip", after_bytes=1_600_000, hook=kill)
        proc.communicate(timeout=60)
        server.release.set()
        assert proc.returncode == -9
        assert not (repo / "data" / "raw").exists()
        cut = part.stat().st_size
        assert 0 < cut < len(files["train_simplified.zip"])

        server.calls.clear()
        p = run_in(repo, DOWNLOAD, env)
        assert p.returncode == 0, p.stderr
        storage = [(c.name, c.status, c.range) for c in server.calls if c.kind == "storage"]
        assert storage == [
            ("train_simplified.zip", 200, None),
            ("train_simplified.zip", 206, f"bytes={cut}-"),  # the rest, not the whole file
            ("test_simplified.csv", 200, None),
        ]
        folder = cache / COMPETITION
        assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == [
            "complete.json",
            "test_simplified.csv.zip",
            "train_simplified.zip",
        ]
        assert list((folder / ".partial").iterdir()) == []
        assert (folder / "train_simplified.zip").read_bytes() == files["train_simplified.zip"]
        location = json.loads((repo / "data/raw/location.json").read_text())
        assert location["path"] == str(folder)
        dataset = json.loads((repo / "data/raw/dataset.json").read_text())
        assert (dataset["kind"], dataset["origin"], dataset["test_rows"]) == (
            "kaggle",
            COMPETITION,
            TEST_ROWS,
        )

        server.calls.clear()
        p = run_in(repo, DOWNLOAD, env)
        assert p.returncode == 0, p.stderr
        assert server.calls == []  # both files complete in the cache: Kaggle is not asked
        assert server.unexpected == []
    no_secrets(p.stdout, p.stderr)


def test_make_submit_uploads_waits_and_records_the_public_score_beside_the_holdout(repo, tmp_path):
    (repo / "reports" / "submissions.csv").unlink(missing_ok=True)
    rev = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    sent = (repo / "submission.csv").read_bytes()
    with standin_for({}) as server:
        server.expected_upload = sent  # the stand-in refuses any other bytes
        # the legacy kaggle.json in KAGGLE_CONFIG_DIR (read by kaggle at import)
        env = client_env(server, tmp_path / "home", "json")
        p = run_in(repo, make("submit", "MSG=img 128"), env)
        assert p.returncode == 0, p.stdout + p.stderr
        out = p.stdout.splitlines()
        assert f"submit: submission.csv is valid ({TEST_ROWS:,} rows)" in out
        assert f"submit: sent submission.csv to {COMPETITION} with message 'img 128'" in out
        assert f"submit: Kaggle says: {SUBMITTED} (submission 40000001)" in out
        assert "submit: recorded as pending in reports/submissions.csv (row 1)" in out
        assert sum(line.startswith("submit: pending after ") for line in out) == 2
        assert (
            "submit: public score 0.87654 (private 0.87321) beside holdout MAP@3 0.88012 "
            "(blend_balanced, 888 held-apart rows): public - holdout -0.00358"
        ) in out
        assert server.uploads == {"blob-1": sent}
        [row] = record(repo)
        assert row == {
            "submitted_at": row["submitted_at"],
            "competition": COMPETITION,
            "ref": "40000001",
            "revision": rev,
            "method": "blend_balanced",
            "holdout_map3": "0.88012",
            "holdout_rows": "888",
            "status": "complete",
            "public_score": "0.87654",
            "private_score": "0.87321",
            "file_sha256": file_digest(repo / "submission.csv"),
            "message": "img 128",
        }
        no_secrets(p.stdout, p.stderr)

        # --no-wait: recorded pending; `make submissions` asks Kaggle, then shows both
        env = client_env(server, tmp_path / "home2", "token-file")
        p = run_in(repo, make("submit", "ARGS=--no-wait"), env)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "submit: not waiting for the score; `make submissions` fetches it later" in (
            p.stdout.splitlines()
        )
        assert [r["status"] for r in record(repo)] == ["complete", "pending"]
        assert record(repo)[1]["message"].startswith(f"doodle {rev}: blend_balanced, holdout")
        server.pending_polls = 0  # scored by now
        p = run_in(repo, make("submissions"), client_env(server, tmp_path / "home3"))
        assert p.returncode == 0, p.stdout + p.stderr
        out = p.stdout.splitlines()
        assert "submissions: asked Kaggle about 1 pending: 1 scored since" in out
        assert [r["status"] for r in record(repo)] == ["complete", "complete"]
        header = next(line for line in out if line.startswith("submitted (UTC)"))
        assert header.split() == [
            "submitted",
            "(UTC)",
            "ref",
            "revision",
            "method",
            "holdout",
            "public",
            "private",
            "pub-hold",
            "status",
            "message",
        ]
        assert sum(" 0.88012  0.87654  0.87321  -0.00358  complete " in line for line in out) == 2
        assert (
            "submissions: 2 submission(s), 2 with both scores: public - holdout -0.00358 on "
            "average (from -0.00358 to -0.00358)"
        ) in out
        assert server.unexpected == []
    # nothing pending: the record is shown without asking Kaggle (no server now)
    p = run_in(repo, make("submissions"), client_env(server, tmp_path / "home3", "none"))
    assert p.returncode == 0 and "asked Kaggle" not in p.stdout, p.stdout + p.stderr


@pytest.mark.parametrize("case", ["401", "403", "429"])
def test_make_submit_errors_are_one_line(repo, tmp_path, case):
    (repo / "reports" / "submissions.csv").unlink(missing_ok=True)
    with standin_for({}) as server:
        credentials = "bad-token" if case == "401" else "token"
        if case == "403":
            server.rules_accepted = False
        if case == "429":
            server.fail("CreateSubmission", 429, 429, 429, 429)
        p = run_in(repo, make("submit"), client_env(server, tmp_path / "home", credentials))
        assert server.unexpected == []
    assert p.returncode != 0 and "Traceback" not in p.stderr
    errors = [line for line in p.stderr.splitlines() if line.startswith("submit: error: ")]
    assert len(errors) == 1, p.stderr
    expected = {
        "401": "submit: error: Kaggle rejected the credentials from the KAGGLE_API_TOKEN "
        "environment variable (401 Unauthorized)",
        "403": "submit: error: Kaggle refused the upload of submission.csv (403 Forbidden: "
        "You must accept this competition's rules",
        "429": "submit: error: Kaggle answered the upload of submission.csv with 429 Too Many "
        "Requests",
    }[case]
    assert errors[0].startswith(expected), errors[0]
    if case == "429":
        retries = [line for line in p.stderr.splitlines() if " retry " in line]
        assert len(retries) == 3 and errors[0].endswith("run this again later")
    if case == "403":
        assert f"https://www.kaggle.com/competitions/{COMPETITION}/rules" in errors[0]
    assert server.submissions == []
    assert not (repo / "reports" / "submissions.csv").exists()
    no_secrets(p.stdout, p.stderr)
