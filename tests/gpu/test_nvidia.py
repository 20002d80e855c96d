"""The stand-in nvidia-smi answers as the real one does, and doodle.gpu.nvidia reads it: the
GPU list, an old driver without compute_cap, CUDA_VISIBLE_DEVICES, no nvidia-smi at all."""

import subprocess

from doodle.gpu import nvidia
from tests.gpu.standin import A100, T4


def smi_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["nvidia-smi", *args], capture_output=True, text=True, timeout=30)


def test_standin_answers_like_nvidia_smi(smi):
    smi([A100, T4])
    listed = smi_run("-L")
    assert listed.returncode == 0
    assert listed.stdout.splitlines() == [
        "GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-00000000-0000-4000-8000-000000000000)",
        "GPU 1: Tesla T4 (UUID: GPU-00000001-0000-4000-8000-000000000001)",
    ]
    q = smi_run("--query-gpu=index,name,memory.total,compute_cap", "--format=csv,noheader,nounits")
    assert q.stdout.splitlines() == [
        "0, NVIDIA A100-SXM4-80GB, 81920, 8.0",
        "1, Tesla T4, 15360, 7.5",
    ]
    units = smi_run("-i", "1", "--query-gpu=name,memory.total", "--format=csv")
    assert units.stdout.splitlines() == ["name, memory.total [MiB]", "Tesla T4, 15360 MiB"]
    bad = smi_run("--query-gpu=name,nonsense", "--format=csv")
    assert bad.returncode == 2 and 'Field "nonsense" is not a valid field' in bad.stdout
    smi([])
    none = smi_run("-L")
    assert none.returncode == 6 and none.stdout.strip() == "No devices were found"


def test_the_gpu_list_as_the_package_reads_it(smi, monkeypatch):
    smi([A100, T4])
    gpus = nvidia.list_gpus()
    assert [(g.index, g.name, g.memory_mib, g.compute_capability) for g in gpus] == [
        (0, "NVIDIA A100-SXM4-80GB", 81920, (8, 0)),
        (1, "Tesla T4", 15360, (7, 5)),
    ]
    assert gpus[0].driver == "550.54.15" and gpus[1].uuid.startswith("GPU-00000001")
    assert nvidia.summary(gpus[:1]) == (
        "1 GPU (0: NVIDIA A100-SXM4-80GB, 80 GiB, compute capability 8.0; driver 550.54.15)"
    )
    # CUDA_VISIBLE_DEVICES: by index, by UUID (a prefix), or nothing
    assert nvidia.visible_indices(gpus) == [0, 1]
    for value, want in (("1", [1]), ("1,0", [1, 0]), ("GPU-00000001", [1]), ("", []), ("-1", [])):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)
        assert nvidia.visible_indices(gpus) == want, value
    assert nvidia.cuda_env([1]) == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "1"}


def test_an_old_driver_without_compute_cap_and_no_nvidia_smi(smi, monkeypatch, tmp_path):
    smi([A100 | {"compute_cap": None}])  # the field is unknown to this driver
    (gpu,) = nvidia.list_gpus()
    assert gpu.name == "NVIDIA A100-SXM4-80GB" and gpu.compute_capability is None
    smi([])
    assert nvidia.list_gpus() == []
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    assert nvidia.executable() is None and nvidia.list_gpus() == []
    assert nvidia.query(("name",)) is None
