"""``make doctor`` (``python -m doodle.gpu.doctor``): is this machine ready, and if not, what
to do -- in seconds, without training.

It says, in this order: the GPUs nvidia-smi lists (name, memory, driver, compute
capability) and who leases them; what each installed backend (TensorFlow, JAX; one not
installed is not imported) sees and the CUDA/cuDNN it was built for; the precision
``train.mixed_precision: auto`` picks and why; the cores, and the loader's images/s per core
measured at 64 and 128 px beside the step rate a GPU of that kind needs (arithmetic from the
presets' assumed rates, labelled as an estimate); free disk against the full data's need;
whether Kaggle credentials are there (never their value). Then one line per problem with
its fix, or that none was found.

    python -m doodle.gpu.doctor                  # (make doctor)
    python -m doodle.gpu.doctor --loader-s 0     # skip the loader measurement
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from doodle.cli import captured_stderr
from doodle.gpu import nvidia
from doodle.gpu.backends import NAMES, built_with, likely_cause, probe, version

ROOT = Path(__file__).resolve().parents[2]
GIB = 1024**3
# The full competition data on disk (BENCHMARKS.md, *The full data*): train_simplified.zip
# ~7.4 GB and test_simplified.csv ~78 MB (the 1,695-row sample is 1.17 MB; x 112,199 / 1,695)
# where they are downloaded; 7.2 GiB of shards (projected from 5M drawings: 773 MB x 49.7 / 5)
# plus models and predictions (tens of MB each: 1 GiB is room for an ensemble) in the project.
DOWNLOAD_NEED = 7.4e9 + 78e6
PROJECT_NEED = 7.2 * GIB + 1 * GIB
# Memory bandwidth (GB/s, vendor figures) relative to an A100 40GB (1,555): the presets take
# these small models to be bound by memory, so a GPU's rate scales with it (an estimate).
BANDWIDTH = {
    "H200": 4800,
    "H100": 3350,
    "A100-SXM4-80GB": 2039,
    "A100-PCIE-80GB": 1935,
    "A100": 1555,
    "L40S": 864,
    "A6000": 768,
    "A10": 600,
    "L4": 300,
    "V100": 900,
    "T4": 320,
    "P100": 732,
    "4090": 1008,
    "3090": 936,
}
REFERENCE = "A100"
CUDA12_DRIVER = (525, 60)  # CUDA 12.x needs a Linux driver >= 525.60.13


@dataclass
class Report:
    """What the doctor found: sections of lines, and problems as (what, fix)."""

    lines: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)

    def section(self, title: str) -> None:
        self.lines += ["", title]

    def say(self, line: str) -> None:
        self.lines.append(f"  {line}")

    def problem(self, what: str, fix: str) -> None:
        self.problems.append((what, fix))


def training_backend() -> str:
    """The backend Keras will load: KERAS_BACKEND, else ~/.keras/keras.json, else TensorFlow."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    config = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "keras.json"
    try:
        import json

        return json.loads(config.read_text()).get("backend", "tensorflow")
    except (OSError, ValueError):
        return "tensorflow"


def gpu_factor(name: str) -> tuple[float, str]:
    """(speed relative to an A100, the entry used) from the GPU's name."""
    for key, bw in BANDWIDTH.items():
        if key.lower() in name.lower():
            return bw / BANDWIDTH[REFERENCE], key
    return 1.0, f"{REFERENCE} (unknown GPU, taken as one)"


def _driver_tuple(driver: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in driver.split(".")[:2])
    except ValueError:
        return ()


# -- the sections -----------------------------------------------------------------------------
def gpus_section(r: Report, listed: list[nvidia.GPU]) -> None:
    r.section("GPUs (nvidia-smi):")
    if not nvidia.executable():
        r.say("none: no nvidia-smi on the PATH (no NVIDIA driver): training runs on the CPU")
        return
    if not listed:
        r.say("none: nvidia-smi lists no GPU")
        return
    for g in listed:
        mem = f"{g.memory_mib / 1024:.0f} GiB" if g.memory_mib else "memory ?"
        cc = "{}.{}".format(*g.compute_capability) if g.compute_capability else "?"
        r.say(f"{g.index}: {g.name}, {mem}, driver {g.driver or '?'}, compute capability {cc}")
    try:
        from doodle.gpu.lease import describe, holder, lock_dir, waiting
    except ImportError:  # no filelock: leases are the stages' business
        return
    for g in listed:
        who = holder(g.index)
        if who is not None:
            r.say(f"GPU {g.index} is leased by {describe(who)}")
    for w in waiting():
        r.say(f"waiting for a GPU: {describe(w)}")
    r.say(f"(leases: {lock_dir()})")


