"""Under CI=true a skip fails the run unless tests/skip_policy.py allows its reason."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.skip_policy import ALLOWED_SKIPS, disallowed


def _pytest(tmp_path, reason: str, ci: bool) -> subprocess.CompletedProcess:
    test = tmp_path / "test_sample.py"
    test.write_text(
        "import pytest\n\n"
        "def test_runs():\n    assert 1 + 1 == 2\n\n"
        f"def test_skipped():\n    pytest.skip({reason!r})\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"PYTHONPATH": str(ROOT)}
    if ci:
        env["CI"] = "true"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "tests.skip_policy",
        "-p",
        "no:cacheprovider",
    ]
    return subprocess.run(
        [*cmd, str(test)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("ci", [True, False])
def test_a_skip_fails_the_run_under_ci_only(tmp_path, ci):
    p = _pytest(tmp_path, "tensorflow is not installed", ci)
    assert p.returncode == (1 if ci else 0), p.stdout
    assert ("skipped for a reason not in ALLOWED_SKIPS" in p.stdout) == ci


def test_an_allowed_skip_passes_under_ci(tmp_path):
    reason = next(iter(ALLOWED_SKIPS)) + ": not on this machine"
    p = _pytest(tmp_path, reason, ci=True)
    assert p.returncode == 0, p.stdout


def test_every_allowed_reason_says_why():
    assert ALLOWED_SKIPS and all(len(why) > 20 for why in ALLOWED_SKIPS.values())
    assert disallowed([("a", "needs a GPU: none here"), ("b", "jax missing")]) == [
        ("b", "jax missing")
    ]
