import pytest

from doodle.config import load_params, member_config
from tests.conftest import ROOT


def test_repo_params_resolve_default_member():
    params = load_params(ROOT / "params.yaml")
    assert "img_size" in params and "arch" in params  # top level: dvc exp run -S img_size=128
    cfg = member_config(params, "base")
    assert cfg["img_size"] == params["img_size"] and cfg["arch"] == params["arch"]
    assert cfg["batch_size"] == params["train"]["batch_size"]


def test_member_overrides_and_top_level_defaults():
    params = {"img_size": 64, "arch": "mobilenetv2", "seed": 1,
              "train": {"batch_size": 8, "channels": 1, "augment": {"flip": 0.5, "scale": 0.1}},
              "members": {"a": {}, "b": {"img_size": 96, "arch": "efficientnetb0",
                                      "augment": {"flip": 0.0}}}}
    a, b = member_config(params, "a"), member_config(params, "b")
    assert (a["img_size"], a["arch"]) == (64, "mobilenetv2")
    assert (b["img_size"], b["arch"], b["batch_size"]) == (96, "efficientnetb0", 8)
    assert b["augment"] == {"flip": 0.0, "scale": 0.1}  # nested override merges
    params["img_size"] = 128  # what `dvc exp run -S img_size=128` does
    assert member_config(params, "a")["img_size"] == 128
    assert member_config(params, "b")["img_size"] == 96


def test_bad_member_settings():
    params = {"img_size": 16, "arch": "x", "seed": 0, "train": {}, "members": {"a": {}}}
    with pytest.raises(ValueError, match="img_size"):
        member_config(params, "a")
    with pytest.raises(KeyError, match="nope"):
        member_config(params, "nope")
