"""Training in two processes on this machine, through the launcher, on both engines
(TensorFlow's MultiWorkerMirroredStrategy, JAX's keras.distribution): the same global batch
and seed as one process, a process SIGKILLed mid-run, then a resume as two "hosts" (two
copies of the repo, the checkpoint copied across).

Checked: every global batch is split with no drawing in both shares and none left out
(the processes' read logs against the one-process run's); the processes end with the same
metrics (lock-step); only the chief writes the model, checkpoints and dvclive files; a
killed process stops the other with a clear message; the resumed two-process model matches
the one-process model within TOLERANCE. Both train with the weights' moving average
(``train.ema``): a killed and resumed run saves the average an uninterrupted one saves."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from doodle.training.launch import free_ports
from tests.pipeline_utils import dvc, env, make_repo

pytestmark = pytest.mark.e2e

# The largest weight difference allowed between one process and two after 16 steps (and a
# kill and resume): both sum the same gradients in another order (measured at 24 steps:
# 1e-4 to 2e-4).
TOLERANCE = 1e-3
STEPS, EPOCHS = 8, 2
PARAMS = {
    "arch": "lstm",  # the smallest graph to trace: the test is about the processes
    "train": {
        "seq_len": 16,
        "batch_size": 16,  # one process; two get 8 each
        "epochs": EPOCHS,
        "steps_per_epoch": STEPS,
        "scale_lr": False,  # the same rate for one process and two
        # the weights' moving average: its state travels in the checkpoint, and the saved
        # model (compared below) holds the averages
        "ema": 0.9,
    },
    "runtime": {"eager": False, "checkpoint_every": 3},
}


def _env(backend: str, reads: Path) -> dict:
    return env() | {
        "KERAS_BACKEND": backend,
        "DOODLE_READ_LOG": str(reads),
        "JAX_COMPILATION_CACHE_DIR": str(reads.parent / "jax-cache"),
    }


def _set(repo: Path, batch: int, processes: int = 1) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["train"]["batch_size"] = batch
    params["runtime"]["processes"] = processes
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


TRAIN = [sys.executable, "-m", "stages.train", "base"]


def launcher(*args: str) -> list[str]:
    """`python -m doodle.training.launch ARGS -- python -m stages.train base`"""
    return [sys.executable, "-m", "doodle.training.launch", *args, "--", *TRAIN]


class Run:
    """A training command in the background, its output collected."""

    def __init__(self, repo: Path, e: dict, cmd: list[str]):
        self.p = subprocess.Popen(
            cmd,
            cwd=repo,
            env=e,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line)

    def pids(self) -> dict[int, int]:
        for line in self.lines:
            if line.startswith("launch:"):
                return {int(r): int(p) for r, p in re.findall(r"(\d+) pid (\d+)", line)}
        return {}

    def wait(self, timeout: int = 600) -> tuple[int, str]:
        code = self.p.wait(timeout)
        self.reader.join(10)
        return code, "".join(self.lines)


def _reads(folder: Path, process: int) -> dict[tuple[int, int], list[int]]:
    """(epoch, step) -> the drawings a process read for it (always the same when re-read)."""
    out: dict[tuple[int, int], list[int]] = {}
    path = folder / f"reads-{process}.jsonl"
    for line in path.read_text().splitlines() if path.exists() else []:
        r = json.loads(line)
        key = (r["epoch"], r["step"])
        assert out.setdefault(key, r["key_id"]) == r["key_id"], f"{key} read differently"
    return out


def _summary(output: str, prefix: str) -> str:
    """The metrics of a process's closing `train: base done` line."""
    for line in output.splitlines():
        if line.startswith(f"{prefix}train: base done"):
            return line.split(";", 1)[1].rsplit(", images_per_s", 1)[0]
    raise AssertionError(f"no summary for {prefix!r} in:\n{output[-3000:]}")


def _weights(path: Path) -> list[np.ndarray]:
    from doodle.models.build import load_model

    return load_model(path).get_weights()


@pytest.fixture(scope="module")
def sharded(tmp_path_factory) -> Path:
    """A tiny repo with its shards, copied by each test."""
    repo = make_repo(tmp_path_factory.mktemp("multiprocess") / "repo", PARAMS)
    dvc("repro", "shard", cwd=repo)
    return repo


