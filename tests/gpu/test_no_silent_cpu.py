"""A machine whose driver lists a GPU that the installed backend cannot use (the stand-in
nvidia-smi lists an A100; this CPU-only backend sees none): a tiny `dvc exp run` stops
before training with one line and no traceback, the backend's CUDA start-up lines shown;
with the opt-in it trains on the CPU (the train stage: predict starts the same way), and its
log starts with the device line."""

import pytest

from doodle.cli import _NOISE
from tests.gpu.standin import A100
from tests.pipeline_utils import dvc, make_repo

pytestmark = pytest.mark.e2e


def test_a_gpu_the_backend_cannot_use_stops_the_run_then_the_opt_in_trains(smi, tmp_path):
    smi([A100])
    repo = make_repo(tmp_path / "repo")
    stopped = dvc("exp", "run", cwd=repo, check=False)
    out = stopped.stdout + stopped.stderr
    assert stopped.returncode != 0
    assert "Traceback" not in out
    errors = [ln for ln in out.splitlines() if ln.startswith("train: error: ")]
    assert len(errors) == 1, out[-3000:]
    line = errors[0]
    assert (
        "nvidia-smi lists 1 GPU (0: NVIDIA A100-SXM4-80GB, 80 GiB, compute capability 8.0" in line
    )
    assert "sees no GPU; likely cause: " in line and "; fix: `make install`" in line
    assert line.endswith(
        "runtime.allow_cpu: true (-S runtime.allow_cpu=true) or DOODLE_ALLOW_CPU=1"
    )
    # before any work: the lease, then the stop; no model, no training line
    assert "train: leased GPU 0 (NVIDIA A100-SXM4-80GB): CUDA_VISIBLE_DEVICES=0" in out
    assert not (repo / "models/base/model.keras").exists()
    assert not [ln for ln in out.splitlines() if ln.startswith("train: base")]
    # the backend's own CUDA start-up lines are shown, not filtered as on a CPU machine
    assert any(_NOISE.search(ln) for ln in out.splitlines()), out[-3000:]

    trained = dvc("exp", "run", "-S", "runtime.allow_cpu=true", "train@base", cwd=repo)
    lines = trained.stdout.splitlines()
    assert (repo / "models/base/model.keras").is_file()
    train = [ln for ln in lines if ln.startswith("train: ")]
    assert (
        train[0]
        == "train: leased GPU 0 (NVIDIA A100-SXM4-80GB): CUDA_VISIBLE_DEVICES=0 (pid "
        + train[0].split("(pid ")[1]
    )
    assert train[1].startswith(
        "train: running on the CPU (runtime.allow_cpu: true) although nvidia-smi"
    )
    # the training log starts with its own line: device, precision and why, replicas
    assert train[2] == (
        "train: base on the CPU (runtime.allow_cpu: true: TensorFlow cannot use the listed GPU); "
        "precision float32 (auto: CPU (mixed precision is slower there)); 1 replica "
        "(single device (cpu))"
    )
    assert train[3].startswith("train: base: mobilenet_035 32px x1")