def backends_section(r: Report, listed: list[nvidia.GPU], trains: str) -> dict[str, dict]:
    """Probe every installed backend in its own process (in parallel); their answers."""
    installed = [b for b in NAMES if version(b)]
    r.section(f"Backends (KERAS_BACKEND={trains} trains; keras {version('keras') or 'missing'}):")
    with ThreadPoolExecutor(max(1, len(installed))) as pool:
        answers = dict(zip(installed, pool.map(probe, installed), strict=True))
    for b in NAMES:
        if b not in answers:
            r.say(f"{NAMES[b]}: not installed")
            continue
        info = answers[b]
        if "error" in info:
            r.say(f"{NAMES[b]} {version(b)}: did not start: {info['error']}")
            if b == trains:
                r.problem(f"{NAMES[b]} does not start: {info['error']}", "see the lines above")
            continue
        seen = info["gpus"]
        sees = ", ".join(g["name"] for g in seen) if seen else "no GPU"
        wheels = (
            f"; CUDA wheels: {', '.join(info['cuda_wheels'])}" if info.get("cuda_wheels") else ""
        )
        r.say(f"{NAMES[b]} {info['version']}: {built_with(info)}{wheels}; sees {sees}")
        if listed and not seen:
            from doodle.gpu.install import fix_line

            cuda = [ln for ln in info["stderr"] if "cuda" in ln.lower() or "gpu" in ln.lower()]
            for ln in list(dict.fromkeys(cuda))[-3:]:  # the backend's own account
                r.say(f"  | {ln[:160]}")
            n = len(listed)
            what = f"nvidia-smi lists {n} GPU(s) but {NAMES[b]} sees none: {likely_cause(info)}"
            if b == trains:
                r.problem(what, fix_line(b))
            else:
                r.say(f"(not the training backend: {what}; {fix_line(b)})")
    return answers


def driver_check(r: Report, listed: list[nvidia.GPU], answers: dict) -> None:
    """A driver older than the CUDA 12 the backends were built for."""
    drivers = [_driver_tuple(g.driver) for g in listed if g.driver]
    builds = [a.get("cuda") or "" for a in answers.values() if a.get("cuda_build")]
    if drivers and min(drivers) < CUDA12_DRIVER and any("12" in b for b in builds):
        r.problem(
            f"driver {'.'.join(map(str, min(drivers)))} is older than CUDA 12 needs "
            f"({'.'.join(map(str, CUDA12_DRIVER))}.13 or newer)",
            "update the NVIDIA driver (the CUDA wheels bring everything else)",
        )


def precision_section(r: Report, listed: list[nvidia.GPU], info: dict | None) -> None:
    from doodle.training.hardware import Device, choose_precision

    r.section("Precision (train.mixed_precision: auto):")
    seen = (info or {}).get("gpus") or []
    if seen:
        devs = [
            Device("gpu", g["name"], tuple(int(x) for x in g["cc"]) if g["cc"] else None)
            for g in seen
        ]
        policy, why = choose_precision("auto", devs)
        r.say(f"{policy} ({why})")
        return
    policy, why = choose_precision("auto", [Device("cpu")])
    r.say(f"now {policy} ({why})")
    if listed:
        devs = [Device("gpu", g.name, g.compute_capability) for g in listed]
        policy, why = choose_precision("auto", devs)
        r.say(f"once the backend sees the listed GPU(s): {policy} ({why})")


