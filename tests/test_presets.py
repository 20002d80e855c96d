"""Each preset (presets/*.args, `-S` lines for `dvc exp run`) applies to params.yaml the way
DVC applies it and gives a config the schema accepts; `make exp PRESET=...` passes it."""

import subprocess
from pathlib import Path

import pytest
import yaml

from doodle.config import parse_params
from tests.conftest import ROOT

PRESETS = sorted((ROOT / "presets").glob("*.args"))


def preset_args(path: Path) -> list[str]:
    return " ".join(ln for ln in path.read_text().splitlines() if not ln.startswith("#")).split()


def apply(params: dict, args: list[str]) -> dict:
    """DVC's -S semantics: ``key=value`` sets an existing key; ``++key=value`` adds or sets."""
    assert args[::2] == ["-S"] * (len(args) // 2) and len(args) % 2 == 0, args
    for override in args[1::2]:
        key, value = override.split("=", 1)
        add = key.startswith("++")
        *parents, last = key.removeprefix("++").split(".")
        node = params
        for p in parents:
            if add and not isinstance(node.get(p), dict):
                node[p] = {}
            assert p in node, f"{override}: no key {p!r} (DVC refuses it)"
            node = node[p]
        assert add or last in node, f"{override}: no key {last!r} (DVC refuses it)"
        node[last] = yaml.safe_load(value)
    return params


def test_there_are_presets():
    assert {p.stem for p in PRESETS} >= {"kaggle-full", "kaggle-notebook"}


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_preset_gives_a_valid_config(path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    cfg = parse_params(apply(params, preset_args(path)))
    assert cfg.shard.n_shards == 100 and cfg.shard.val_size == 34000
    for name in cfg.members:
        cfg.member(name)  # every member's merged config checks out


def test_make_exp_passes_the_preset_first():
    out = subprocess.run(
        ["make", "-n", "exp", "PRESET=kaggle-full", "ARGS=-S seed=1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(ln for ln in out.splitlines() if " exp run " in ln)
    assert line.split(" exp run ", 1)[1].split() == preset_args(
        ROOT / "presets/kaggle-full.args"
    ) + ["-S", "seed=1"]
