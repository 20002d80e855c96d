"""`make doctor` (python -m doodle.gpu.doctor): with the stand-in nvidia-smi listing an A100
that this CPU-only backend cannot use, it names the GPU, what each backend sees, the
precision auto would pick on it, and the CUDA problem with its fix; with nvidia-smi listing
no GPU, no GPU problem. Each run asks the installed backends in processes of their own."""

import pytest

from doodle.gpu import doctor
from tests.gpu.standin import A100

pytestmark = pytest.mark.e2e  # each backend starts in a process of its own


def run_doctor(capsys, *args: str) -> list[str]:
    assert doctor.main(list(args)) == 0
    return capsys.readouterr().out.splitlines()


def test_doctor_names_the_gpu_and_the_cuda_problem(smi, capsys, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    smi([A100])
    out = run_doctor(capsys, "--loader-s", "0.3")
    text = "\n".join(out)
    assert "  0: NVIDIA A100-SXM4-80GB, 80 GiB, driver 550.54.15, compute capability 8.0" in out
    tf = next(ln for ln in out if ln.startswith("  TensorFlow "))
    assert "built for CUDA" in tf and tf.endswith("sees no GPU")
    assert any(ln.startswith("  JAX ") for ln in out)  # installed here: asked too
    assert (
        "  once the backend sees the listed GPU(s): mixed_bfloat16 (auto: NVIDIA "
        "A100-SXM4-80GB, compute capability 8.0 (bf16 units))" in out
    )
    # the loader, measured, beside the arithmetic for this GPU, labelled an estimate
    assert "estimate, not measured" in text and "NVIDIA A100-SXM4-80GB needs ~" in text
    assert any(ln.startswith("  64 px: ") for ln in out) and any("128 px: " in ln for ln in out)
    assert any(ln.startswith("Disk") for ln in out) and any(
        "Kaggle credentials" in ln for ln in out
    )
    verdict = out[out.index("verdict:") + 1 :]
    gpu = [ln for ln in verdict if "nvidia-smi lists 1 GPU(s) but TensorFlow sees none" in ln]
    assert len(gpu) == 1 and "fix: `make install` (it picks tensorflow[and-cuda]" in gpu[0]


def test_doctor_without_a_gpu_has_no_gpu_problem(smi, capsys):
    smi([])  # nvidia-smi there, listing no GPU (as on any machine without one)
    out = run_doctor(capsys, "--loader-s", "0")
    assert "  none: nvidia-smi lists no GPU" in out
    problems = [ln for ln in out if ln.startswith("  problem: ")]
    assert not [ln for ln in problems if "GPU" in ln or "CUDA" in ln], problems
    assert any(ln.startswith("  now float32 (auto: CPU") for ln in out)


def test_the_loader_timed_renders_images_whatever_the_default_family(tmp_path):
    """The doctor times the renderer an image member trains on, at each size, even while
    params.yaml's default family reads points."""
    import numpy as np

    shards = doctor.doctor_shards(tmp_path)
    for size in (64, 128):
        ds = doctor.loader_dataset(shards, size)
        assert ds.renders
        x, y = ds[0]
        assert np.shape(x)[:3] == (64, size, size) and np.shape(y) == (64, 6)
