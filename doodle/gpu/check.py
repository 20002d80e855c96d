"""``make gpu-check`` (``python -m doodle.gpu.check``): is the GPU fed? One command that
answers it on a GPU box.

Under either engine (``KERAS_BACKEND=jax`` needs no TensorFlow, no DVC, no dvclive), on
synthetic shards written by the project's own shard code, with the precision
``train.mixed_precision: auto`` picks (``doodle.training.hardware.set_precision``) and the
XLA setting ``train.jit: auto`` picks:

1. **resident**: train-step images/s of MobileNetV2 (alpha 1.0) at 64 and 128 px on a few
   batches rendered once (JAX: already on the device; TensorFlow: in memory), through the
   same PyDataset path and ``model.fit`` loop as training;
2. **fed**: the same model fed by the real loader (``DrawingDataset`` over the shards,
   augmentation on) with 1, 4 and all loader workers; *feed ratio* = fed / resident
   (1.0: the loader costs nothing; 0.5: the GPU waits half the time). Beside it the
   project's own input-wait figure (``doodle.training.input_wait``) and the GPU
   utilisation ``nvidia-smi`` sampled during the window;
3. **loader alone**: the loader's images/s without a model (1 and all workers), and the
   arithmetic of how many workers feed the resident step rate;
4. **training**: MobileNetV2 at 128 px trained from scratch for about 2 minutes (compiling,
   90 s of steps, the holdout evaluated each epoch; all workers): its loss must fall
   (checked: exit 1 if not).

Writes ``reports/gpu_check.json`` (atomically) and a Markdown table (printed, and
``<out>.md``) to paste into BENCHMARKS.md. On an accelerator the whole check takes about
7 minutes (an estimate; BENCHMARKS.md, GPU); on a machine without a GPU (or with
``--tiny``) it runs a tiny version of the same steps (small batches, short windows; its
figures only prove the plumbing). Where nvidia-smi lists a GPU that the backend cannot
see, it stops with the train stage's one line (what is listed, what the backend sees, the
fix) instead: a tiny CPU run there would answer the wrong question (``--tiny`` or
``DOODLE_ALLOW_CPU=1`` runs it anyway).

    python -m doodle.gpu.check                   # full on a GPU, tiny on a CPU
    python -m doodle.gpu.check --tiny --out /tmp/gpu_check.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from doodle.gpu import nvidia

ROOT = Path(__file__).resolve().parents[2]  # the project: params.yaml, reports/
if nvidia.list_gpus():  # a GPU box: CUDA's warnings and errors may say why it idles
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402  (the backend comes from KERAS_BACKEND)
import numpy as np  # noqa: E402

# (full, tiny) settings; the command line overrides any of them.
MODES = {
    "full": dict(
        sizes=(64, 128),
        batch=256,
        classes=24,
        per_class=1000,
        window_s=8.0,
        warmup_steps=15,
        loader_s=3.0,
        train_s=90.0,  # of steps; with compiling and the holdout about 2 minutes
        min_train_steps=4,  # a step count of each epoch, whatever the measured rate
        train_epochs=4,
        val_size=2400,
    ),
    "tiny": dict(
        sizes=(64, 128),
        batch=8,
        classes=6,
        per_class=60,
        window_s=1.5,
        warmup_steps=2,
        loader_s=0.5,
        train_s=8.0,
        # at least 15 steps an epoch: on a loaded CPU 8 s gave 7 (the figures mean nothing
        # here; a loss that did not fall is reported, not failed on: see main)
        min_train_steps=15,
        train_epochs=3,
        val_size=48,
    ),
}
FED_SHARE = 0.9  # a feed ratio at or above this: the loader keeps up
MAX_STEPS = 10**7  # training streams are "endless": windows end on time


_T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"gpu-check [{time.perf_counter() - _T0:5.0f}s]: {msg}", flush=True)


# -- the machine ------------------------------------------------------------------------
def machine(kind: str, count: int) -> dict:
    import importlib.metadata as md
    import importlib.util

    from doodle.training.input_wait import cpu_cores

    info: dict = {
        "backend": keras.backend.backend(),
        "accelerator": kind,
        "accelerators": count,
        "cores": cpu_cores(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "tensorflow_importable": importlib.util.find_spec("tensorflow") is not None,
    }
    for pkg in ("keras", "jax", "jaxlib", "tensorflow", "numpy", "numba"):
        try:
            if pkg != "tensorflow" or info["tensorflow_importable"]:
                info[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpus = nvidia.list_gpus()
    if gpus:
        info["gpus"] = [
            {
                "name": g.name,
                "memory_mib": g.memory_mib,
                "driver": g.driver,
                "compute_capability": ".".join(map(str, g.compute_capability or ())) or None,
            }
            for g in gpus
        ]
    if info["backend"] == "jax":
        import jax

        d = jax.devices()[0]
        info["device"] = str(getattr(d, "device_kind", d.platform))
        cc = getattr(d, "compute_capability", None)
        if cc:
            info["compute_capability"] = str(cc)
    elif info["backend"] == "tensorflow" and kind == "gpu":
        import tensorflow as tf

        details = tf.config.experimental.get_device_details(
            tf.config.list_physical_devices("GPU")[0]
        )
        info["device"] = details.get("device_name")
        if details.get("compute_capability"):
            info["compute_capability"] = ".".join(map(str, details["compute_capability"]))
    return info


# -- the data and the model -------------------------------------------------------------
def make_shards(workdir: Path, classes: int, per_class: int, val_size: int) -> Path:
    """Synthetic drawings in Kaggle's layout, sharded by the shard stage's own code."""
    from doodle.data.sharding import shard_dataset
    from doodle.data.synthetic import write_synthetic

    write_synthetic(workdir / "raw", per_class, 2, seed=7, n_classes=classes)
    out = workdir / "shards"
    shard_dataset(
        workdir / "raw",
        out,
        n_shards=4,
        val_size=val_size,
        seed=0,
        report_path=workdir / "shard.json",
        workers=1,  # a worker process costs more to start than these few drawings take
    )
    return out


def member(s: dict, img_size: int, epochs: int = 1, steps: int = 100):
    """The default member of params.yaml as a GPU run uses it: MobileNetV2 (``s["arch"]``),
    alpha 1.0, ``mixed_precision: auto``, ``jit: auto`` (``s["jit"]``); graph mode."""
    import yaml

    from doodle.config import parse_params

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["img_size"] = img_size
    raw["arch"] = s["arch"]
    raw["train"].update(
        alpha=1.0,
        batch_size=s["batch"],
        epochs=epochs,
        steps_per_epoch=steps,
        mixed_precision="auto",
        jit=s["jit"],
        steps_per_execution=1,
        weights=None,
    )
    raw["runtime"].update(eager=False)
    params = parse_params(raw, "params.yaml (gpu-check)")
    return params.member("base"), params.runtime


def training_stream(shards: Path, cfg, n_classes: int, workers: int, steps: int = MAX_STEPS):
    from doodle.data.shards import train_shard_paths
    from doodle.training.dataset import member_dataset

    return member_dataset(
        cfg,
        train_shard_paths(shards),
        batch_size=cfg.batch_size,
        training=True,
        seed=cfg.seed,
        augment=cfg.augment,
        shuffle_buffer=cfg.shuffle_buffer,
        steps_per_epoch=steps,
        workers=workers,
        n_classes=n_classes,
    )


def resident_data(stream, n: int = 4):
    """``n`` real batches rendered once and served round and round through a PyDataset (the
    path the loader takes, without its work): on JAX placed on the device first (Keras
    hands device arrays to the step as they are); on TensorFlow numpy arrays in memory
    (``from_generator`` and the copy to the GPU stay in each step, as with the loader)."""
    batches = [stream.batch_at(0, i) for i in range(n)]
    if keras.backend.backend() == "jax":
        import jax

        batches = [tuple(jax.device_put(a) for a in b) for b in batches]

    class Resident(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=1)

        @property
        def num_batches(self):
            return MAX_STEPS

        def __getitem__(self, i):
            return batches[i % len(batches)]

    return Resident()


class Window(keras.callbacks.Callback):
    """Skip ``warmup`` steps (compiling, filling the loader's queue), then time ``seconds``
    of steps and stop training; the input-wait count restarts with the window."""

    def __init__(self, warmup: int, seconds: float, batch: int, wait=None):
        super().__init__()
        self.warmup, self.seconds, self.batch, self.wait = warmup, seconds, batch, wait
        self.t0 = self.t1 = None
        self.n = 0

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if batch + 1 == self.warmup:
            self.t0 = now
            if self.wait is not None:
                self.wait.restart_epoch()
        elif self.t0 is not None:
            self.n += 1
            if now - self.t0 >= self.seconds:
                self.t1 = now
                self.model.stop_training = True

    @property
    def images_per_s(self) -> float:
        if self.t0 is None or not self.n:
            return math.nan
        return self.n * self.batch / ((self.t1 or time.perf_counter()) - self.t0)


def timed_fit(model, data, batch: int, warmup: int, seconds: float, wait=None) -> dict:
    """Train on ``data`` for ``warmup`` steps plus ``seconds``; images/s of the window."""
    win = Window(warmup, seconds, batch, wait)
    callbacks = [win] if wait is None else [win, wait, wait.stamps()]
    model.fit(
        data,
        epochs=1,
        callbacks=callbacks,
        verbose=0,
        shuffle=False,
    )
    out = {"images_per_s": round(win.images_per_s, 1), "steps": win.n, "t0": win.t0}
    out["t1"] = win.t1 or time.perf_counter()
    if wait is not None and not math.isnan(wait.own[0]):
        out["input_wait"] = round(wait.own[0], 4)
    return out


# -- the check --------------------------------------------------------------------------
def check_size(size: int, shards: Path, n_classes: int, s: dict, kind: str, util) -> dict:
    from doodle.gpu.feed import cores_to_feed, loader_rate
    from doodle.models.sequences import FEATURES  # (an image model: no sequence input)
    from doodle.training.input_wait import InputWait
    from doodle.training.multiworker import build_for_input
    from doodle.training.schedule import compile_model

    cfg, _ = member(s, size)
    model = compile_model(cfg, n_classes, kind, cfg.learning_rate, len(FEATURES))
    probe = training_stream(shards, cfg, n_classes, 1)
    build_for_input(model, probe)  # fit reads no set-up batch
    log(f"{size} px: {s['arch']} alpha 1.0, {model.count_params():,} params, batch {s['batch']}")

    res: dict = {"params": model.count_params()}
    t = time.perf_counter()
    r = timed_fit(model, resident_data(probe), s["batch"], s["warmup_steps"], s["window_s"])
    res["resident"] = {"images_per_s": r["images_per_s"], "steps": r["steps"]}
    res["resident"] |= util.stats(r["t0"], r["t1"])
    res["resident"]["seconds_with_compile"] = round(time.perf_counter() - t, 1)
    log(f"{size} px: resident batches: {r['images_per_s']:,.0f} images/s")

    fed: dict = {}
    for w in s["workers"]:
        wait = InputWait(MAX_STEPS)
        stream = training_stream(shards, cfg, n_classes, w)
        f = timed_fit(model, stream, s["batch"], s["warmup_steps"], s["window_s"], wait)
        ratio = f["images_per_s"] / max(r["images_per_s"], 1e-9)
        fed[str(w)] = {
            "images_per_s": f["images_per_s"],
            "steps": f["steps"],
            "feed_ratio": round(ratio, 3),
            **({"input_wait": f["input_wait"]} if "input_wait" in f else {}),
            **util.stats(f["t0"], f["t1"]),
        }
        log(
            f"{size} px: fed by the loader, {w} worker(s): {f['images_per_s']:,.0f} images/s, "
            f"feed ratio {ratio:.2f}, input wait {f.get('input_wait', math.nan):.1%}"
        )
    res["fed"] = fed

    alone: dict = {}
    for w in sorted({1, max(s["workers"])}):
        wall, cpu = loader_rate(training_stream(shards, cfg, n_classes, w), s["loader_s"])
        alone[str(w)] = {"images_per_s": round(wall, 1), "images_per_cpu_s": round(cpu, 1)}
    res["loader_alone"] = alone
    per_core = alone["1"]["images_per_cpu_s"]
    res["arithmetic"] = {
        "what": "resident images/s / loader images per CPU-second (1 worker): cores the "
        "loader needs at that step rate, linear scaling assumed (arithmetic, not measured)",
        "cores_to_feed": float(f"{cores_to_feed(r['images_per_s'], per_core):.3g}"),
    }
    log(
        f"{size} px: loader alone {alone['1']['images_per_s']:,.0f} images/s on 1 worker; "
        f"~{res['arithmetic']['cores_to_feed']:.2g} cores to feed the resident rate"
    )
    return res


def check_training(shards: Path, n_classes: int, s: dict, kind: str, rate: float) -> dict:
    """The model at 128 px (``s["train_size"]``) from scratch for about ``train_s`` seconds
    (steps from the fed rate measured before, at least ``min_train_steps`` an epoch), fed by
    the real loader with all workers, the holdout evaluated each epoch; the loss must fall
    (in full mode: see main)."""
    from doodle.data.shards import open_shard
    from doodle.models.sequences import FEATURES  # (an image model: no sequence input)
    from doodle.training.dataset import member_dataset
    from doodle.training.fit import FollowEpochs, HoldoutEval
    from doodle.training.input_wait import InputWait
    from doodle.training.multiworker import build_for_input
    from doodle.training.schedule import compile_model

    epochs = s["train_epochs"]
    total = max(epochs * 4, int(s["train_s"] * rate / s["batch"]))
    steps = max(s["min_train_steps"], total // epochs)
    size = s["train_size"]
    cfg, runtime = member(s, size, epochs, steps)
    lr = cfg.learning_rate * min(1.0, s["batch"] / 128)  # linear rule below params' batch
    workers = max(s["workers"])
    model = compile_model(cfg, n_classes, kind, lr, len(FEATURES))
    stream = training_stream(shards, cfg, n_classes, workers, steps)
    build_for_input(model, stream)
    holdout = member_dataset(
        cfg,
        [shards / "holdout.qds"],
        batch_size=runtime.eval_batch_size,
        workers=workers,
        n_classes=n_classes,
    )
    labels = open_shard(shards / "holdout.qds").label.astype(np.int64)
    wait = InputWait(steps)
    log(f"training: {size} px, {epochs} epochs x {steps} steps of {s['batch']}, {workers} workers")
    t0 = time.perf_counter()

    h = model.fit(
        stream,
        epochs=epochs,
        shuffle=False,
        callbacks=[
            FollowEpochs(stream, 0, 0),
            HoldoutEval(holdout, labels, s["batch"]),
            wait,
            wait.stamps(),
        ],
        verbose=2,
    )
    hist = h.history
    loss = [round(float(v), 4) for v in hist["loss"]]
    fell = len(loss) > 1 and loss[-1] < loss[0]
    chance = sum(1 / k for k in (1, 2, 3)) / n_classes
    out = {
        "img_size": size,
        "epochs": epochs,
        "steps_per_epoch": steps,
        "workers": workers,
        "seconds": round(time.perf_counter() - t0, 1),
        "loss_by_epoch": loss,
        "loss_fell": fell,
        "val_map3_by_epoch": [round(float(v), 4) for v in hist.get("val_map3", [])],
        "chance_map3": round(chance, 4),
        "images_per_s_last_epoch": round(float(hist["images_per_s"][-1]), 1),
    }
    if "input_wait" in hist:
        out["input_wait_by_epoch"] = [round(float(v), 4) for v in hist["input_wait"]]
    log(
        f"training: loss {' -> '.join(f'{v:.3f}' for v in loss)} "
        f"({'fell' if fell else 'DID NOT FALL'}); {wait.summary()}"
    )
    return out


def verdict(sizes: dict, mode: str) -> str:
    """One sentence: is the GPU fed with all workers, at each size?"""
    parts = ["tiny mode: the figures prove the plumbing, not the speed"] if mode == "tiny" else []
    for size, res in sizes.items():
        best_w = max(res["fed"], key=int)
        ratio = res["fed"][best_w]["feed_ratio"]
        state = "fed" if ratio >= FED_SHARE else "starved"
        parts.append(f"{size} px: {state} (feed ratio {ratio:.2f} with {best_w} workers)")
    return "; ".join(parts)


def markdown(report: dict) -> str:
    """The table for BENCHMARKS.md."""
    m = report["machine"]
    device = m.get("device") or m.get("accelerator")
    resident = "on the device" if m["backend"] == "jax" else "in memory"
    lines = [
        f"{device}, {m['backend']}, {report['arch']} alpha 1.0, policy {report['policy']}, "
        f"jit {report['jit']}, batch {report['batch_size']}, {m['cores']} cores, mode "
        f"{report['mode']} ({report['seconds']:.0f} s):",
        "",
        "| img_size | input | workers | images/s | feed ratio | input wait | GPU util % |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]

    def util(d: dict) -> str:
        return "" if "gpu_util_mean" not in d else f"{d['gpu_util_mean']:.0f}"

    for size, res in report["sizes"].items():
        r = res["resident"]
        lines.append(
            f"| {size} | batches already {resident} | - | {r['images_per_s']:,.0f} | 1.00 | - | "
            f"{util(r)} |"
        )
        for w, f in res["fed"].items():
            wait = f"{f['input_wait']:.1%}" if "input_wait" in f else ""
            lines.append(
                f"| {size} | real loader | {w} | {f['images_per_s']:,.0f} | "
                f"{f['feed_ratio']:.2f} | {wait} | {util(f)} |"
            )
        for w, a in res["loader_alone"].items():
            lines.append(
                f"| {size} | loader alone, no model | {w} | {a['images_per_s']:,.0f} | | | |"
            )
    t = report.get("training")
    if t:
        lines += [
            "",
            f"Training at {t['img_size']} px, {t['epochs']} x {t['steps_per_epoch']} steps, "
            f"{t['seconds']:.0f} s: loss {' -> '.join(f'{v:.3f}' for v in t['loss_by_epoch'])} "
            f"({'fell' if t['loss_fell'] else 'did NOT fall'}), holdout MAP@3 "
            f"{t['val_map3_by_epoch'][-1] if t['val_map3_by_epoch'] else float('nan'):.3f} "
            f"(chance {t['chance_map3']:.3f}; synthetic drawings: plumbing, not skill), "
            f"{t['images_per_s_last_epoch']:,.0f} images/s in the last epoch.",
        ]
    lines += ["", f"Verdict: {report['verdict']}."]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument(
        "--tiny", action="store_true", help="the tiny version (default without a GPU)"
    )
    mode.add_argument("--full", action="store_true", help="the full check even on a CPU")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "gpu_check.json")
    ap.add_argument("--sizes", help="comma-separated image sizes (default 64,128)")
    ap.add_argument(
        "--arch",
        default="mobilenetv2",
        help="the model (default mobilenetv2; smoke tests: mobilenet)",
    )
    ap.add_argument("--batch", type=int, help="batch size (default 256; tiny 8)")
    ap.add_argument("--workers", help="loader workers to try (default 1,4,all)")
    ap.add_argument("--window-s", type=float, help="seconds timed per variant")
    ap.add_argument("--train-s", type=float, help="seconds of the training check")
    ap.add_argument("--no-train", action="store_true", help="skip the training check")
    ap.add_argument("--workdir", type=Path, help="keep the synthetic data here")
    return ap.parse_args(argv)


def stop_if_gpu_unusable() -> None:
    """Where nvidia-smi lists a GPU that the backend cannot see, stop with the one line the
    train stage stops with (unless ``DOODLE_ALLOW_CPU=1``): the tiny mode would measure a
    CPU and miss the problem."""
    from doodle.gpu.backends import inspect
    from doodle.gpu.guard import ALLOW_CPU_ENV, cpu_allowed, unusable_line

    listed = nvidia.list_gpus()
    if not listed or cpu_allowed(None):
        return
    given = nvidia.visible_indices(listed)
    info = inspect(keras.backend.backend())
    opt_in = f"--tiny, or {ALLOW_CPU_ENV}=1"
    raise SystemExit(f"gpu-check: error: {unusable_line(listed, given, info, opt_in)}")


def run(args: argparse.Namespace) -> dict:
    t_start = time.perf_counter()
    from doodle.rendering.raster import warmup
    from doodle.training.hardware import accelerators, devices, set_precision
    from doodle.training.input_wait import cpu_cores

    kind, count = accelerators()
    if kind == "cpu" and not (args.tiny or args.full):
        stop_if_gpu_unusable()
    mode = "tiny" if args.tiny or (kind == "cpu" and not args.full) else "full"
    s = dict(MODES[mode])
    if args.sizes:
        s["sizes"] = tuple(int(x) for x in args.sizes.split(","))
    for key in ("batch", "window_s", "train_s"):
        if getattr(args, key) is not None:
            s[key] = getattr(args, key)
    # jit: auto is XLA on an accelerator; on a CPU, JAX op by op takes ~30 s a step of
    # MobileNetV2, so the tiny version compiles there too (TensorFlow: a graph either way).
    s["arch"] = args.arch
    s["train_size"] = 128 if 128 in s["sizes"] else max(s["sizes"])
    s["jit"] = "auto" if kind != "cpu" or keras.backend.backend() != "jax" else True
    cores = cpu_cores()
    wanted = args.workers or "1,4,all"
    s["workers"] = sorted({min(cores, cores if w == "all" else int(w)) for w in wanted.split(",")})
    policy, why = set_precision("auto", devices())  # what train.mixed_precision: auto picks
    info = machine(kind, count)
    log(
        f"{mode} mode on {info.get('device', kind)} ({keras.backend.backend()}), policy "
        f"{policy} ({why}), {cores} cores, workers {s['workers']}"
    )
    util = nvidia.Utilisation()
    if not util.available:
        log("nvidia-smi not found (or no GPU): no utilisation figures")
    tmp = None
    workdir = args.workdir
    if workdir is None:
        tmp = workdir = Path(tempfile.mkdtemp(prefix="doodle-gpu-check-"))
    try:
        warmup()
        shards = make_shards(workdir, s["classes"], s["per_class"], s["val_size"])
        n_classes = s["classes"]
        sizes = {}
        for size in s["sizes"]:
            sizes[str(size)] = check_size(size, shards, n_classes, s, kind, util)
        training = None
        if not args.no_train:
            at = sizes[str(s["train_size"])]
            rate = at["fed"][str(max(s["workers"]))]["images_per_s"]
            training = check_training(shards, n_classes, s, kind, rate)
    finally:
        util.close()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    info["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    report = {
        "command": " ".join(["python -m doodle.gpu.check", *args.argv]),
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "mode": mode,
        "machine": info,
        "policy": policy,
        "jit": s["jit"],
        "batch_size": s["batch"],
        "arch": s["arch"],
        "workers_tried": s["workers"],
        "window_s": s["window_s"],
        "sizes": sizes,
        "training": training,
        "verdict": verdict(sizes, mode),
        "fed_share": FED_SHARE,
    }
    report["seconds"] = round(time.perf_counter() - t_start, 1)
    report["markdown"] = markdown(report)
    return report


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    args.argv = argv
    from doodle.fileio import atomic_path, write_json

    report = run(args)
    write_json(args.out, report)
    with atomic_path(args.out.with_suffix(".md")) as tmp:
        Path(tmp).write_text(report["markdown"] + "\n")
    out("")
    out(report["markdown"])
    out("")
    out(f"gpu-check: wrote {args.out} and {args.out.with_suffix('.md')} in {report['seconds']}s")
    training = report["training"]
    if training is not None and not training["loss_fell"]:
        if report["mode"] == "tiny":
            # 45 steps of batches of 8 on a CPU: the loss moves by less than its batch
            # noise (it fell in 2 of 4 runs here), so tiny mode reports and does not judge
            out("gpu-check: the training loss did not fall (tiny mode: reported, not judged)")
            return 0
        out("gpu-check: FAILED: the training loss did not fall")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
