"""What ``nvidia-smi`` lists: the machine's NVIDIA GPUs, as the driver sees them.

The one place the package runs ``nvidia-smi``. Without it (no NVIDIA driver), or when it
fails, the machine has no GPU as far as the project is concerned: nothing changes there.
``nvidia-smi`` numbers GPUs in PCI bus order, so :func:`cuda_env` asks CUDA for the same
order (``CUDA_DEVICE_ORDER=PCI_BUS_ID``): ``CUDA_VISIBLE_DEVICES=1`` is nvidia-smi's GPU 1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass

TIMEOUT_S = 20  # a wedged driver can hang nvidia-smi; the machine then counts as GPU-less
# Older drivers (before ~510) do not know compute_cap: the query is repeated without it.
FIELDS = ("index", "name", "uuid", "memory.total", "memory.used", "driver_version", "compute_cap")


@dataclass(frozen=True)
class GPU:
    """One GPU as nvidia-smi lists it."""

    index: int
    name: str
    uuid: str = ""
    memory_mib: int | None = None  # memory.total
    memory_used_mib: int | None = None
    driver: str = ""
    compute_capability: tuple[int, int] | None = None

    def describe(self) -> str:
        """``0: NVIDIA A100-SXM4-80GB, 80 GiB, compute capability 8.0``."""
        parts = [f"{self.index}: {self.name}"]
        if self.memory_mib:
            parts.append(f"{self.memory_mib / 1024:.0f} GiB")
        if self.compute_capability:
            parts.append("compute capability {}.{}".format(*self.compute_capability))
        return ", ".join(parts)


def executable() -> str | None:
    """The ``nvidia-smi`` on the PATH, or None."""
    return shutil.which("nvidia-smi")


def query(fields: tuple[str, ...] | list[str]) -> list[list[str]] | None:
    """Rows of ``nvidia-smi --query-gpu=<fields> --format=csv,noheader,nounits``, one a GPU
    (values stripped); None without nvidia-smi or when it fails."""
    exe = executable()
    if not exe:
        return None
    try:
        out = subprocess.run(
            [exe, f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return [[c.strip() for c in line.split(",")] for line in out.splitlines() if line.strip()]


def _int(value: str) -> int | None:
    try:
        return int(float(value))
    except ValueError:  # "[N/A]", "[Not Supported]"
        return None


def _capability(value: str) -> tuple[int, int] | None:
    major, _, minor = value.partition(".")
    try:
        return int(major), int(minor or 0)
    except ValueError:
        return None


def list_gpus() -> list[GPU]:
    """Every GPU nvidia-smi lists, in its order; [] without nvidia-smi or a GPU."""
    rows = query(FIELDS)
    fields = FIELDS
    if rows is None and executable():
        fields = FIELDS[:-1]  # a driver without compute_cap
        rows = query(fields)
    gpus = []
    for row in rows or []:
        if len(row) != len(fields):
            continue
        v = dict(zip(fields, row, strict=True))
        index = _int(v["index"])
        if index is None:
            continue
        gpus.append(
            GPU(
                index=index,
                name=v["name"],
                uuid=v["uuid"],
                memory_mib=_int(v["memory.total"]),
                memory_used_mib=_int(v["memory.used"]),
                driver=v["driver_version"],
                compute_capability=_capability(v.get("compute_cap", "")),
            )
        )
    return gpus


def summary(gpus: list[GPU]) -> str:
    """``1 GPU (0: NVIDIA A100-SXM4-80GB, 80 GiB, compute capability 8.0; driver 550.54)``."""
    if not gpus:
        return "no GPU"
    drivers = sorted({g.driver for g in gpus if g.driver})
    driver = f"; driver {', '.join(drivers)}" if drivers else ""
    listed = "; ".join(g.describe() for g in gpus)
    return f"{len(gpus)} GPU{'s' * (len(gpus) > 1)} ({listed}{driver})"


def visible_indices(gpus: list[GPU], env: dict[str, str] | None = None) -> list[int]:
    """The listed GPUs this process may use: all of them, or those ``CUDA_VISIBLE_DEVICES``
    names (by index or UUID, in its order; ``""`` or ``-1`` hides them all)."""
    env = os.environ if env is None else env
    value = env.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return [g.index for g in gpus]
    by_uuid = {g.uuid: g.index for g in gpus if g.uuid}
    listed = {g.index for g in gpus}
    out = []
    for item in (v.strip() for v in value.split(",")):
        if not item:
            continue
        if item.lstrip("-").isdigit():
            if int(item) < 0:
                break  # CUDA stops at the first invalid entry
            if int(item) in listed:
                out.append(int(item))
        else:
            match = next((i for u, i in by_uuid.items() if u.startswith(item)), None)
            if match is not None:
                out.append(match)
    return out


def by_index(gpus: list[GPU], indices: list[int]) -> list[GPU]:
    """The GPUs with these indices, in that order."""
    table = {g.index: g for g in gpus}
    return [table[i] for i in indices if i in table]


def cuda_env(indices: list[int]) -> dict[str, str]:
    """The environment that shows a process only these GPUs, numbered as nvidia-smi does."""
    return {
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        "CUDA_VISIBLE_DEVICES": ",".join(map(str, indices)),
    }


class Utilisation:
    """``nvidia-smi`` sampled in the background every 200 ms; ``stats(t0, t1)`` averages the
    samples taken inside a window of ``time.perf_counter()`` times (all listed GPUs)."""

    def __init__(self, interval_ms: int = 200):
        self.samples: list[tuple[float, float, float]] = []  # (time, util %, memory MiB)
        self.proc = None
        exe = executable()
        if exe and query(("utilization.gpu",)):
            self.proc = subprocess.Popen(
                [
                    exe,
                    "--query-gpu=utilization.gpu,memory.used",
                    "--format=csv,noheader,nounits",
                    "-lms",
                    str(interval_ms),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                util, mem = (float(c) for c in line.split(",")[:2])
            except ValueError:
                continue
            self.samples.append((time.perf_counter(), util, mem))

    @property
    def available(self) -> bool:
        return self.proc is not None

    def stats(self, t0: float, t1: float) -> dict:
        inside = [(u, m) for t, u, m in list(self.samples) if t0 <= t <= t1]
        if not inside:
            return {}
        util = sorted(u for u, _ in inside)
        mid = len(util) // 2
        median = util[mid] if len(util) % 2 else (util[mid - 1] + util[mid]) / 2
        return {
            "gpu_util_mean": round(sum(util) / len(util), 1),
            "gpu_util_median": round(median, 1),
            "gpu_util_samples": len(inside),
            "gpu_memory_mib_max": max(m for _, m in inside),
        }

    def close(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
