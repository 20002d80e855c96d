"""params.yaml: loading it, and resolving one ensemble member's training settings."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

# Keys a member may override, and where their defaults live in params.yaml.
TOP_LEVEL_KEYS = ("img_size", "arch", "seed")


def load_params(path: Path | str = "params.yaml") -> dict[str, Any]:
    """Read params.yaml (a clear error if it is missing or not a mapping)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: params file not found (run from the repo root)")
    params = yaml.safe_load(path.read_text())
    if not isinstance(params, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return params


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def member_config(params: dict[str, Any], name: str) -> dict[str, Any]:
    """The flat training config of ensemble member ``name``.

    Starts from the ``train:`` section plus the top-level ``img_size``, ``arch`` and ``seed``
    (so ``dvc exp run -S img_size=128`` changes every member that does not override it),
    then applies ``members.<name>``.
    """
    members = params.get("members") or {}
    if name not in members:
        raise KeyError(f"member {name!r} is not in params.yaml members: {sorted(members)}")
    cfg = copy.deepcopy(params.get("train", {}))
    for key in TOP_LEVEL_KEYS:
        cfg[key] = params[key]
    cfg = _merge(cfg, members[name] or {})
    cfg["name"] = name
    _validate(cfg)
    return cfg


def _validate(cfg: dict[str, Any]) -> None:
    if not 32 <= int(cfg["img_size"]) <= 256:
        raise ValueError(f"member {cfg['name']}: img_size {cfg['img_size']} not in 32..256")
    if int(cfg.get("channels", 1)) not in (1, 3):
        raise ValueError(f"member {cfg['name']}: channels must be 1 or 3")
