"""The code style is checked, not hoped for: `make lint` (ruff format --check, ruff check)
passes on the whole tree."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

RUFF = Path(sys.executable).parent / "ruff"


@pytest.mark.parametrize("args", [["format", "--check", "."], ["check", "."]])
def test_ruff_is_clean(args):
    p = subprocess.run([str(RUFF), *args], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-1000:]
