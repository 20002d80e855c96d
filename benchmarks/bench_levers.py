"""The model levers on real drawings, side by side in one run, every arm through the
pipeline's own training and prediction code (``train_member`` / ``predict_member``, as the
train and predict stages call them), at least two seeds each:

* **warm start**: ``warm96``, a finetune member started from the default 64-px member
  ``base`` and trained on at 96 px, against ``scratch96``, the same member at 96 px from
  scratch, both for the same *added* budget of images;
* **pseudo-labels**: ``pl64``, finetuned from ``base`` at 64 px on the training shards plus
  the half of the test drawings ``base`` is most confident about, labelled by ``base``,
  against ``ft64``, the same finetune without them (same added budget);
* **a second family**: ``effv2``, EfficientNetV2-B0, against ``base`` (MobileNetV2 at
  alpha 0.5) at an equal number of images seen.

Scores: MAP@3 and accuracy on the set's labelled test file, and MAP@3 on the holdout (which
no arm trains on; for the pseudo arms it is the fair figure, since their test score is on
drawings they saw with the teacher's labels -- as on Kaggle, where pseudo-labelling the
test set it scores is allowed; test labels are read for scoring only).

    python benchmarks/bench_levers.py                      # dense-4, 2 seeds, ~1 h here
    python benchmarks/bench_levers.py --budget 20480 --seeds 1
    python benchmarks/bench_levers.py --markdown           # tables from reports/bench_levers.json

Writes ``reports/bench_levers.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from benchmarks.bench_quality import SETS, prepare  # noqa: E402
from doodle.cli import preload, setup_logging  # noqa: E402

BATCH = 128
CNN = "mobilenetv2_050"  # base, the warm-start and pseudo-label arms: MobileNetV2 alpha 0.5
# (name, section, overrides, budget: "base" = the base budget, "added" = the added one)
ARMS = [
    ("base", "members", {}, "base"),
    ("warm96", "finetune", {"init_from": "base", "img_size": 96}, "added"),
    ("scratch96", "members", {"img_size": 96}, "added"),
    ("ft64", "finetune", {"init_from": "base"}, "added"),
    ("pl64", "finetune", {"init_from": "base", "pseudo_share": 0.5}, "added"),
    ("effv2", "members", {"arch": "efficientnetv2b0"}, "base"),
]
COMPARISONS = [
    ("warm start at 96 px (same added budget)", "warm96", "scratch96"),
    ("pseudo-labels (finetune from base, same added budget)", "pl64", "ft64"),
    ("second family at equal images seen", "effv2", "base"),
]


def arm_params(seed: int, budgets: dict[str, int], arms: list[str]):
    """params.yaml with every arm as a member (or finetune member), for one seed."""
    from doodle.config import parse_params

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["seed"] = seed
    raw["arch"] = CNN  # the arms are MobileNetV2's, whatever params.yaml's default family
    raw["train"]["batch_size"] = BATCH
    raw["runtime"] |= {"verbose": 0, "checkpoint_every": 0, "workers": 2, "eval_batch_size": 512}
    raw["members"], raw["finetune"] = {}, {}
    for name, section, over, budget in ARMS:
        if name in arms:
            steps = budgets[budget] // BATCH
            epochs = 4 if budget == "base" else 2
            raw[section][name] = copy.deepcopy(over) | {
                "epochs": epochs,
                "steps_per_epoch": steps // epochs,
            }
    return parse_params(raw)


def run_arm(params, name: str, shards: Path, work: Path) -> dict:
    import keras

    from doodle.predict import predict_member
    from doodle.training.fit import TrainPaths, train_member
    from doodle.training.pseudo import SHARD, write_pseudo_labels

    cfg = params.member(name)
    parent = cfg.init_from
    paths = TrainPaths(
        shards=shards,
        tfrecord=work / "tfrecord",
        model_dir=work / "models" / name,
        live_dir=work / "dvclive" / name,
        init_model=work / "models" / parent / "model.keras" if parent else None,
        pseudo=work / "pseudo" / name / SHARD if cfg.pseudo_share else None,
    )
    if cfg.pseudo_share:  # what the pseudo@<name> stage writes
        teachers = {t: work / "predictions" / t / "test.npz" for t in cfg.pseudo_from}
        write_pseudo_labels(teachers, shards / "test.qds", cfg.pseudo_share, work / "pseudo" / name)
    t0 = time.perf_counter()
    summary = train_member(cfg, params.runtime, paths)
    seconds = time.perf_counter() - t0
    scores = predict_member(
        paths.model_dir / "model.keras",
        shards,
        work / "predictions" / name,
        cfg,
        params.runtime,
        tta_flip=False,
        tfrec_dir=work / "tfrecord",
    )
    with np.load(work / "predictions" / name / "test.npz") as f:
        accuracy = float((f["probs"].argmax(1) == f["label"]).mean())
    keras.backend.clear_session()
    images = cfg.epochs * cfg.steps_per_epoch * cfg.batch_size
    return {
        "arm": name,
        "seed": cfg.seed,
        "images": images,
        "test_map3": scores["test_map3"],
        "test_accuracy": round(accuracy, 4),
        "holdout_map3": scores["holdout_map3"],
        "train_seconds": round(seconds, 1),
        "images_per_s": round(float(summary.get("images_per_s", 0.0)), 1),
    }


def summarise(runs: list[dict]) -> dict:
    out = {}
    for name in dict.fromkeys(r["arm"] for r in runs):
        rs = [r for r in runs if r["arm"] == name]
        out[name] = {
            key: round(float(np.mean([r[key] for r in rs])), 4)
            for key in ("test_map3", "test_accuracy", "holdout_map3")
        } | {"seeds": len(rs), "images": rs[0]["images"]}
    return out


def markdown(report: dict) -> str:
    runs, seeds = report["runs"], sorted({r["seed"] for r in report["runs"]})
    by = {(r["arm"], r["seed"]): r for r in runs}
    lines = [
        f"{report['set']}: base budget {report['budgets']['base']:,} images, added budget "
        f"{report['budgets']['added']:,}; batch {BATCH}; seeds {', '.join(map(str, seeds))}.",
        "",
        "| comparison | arm | images | test MAP@3 per seed | mean | holdout MAP@3 (mean) |",
        "|---|---|---:|---|---:|---:|",
    ]
    for title, arm, baseline in COMPARISONS:
        for name in (arm, baseline):
            rs = [by[(name, s)] for s in seeds if (name, s) in by]
            if not rs:
                continue
            per_seed = ", ".join(f"{r['test_map3']:.4f}" for r in rs)
            lines.append(
                f"| {title if name == arm else ''} | {name} | {rs[0]['images']:,} | {per_seed} | "
                f"{np.mean([r['test_map3'] for r in rs]):.4f} | "
                f"{np.mean([r['holdout_map3'] for r in rs]):.4f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", default="dense4", choices=list(SETS))
    ap.add_argument("--budget", type=int, default=40_960, help="images seen by base and effv2")
    ap.add_argument("--added", type=int, default=20_480, help="images seen by the finetunes")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--arms", nargs="+", default=[a[0] for a in ARMS])
    ap.add_argument("--holdout", type=int, default=600)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "doodle-levers")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "bench_levers.json")
    ap.add_argument("--markdown", action="store_true", help="only print the tables of --out")
    args = ap.parse_args(argv)
    if args.markdown:
        report = json.loads(args.out.read_text())
        print(markdown(report))
        return report
    setup_logging()
    preload("keras")
    shards = prepare(SETS[args.set], args.workdir / args.set, args.holdout)
    budgets = {"base": args.budget, "added": args.added}
    arms = [a[0] for a in ARMS if a[0] in args.arms]
    runs = []
    for seed in range(args.seeds):
        params = arm_params(seed, budgets, arms)
        work = args.workdir / args.set / f"seed{seed}"
        for name in arms:  # base first: the finetune arms start from it
            runs.append(run_arm(params, name, shards, work))
            print(json.dumps(runs[-1]), flush=True)
    report = {
        "set": args.set,
        "budgets": budgets,
        "cpu_count": os.cpu_count(),
        "summary": summarise(runs),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
