"""``make gpu-check`` (``python -m doodle.gpu.check``) in a tiny smoke run, as on a GPU box
without TensorFlow, DVC or dvclive (``tests/no_tensorflow`` hides them): under JAX it
measures every step -- resident batches, the real loader at each worker count with the
input wait, the loader alone, a training run whose loss falls -- and writes the JSON
report and the Markdown table. A smaller graph (MobileNet v1 at 32 px) keeps it short;
its figures mean nothing. Where nvidia-smi lists a GPU the backend cannot see, it says so
in one line instead of falling back to its tiny mode."""

import json
import os
import subprocess
import sys

import pytest

from tests.gpu.standin import A100
from tests.pipeline_utils import ROOT, env


@pytest.mark.slow
def test_gpu_check_tiny_runs_under_jax_without_tensorflow(tmp_path):
    out = tmp_path / "reports" / "gpu_check.json"
    e = env() | {
        "KERAS_BACKEND": "jax",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "no_tensorflow"), str(ROOT)]),
    }
    cmd = [sys.executable, "-m", "doodle.gpu.check", "--sizes", "32", "--arch", "mobilenet"]
    p = subprocess.run(
        [*cmd, "--out", str(out)], cwd=ROOT, env=e, capture_output=True, text=True, timeout=600
    )
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    report = json.loads(out.read_text())
    m = report["machine"]
    assert m["backend"] == "jax" and m["tensorflow_importable"] is False
    assert report["mode"] == "tiny" and report["policy"] == "float32"  # CPU: auto is off
    assert report["workers_tried"] == sorted({1, min(4, m["cores"]), m["cores"]})
    size = report["sizes"]["32"]
    assert size["resident"]["images_per_s"] > 0 and size["resident"]["steps"] > 0
    for w in map(str, report["workers_tried"]):
        fed = size["fed"][w]
        assert fed["images_per_s"] > 0 and fed["steps"] > 0
        assert fed["feed_ratio"] == pytest.approx(
            fed["images_per_s"] / size["resident"]["images_per_s"], rel=0.01
        )
        assert 0 <= fed["input_wait"] < 1  # the project's own figure, measured there too
    assert size["loader_alone"]["1"]["images_per_s"] > 0
    assert size["arithmetic"]["cores_to_feed"] > 0
    t = report["training"]
    loss = t["loss_by_epoch"]
    assert len(loss) == t["epochs"] and all(0 < v < 20 for v in loss), loss  # finite, sane
    # the verdict follows the figures; tiny mode (45 steps of 8 on a CPU, the loss within
    # its batch noise) reports a loss that did not fall instead of failing on it
    assert t["loss_fell"] == (loss[-1] < loss[0])
    if not t["loss_fell"]:
        assert "the training loss did not fall (tiny mode: reported, not judged)" in p.stdout
    assert len(t["input_wait_by_epoch"]) == t["epochs"]
    table = out.with_suffix(".md").read_text()
    assert "| img_size | input | workers | images/s | feed ratio |" in table
    assert "| 32 | real loader | 1 |" in table and "Verdict: tiny mode" in table
    assert report["markdown"] in p.stdout


@pytest.mark.e2e
def test_gpu_check_names_a_gpu_the_backend_cannot_see(smi, tmp_path):
    smi([A100])
    e = env() | {
        "KERAS_BACKEND": "jax",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "no_tensorflow"), str(ROOT)]),
    }
    p = subprocess.run(
        [sys.executable, "-m", "doodle.gpu.check", "--out", str(tmp_path / "gpu_check.json")],
        cwd=ROOT,
        env=e,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 1 and "Traceback" not in p.stderr
    (line,) = [ln for ln in p.stderr.splitlines() if ln.startswith("gpu-check: error: ")]
    assert "nvidia-smi lists 1 GPU (0: NVIDIA A100-SXM4-80GB" in line
    assert "JAX" in line and "sees no GPU; likely cause: " in line and "jax[cuda12]" in line
    assert line.endswith("to run on the CPU anyway: --tiny, or DOODLE_ALLOW_CPU=1")
    assert "tiny mode" not in p.stdout and not (tmp_path / "gpu_check.json").exists()
