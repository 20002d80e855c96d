"""dvc.yaml lists, for every stage, exactly the package modules its script runs (directly
or through other modules), so a code change re-runs what it affects and nothing else."""

import ast
from pathlib import Path

import yaml

from tests.conftest import ROOT


def module_file(name: str) -> str | None:
    """``doodle.x.y`` -> ``doodle/x/y.py`` or the package's ``doodle/x/y/__init__.py``."""
    base = name.replace(".", "/")
    for path in (f"{base}.py", f"{base}/__init__.py"):
        if (ROOT / path).is_file():
            return path
    return None


def doodle_imports(path: Path) -> set[str]:
    """Package files imported anywhere in ``path`` (lazy imports included); importing a
    module of a subpackage runs the subpackage's ``__init__.py`` too."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("doodle"):
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}  # `from pkg import mod`
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("doodle.")}
    out = set()
    for name in names:
        parts = name.split(".")
        for i in range(2, len(parts) + 1):  # doodle.ensemble.choose -> ensemble/__init__ too
            found = module_file(".".join(parts[:i]))
            if found:
                out.add(found)
    return out


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
        assert deps == closure(script), (
            name,
            sorted(closure(script) - deps),
            sorted(deps - closure(script)),
        )


def test_every_tracked_param_exists():
    """Each `params:` entry of dvc.yaml names a key of params.yaml (a renamed key would make
    DVC stop the stage with 'Parameters ... are missing')."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        for entry in stage.get("do", stage).get("params", []):
            key = entry.replace("${data.source}", params["data"]["source"])
            node = params
            for part in key.split("."):
                if part == "${key}":  # a member's own overrides: the section exists
                    break
                assert isinstance(node, dict) and part in node, (name, entry)
                node = node[part]