def _reference(sharded: Path, tmp_path: Path, backend: str) -> tuple[Path, list, dict]:
    """A copy of the repo for ``backend`` and the one-process run's weights and metrics."""
    a = tmp_path / "a"
    shutil.copytree(sharded, a)
    params = yaml.safe_load((a / "params.yaml").read_text())
    params["train"]["jit"] = backend == "jax"  # JAX compiled, as on a GPU box (auto: op by op)
    (a / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    one = subprocess.run(
        TRAIN,
        cwd=a,
        env=_env(backend, tmp_path / "reads-one"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert one.returncode == 0, one.stdout[-3000:] + one.stderr[-3000:]
    weights = _weights(a / "models/base/model.keras")
    live = json.loads((a / "dvclive/base/metrics.json").read_text())
    shutil.rmtree(a / "models"), shutil.rmtree(a / "dvclive")
    return a, weights, live


def _two_hosts(a: Path, tmp_path: Path, backend: str) -> tuple[str, str, Path]:
    """Train as two hosts: ``a`` (the chief) and ``b``, a second machine's copy of ``a``
    (its data pulled, and any checkpoint copied); both outputs and ``b``."""
    b = tmp_path / "b"
    shutil.copytree(a, b, ignore=shutil.ignore_patterns("dvclive"))
    _set(a, 8), _set(b, 8)
    p0, p1 = free_ports(2)
    hosts = f"--hosts=127.0.0.1:{p0},127.0.0.1:{p1}"
    chief = Run(a, _env(backend, tmp_path / "reads-two"), launcher(hosts, "--host-index", "0"))
    other = Run(b, _env(backend, tmp_path / "reads-two-b"), launcher(hosts, "--host-index", "1"))
    (code_a, out_a), (code_b, out_b) = chief.wait(), other.wait()
    assert code_a == 0 and code_b == 0, out_a[-3000:] + out_b[-3000:]
    assert "global batch 16 (8 a process)" in out_a and "2 processes" in out_a
    assert "train: base saves the moving average of its weights (ema 0.9)" in out_a
    # lock-step: both processes end with the same (global) metrics
    assert _summary(out_a, "") == _summary(out_b, "[process 1] ")
    # each measured its own input wait; both report the worst of the two beside it
    for out, prefix in ((out_a, ""), (out_b, "[process 1] ")):
        line = next(ln for ln in out.splitlines() if ln.startswith(f"{prefix}train: base done"))
        assert "input wait" in line and "worst of 2 processes" in line, line
    # only the chief wrote the model and dvclive
    assert (a / "models/base/model.keras").is_file() and (a / "dvclive/base").is_dir()
    assert not (a / "models/base/checkpoints").exists()  # finished: the chief cleared it
    assert not (b / "models/base/model.keras").exists() and not (b / "dvclive").exists()
    return out_a, out_b, b


def _check(
    a: Path, tmp_path: Path, reference: list, ref_live: dict, backend: str, first=(0, 0)
) -> None:
    """Every global batch two processes trained on (from ``first``, the step they started
    at) split in two with nothing shared or left out; the model one process trains, within
    TOLERANCE."""
    ref_reads = _reads(tmp_path / "reads-one", 0)
    share0 = _reads(tmp_path / "reads-two", 0)
    share1 = _reads(tmp_path / "reads-two", 1) | _reads(tmp_path / "reads-two-b", 1)
    for key in [(e, s) for e in range(EPOCHS) for s in range(STEPS) if (e, s) >= first]:
        assert not set(share0[key]) & set(share1[key]), key
        assert sorted(share0[key] + share1[key]) == sorted(ref_reads[key]), key
    trained = _weights(a / "models/base/model.keras")
    diff = max(np.abs(x - y).max() for x, y in zip(trained, reference, strict=True))
    assert diff < TOLERANCE, diff
    live = json.loads((a / "dvclive/base/metrics.json").read_text())
    assert 0 <= live["input_wait"] < 1 and live["step_time_s"] > 0  # the worst process's
    assert abs(live["loss"] - ref_live["loss"]) < TOLERANCE, (live, ref_live)
    assert live["val_map3"] == pytest.approx(ref_live["val_map3"], abs=0.02)
    loss = f"{live['loss']:.5f} (one process: {ref_live['loss']:.5f})"
    print(f"{backend}: max |weight difference| {diff:.2e}, loss {loss}")


def _first_checkpoint(repo: Path, run: Run) -> Path:
    """Wait until ``run`` has written its first checkpoint (to kill it then); its state file."""
    state = repo / "models/base/checkpoints/state.json"
    deadline = time.time() + 300
    while not state.exists() and run.p.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert state.exists(), "".join(run.lines)[-3000:]
    return state


def test_tensorflow_two_workers_killed_then_resumed_as_two_hosts(sharded, tmp_path):
    """MultiWorkerMirroredStrategy: one process, then two with process 1 SIGKILLed after
    the first checkpoint, then the rest as two hosts from that checkpoint."""
    a, reference, ref_live = _reference(sharded, tmp_path, "tensorflow")
    # the stage launches itself as two processes (runtime.processes: 2, what `dvc repro`
    # then runs)
    _set(a, 8, processes=2)
    run = Run(a, _env("tensorflow", tmp_path / "reads-two"), TRAIN)
    state = _first_checkpoint(a, run)
    os.kill(run.pids()[1], signal.SIGKILL)
    code, out = run.wait()
    assert code == 137, out[-3000:]
    assert "launch: process 1" in out and "was killed by SIGKILL; stopping process(es) [0]" in out
    assert not Path(f"/proc/{run.pids()[0]}").exists()
    saved = json.loads(state.read_text())
    assert (saved["epoch"], saved["step"]) < (EPOCHS, 0), saved

    out_a, out_b, b = _two_hosts(a, tmp_path, "tensorflow")
    resumed = f"resuming base at epoch {saved['epoch']}, step {saved['step']}"
    assert resumed in out_a and resumed in out_b
    assert json.loads((b / "models/base/checkpoints/state.json").read_text()) == saved
    _check(a, tmp_path, reference, ref_live, "tensorflow")


def test_jax_one_process_killed_then_resumed_as_two_hosts(sharded, tmp_path):
    """keras.distribution on JAX (CPU devices, gloo collectives): one process, then one
    SIGKILLed after the first checkpoint, then the rest as two hosts from that checkpoint
    (the global batch is what a checkpoint keeps: a run resumes on more processes)."""
    a, reference, ref_live = _reference(sharded, tmp_path, "jax")
    run = Run(a, _env("jax", tmp_path / "reads-killed"), TRAIN)
    state = _first_checkpoint(a, run)
    os.kill(run.p.pid, signal.SIGKILL)
    assert run.wait()[0] == -signal.SIGKILL
    saved = json.loads(state.read_text())
    assert (saved["epoch"], saved["step"]) < (EPOCHS, 0), saved

    out_a, out_b, _ = _two_hosts(a, tmp_path, "jax")
    resumed = f"resuming base at epoch {saved['epoch']}, step {saved['step']}"
    assert resumed in out_a and resumed in out_b
    _check(a, tmp_path, reference, ref_live, "jax", first=(saved["epoch"], saved["step"]))
