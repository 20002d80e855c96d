"""dvc.yaml lists, for every stage, exactly the package modules its script runs (directly
or through other modules), so a code change re-runs what it affects and nothing else."""

import ast
from pathlib import Path

import yaml

from tests.conftest import ROOT


def doodle_imports(path: Path) -> set[str]:
    """``doodle/<m>.py`` files imported anywhere in ``path`` (lazy imports included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("doodle"):
            if node.module == "doodle":
                out |= {f"doodle/{a.name}.py" for a in node.names}
            else:
                out.add(node.module.replace(".", "/") + ".py")
        elif isinstance(node, ast.Import):
            out |= {a.name.replace(".", "/") + ".py" for a in node.names
                    if a.name.startswith("doodle.")}
    return {m for m in out if (ROOT / m).is_file()}


def closure(script: Path) -> set[str]:
    todo, seen = list(doodle_imports(script)), set()
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += doodle_imports(ROOT / m)
    return seen


def test_every_stage_lists_the_modules_it_runs():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        stage = stage.get("do", stage)
        script = ROOT / stage["cmd"].split()[1]
        deps = {d for d in stage["deps"] if d.startswith("doodle/")}
        assert str(script.relative_to(ROOT)) in stage["deps"], name
        assert deps == closure(script), (name, sorted(closure(script) - deps),
                                         sorted(deps - closure(script)))
