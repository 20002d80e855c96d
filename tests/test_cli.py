"""Stage wiring: expected errors in one line, bugs with their traceback, a hint for the
wrong interpreter, and TensorFlow's start-up noise filtered out."""

import logging
import subprocess
import sys

import pytest

from doodle.cli import run_stage
from doodle.errors import InputError
from tests.conftest import ROOT


def test_expected_error_is_one_line(capsys):
    def main():
        raise InputError("data/raw/x.csv: row 3: bad JSON\n  (details)")

    with pytest.raises(SystemExit) as e:
        run_stage("demo", main)
    assert e.value.code == 1
    assert capsys.readouterr().err == "demo: error: data/raw/x.csv: row 3: bad JSON (details)\n"


def test_programming_error_keeps_its_traceback():
    def main():
        return {}["missing"]  # a bug, not bad input

    with pytest.raises(KeyError):
        run_stage("demo", main)


def test_traceback_on_request(monkeypatch):
    monkeypatch.setenv("DOODLE_TRACEBACK", "1")
    with pytest.raises(InputError):
        run_stage("demo", lambda: (_ for _ in ()).throw(InputError("bad")))


def test_log_lines_are_in_the_stages_style(capsys):
    """Every line a stage writes starts with its name, as its own prints do."""

    def main():
        logging.getLogger("doodle.ensemble").info("scores %s", 1)
        logging.getLogger("doodle.kaggle.api").warning("retry 1 of 3")
        logging.getLogger("doodle.kaggle.submission").error("row 3: bad")
        print("demo: wrote it")

    run_stage("demo", main)
    out = capsys.readouterr()
    assert out.err.splitlines() == [
        "demo: scores 1",
        "demo: warning: retry 1 of 3",
        "demo: error: row 3: bad",
    ]
    assert out.out.startswith("demo: wrote it\ndemo: done in ")


def test_wrong_interpreter_gets_the_fix():
    # -S: no site-packages, like a system python without the project's packages
    p = subprocess.run(
        [sys.executable, "-S", "-m", "stages.download"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert "source .venv/bin/activate" in p.stderr


@pytest.mark.e2e  # runs a stage script in a subprocess
def test_keras_stage_starts_with_its_own_lines(tmp_path):
    """TensorFlow loads (train imports Keras first), yet stderr holds only our error."""
    p = subprocess.run(
        [sys.executable, str(ROOT / "stages" / "predict.py"), "base"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 1
    assert p.stderr.splitlines() == [
        "predict: error: params.yaml: params file not found (run from the repo root)"
    ]
