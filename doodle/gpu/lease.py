"""GPU leases: one running stage a GPU, so that ``dvc exp run --run-all -j N`` on an N-GPU
box trains N experiments, one GPU each.

A lease is an exclusive lock on one file a GPU (``gpu<index>.lock``, :mod:`filelock`) in a
per-user folder (``$DOODLE_GPU_LOCKS``, else ``<tmp>/doodle-gpu-leases-<uid>``; point
several users at one folder to share a box). The process holds it until it exits; the OS
drops the lock when the process dies, SIGKILL included, so a killed stage never leaves its
GPU taken. Beside each lock, ``gpu<index>.json`` says who holds it (pid, stage, folder), and
a process that waits writes ``waiting-<pid>.json``: ``python -m doodle.gpu.lease`` lists
both.

When every candidate GPU is leased, a stage waits (one line saying for what), rather than
sharing a GPU: two trainings on one GPU split its memory and its speed, and the second can
fail for memory hours in; waiting keeps each run as fast as alone and the queue as fast
as the GPUs allow.
"""

from __future__ import annotations

import atexit
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

LOCKS_ENV = "DOODLE_GPU_LOCKS"
POLL_S = 0.5


def lock_dir() -> Path:
    """The folder of the lock files (created on first use, private to the user)."""
    if os.environ.get(LOCKS_ENV):
        return Path(os.environ[LOCKS_ENV])
    uid = os.getuid() if hasattr(os, "getuid") else os.getlogin()
    return Path(tempfile.gettempdir()) / f"doodle-gpu-leases-{uid}"


def _lock_path(index: int) -> Path:
    return lock_dir() / f"gpu{index}.lock"


def _owner_path(index: int) -> Path:
    return lock_dir() / f"gpu{index}.json"


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def me(stage: str) -> dict:
    """Who asks: pid, stage, folder (a queued experiment runs in ``.dvc/tmp/exps/...``) and
    the experiment's name where DVC gives one."""
    who = {"pid": os.getpid(), "stage": stage, "cwd": os.getcwd(), "since": time.time()}
    if os.environ.get("DVC_EXP_NAME"):
        who["exp"] = os.environ["DVC_EXP_NAME"]
    return who


def describe(who: dict | None) -> str:
    """``pid 4242 (train base, exp dusty-moss, in /repo/.dvc/tmp/exps/tmp1a2b)``."""
    if not who:
        return "a process that gave no name"
    where = [who.get("stage", "?")]
    if who.get("exp"):
        where.append(f"exp {who['exp']}")
    if who.get("cwd"):
        where.append(f"in {who['cwd']}")
    return f"pid {who.get('pid', '?')} ({', '.join(where)})"


def holder(index: int) -> dict | None:
    """Who leased GPU ``index`` (None when free or unknown). A free lock says free: the
    owner file of a dead holder is not trusted."""
    lock = _try_lock(index)
    if lock is not None:
        lock.release()
        return None
    try:
        who = json.loads(_owner_path(index).read_text())
    except (OSError, ValueError):
        return {}
    return who if isinstance(who, dict) and _alive(int(who.get("pid", 0))) else {}


def waiting() -> list[dict]:
    """The live processes waiting for a GPU."""
    out = []
    for path in sorted(lock_dir().glob("waiting-*.json")) if lock_dir().is_dir() else []:
        try:
            who = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if _alive(int(who.get("pid", 0))):
            out.append(who)
    return out


def _try_lock(index: int):
    """The held lock of GPU ``index``, or None when another process holds it."""
    from filelock import FileLock, Timeout

    lock_dir().mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = FileLock(str(_lock_path(index)), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return None
    return lock


@dataclass
class Lease:
    """GPUs this process holds, until it exits (or :meth:`release`)."""

    indices: list[int]
    locks: list = field(default_factory=list, repr=False)
    waited_s: float = 0.0
    waited_for: list[dict] = field(default_factory=list)  # the holders seen last while waiting

    def release(self) -> None:
        """Give the GPUs back now (a second call does nothing)."""
        if not self.locks:
            return
        for i, lock in zip(self.indices, self.locks, strict=True):
            try:
                _owner_path(i).unlink(missing_ok=True)
            except OSError:
                pass
            lock.release()
        self.locks = []


_HELD: list[Lease] = []  # kept for the process's lifetime: the locks must not be collected


def _grab(candidates: list[int], count: int) -> tuple[list[int], list]:
    """Up to ``count`` free candidates, locked; all or nothing."""
    got, locks = [], []
    for i in candidates:
        lock = _try_lock(i)
        if lock is not None:
            got.append(i)
            locks.append(lock)
            if len(got) == count:
                return got, locks
    for lock in locks:
        lock.release()
    return [], []


def acquire(
    candidates: list[int],
    count: int,
    stage: str,
    log: Callable[[str], None] = print,
    what: str = "runtime.gpus: auto",
    poll_s: float = POLL_S,
) -> Lease:
    """Lease ``count`` of the ``candidates`` GPUs (lowest free indices first), waiting while
    fewer are free; the lease lives until the process exits."""
    if count > len(candidates):
        raise ValueError(f"{count} GPUs wanted of {len(candidates)}")
    who = me(stage)
    marker = lock_dir() / f"waiting-{who['pid']}.json"
    t0 = time.monotonic()
    announced = False
    holders: list[dict] = []
    try:
        while True:
            got, locks = _grab(candidates, count)
            if got:
                break
            holders = [dict(holder(i) or {}, gpu=i) for i in candidates]
            if not announced:
                _write_json(marker, who | {"candidates": candidates, "count": count})
                atexit.register(marker.unlink, missing_ok=True)
                log(_waiting_line(stage, candidates, count, holders, what))
                announced = True
            time.sleep(poll_s)
    finally:
        marker.unlink(missing_ok=True)
    for i in got:
        _write_json(_owner_path(i), who | {"gpu": i})
    lease = Lease(got, locks, time.monotonic() - t0 if announced else 0.0, holders)
    _HELD.append(lease)
    return lease


def _waiting_line(stage: str, candidates: list[int], count: int, holders, what: str) -> str:
    busy = "; ".join(f"GPU {h['gpu']} by {describe(h)}" for h in holders if h.get("pid"))
    need = "a free GPU" if count == 1 else f"{count} free GPUs"
    return (
        f"{stage}: waiting for {need} of {','.join(map(str, candidates))} ({what}): leased "
        f"{busy or 'by other processes'}; it starts when one is released "
        f"(leases in {lock_dir()})"
    )


def status_lines() -> list[str]:
    """Who holds which GPU nvidia-smi lists, and who waits (``python -m doodle.gpu.lease``)."""
    from doodle.gpu.nvidia import list_gpus

    gpus = list_gpus()
    if not gpus:
        return ["leases: nvidia-smi lists no GPU (nothing to lease)"]
    lines = []
    for g in gpus:
        who = holder(g.index)
        state = "free" if who is None else f"leased by {describe(who)}"
        lines.append(f"GPU {g.index} ({g.name}): {state}")
    for w in waiting():
        lines.append(
            f"waiting: {describe(w)} for {w.get('count', 1)} of GPUs {w.get('candidates')}"
        )
    lines.append(f"(leases in {lock_dir()})")
    return lines


if __name__ == "__main__":
    print("\n".join(status_lines()))
