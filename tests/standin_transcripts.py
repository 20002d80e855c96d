"""Print what a user sees from `make submit` and `make submissions` against the stand-in
Kaggle (tests/kaggle_standin.py), with the installed kaggle client, on 127.0.0.1 only:
an upload that waits for its score, a --no-wait one fetched later, then the 401 (bad
token, bad key), 403 (rules not accepted) and 429 (rate-limited) answers.

    .venv/bin/python tests/standin_transcripts.py      # about 15 s

The same runs are asserted in tests/test_kaggle_e2e.py; this only shows them. Waits are
scaled 1000-fold down (DOODLE_KAGGLE_WAIT_SCALE=0.001), so "retry in 0.0 s" here is 2 s,
4 s, 8 s on the real Kaggle.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.kaggle_standin import (  # noqa: E402
    client_env,
    competition_files,
    kaggle_repo,
    make,
    prepare_submission,
    secrets,
    standin_for,
)


def show(repo: Path, argv: list[str], env: dict[str, str]) -> None:
    """Run ``argv`` as a user would, and print it with its output (stdout and stderr as
    they interleave)."""
    shown = [a for a in argv if a not in ("--no-print-directory", "-o", ".venv/.runtime")]
    print(f"$ {shlex.join(shown)}")
    p = subprocess.run(
        argv, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    text = p.stdout
    for secret in secrets():
        assert secret not in text, "a credential was printed"
    # tqdm redraws its bar with carriage returns: keep each bar's last state
    lines = [line.split("\r")[-1] for line in text.splitlines()]
    print("\n".join(line for line in lines if line.strip()))
    print(f"[exit status {p.returncode}]\n")


def main() -> None:
    files = competition_files()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        repo = kaggle_repo(base / "repo", base / "cache")
        with standin_for(files) as server:
            print("# the download stage, data.source=kaggle, through the stand-in\n")
            show(repo, [sys.executable, "-m", "stages.download"], client_env(server, base / "h0"))
        prepare_submission(repo)

        with standin_for({}) as server:
            server.expected_upload = (repo / "submission.csv").read_bytes()
            print("# an upload, its score waited for and recorded\n")
            show(repo, make("submit", "MSG=img 128"), client_env(server, base / "h1"))
            print("# an upload not waited for, then the record refreshed\n")
            show(repo, make("submit", "ARGS=--no-wait"), client_env(server, base / "h2"))
            server.pending_polls = 0
            show(repo, make("submissions"), client_env(server, base / "h3"))
            print("$ git diff --stat reports/submissions.csv  (a tracked file)")
            print(
                subprocess.run(
                    ["git", "status", "--short", "reports/submissions.csv"],
                    cwd=repo,
                    capture_output=True,
                    text=True,
                ).stdout
            )

        cases = [
            ("401: a revoked token", "bad-token", None),
            ("401: a wrong legacy username/key", "bad-key", None),
            ("403: the competition's rules not accepted", "token", "rules"),
            ("429: Kaggle rate-limiting every try", "token", "429"),
        ]
        for i, (title, credentials, failure) in enumerate(cases):
            with standin_for({}) as server:
                if failure == "rules":
                    server.rules_accepted = False
                elif failure == "429":
                    server.fail("CreateSubmission", 429, 429, 429, 429)
                print(f"# {title}\n")
                env = client_env(server, base / f"e{i}", credentials)
                show(repo, make("submit", "MSG=img 128"), env)


if __name__ == "__main__":
    main()
