"""Training images/s in one process vs two (``python -m doodle.training.launch --nproc 2``), on both
engines, at the same global batch, side by side in one run.

    python benchmarks/bench_processes.py            # writes reports/bench_processes.json

A temporary copy of the project trains the default member (MobileNetV2, alpha 0.5, 64 px)
on synthetic drawings for ``--epochs`` x ``--steps``; the figure is the last epoch's
``images_per_s`` (dvclive), so graph tracing / XLA compiling in the first epoch is left
out. One process renders the whole global batch; each of two renders half of it
(the per-process share printed in the table). On a 2-core CPU machine two processes share
the same two cores and add an all-reduce per step: the point of running them here is
correctness (tests/test_multiprocess.py); the speed-up is for several GPUs or hosts.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from doodle.fileio import write_json  # noqa: E402


def _repo(dest: Path, args: argparse.Namespace) -> Path:
    for name in ("doodle", "stages", "params.yaml", "dvc.yaml"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params["data"]["synthetic"].update(classes=24, train_per_class=300, test_per_class=10)
    params["shard"].update(n_shards=4, val_size=240)
    params["train"].update(
        epochs=args.epochs, steps_per_epoch=args.steps, scale_lr=False, jit="auto"
    )
    params["runtime"].update(checkpoint_every=0, verbose=2)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for stage in ("source", "download", "shard"):
        subprocess.run([sys.executable, f"stages/{stage}.py"], cwd=dest, check=True)
    return dest


def _train(repo: Path, backend: str, processes: int, global_batch: int, jit: bool) -> dict:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["train"].update(batch_size=global_batch // processes, jit=jit)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.rmtree(repo / "dvclive", ignore_errors=True)
    cmd = [sys.executable, "-m", "stages.train", "base"]
    if processes > 1:
        cmd = [
            sys.executable,
            "-m",
            "doodle.training.launch",
            "--nproc",
            str(processes),
            "--",
            *cmd,
        ]
    t0 = time.time()
    p = subprocess.run(
        cmd,
        cwd=repo,
        env=os.environ | {"KERAS_BACKEND": backend},
        capture_output=True,
        text=True,
    )
    if p.returncode:
        raise RuntimeError(f"{backend} x{processes} failed:\n{p.stdout[-3000:]}{p.stderr[-3000:]}")
    live = json.loads((repo / "dvclive/base/metrics.json").read_text())
    where = re.search(r"params, ([^,]+(?:, \d+ processes\))?)", p.stdout)
    return {
        "backend": backend,
        "processes": processes,
        "global_batch": global_batch,
        "batch_per_process": global_batch // processes,
        "images_per_s": round(live["images_per_s"], 1),
        "wall_s": round(time.time() - t0, 1),
        "where": where.group(1) if where else "",
        "loss": round(live["loss"], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--global-batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--out", type=Path, default=ROOT / "reports/bench_processes.json")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        repo = _repo(Path(tmp), args)
        for backend in args.backends.split(","):
            for n in (1, 2):  # side by side: the same data, batch and steps
                rows.append(_train(repo, backend, n, args.global_batch, jit=backend == "jax"))
                print(json.dumps(rows[-1]), flush=True)
    write_json(args.out, {"command": " ".join(sys.argv), "cpus": os.cpu_count(), "rows": rows})
    print("\n| engine | processes | batch a process (global) | images/s | vs 1 process | wall |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        base = next(
            x["images_per_s"] for x in rows if x["backend"] == r["backend"] and x["processes"] == 1
        )
        print(
            f"| {r['backend']} | {r['processes']} | {r['batch_per_process']} "
            f"({r['global_batch']}) | {r['images_per_s']:,.0f} | "
            f"{r['images_per_s'] / base:.2f}x | {r['wall_s']:.0f} s |"
        )


if __name__ == "__main__":
    main()