def loader_dataset(shards: Path, size: int):
    """The training loader of an image member at ``size`` px (MobileNetV2, the model whose
    step rate the verdict compares with), augmentation on, one worker, over ``shards``."""
    import yaml

    from doodle.config import parse_params
    from doodle.data.shards import train_shard_paths
    from doodle.training.dataset import member_dataset

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    # params.yaml's default family may read points (strokegrid): the rate asked about is the
    # renderer's, so the member is an image one whatever the default
    raw["arch"] = "mobilenetv2"
    raw["img_size"] = size
    raw["train"]["batch_size"] = 64
    cfg = parse_params(raw, "params.yaml (doctor)").member("base")
    return member_dataset(
        cfg,
        train_shard_paths(shards),
        batch_size=cfg.batch_size,
        training=True,
        seed=0,
        augment=cfg.augment,
        shuffle_buffer=1000,
        steps_per_epoch=10**7,
        workers=1,
        n_classes=6,
    )


def doctor_shards(tmp: Path) -> Path:
    """A few hundred synthetic drawings of 6 classes, sharded under ``tmp``."""
    from doodle.data.sharding import shard_dataset
    from doodle.data.synthetic import write_synthetic

    write_synthetic(tmp / "raw", 60, 2, seed=7, n_classes=6)
    shard_dataset(
        tmp / "raw", tmp / "shards", n_shards=2, val_size=0, seed=0,
        report_path=tmp / "shard.json", workers=1,
    )  # fmt: skip
    return tmp / "shards"


def measure_loader(sizes: tuple[int, ...], seconds: float) -> dict[int, float]:
    """Images per CPU-second (one worker: one core) of the training loader at each size,
    augmentation on, on a few hundred synthetic drawings."""
    from doodle.gpu.feed import loader_rate
    from doodle.rendering.raster import warmup

    out = {}
    with (
        tempfile.TemporaryDirectory(prefix="doodle-doctor-") as tmp,
        contextlib.redirect_stdout(io.StringIO()),  # the shard code's own report
        captured_stderr(),  # progress bars, the backend's start-up lines
    ):
        shards = doctor_shards(Path(tmp))
        warmup()  # the renderer's compiled kernel (the first run ever compiles it)
        for size in sizes:
            out[size] = loader_rate(loader_dataset(shards, size), seconds)[1]
    return out


def loader_section(r: Report, listed: list[nvidia.GPU], seconds: float) -> None:
    from doodle.gpu.feed import cores_to_feed
    from doodle.presets import ASSUMED_RATE_224
    from doodle.training.input_wait import cpu_cores

    cores = cpu_cores()
    r.section(
        f"Loader ({cores} cores here; one core's images/s measured on synthetic drawings, "
        "augmentation on; real drawings have more points and render slower):"
    )
    if seconds <= 0:
        r.say("not measured (--loader-s 0)")
        return
    try:
        per_core = measure_loader((64, 128), seconds)
    except Exception as e:  # noqa: BLE001 - a doctor reports, it does not crash
        r.say(f"could not measure: {type(e).__name__}: {e}")
        return
    gpu = max(listed, key=lambda g: gpu_factor(g.name)[0]) if listed else None
    factor, entry = gpu_factor(gpu.name) if gpu else (1.0, f"{REFERENCE}, for reference")
    base = ASSUMED_RATE_224["mobilenetv2"]
    r.say(
        f"estimate, not measured: the GPU's step rate = presets' assumed MobileNetV2 rate "
        f"{base:,} images/s at 224 px on an A100 x (224 / px)^2 x memory bandwidth vs an A100 "
        f"({entry}: x{factor:.2f}); cores = that rate / one core's images/s"
    )
    for size, rate in per_core.items():
        need = base * (224 / size) ** 2 * factor
        n = cores_to_feed(need, rate)
        who = gpu.name if gpu else "an A100"
        r.say(
            f"{size} px: {rate:,.0f} images/s per core; {who} needs ~{need:,.0f} images/s: "
            f"~{n:.1f} loader cores (+1 for the training loop)"
        )
        if gpu and n + 1 > cores:
            r.problem(
                f"at {size} px the loader needs ~{n + 1:.0f} cores to feed {gpu.name} "
                f"(estimate) and this machine has {cores}",
                f"expect the GPU to wait for its input at {size} px: set runtime.workers to "
                f"{cores - 1}, and prefer a smaller img_size or more cores (make gpu-check "
                "measures it)",
            )


def kaggle_download_dir() -> Path:
    """Where ``data.source: kaggle`` downloads, per params.yaml."""
    import yaml

    from doodle.data.download import download_dir

    kaggle = yaml.safe_load((ROOT / "params.yaml").read_text())["data"]["kaggle"]
    return download_dir(kaggle.get("download_dir"), kaggle["competition"])


