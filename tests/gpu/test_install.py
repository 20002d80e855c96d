"""The install `make install` / `make run` / `make test` choose (`make -n install`, nothing
installed): the plain wheels where nvidia-smi lists no GPU (CI), the CUDA extras where the
stand-in lists one (GPU=0|1 override), and in a Kaggle or Colab notebook a venv over the
notebook's own packages; pyproject's extras are what the lines name."""

import os
import re
import shutil
import subprocess
import sys

import pytest

from doodle.gpu import install
from tests.conftest import ROOT
from tests.gpu.standin import A100

NOTEBOOK_VARS = ("KAGGLE_KERNEL_RUN_TYPE", "COLAB_RELEASE_TAG", "COLAB_GPU")


@pytest.fixture
def project(tmp_path):
    """What `make install` reads before any venv exists: the Makefile, pyproject.toml and
    the detection script (no .venv: make -n shows every step)."""
    dest = tmp_path / "project"
    for name in ("Makefile", "pyproject.toml", "doodle/__init__.py", "doodle/gpu/__init__.py",
                 "doodle/gpu/install.py", "doodle/gpu/nvidia.py"):  # fmt: skip
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, dest / name)
    return dest


def make_n(project, *assign: str, **env: str) -> list[str]:
    # a fresh shell's make: not a sub-make of `make test` (MAKELEVEL would print make[1]:)
    drop = {*NOTEBOOK_VARS, "GPU", "MAKELEVEL", "MAKEFLAGS", "MFLAGS"}
    e = {k: v for k, v in os.environ.items() if k not in drop}
    p = subprocess.run(
        ["make", "-n", "--no-print-directory", "install", *assign],
        cwd=project,
        env=e | env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    return p.stdout.splitlines()


def installs(lines: list[str]) -> list[str]:
    """The pip install specs (what is installed), in order."""
    return [m.group(1) for ln in lines if (m := re.search(r"pip install -q -e (\S+)$", ln))]


def said(lines: list[str]) -> str:
    (line,) = [ln for ln in lines if ln.startswith("echo 'install: ")]
    return line.removeprefix("echo '").removesuffix("'")


def test_cpu_machine_keeps_the_plain_install(smi, project):
    smi([])  # nvidia-smi lists nothing, as on CI (where there is no nvidia-smi at all)
    lines = make_n(project)
    assert (
        said(lines)
        == "install: tensorflow, the CPU build (nvidia-smi lists no GPU; GPU=1 for CUDA)"
    )
    assert installs(lines) == ["."]
    assert "python3 -m venv .venv" in "\n".join(lines)  # a venv of its own, as always
    assert installs(make_n(project, "BACKEND=jax")) == [".", '".[jax]"']


def test_a_gpu_box_gets_the_cuda_builds(smi, project):
    smi([A100])
    lines = make_n(project)
    assert said(lines) == (
        "install: tensorflow[and-cuda] (nvidia-smi lists 1 GPU: NVIDIA A100-SXM4-80GB; "
        "GPU=0 to skip)"
    )
    assert installs(lines) == ['".[gpu]"']
    jax = make_n(project, "BACKEND=jax")
    assert said(jax).startswith("install: jax[cuda12] (nvidia-smi lists 1 GPU: NVIDIA A100")
    assert installs(jax) == [".", '".[jax-gpu]"']
    assert installs(make_n(project, "GPU=0")) == ["."]
    assert "GPU=0, although nvidia-smi lists 1 GPU" in said(make_n(project, "GPU=0"))
    smi([])
    assert installs(make_n(project, "GPU=1")) == ['".[gpu]"']  # asked for: a box to be


def test_notebooks_reuse_their_backend(smi, project):
    smi([A100])  # a notebook with a GPU: still its own CUDA-matched TensorFlow
    py = f"PYTHON={sys.executable}"  # the notebook's python, with its packages
    kaggle = make_n(project, py, KAGGLE_KERNEL_RUN_TYPE="Interactive")
    line = said(kaggle)
    assert line.startswith("install: reused from the notebook: tensorflow ")
    assert "(Kaggle notebook: KAGGLE_KERNEL_RUN_TYPE=Interactive)" in line
    assert "-m venv --system-site-packages --without-pip .venv" in "\n".join(kaggle)
    assert installs(kaggle) == ["."]  # pip adds only what the notebook lacks
    assert "--upgrade pip" not in "\n".join(kaggle)
    for var, value in (("COLAB_RELEASE_TAG", "release-colab_20250219"), ("COLAB_GPU", "")):
        colab = make_n(project, py, **{var: value})
        assert f"(Colab: {var}" in said(colab) and installs(colab) == ["."]


def test_the_extras_the_lines_name(tmp_path):
    text = (ROOT / "pyproject.toml").read_text()
    assert 'gpu = ["tensorflow[and-cuda]>=2.16"]' in text and '"tensorflow>=2.16",' in text
    assert 'jax-gpu = ["jax[cuda12]>=0.4.30"]' in text
    assert install.bounds()["tensorflow"] == ">=2.16" and install.bounds()["keras"] == ">=3.3,<4"
    assert install.satisfies("2.18.0", ">=2.16") and not install.satisfies("2.15.1", ">=2.16")
    assert install.satisfies("3.8.0", ">=3.3,<4") and not install.satisfies("4.0.1", ">=3.3,<4")
    assert install.notebook({"COLAB_RELEASE_TAG": "x", "KAGGLE_KERNEL_RUN_TYPE": "Batch"}) == (
        "Kaggle notebook: KAGGLE_KERNEL_RUN_TYPE=Batch"  # Kaggle's image sets Colab's tag too
    )
    assert install.notebook({}) is None


def test_a_changed_variant_installs_again(smi, project):
    smi([])
    venv = project / ".venv"
    venv.mkdir()
    (venv / ".variant-cpu").touch()
    os.utime(venv / ".variant-cpu", (1, 1))  # older than the install
    (venv / ".runtime").touch()
    assert make_n(project) == ["make: Nothing to be done for 'install'."]  # same variant
    again = make_n(project, "GPU=1")  # the CUDA build asked for after a CPU install
    assert installs(again) == ['".[gpu]"'] and "touch .venv/.variant-gpu" in again[0]
