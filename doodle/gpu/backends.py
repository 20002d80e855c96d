"""What the installed backends (TensorFlow, JAX) see, what CUDA they were built for, and why
one may not see a GPU that nvidia-smi lists.

Installed-or-not is asked without importing (``importlib``): importing TensorFlow costs
seconds and a CUDA start-up. :func:`probe` asks a backend in a subprocess (``make doctor``),
:func:`inspect` in this process (a stage, after it loaded its backend).

    python -m doodle.gpu.backends tensorflow      # one JSON line: what TensorFlow sees
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import json
import os
import subprocess
import sys

NAMES = {"tensorflow": "TensorFlow", "jax": "JAX"}
# The CUDA libraries as wheels: tensorflow[and-cuda] installs these; jax[cuda12] the plugin.
TF_CUDA_WHEELS = ("nvidia-cudnn-cu12", "nvidia-cuda-runtime-cu12", "nvidia-cublas-cu12")
JAX_CUDA_WHEELS = ("jax-cuda12-plugin", "jax-cuda12-pjrt", "jax-cuda13-plugin")


def version(package: str) -> str | None:
    """The installed version of ``package`` (None when it cannot be imported: a package
    hidden from the import system counts as absent)."""
    if importlib.util.find_spec(package.replace("-", "_")) is None:
        return None
    try:
        return md.version(package)
    except md.PackageNotFoundError:
        return None


def _wheels(names: tuple[str, ...]) -> list[str]:
    out = []
    for n in names:
        try:
            out.append(f"{n} {md.version(n)}")
        except md.PackageNotFoundError:
            pass
    return out


def cuda_wheels(backend: str) -> list[str]:
    """The CUDA wheels installed for ``backend`` (``["nvidia-cudnn-cu12 9.1.0", ...]``)."""
    return _wheels(TF_CUDA_WHEELS if backend == "tensorflow" else JAX_CUDA_WHEELS)


def inspect(backend: str) -> dict:
    """What ``backend`` sees in this process (imports it): version, CUDA build, GPUs."""
    if backend == "tensorflow":
        import tensorflow as tf

        build = dict(tf.sysconfig.get_build_info())
        gpus = []
        for g in tf.config.list_physical_devices("GPU"):
            details = tf.config.experimental.get_device_details(g)
            cc = details.get("compute_capability")
            gpus.append(
                {"name": str(details.get("device_name", g.name)), "cc": list(cc) if cc else None}
            )
        return {
            "backend": backend,
            "version": tf.__version__,
            "cuda_build": bool(build.get("is_cuda_build")),
            "cuda": build.get("cuda_version"),
            "cudnn": build.get("cudnn_version"),
            "gpus": gpus,
            "cuda_wheels": cuda_wheels(backend),
        }
    import jax

    gpus = []
    try:
        devices = jax.devices()
    except RuntimeError:  # a platform asked for by JAX_PLATFORMS that cannot start
        devices = []
    for d in devices:
        if d.platform == "gpu" or d.platform == "cuda":
            cc = getattr(d, "compute_capability", None)
            gpus.append({"name": str(d.device_kind), "cc": str(cc).split(".") if cc else None})
    plugins = cuda_wheels(backend)
    return {
        "backend": backend,
        "version": jax.__version__,
        "jaxlib": version("jaxlib"),
        "cuda_build": bool(plugins) or "cuda" in (version("jaxlib") or ""),
        "cuda": next((p.split()[0].split("-")[1] for p in plugins), None),
        "gpus": gpus,
        "cuda_wheels": plugins,
    }


def built_with(info: dict) -> str:
    """``built for CUDA 12.5.1, cuDNN 9`` / ``CPU-only build``."""
    if info["backend"] == "tensorflow":
        if not info.get("cuda_build"):
            return "a CPU-only build"
        return f"built for CUDA {info.get('cuda')}, cuDNN {info.get('cudnn')}"
    if not info.get("cuda_build"):
        return f"jaxlib {info.get('jaxlib')}, no CUDA plugin"
    return f"jaxlib {info.get('jaxlib')} with {', '.join(info.get('cuda_wheels') or ['CUDA'])}"


def likely_cause(info: dict) -> str:
    """Why ``info``'s backend sees no GPU although the driver lists one (the likeliest)."""
    name = NAMES[info["backend"]]
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return "CUDA_VISIBLE_DEVICES hides every GPU from this process"
    if info["backend"] == "tensorflow":
        if not info.get("cuda_build"):
            return f"this {name} is a CPU-only build"
        if not info.get("cuda_wheels"):
            return (
                f"no CUDA {info.get('cuda')} / cuDNN {info.get('cudnn')} libraries found: the "
                "plain tensorflow wheel expects them installed system-wide; "
                "tensorflow[and-cuda] brings them as wheels"
            )
        return (
            f"its CUDA libraries are installed ({', '.join(info['cuda_wheels'])}) but did not "
            f"start: see {name}'s CUDA lines above (a driver older than CUDA "
            f"{info.get('cuda')} needs?)"
        )
    if not info.get("cuda_build"):
        return f"jaxlib {info.get('jaxlib')} has no CUDA plugin (jax[cpu]; jax[cuda12] brings it)"
    return (
        f"the CUDA plugin is installed ({', '.join(info['cuda_wheels'])}) but found no usable "
        "GPU: see JAX's lines above (a driver older than the plugin's CUDA needs?)"
    )


def probe(backend: str, timeout: float = 180, env: dict | None = None) -> dict:
    """:func:`inspect` in a fresh process (its start-up lines in ``"stderr"``); on failure
    ``{"error": ...}``. The backend's log level is lowered so that CUDA lines show."""
    e = dict(os.environ if env is None else env)
    e["TF_CPP_MIN_LOG_LEVEL"] = "1"  # warnings and errors: the CUDA start-up's account
    e.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    e.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    try:
        p = subprocess.run(
            [sys.executable, "-m", "doodle.gpu.backends", backend],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=e,
        )
    except subprocess.TimeoutExpired:
        return {"backend": backend, "error": f"no answer within {timeout:.0f} s", "stderr": []}
    stderr = [ln for ln in p.stderr.splitlines() if ln.strip()]
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        last = stderr[-1] if stderr else f"exit status {p.returncode}"
        return {"backend": backend, "error": last, "stderr": stderr}
    return json.loads(lines[-1]) | {"stderr": stderr}


if __name__ == "__main__":
    print(json.dumps(inspect(sys.argv[1] if len(sys.argv) > 1 else "tensorflow")))
