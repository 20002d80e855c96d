"""The README and docs/ stay true to the code: every `-S key=` names a key of params.yaml,
every `python -m` a module that exists, every link a file (and heading) that exists. (The
command blocks a user types are run as printed by the tests that name them in a comment
above the block: tests/test_experiments.py, tests/data/test_raw_data.py.)"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from tests.pipeline_utils import ROOT, doc_files

DOCS = doc_files() + [ROOT / "BENCHMARKS.md"]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def _has_key(path: str) -> bool:
    node = PARAMS
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_set_key_exists(doc: Path):
    """`-S key=value` (not `++key`, which adds one) names a key of params.yaml: a renamed key
    would make the printed line fail."""
    text = doc.read_text()
    keys = re.findall(r"-S '?([a-z_][\w.]*)=", text)
    missing = sorted({k for k in keys if k != "key" and not _has_key(k)})  # "key": a placeholder
    assert not missing, f"{doc.name}: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_python_m_module_exists(doc: Path):
    modules = set(re.findall(r"python3? -m ((?:doodle|stages)(?:\.\w+)*)", doc.read_text()))
    missing = sorted(m for m in modules if importlib.util.find_spec(m) is None)
    assert not missing, f"{doc.name}: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_link_and_anchor_resolves(doc: Path):
    text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", file.read_text(), flags=re.M)
            if anchor not in {slug(h) for h in headings}:
                broken.append(target)
    assert not broken, f"{doc.name}: {broken}"


def test_the_slug_is_githubs():
    assert slug("The `dvc exp` loop") == "the-dvc-exp-loop"
    assert slug("Presets: budgets by the pass") == "presets-budgets-by-the-pass"
    assert slug("Kaggle's raw files: the time of every point") == (
        "kaggles-raw-files-the-time-of-every-point"
    )
