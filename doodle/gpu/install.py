"""Which wheels ``make install`` (and ``make run`` / ``make test``) installs, and why.

The Makefile asks this module once per call, before any venv exists, with the system's
``python3`` (standard library only):

* an NVIDIA GPU (``nvidia-smi`` lists one; ``GPU=1`` / ``GPU=0`` override the check): the
  CUDA build of the backend, pyproject's extra ``gpu`` (``tensorflow[and-cuda]``) or, with
  ``BACKEND=jax``, ``jax-gpu`` (``jax[cuda12]``);
* a Kaggle notebook (``KAGGLE_KERNEL_RUN_TYPE`` set) or Colab (``COLAB_RELEASE_TAG`` or
  ``COLAB_GPU`` set): the notebook's own TensorFlow, Keras and JAX, built for its CUDA, are
  reused: the venv sees the system's packages (``--system-site-packages``, the notebook's
  pip) and pip adds only what is missing or outside pyproject's bounds;
* otherwise (CI included) the plain install, as it always was.

    python3 -m doodle.gpu.install              # the line make prints
    python3 -m doodle.gpu.install --make GPU= BACKEND=jax   # what the Makefile reads
"""

from __future__ import annotations

import importlib.metadata as md
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

# The extras of pyproject.toml, by backend: the CUDA build and what it installs.
CUDA_EXTRA = {"tensorflow": ("gpu", "tensorflow[and-cuda]"), "jax": ("jax-gpu", "jax[cuda12]")}
REUSED = ("tensorflow", "keras", "jax")  # what a notebook brings, built for its CUDA
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


@dataclass(frozen=True)
class Choice:
    """What to install: venv flags, the runtime spec, the backend extra, a stamp name."""

    venv_flags: tuple[str, ...]
    runtime: str  # pip install -e <runtime>
    backend_extra: str | None  # the extra `make install BACKEND=...` adds
    variant: str  # cpu | gpu | notebook: a change re-runs the install
    line: str  # the one line make prints

    def make_words(self) -> str:
        """The Makefile's words: flags, runtime spec, backend extra, variant, the line."""
        flags = ",".join(self.venv_flags) or "-"
        return f"{flags} {self.runtime} {self.backend_extra or '-'} {self.variant} {self.line}"


def notebook(env: dict[str, str] | None = None) -> str | None:
    """``Kaggle notebook (KAGGLE_KERNEL_RUN_TYPE=...)`` / ``Colab (...)``, or None. Kaggle is
    asked first: its image is built on Colab's and sets COLAB_RELEASE_TAG too."""
    env = os.environ if env is None else env
    if env.get("KAGGLE_KERNEL_RUN_TYPE"):
        return f"Kaggle notebook: KAGGLE_KERNEL_RUN_TYPE={env['KAGGLE_KERNEL_RUN_TYPE']}"
    for var in ("COLAB_RELEASE_TAG", "COLAB_GPU"):
        if var in env:
            return f"Colab: {var}={env[var]}" if env[var] else f"Colab: {var} set"
    return None


def bounds(pyproject: Path = PYPROJECT) -> dict[str, str]:
    """``{"tensorflow": ">=2.16", "keras": ">=3.3,<4"}``: pyproject's bounds of the reused
    packages (read as text: Python 3.10 has no tomllib)."""
    text = pyproject.read_text() if pyproject.is_file() else ""
    out = {}
    for name in REUSED:
        m = re.search(rf'"{name}(?:\[[^\]]*\])?\s*([<>=!~][^";]*)"', text)
        if m:
            out[name] = m.group(1).replace(" ", "")
    return out


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v.split("+")[0])[:3])


def satisfies(version: str, spec: str) -> bool:
    """Whether ``version`` meets ``spec`` (``>=``, ``<``, ``<=``, ``>``, ``==`` parts)."""
    have = _version_tuple(version)
    for part in filter(None, spec.split(",")):
        op, want = re.match(r"([<>=!~]+)(.*)", part).groups()
        w = _version_tuple(want)
        n = max(len(w), 1)
        h = have[:n] + (0,) * (n - len(have[:n]))
        ok = {
            ">=": h >= w,
            ">": have > w,
            "<": h < w,
            "<=": h <= w,
            "==": h == w,
            "!=": h != w,
            "~=": h >= w,
        }.get(op, True)
        if not ok:
            return False
    return True


