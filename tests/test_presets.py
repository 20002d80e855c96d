"""Each preset (presets/*.args, `-S` lines for `dvc exp run`) applies to params.yaml the way
DVC applies it and gives a config the schema accepts; `make exp PRESET=...` passes it."""

import subprocess
from pathlib import Path

import pytest
import yaml

from doodle.config import parse_params
from doodle.models import backbones
from doodle.presets import FULL_DRAWINGS, apply_args, budgets, preset_params, read_args, table
from tests.conftest import ROOT

PRESETS = sorted((ROOT / "presets").glob("*.args"))


def preset_args(path: Path) -> list[str]:
    return read_args(path)


def test_there_are_presets():
    assert {p.stem for p in PRESETS} >= {"kaggle-full", "kaggle-notebook"}


GPU_PRESETS = [p for p in PRESETS if p.stem.startswith("kaggle-")]


@pytest.mark.parametrize("path", GPU_PRESETS, ids=[p.stem for p in GPU_PRESETS])
def test_preset_gives_a_valid_config(path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    cfg = parse_params(apply_args(params, preset_args(path)))
    assert cfg.shard.n_shards == 100 and cfg.shard.val_size == 34000
    backbones.check_members(cfg)  # every member's merged config and arch check out


def test_full_preset_gives_every_member_a_pass_warm_starts_and_two_families():
    params = preset_params("kaggle-full")
    rows = budgets(params, 1.0)
    assert min(r["passes"] for r in rows) >= 1.0, rows
    assert all(r["images"] >= 97_000 * 512 for r in rows)
    assert any(params.member(m).init_from for m in params.member_names)  # 64 -> 128 px
    images = [params.member(m).arch for m in params.member_names]
    images = [a for a in images if not backbones.is_sequence(a)]
    families = {backbones.lookup(a).constructor for a in images}
    assert families - {"MobileNet", "MobileNetV2", "MobileNetV3Small", "MobileNetV3Large"}
    held_out = FULL_DRAWINGS - params.shard.val_size  # a pass: the drawings not held out
    assert all(r["passes"] == r["images"] / held_out for r in rows)
    # and the stroke-to-grid family, with a speed estimate from its arithmetic
    grid = next(r for r in rows if r["arch"] == "strokegrid")
    assert grid["rate"] and grid["hours"] and grid["passes"] >= 1.0


def test_the_docs_state_the_presets_budgets():
    """docs/models.md's table is what `python -m doodle.presets` computes from the presets."""
    names = [p.stem for p in GPU_PRESETS]
    assert table(names) in (ROOT / "docs" / "models.md").read_text()


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
