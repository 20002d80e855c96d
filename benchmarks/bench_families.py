"""Model families and levers beyond the public code, side by side in one run on the real sets:
the stroke-to-grid family against the default CNN and the lstm family, the weights' moving
average, and the drawing's country (members and stacker). Every arm goes through the
pipeline's own training and prediction (``train_member`` / ``predict_member``, as the train
and predict stages call them), with every seed, on the same shards:

* **families at equal images seen**: ``cnn`` (MobileNetV2 alpha 0.5 at 64 px, the default
  of the time), ``lstm``, ``strokegrid``; then **at equal time**: each other family again
  with the images ``cnn``'s training time buys it at its own speed measured just before
  (``<family>_time``: fewer images for a slower family, more for a faster one);
* **EMA**: ``cnn_ema`` and ``<best>_ema`` (``train.ema``), the best family being the one
  with the best mean test MAP@3 at equal images on that set;
* **country** (the real sample only: dense-4's codes are placeholders): ``cnn_country``
  and ``<best>_country`` (``train.country``), and the stacker over the three families'
  predictions with and without the country feature (``ensemble.stack_features``), fitted
  and scored by the ensemble stage's own code on the holdout's fit and score rows (the
  stack method forced, so the figure is the stacker's), then scored on the test file.

Scores: MAP@3 on the set's labelled test file (never trained on; test labels read for
scoring only) and on the holdout; training images/s (the last epoch's, after tracing).

    python benchmarks/bench_families.py                 # both sets, 2 seeds (~50 min here)
    python benchmarks/bench_families.py --sets dense4 --seeds 1 --budget dense4=8192
    python benchmarks/bench_families.py --markdown      # tables from reports/bench_families.json

Writes ``reports/bench_families.json``.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from benchmarks.bench_levers import run_arm  # noqa: E402
from benchmarks.bench_quality import SETS, prepare  # noqa: E402
from doodle.cli import preload, setup_logging  # noqa: E402

BATCH = 128
EPOCHS = 4
FAMILIES = {
    "cnn": {"arch": "mobilenetv2_050"},
    "lstm": {"arch": "lstm"},
    "strokegrid": {"arch": "strokegrid"},
}
# images seen by every equal-images arm of a set (dense-4: 5,400 training drawings; the
# sample: 4,485 over 339 classes)
BUDGETS = {"dense4": 16_384, "sample": 12_800}
EMA = 0.95  # a ~20-step window: the last sixth of these 100-128-step runs


def member_params(seed: int, members: dict[str, dict]):
    """params.yaml with ``members`` (name -> overrides incl. epochs/steps), for one seed."""
    from doodle.config import parse_params

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["seed"] = seed
    raw["train"]["batch_size"] = BATCH
    raw["runtime"] |= {"verbose": 0, "checkpoint_every": 0, "workers": 2, "eval_batch_size": 512}
    raw["members"], raw["finetune"] = copy.deepcopy(members), {}
    return parse_params(raw)


def budget_overrides(images: int) -> dict:
    steps = max(EPOCHS, images // BATCH // EPOCHS * EPOCHS)
    return {"epochs": EPOCHS, "steps_per_epoch": steps // EPOCHS}


def train(seed: int, name: str, over: dict, images: int, shards: Path, work: Path) -> dict:
    params = member_params(seed, {name: over | budget_overrides(images)})
    run = run_arm(params, name, shards, work)
    run |= {"overrides": over}
    print(json.dumps(run), flush=True)
    return run


def best_family(runs: list[dict]) -> str:
    means = {f: np.mean([r["test_map3"] for r in runs if r["arm"] == f]) for f in FAMILIES}
    return max(means, key=means.get)


def stack_compare(work: Path, members: list[str]) -> dict:
    """The stacker over ``members``' predictions with and without the country feature, as
    the ensemble stage fits and scores it (stack method forced)."""
    import dataclasses

    from doodle.config import load_params
    from doodle.ensemble.choose import run_ensemble

    base = load_params(ROOT / "params.yaml").ensemble
    out = {}
    for label, features in (("with_country", ("strokes", "country")), ("without", ("strokes",))):
        cfg = dataclasses.replace(base, final="stack", stack_features=features)
        r = run_ensemble(
            [work / "predictions" / m / "holdout.npz" for m in members],
            [work / "predictions" / m / "test.npz" for m in members],
            cfg,
            members,
        )
        out[label] = {
            "holdout_map3": round(r.metrics["holdout_map3"], 4),
            "test_map3": round(r.metrics["test_map3"], 4),
            "score_rows": r.metrics["rows"]["score"],
            "fit_rows": r.metrics["rows"]["fit"],
        }
    return out


def run_set(name: str, seeds: int, budget: int, holdout: int, workdir: Path) -> dict:
    shards = prepare(SETS[name], workdir / name, holdout)
    runs: list[dict] = []
    stacks = {}
    for seed in range(seeds):
        work = workdir / name / f"seed{seed}"
        for family, over in FAMILIES.items():
            runs.append(train(seed, family, over, budget, shards, work))
        cnn = next(r for r in runs if r["arm"] == "cnn" and r["seed"] == seed)
        for family, over in FAMILIES.items():  # equal time: cnn's seconds at their speed
            mine = next(r for r in runs if r["arm"] == family and r["seed"] == seed)
            if family != "cnn":
                images = int(budget * mine["images_per_s"] / cnn["images_per_s"])
                runs.append(train(seed, f"{family}_time", over, images, shards, work))
        if name == "sample":
            stacks[seed] = stack_compare(work, list(FAMILIES))
    best = best_family(runs)
    for seed in range(seeds):
        work = workdir / name / f"seed{seed}"
        levers = [("cnn_ema", FAMILIES["cnn"] | {"ema": EMA})]
        if best != "cnn":
            levers.append((f"{best}_ema", FAMILIES[best] | {"ema": EMA}))
        if name == "sample":
            levers.append(("cnn_country", FAMILIES["cnn"] | {"country": True}))
            if best != "cnn":
                levers.append((f"{best}_country", FAMILIES[best] | {"country": True}))
        for arm, over in levers:
            runs.append(train(seed, arm, over, budget, shards, work))
    return {"budget": budget, "best_family": best, "runs": runs, "stack": stacks}


def markdown(report: dict) -> str:
    lines = []
    for name, res in report["sets"].items():
        runs = res["runs"]
        seeds = sorted({r["seed"] for r in runs})
        lines += [
            "",
            f"**{name}**: {res['budget']:,} images for the equal-images arms, batch {BATCH}, "
            f"{EPOCHS} epochs, seeds {', '.join(map(str, seeds))}; best family at equal "
            f"images: {res['best_family']}.",
            "",
            "| arm | images | test MAP@3 per seed | mean | holdout MAP@3 (mean) | train images/s "
            "(mean) | train s (mean) |",
            "|---|---:|---|---:|---:|---:|---:|",
        ]
        for arm in dict.fromkeys(r["arm"] for r in runs):
            rs = sorted((r for r in runs if r["arm"] == arm), key=lambda r: r["seed"])
            images = ", ".join(f"{r['images']:,}" for r in rs)
            per_seed = ", ".join(f"{r['test_map3']:.4f}" for r in rs)
            lines.append(
                f"| {arm} | {images} | {per_seed} | "
                f"{np.mean([r['test_map3'] for r in rs]):.4f} | "
                f"{np.mean([r['holdout_map3'] for r in rs]):.4f} | "
                f"{np.mean([r['images_per_s'] for r in rs]):.0f} | "
                f"{np.mean([r['train_seconds'] for r in rs]):.0f} |"
            )
        if res["stack"]:
            lines += [
                "",
                "| stacker over cnn + lstm + strokegrid (stack forced) | seed | holdout MAP@3 "
                "(score rows) | test MAP@3 |",
                "|---|---:|---:|---:|",
            ]
            for seed, st in sorted(res["stack"].items()):
                for label in ("with_country", "without"):
                    s = st[label]
                    lines.append(
                        f"| {label.replace('_', ' ')} | {seed} | {s['holdout_map3']:.4f} "
                        f"({s['score_rows']} rows) | {s['test_map3']:.4f} |"
                    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", default=list(BUDGETS), choices=list(SETS))
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument(
        "--budget", nargs="*", default=[], help="SET=IMAGES: the equal-images budget of a set"
    )
    ap.add_argument("--holdout", type=int, default=600)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "doodle-families")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "bench_families.json")
    ap.add_argument("--markdown", action="store_true", help="only print the tables of --out")
    args = ap.parse_args(argv)
    if args.markdown:
        report = json.loads(args.out.read_text())
        print(markdown(report))
        return report
    budgets = BUDGETS | {k: int(v) for k, v in (b.split("=") for b in args.budget)}
    setup_logging()
    preload("keras")
    t0 = time.time()
    report = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
        "ema": EMA,
        "sets": {},
    }
    for name in args.sets:
        report["sets"][name] = run_set(name, args.seeds, budgets[name], args.holdout, args.workdir)
    report["minutes"] = round((time.time() - t0) / 60, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    print(f"wrote {args.out} ({report['minutes']} min)")
    return report


if __name__ == "__main__":
    main()
