"""Skips that CI notices: under ``CI=true`` a skipped test fails the run unless its reason
starts with an entry of ``ALLOWED_SKIPS`` (each with why skipping is right there).

A skip is how a missing dependency would hide: with this, a test that stops running on a
clean machine turns the run red instead of quietly vanishing from the count.
"""

from __future__ import annotations

import os

import pytest

# reason prefix -> why such a skip is honest
ALLOWED_SKIPS = {
    "needs the real data in ../shared/data": (
        "the real Quick, Draw! drawings live beside the repo on the team's machines, not in "
        "the repo; a clean clone elsewhere has no copy"
    ),
    "needs a GPU": "GPU-only figures; every CPU path is tested on the CPU",
}

_skipped: list[tuple[str, str]] = []


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append((report.nodeid, _reason(report)))


def disallowed(skipped: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The skips no entry of ALLOWED_SKIPS covers."""
    return [(n, r) for n, r in skipped if not any(r.startswith(a) for a in ALLOWED_SKIPS)]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CI", "").lower() != "true":
        return
    bad = disallowed(_skipped)
    if bad:
        lines = "\n".join(f"  {n}: {r}" for n, r in bad)
        print(f"\nCI=true: {len(bad)} test(s) skipped for a reason not in ALLOWED_SKIPS:\n{lines}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
