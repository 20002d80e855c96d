"""dvc.yaml's deps cover, for every stage, the package modules its script runs (directly or
through other modules), so a code change re-runs what it can affect: the data stages list
exact files, the model stages whole subpackages."""

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


def covered(dep: str, module: str) -> bool:
    """A dep covers a module file when it is that file or a folder above it."""
    return module == dep or module.startswith(dep.rstrip("/") + "/")


# The expensive data stages list the exact modules they run (a folder would make an edit to
# the downloader re-shard 50M drawings); the model stages depend on whole rooms.
DATA_STAGES = ("source", "download", "shard", "tfrecord")
MODEL_ROOMS = ("doodle/rendering", "doodle/models", "doodle/training", "doodle/ensemble")


def test_every_stage_depends_on_the_code_it_runs():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        stage = stage.get("do", stage)
        script = stage["cmd"].split()[2].replace(".", "/") + ".py"  # python -m stages.x
        deps = [d for d in stage["deps"] if d.startswith("doodle/")]
        assert script in stage["deps"], name
        runs = closure(ROOT / script)
        missing = sorted(m for m in runs if not any(covered(d, m) for d in deps))
        assert not missing, (name, missing)
        # every dep is code the stage runs (a file of the closure, or a folder holding one)
        unused = [d for d in deps if not any(covered(d, m) for m in runs)]
        assert not unused, (name, unused)
        if name in DATA_STAGES:
            assert not [d for d in deps if d.startswith(MODEL_ROOMS)], (name, deps)
            assert all(d.endswith(".py") for d in deps), (name, deps)


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