def _installed(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def reuse_note(backend: str = "", pyproject: Path = PYPROJECT) -> str:
    """``reused from the notebook: tensorflow 2.18.0, keras 3.8.0, jax 0.4.33`` (and what pip
    installs because it is missing or outside pyproject's bounds)."""
    need = bounds(pyproject)
    if backend != "jax":
        need.pop("jax", None)  # an extra's bound: only BACKEND=jax asks for it
    kept, fetched = [], []
    for name in REUSED:
        v = _installed(name)
        if v is None:
            if name in need:
                fetched.append(f"{name} (missing)")
        elif name in need and not satisfies(v, need[name]):
            fetched.append(f"{name} ({v} is outside {need[name]})")
        else:
            kept.append(f"{name} {v}")
    # (no apostrophe: make echoes the line in single quotes)
    note = f"reused from the notebook: {', '.join(kept)}" if kept else "nothing to reuse"
    return note + (f"; pip installs {', '.join(fetched)}" if fetched else "")


def choose(
    gpu: str = "", backend: str = "", env: dict[str, str] | None = None, gpus: list | None = None
) -> Choice:
    """The install for this machine. ``gpu``: "" (check nvidia-smi), "1" or "0"."""
    from doodle.gpu.nvidia import list_gpus

    env = os.environ if env is None else env
    backend = backend or ""
    extra = backend or None
    where = notebook(env)
    if gpu not in ("", "0", "1"):
        raise SystemExit(f"install: GPU={gpu}: give GPU=1 (the CUDA build) or GPU=0 (not)")
    if where and gpu == "":
        line = (
            f"install: {reuse_note(backend)} ({where}): a venv with --system-site-packages, pip "
            "adds only what is missing; GPU=1 installs the CUDA wheels anyway"
        )
        flags = ("--system-site-packages", "--without-pip")
        return Choice(flags, ".", extra, "notebook", line)
    gpus = list_gpus() if gpus is None else gpus
    names = ", ".join(sorted({g.name for g in gpus}))
    listed = f"nvidia-smi lists {len(gpus)} GPU{'s' * (len(gpus) > 1)}: {names}" if gpus else ""
    engine = "jax" if backend == "jax" else "tensorflow"
    cuda_extra, wheels = CUDA_EXTRA[engine]
    flags = ("--system-site-packages",) if where else ()  # GPU=1/0 in a notebook: still reuse
    if gpu == "1" or (gpu == "" and gpus):
        why = listed if gpu == "" else f"GPU=1; {listed or 'nvidia-smi lists no GPU here'}"
        undo = "; GPU=0 to skip" if gpu == "" else ""
        line = f"install: {wheels} ({why}{undo})"
        if engine == "jax":  # TensorFlow stays the plain wheel: JAX trains
            return Choice(flags, ".", cuda_extra, "cpu", line + " for KERAS_BACKEND=jax")
        return Choice(flags, '".[gpu]"', extra, "gpu", line)
    plain = "jax[cpu]" if engine == "jax" else "tensorflow"
    why = f"GPU=0, although {listed}" if gpus else "nvidia-smi lists no GPU; GPU=1 for CUDA"
    return Choice(flags, ".", extra, "cpu", f"install: {plain}, the CPU build ({why})")


def fix_line(backend: str) -> str:
    """The install command that gives ``backend`` its CUDA build on this machine."""
    extra, wheels = CUDA_EXTRA["jax" if backend == "jax" else "tensorflow"]
    make = "make install BACKEND=jax" if backend == "jax" else "make install"
    return (
        f'`{make}` (it picks {wheels} where nvidia-smi lists a GPU; or pip install -e ".[{extra}]")'
    )


def main(argv: list[str]) -> int:
    opts = dict(a.split("=", 1) for a in argv if "=" in a)
    choice = choose(opts.get("GPU", ""), opts.get("BACKEND", ""))
    print(choice.make_words() if "--make" in argv else choice.line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
