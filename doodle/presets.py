"""Presets (``presets/*.args``): ``-S key=value`` lines for ``dvc exp run``, applied the way
DVC applies them, and each member's budget stated as passes over the data.

``python -m doodle.presets`` prints the README's *Presets* table: per member, its steps x
batch x epochs, the images it sees, the passes over the full competition data that makes,
and its time at a stated images/s. Those rates are **estimates** (no GPU has measured them
yet: ``make gpu-check`` does), derived as ``rate at 224 px x (224 / img_size)^2 x GPU
factor`` from the assumed 224-px training rates in ``ASSUMED_RATE_224`` (one A100-class
GPU, mixed precision): training cost taken to scale with the pixels of a drawing, and a
Kaggle notebook's T4 / P100 taken as a fifth of an A100 (memory bandwidth 320 / 732 vs
1,555 GB/s, and these small models are bound by memory, not arithmetic). A strokegrid
member's rate is MobileNetV2's scaled by compute instead: ``2,500 x 300M / its
multiply-accumulates a drawing`` (MobileNetV2 at 224 px does 300M;
:func:`doodle.models.strokegrid.macs` counts the member's), the same assumption that cost
follows arithmetic.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

# The full competition data: ~49.7M training drawings (each preset holds out its
# shard.val_size of them: the rest are what a pass goes over).
FULL_DRAWINGS = 49_700_000
# Assumed training images/s at 224 px on one A100-class GPU with mixed precision, per
# family (an estimate, not a measurement: BENCHMARKS.md, *GPU*).
ASSUMED_RATE_224 = {"mobilenetv2": 2500, "efficientnetv2b0": 1500}
MOBILENETV2_MACS_224 = 300e6  # multiply-accumulates of MobileNetV2 (alpha 1) at 224 px
# The GPU each preset is sized for, and its speed relative to an A100 (an estimate).
PRESET_GPU = {"kaggle-full": ("A100", 1.0), "kaggle-notebook": ("T4 / P100", 0.2)}
ROOT = Path(__file__).resolve().parents[1]


def read_args(path: Path) -> list[str]:
    """A preset file's ``-S`` arguments (comment lines dropped)."""
    lines = Path(path).read_text().splitlines()
    return " ".join(ln for ln in lines if not ln.startswith("#")).split()


def apply_args(params: dict, args: list[str]) -> dict:
    """DVC's -S semantics on parsed params.yaml: ``key=value`` sets an existing key (DVC
    refuses a key that does not exist), ``++key=value`` adds or sets one."""
    if args[::2] != ["-S"] * (len(args) // 2) or len(args) % 2:
        raise ValueError(f"expected -S key=value pairs, got {args}")
    for override in args[1::2]:
        key, value = override.split("=", 1)
        add = key.startswith("++")
        *parents, last = key.removeprefix("++").split(".")
        node = params
        for p in parents:
            if add and not isinstance(node.get(p), dict):
                node[p] = {}
            if p not in node:
                raise KeyError(f"{override}: no key {p!r} (DVC refuses it)")
            node = node[p]
        if not add and last not in node:
            raise KeyError(f"{override}: no key {last!r} (DVC refuses it)")
        node[last] = yaml.safe_load(value)
    return params


def preset_params(name: str, root: Path = ROOT):
    """params.yaml with the preset ``name`` applied, parsed and checked."""
    from doodle.config import parse_params

    raw = yaml.safe_load((root / "params.yaml").read_text())
    return parse_params(apply_args(raw, read_args(root / "presets" / f"{name}.args")))


def budgets(params, gpu_factor: float) -> list[dict]:
    """Each member's budget: images seen, passes over the full data, estimated hours on a
    GPU ``gpu_factor`` times as fast as an A100."""
    from doodle.models import backbones

    rows = []
    train_drawings = FULL_DRAWINGS - params.shard.val_size
    for name in params.member_names:
        cfg = params.member(name)
        images = cfg.epochs * cfg.steps_per_epoch * cfg.batch_size
        family = cfg.arch if cfg.sequence else backbones.lookup(cfg.arch).constructor.lower()
        rate = ASSUMED_RATE_224.get(family)
        rate = rate * (224 / cfg.img_size) ** 2 * gpu_factor if rate else None
        if cfg.arch == "strokegrid":
            rate = strokegrid_rate(cfg) * gpu_factor
        size = f"{cfg.img_size}" if not cfg.sequence else f"{cfg.seq_len} points"
        if cfg.arch == "strokegrid":
            size += f" on {cfg.grid_size}x{cfg.grid_size}"
        rows.append(
            {
                "member": name,
                "arch": cfg.arch,
                "img_size": cfg.img_size,
                "input": size,
                "start": f"from {cfg.init_from}" if cfg.init_from else "scratch",
                "steps": f"{cfg.epochs} x {cfg.steps_per_epoch:,} x {cfg.batch_size}",
                "images": images,
                "passes": images / train_drawings,
                "rate": rate,
                "hours": images / rate / 3600 if rate else None,
            }
        )
    return rows


def strokegrid_rate(cfg) -> float:
    """A strokegrid member's assumed images/s on an A100-class GPU (an estimate: see the
    module's docstring)."""
    from doodle.config import TIME_ENCODINGS
    from doodle.models.strokegrid import features, macs

    width = 1.0 if cfg.alpha is None else cfg.alpha
    n = len(features(cfg.encoding in TIME_ENCODINGS))
    work = macs(cfg.seq_len, cfg.grid_size, width, n)
    return ASSUMED_RATE_224["mobilenetv2"] * MOBILENETV2_MACS_224 / work


def table(names: list[str]) -> str:
    """The README's markdown table for the presets ``names``."""
    lines = [
        "| preset (GPU) | member | arch, px | starts | epochs x steps x batch | images | passes "
        "| est. images/s | est. hours |",
        "|---|---|---|---|---|---:|---:|---:|---:|",
    ]
    for preset in names:
        gpu, factor = PRESET_GPU[preset]
        for r in budgets(preset_params(preset), factor):
            rate = f"{r['rate']:,.0f}" if r["rate"] else "n/a"
            hours = f"{r['hours']:.1f}" if r["hours"] else "n/a"
            lines.append(
                f"| {preset} ({gpu}) | {r['member']} | {r['arch']}, {r['input']} | "
                f"{r['start']} | "
                f"{r['steps']} | {r['images'] / 1e6:.1f}M | {r['passes']:.2f} | {rate} | "
                f"{hours} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    names = sys.argv[1:] or sorted(p.stem for p in (ROOT / "presets").glob("kaggle-*.args"))
    print(table(names))
