"""Quality benchmark on real drawings: the project's default recipe against the reference
recipe, and the stroke-sequence family, at an equal budget of images seen.

Recipes (all on the same shards of a real set, the same training stream order per seed,
the same batch size, on this machine's CPU):

* ``default``   -- ``params.yaml``'s ``train`` section as the pipeline runs it (the
  renderer, MobileNetV2 at ``train.alpha``, AdamW on the one-cycle schedule, label
  smoothing, augmentation, BatchNorm momentum ``train.bn_momentum``);
* ``reference`` -- the recipe of the public kernels the competition's anchors come from,
  re-implemented: ``cv2.line`` of width 6 on a 256-px canvas, stroke ``t`` in grey
  ``255 - min(t, 10) * 13``, resized with ``cv2.resize``; Keras MobileNetV2 (alpha 1.0,
  from scratch, Keras' own BatchNorm momentum 0.999); Adam at a fixed learning rate of
  0.002; no augmentation, no label smoothing;
* ``lstm``      -- the stroke-sequence family (``arch: lstm``) with ``train``'s recipe.

Each run trains for ``--budget`` images seen, in ``--points`` equal segments; after each
segment the model is scored on the set's labelled test file (top-1 accuracy and MAP@3):
the learning curve. Every recipe runs with each of ``--seeds`` (weights and stream order);
the spread between seeds is reported. The last seed-0 models of ``default`` and ``lstm``
then predict the holdout and the test file, and the pipeline's ensemble (blend / stack
fitted and chosen on the holdout only) is scored on the test file against each member.

    python benchmarks/bench_quality.py                   # both sets, ~1 h on 2 CPU cores
    python benchmarks/bench_quality.py --sets dense4 --budget 20000 --seeds 1

``--variant NAME=key:value[,key:value]`` adds the default recipe with some keys changed
(tuning on real drawings: ``--recipes default --variant lr4=learning_rate:0.004``).

Writes ``reports/bench_quality.json`` and one picture per set,
``reports/bench_quality_<set>.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import numpy as np  # noqa: E402

from benchmarks.shared_data import SHARED  # noqa: E402
from doodle.cli import preload, setup_logging  # noqa: E402  (quiet TensorFlow start-up)

SETS = {"dense4": SHARED / "quickdraw-real-dense4", "sample": SHARED / "quickdraw-real-sample"}
RECIPES = ("default", "reference", "lstm")
REFERENCE_LR = 0.002


# -- data -------------------------------------------------------------------------------------
def prepare(set_dir: Path, work: Path, holdout: int) -> Path:
    """The set sharded as the shard stage does it (cached in ``work``)."""
    from doodle.data.sharding import shard_dataset

    out = work / "shards"
    if not (out / "classes.json").is_file():
        shard_dataset(
            set_dir, out, n_shards=4, val_size=holdout, seed=0, report_path=work / "shard.json"
        )
    return out


def reference_dataset_class():
    """DrawingDataset with the reference renderer: the same stream, cv2 lines (no augment)."""
    from benchmarks.reference import reference_strokes_image
    from doodle.training.dataset import DrawingDataset

    class ReferenceDataset(DrawingDataset):
        def encode(self, drawings, rows, affine, drop, drop_seed):
            return np.stack(
                [reference_strokes_image(drawings.strokes(int(r)), self.img_size) for r in rows]
            )[..., None]

    return ReferenceDataset


# -- models -----------------------------------------------------------------------------------
def reference_model(img_size: int, n_classes: int):
    import keras

    inputs = keras.Input((img_size, img_size, 1), dtype="uint8")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)  # MobileNetV2's input range
    net = keras.applications.MobileNetV2(
        input_shape=(img_size, img_size, 1), alpha=1.0, weights=None, classes=n_classes
    )
    model = keras.Model(inputs, net(x))
    model.compile(
        optimizer=keras.optimizers.Adam(REFERENCE_LR),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


# Variants of the default recipe (``--variant``): name -> {member key: value}, where a key
# ``augment.<knob>`` sets one augmentation strength.
VARIANTS: dict[str, dict] = {}


def parse_variant(text: str) -> tuple[str, dict]:
    """``lr4=learning_rate:0.004,augment.flip:0`` -> ("lr4", {...}) (values read as YAML)."""
    import yaml

    name, _, body = text.partition("=")
    over = {}
    for item in filter(None, body.split(",")):
        key, _, value = item.partition(":")
        over[key.strip()] = yaml.safe_load(value)
    if not name or not over:
        raise SystemExit(f"--variant {text!r}: expected NAME=key:value[,key:value]")
    return name, over


def member(recipe: str, seed: int, steps: int, points: int):
    """The pipeline's member config for ``recipe`` (params.yaml's train section)."""
    from doodle.config import load_params

    params = load_params(ROOT / "params.yaml")
    cfg = params.member(next(iter(params.members)))
    # default: params.yaml's recipe on MobileNetV2 alpha 0.5 (whatever its default family)
    over = {
        "seed": seed,
        "epochs": points,
        "steps_per_epoch": steps // points,
        "arch": "mobilenetv2_050",
    }
    if recipe == "lstm":
        over |= {"arch": "lstm", "alpha": 1.0}
    augment = {}
    for key, value in VARIANTS.get(recipe, {}).items():
        if key.startswith("augment."):
            augment[key.removeprefix("augment.")] = float(value)
        else:
            over[key] = type(getattr(cfg, key))(value) if getattr(cfg, key) is not None else value
    if augment:
        over["augment"] = dataclasses.replace(cfg.augment, **augment)
    return dataclasses.replace(cfg, **over)


# -- one run ----------------------------------------------------------------------------------
def score(probs: np.ndarray, labels: np.ndarray) -> dict:
    from doodle.metrics import map3, top_k

    return {
        "accuracy": float((top_k(probs, 1)[:, 0] == labels).mean()),
        "map3": float(map3(probs, labels)),
    }


def train_run(
    recipe: str, shards: Path, seed: int, budget: int, points: int, batch: int
) -> tuple[dict, object, object]:
    """Train one recipe; returns (record, model, config) with the test curve."""
    import keras

    from doodle.data.shards import open_shard, read_classes, train_shard_paths
    from doodle.rendering.augment import NO_AUGMENT
    from doodle.training.dataset import member_dataset, sequence_features
    from doodle.training.schedule import compile_model

    keras.utils.set_random_seed(seed)
    n_classes = len(read_classes(shards))
    steps = budget // batch // points * points
    cfg = member(recipe, seed, steps, points)
    cfg = dataclasses.replace(cfg, batch_size=batch)
    stream = dict(
        batch_size=batch,
        training=True,
        seed=seed,
        shuffle_buffer=cfg.shuffle_buffer,
        steps_per_epoch=steps // points,
        n_classes=n_classes,
        workers=2,
    )
    test_labels = open_shard(shards / "test.qds").label.astype(np.int64)
    train_paths, test_path = train_shard_paths(shards), [shards / "test.qds"]
    if recipe == "reference":
        ref = reference_dataset_class()
        model = reference_model(cfg.img_size, n_classes)

        image = dict(img_size=cfg.img_size, encoding="grey", line_width=6.0)  # as the kernels

        def make_train(epoch: int):
            return ref(train_paths, epoch=epoch, augment=NO_AUGMENT, **image, **stream)

        test = ref(test_path, batch_size=256, n_classes=n_classes, workers=2, **image)
    else:
        features = sequence_features(train_paths)
        model = compile_model(cfg, n_classes, "cpu", cfg.learning_rate, features)

        def make_train(epoch: int):
            return member_dataset(cfg, train_paths, epoch=epoch, augment=cfg.augment, **stream)

        test = member_dataset(cfg, test_path, batch_size=256, n_classes=n_classes, workers=2)
    curve, seconds = [], 0.0
    for point in range(points):
        t0 = time.perf_counter()
        history = model.fit(
            make_train(point), shuffle=False, initial_epoch=point, epochs=point + 1, verbose=0
        )
        took = time.perf_counter() - t0
        seconds += took
        figures = score(model.predict(test, verbose=0), test_labels)
        # in-sample, on the segment's training batches: shows learning even where
        # inference lags (BatchNorm moving statistics not settled yet)
        train_acc = float(history.history["accuracy"][-1])
        curve.append(
            {
                "images": (point + 1) * (steps // points) * batch,
                **figures,
                "train_accuracy": round(train_acc, 4),
                "seconds": round(took, 1),
            }
        )
        print(
            f"  {recipe} seed {seed}: {curve[-1]['images']:>7,} images  "
            f"acc {figures['accuracy']:.4f}  MAP@3 {figures['map3']:.4f}",
            flush=True,
        )
    # throughput after the first segment, which also pays for graph tracing
    steady = curve[-1]["images"] - curve[0]["images"]
    record = {
        "recipe": recipe,
        "seed": seed,
        "curve": curve,
        "train_seconds": round(seconds, 1),
        "images_per_s": round(steady / max(seconds - curve[0]["seconds"], 1e-9), 1)
        if points > 1
        else round(curve[-1]["images"] / seconds, 1),
        "params": model.count_params(),
    }
    return record, model, cfg


def ensemble_check(models: dict, shards: Path, work: Path) -> dict:
    """Each member predicts holdout and test; the pipeline's ensemble is fitted and chosen
    on the holdout, then every member and the ensemble are scored on the test file."""
    from doodle.config import load_params
    from doodle.data.shards import read_classes
    from doodle.ensemble.choose import run_ensemble
    from doodle.metrics import map3
    from doodle.predict import predict_split, save_predictions

    classes = read_classes(shards)
    paths: dict[str, list[Path]] = {"holdout": [], "test": []}
    test_scores = {}
    for name, (model, cfg) in models.items():
        for split in paths:
            probs, data = predict_split(
                model,
                shards / f"{split}.qds",
                cfg,
                batch_size=256,
                tta_flip=False,
                workers=2,
                n_classes=len(classes),
                tfrec_dir=work / "tfrecord",
            )
            path = work / "predictions" / name / f"{split}.npz"
            path.parent.mkdir(parents=True, exist_ok=True)
            save_predictions(path, probs, data, classes)
            paths[split].append(path)
            if split == "test":
                test_scores[name] = float(map3(probs, data.column("label")))
    cfg = load_params(ROOT / "params.yaml").ensemble
    result = run_ensemble(paths["holdout"], paths["test"], cfg, names=list(models))
    m = result.metrics
    return {
        "members_test_map3": test_scores,
        "final": m["final"],
        "ensemble_test_map3": m["test_map3"],
        "holdout_map3": m["holdout_map3"],
        "blend_weights": m["blend_weights"],
        "rows": m["rows"],
    }


# -- summary and picture ----------------------------------------------------------------------
def summarise(runs: list[dict]) -> dict:
    out = {}
    for recipe in sorted({r["recipe"] for r in runs}):
        rs = [r for r in runs if r["recipe"] == recipe]
        last = np.array([[r["curve"][-1]["accuracy"], r["curve"][-1]["map3"]] for r in rs])
        out[recipe] = {
            "seeds": len(rs),
            "images": rs[0]["curve"][-1]["images"],
            "accuracy_mean": round(float(last[:, 0].mean()), 4),
            "map3_mean": round(float(last[:, 1].mean()), 4),
            "map3_spread": round(float(last[:, 1].max() - last[:, 1].min()), 4),
            "accuracy_spread": round(float(last[:, 0].max() - last[:, 0].min()), 4),
            "images_per_s": round(float(np.mean([r["images_per_s"] for r in rs])), 1),
        }
    return out


def draw(name: str, runs: list[dict], png: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    colours = {"default": "tab:blue", "reference": "tab:orange", "lstm": "tab:green"}
    for i, recipe in enumerate(dict.fromkeys(r["recipe"] for r in runs)):
        rs = [r for r in runs if r["recipe"] == recipe]
        colour = colours.get(recipe, f"C{i + 3}")
        x = [p["images"] for p in rs[0]["curve"]]
        y = np.array([[p["map3"] for p in r["curve"]] for r in rs])
        ax.plot(
            x,
            y.mean(0),
            marker="o",
            color=colour,
            label=f"{recipe} ({len(rs)} seed{'s' if len(rs) > 1 else ''})",
        )
        if len(rs) > 1:
            ax.fill_between(x, y.min(0), y.max(0), color=colour, alpha=0.2)
    ax.set_xlabel("training images seen")
    ax.set_ylabel("test MAP@3")
    top = max(p["map3"] for r in runs for p in r["curve"])
    ax.set_ylim(0, 1 if top > 0.5 else max(0.05, top * 1.25))  # small scores stay readable
    ax.grid(alpha=0.3)
    ax.set_title(f"{name}: test MAP@3 against images seen\n(band: min-max over seeds)")
    ax.legend(loc="best")
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)


def markdown(report: dict) -> str:
    """The tables BENCHMARKS.md shows, from a report."""
    lines = []
    for name, entry in report["sets"].items():
        lines += [
            f"**{name}** ({entry['budget']:,} images seen a run, {entry['seeds']} "
            "seed(s), test file scores; spread = max - min over seeds)",
            "",
            "| recipe | test accuracy | test MAP@3 | MAP@3 spread | images/s |",
            "|---|---:|---:|---:|---:|",
        ]
        for recipe, sm in entry["summary"].items():
            lines.append(
                f"| {recipe} | {sm['accuracy_mean']:.4f} | {sm['map3_mean']:.4f} | "
                f"{sm['map3_spread']:.4f} | {sm['images_per_s']:,.0f} |"
            )
        lines += [
            "",
            "| recipe, seed | "
            + " | ".join(f"{p['images']:,}" for p in entry["runs"][0]["curve"])
            + " |",
            "|---|" + "---:|" * len(entry["runs"][0]["curve"]),
        ]
        for r in entry["runs"]:
            lines.append(
                f"| {r['recipe']} {r['seed']} | "
                + " | ".join(f"{p['map3']:.3f} ({p['train_accuracy']:.2f})" for p in r["curve"])
                + " |"
            )
        ens = entry.get("ensemble")
        if ens:
            members = ", ".join(f"{k} {v:.4f}" for k, v in ens["members_test_map3"].items())
            lines += [
                "",
                f"Ensemble (seed 0 members; fitted and chosen on the holdout's fit "
                f"rows): `{ens['final']}`, test MAP@3 **{ens['ensemble_test_map3']:.4f}**"
                f" vs members {members}; blend weights {ens['blend_weights']}.",
            ]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    ap.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=RECIPES)
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        help="also run the default recipe with overrides: "
        "NAME=key:value[,key:value], e.g. lr4=learning_rate:0.004",
    )
    ap.add_argument("--budget", type=int, default=48_000, help="training images seen per run")
    ap.add_argument("--points", type=int, default=4, help="learning-curve points per run")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--holdout", type=int, default=600, help="holdout rows (the ensemble's)")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "doodle-quality")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "bench_quality.json")
    ap.add_argument(
        "--markdown",
        action="store_true",
        help="only print the tables and redraw the pictures of an existing --out report",
    )
    args = ap.parse_args(argv)
    if args.markdown:
        report = json.loads(args.out.read_text())
        for name, entry in report["sets"].items():
            draw(name, entry["runs"], args.out.parent / f"{args.out.stem}_{name}.png")
        print(markdown(report))
        return report

    VARIANTS.update(parse_variant(v) for v in args.variant)
    setup_logging()
    preload("keras")
    # sets run now replace their entries; others (run with other budgets) are kept
    report: dict = {"sets": {}}
    if args.out.is_file():
        report = json.loads(args.out.read_text())
    report |= {"batch": args.batch, "cpu_count": os.cpu_count()}
    for name in args.sets:
        set_dir = SETS[name]
        if not set_dir.is_dir():
            print(f"{name}: {set_dir} not found, skipped")
            continue
        work = args.workdir / name
        shards = prepare(set_dir, work, args.holdout)
        print(f"{name}: {set_dir}", flush=True)
        runs, models = [], {}
        for recipe in [*args.recipes, *VARIANTS]:
            for seed in range(args.seeds):
                record, model, cfg = train_run(
                    recipe, shards, seed, args.budget, args.points, args.batch
                )
                runs.append(record)
                if seed == 0 and recipe in ("default", "lstm"):
                    models[recipe] = (model, cfg)
        entry = {
            "budget": args.budget,
            "points": args.points,
            "seeds": args.seeds,
            "holdout": args.holdout,
            "summary": summarise(runs),
            "runs": runs,
        }
        if len(models) == 2:
            entry["ensemble"] = ensemble_check(models, shards, work)
        png = args.out.parent / f"{args.out.stem}_{name}.png"
        draw(name, runs, png)
        entry["picture"] = str(png.relative_to(ROOT)) if png.is_relative_to(ROOT) else str(png)
        report["sets"][name] = entry
        print(json.dumps({name: entry["summary"], "ensemble": entry.get("ensemble")}, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
