"""The GitHub Actions workflow cannot run here: check that every command it runs exists
(Makefile targets, scripts, the venv's tools) and that it does what the project promises."""

import re
import shlex
import subprocess

import yaml

from tests.conftest import ROOT
from tests.pipeline_utils import doc_files

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return {m.group(1) for m in re.finditer(r"^([A-Za-z][\w.-]*):", text, re.M)}


def commands(steps: list[dict]) -> list[list[str]]:
    out = []
    for step in steps:
        for line in step.get("run", "").splitlines():
            line = line.split(">>")[0].strip()  # redirections into the job summary
            if line and not line.startswith("#"):
                out.append(shlex.split(line))
    return out


def console_scripts() -> set[str]:
    """Executables the project's install puts in .venv/bin (its dependencies' scripts)."""
    text = (ROOT / "pyproject.toml").read_text()
    return {"python", *(n for n in ("dvc", "pytest", "ruff") if f'"{n}' in text)}


def test_workflow_commands_exist():
    flow = yaml.safe_load(WORKFLOW.read_text())
    steps = [s for job in flow["jobs"].values() for s in job["steps"]]
    targets = make_targets()
    scripts = console_scripts()
    seen = []
    for argv in commands(steps):
        tool = argv[0]
        if tool == "make":
            assert argv[1] in targets, f"make {argv[1]}: no such Makefile target"
        elif tool.startswith(".venv/bin/"):
            assert tool.removeprefix(".venv/bin/") in scripts, tool
        else:
            assert tool in ("git", "echo"), f"unexpected command {tool}"
        for arg in argv[1:]:
            if arg.endswith(".py"):
                assert (ROOT / arg).is_file(), f"{arg} does not exist"
        seen.append(" ".join(argv))
    # what the CI must do, in this order
    wanted = ["make test-fast", "make tiny", "stages.submit --dry-run", "dvc metrics show"]
    positions = [next(i for i, c in enumerate(seen) if w in c) for w in wanted]
    assert positions == sorted(positions), seen


def test_workflow_compares_only_with_what_git_holds():
    """No `dvc metrics diff <rev>`: metrics files are outputs, not committed, so a revision
    has no figures to compare with."""
    tracked = subprocess.run(
        ["git", "ls-files", "reports", "dvc.lock"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    if "metrics.json" not in tracked:
        assert "metrics diff" not in WORKFLOW.read_text()


def test_workflow_sets_up_python_with_pip_caching():
    flow = yaml.safe_load(WORKFLOW.read_text())
    steps = [s for job in flow["jobs"].values() for s in job["steps"]]
    setup = [s for s in steps if s.get("uses", "").startswith("actions/setup-python@")]
    assert len(setup) == 1 and setup[0]["with"]["cache"] == "pip"
    # `on:` parses as True in YAML 1.1: the triggers are there all the same
    assert {"push", "pull_request"} <= set(flow[True])


def test_make_targets_the_docs_name_exist():
    """Every `make X` in the README, docs/ and the workflow is a real target (make -n proves
    it)."""
    docs = "".join(p.read_text() for p in doc_files())
    named = set(re.findall(r"\bmake ([a-z][\w-]*)", docs))
    named |= {
        argv[1]
        for argv in commands(
            [
                s
                for job in yaml.safe_load(WORKFLOW.read_text())["jobs"].values()
                for s in job["steps"]
            ]
        )
        if argv[0] == "make"
    }
    assert named <= make_targets(), named - make_targets()
    for target in sorted(named):
        p = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True)
        assert p.returncode == 0, (target, p.stderr)
