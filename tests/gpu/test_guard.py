"""What a stage leases for each ``runtime.gpus`` (doodle.gpu.guard.request), the CPU opt-ins,
the config's checks of ``runtime.gpus``, and the one line a stage stops with, for both
backends' likely causes."""

import pytest

from doodle.config import load_params, parse_params
from doodle.errors import ConfigError
from doodle.gpu import guard, nvidia
from tests.conftest import ROOT

TWO = [nvidia.GPU(0, "NVIDIA A100-SXM4-80GB", "GPU-a"), nvidia.GPU(1, "NVIDIA A100", "GPU-b")]


def test_what_each_setting_leases(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert guard.request("auto", TWO, "train", 1) == ([0, 1], 1)
    assert guard.request("auto", TWO, "train", 2) == ([0, 1], 2)  # one a process
    assert guard.request("all", TWO, "train", 1) == ([0, 1], 2)
    assert guard.request(2, TWO, "train", 1) == ([0, 1], 2)
    assert guard.request([1], TWO, "train", 1) == ([1], 1)
    assert guard.request("all", TWO, "predict", 1) == ([0, 1], 1)  # predict: one GPU
    assert guard.request([0, 1], TWO, "predict", 1) == ([0, 1], 1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")  # auto chooses among the shown ones
    assert guard.request("auto", TWO, "train", 1) == ([1], 1)
    with pytest.raises(ConfigError, match="nvidia-smi lists no GPU 3"):
        guard.request([3], TWO, "train", 1)
    with pytest.raises(ConfigError, match="runtime.processes 2"):
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
        guard.request("all", TWO + [nvidia.GPU(2, "x")], "train", 2)


def test_runtime_gpus_is_checked_with_the_params():
    import yaml

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert load_params(ROOT / "params.yaml").runtime.gpus == "auto"
    for good in ("auto", "all", 2, [0, 2]):
        raw["runtime"]["gpus"] = good
        assert parse_params(raw).runtime.gpus == good
    for bad in ("some", 0, [], [1, 1], [-1], True, 1.5):
        raw["runtime"]["gpus"] = bad
        with pytest.raises(ConfigError, match="runtime.gpus: expected auto, all, a count"):
            parse_params(raw)
    raw["runtime"].update(gpus=3, processes=2)
    with pytest.raises(ConfigError, match="runtime.processes 2, which train one GPU each"):
        parse_params(raw)


def test_the_cpu_opt_ins(monkeypatch):
    class Runtime:
        allow_cpu = False

    monkeypatch.delenv(guard.ALLOW_CPU_ENV, raising=False)
    assert guard.cpu_allowed(Runtime()) == ""
    Runtime.allow_cpu = True
    assert guard.cpu_allowed(Runtime()) == "runtime.allow_cpu: true"
    Runtime.allow_cpu = False
    monkeypatch.setenv(guard.ALLOW_CPU_ENV, "0")
    assert guard.cpu_allowed(Runtime()) == ""
    monkeypatch.setenv(guard.ALLOW_CPU_ENV, "1")
    assert guard.cpu_allowed(Runtime()) == "DOODLE_ALLOW_CPU=1"


TF_PLAIN = {
    "backend": "tensorflow",
    "version": "2.21.0",
    "cuda_build": True,
    "cuda": "12.5.1",
    "cudnn": "9",
    "cuda_wheels": [],
}


@pytest.mark.parametrize(
    "info, cause, fix",
    [
        (
            TF_PLAIN,
            "no CUDA 12.5.1 / cuDNN 9 libraries found",
            "`make install` (it picks tensorflow[and-cuda]",
        ),
        (
            TF_PLAIN | {"cuda_wheels": ["nvidia-cudnn-cu12 9.3.0"]},
            "its CUDA libraries are installed (nvidia-cudnn-cu12 9.3.0) but did not start",
            'pip install -e ".[gpu]"',
        ),
        (
            TF_PLAIN | {"cuda_build": False},
            "this TensorFlow is a CPU-only build",
            "tensorflow[and-cuda]",
        ),
        (
            {"backend": "jax", "version": "0.4.35", "jaxlib": "0.4.35", "cuda_build": False},
            "jaxlib 0.4.35 has no CUDA plugin",
            "`make install BACKEND=jax` (it picks jax[cuda12] where nvidia-smi lists a GPU; "
            'or pip install -e ".[jax-gpu]")',
        ),
    ],
)
def test_the_stop_line(info, cause, fix, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    line = guard.unusable_line(TWO[:1], [0], info)
    assert "\n" not in line
    assert line.startswith(
        "nvidia-smi lists 1 GPU (0: NVIDIA A100-SXM4-80GB), this process was given GPU 0, but "
    )
    assert " sees no GPU; likely cause: " + cause in line
    assert "; fix: " in line and fix in line
    assert line.endswith(
        "; to run on the CPU anyway: runtime.allow_cpu: true (-S runtime.allow_cpu=true) or "
        "DOODLE_ALLOW_CPU=1"
    )
