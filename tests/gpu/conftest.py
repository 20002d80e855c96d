"""The stand-in nvidia-smi (tests/gpu/standin.py) first on the PATH, and a private lease
folder, for every test that asks for ``smi``."""

import os

import pytest

from tests.gpu.standin import install, set_gpus


@pytest.fixture
def smi(tmp_path, monkeypatch):
    """Put a stand-in nvidia-smi first on the PATH (listing no GPU until told); returns a
    function that sets the GPUs it lists. Leases go to a folder of this test's own."""
    bin_dir = tmp_path / "smi-bin"
    install(bin_dir, [])
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DOODLE_GPU_LOCKS", str(tmp_path / "leases"))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    def listing(gpus: list[dict]) -> str:
        set_gpus(bin_dir, gpus)
        return str(bin_dir)

    listing.bin_dir = bin_dir
    return listing