def disk_section(r: Report) -> None:
    r.section("Disk (the full competition data):")
    download = kaggle_download_dir()
    where = download if download.exists() else download.parent
    while not where.exists():
        where = where.parent
    project = shutil.disk_usage(ROOT)
    same = os.stat(where).st_dev == os.stat(ROOT).st_dev
    r.say(
        f"{ROOT}: {project.free / GIB:,.1f} GiB free; the project needs ~"
        f"{PROJECT_NEED / GIB:.1f} GiB (shards 7.2 GiB + models and predictions)"
    )
    need = PROJECT_NEED + (DOWNLOAD_NEED if same else 0)
    if not same:
        down = shutil.disk_usage(where)
        r.say(
            f"{download} (data.source: kaggle downloads here): {down.free / GIB:,.1f} GiB free; "
            f"needs ~{DOWNLOAD_NEED / GIB:.1f} GiB"
        )
        if down.free < DOWNLOAD_NEED:
            r.problem(
                f"{download}: {down.free / GIB:.1f} GiB free, the competition files need "
                f"~{DOWNLOAD_NEED / GIB:.1f} GiB",
                "free space there, set data.kaggle.download_dir, or read the files in place "
                "(data.source: local)",
            )
    else:
        r.say(
            f"(the download folder {download} is on the same disk: ~{DOWNLOAD_NEED / GIB:.1f} "
            f"GiB more with data.source: kaggle, ~{need / GIB:.1f} GiB in all)"
        )
    if project.free < need:
        r.problem(
            f"{project.free / GIB:.1f} GiB free where ~{need / GIB:.1f} GiB are needed",
            "free space, or set data.kaggle.download_dir to another disk",
        )


def kaggle_section(r: Report) -> None:
    from doodle.kaggle.api import KaggleCredentialsError, find_credentials

    r.section("Kaggle credentials (data.source: kaggle, make submit):")
    try:
        r.say(f"found: {find_credentials()} (not read here)")
    except KaggleCredentialsError as e:
        r.say(f"none: {str(e).splitlines()[0].split('. Provide')[0]}")
        r.problem(
            "no Kaggle credentials: downloading the competition data and submitting need them",
            "create a token on kaggle.com (Settings, API) and save it as "
            "~/.kaggle/access_token (chmod 600), or export KAGGLE_API_TOKEN",
        )


def examine(loader_s: float = 1.5, trains: str | None = None) -> Report:
    r = Report()
    listed = nvidia.list_gpus()
    trains = trains or training_backend()
    r.lines.append(
        f"doctor: {platform.node()}, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d %H:%M')}"
    )
    gpus_section(r, listed)
    answers = backends_section(r, listed, trains)
    driver_check(r, listed, answers)
    precision_section(r, listed, answers.get(trains))
    loader_section(r, listed, loader_s)
    disk_section(r)
    kaggle_section(r)
    return r


def verdict(r: Report) -> list[str]:
    if not r.problems:
        return ["", "verdict: no problem found"]
    return ["", "verdict:"] + [f"  problem: {what}; fix: {fix}" for what, fix in r.problems]


def _import_keras() -> None:
    """Keras for the loader's timing, under JAX where installed: the loader's work is the
    same under either backend, and JAX imports in a fraction of TensorFlow's time (each
    backend is asked in a process of its own). The environment is left as it was."""
    if "keras" in sys.modules or not version("jax"):
        return
    saved = os.environ.get("KERAS_BACKEND")
    os.environ["KERAS_BACKEND"] = "jax"
    try:
        with captured_stderr():
            import keras  # noqa: F401
    finally:
        if saved is None:
            del os.environ["KERAS_BACKEND"]
        else:
            os.environ["KERAS_BACKEND"] = saved


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--loader-s", type=float, default=1.5, help="seconds per size timing the loader (0: skip)"
    )
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # this process's own Keras import
    trains = training_backend()
    if args.loader_s > 0:
        _import_keras()
    r = examine(args.loader_s, trains)
    print("\n".join(r.lines + verdict(r)))
    print(f"(doctor took {time.perf_counter() - t0:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
