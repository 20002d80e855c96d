"""GPU leases (doodle.gpu.lease): one holder a GPU, the lowest free first; a process that
finds none waits with one line naming the holders and starts when one is released; a
SIGKILLed holder frees its GPU at once (the OS drops its lock)."""

import os
import signal
import subprocess
import sys

import pytest

from doodle.gpu import lease
from tests.conftest import ROOT
from tests.gpu.standin import A100

# A holder in its own process: lease `count` of the GPUs `candidates`, say which, hold on.
HOLD = """
import sys, time
from doodle.gpu.lease import acquire
got = acquire({candidates}, {count}, "train", log=lambda s: print(s, flush=True))
print("HOLDING", ",".join(map(str, got.indices)), flush=True)
time.sleep(300)
"""


def holder_process(candidates: list[int], count: int = 1) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", HOLD.format(candidates=candidates, count=count)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def read_until(p: subprocess.Popen, prefix: str) -> str:
    """The first line of ``p`` starting with ``prefix`` (its earlier lines are dropped)."""
    for line in p.stdout:
        if line.startswith(prefix):
            return line.strip()
    raise AssertionError(f"the process ended without a {prefix!r} line (rc {p.wait()})")


@pytest.fixture
def procs():
    started: list[subprocess.Popen] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait()


def test_distinct_gpus_then_a_wait_named_by_its_holders(smi, procs):
    smi([A100, A100])
    mine = lease.acquire([0, 1], 1, "train")
    assert mine.indices == [0] and mine.waited_s == 0.0
    other = holder_process([0, 1])
    procs.append(other)
    assert read_until(other, "HOLDING") == "HOLDING 1"  # the other free one, not mine
    assert lease.holder(1)["pid"] == other.pid and lease.holder(0)["pid"] == os.getpid()
    third = holder_process([0, 1])
    procs.append(third)
    line = read_until(third, "train: waiting")
    assert line.startswith("train: waiting for a free GPU of 0,1 (runtime.gpus: auto): leased ")
    assert f"GPU 0 by pid {os.getpid()} (train" in line and f"GPU 1 by pid {other.pid}" in line
    assert f"(leases in {lease.lock_dir()})" in line
    status = "\n".join(lease.status_lines())
    assert f"GPU 0 (NVIDIA A100-SXM4-80GB): leased by pid {os.getpid()}" in status
    assert f"waiting: pid {third.pid} (train" in status
    mine.release()  # the waiting one takes it
    assert read_until(third, "HOLDING") == "HOLDING 0"
    assert lease.holder(0)["pid"] == third.pid and not lease.waiting()


def test_a_sigkilled_holder_frees_its_gpu(smi, procs):
    smi([A100])
    holder = holder_process([0])
    procs.append(holder)
    assert read_until(holder, "HOLDING") == "HOLDING 0"
    assert lease._grab([0], 1) == ([], [])  # taken
    holder.send_signal(signal.SIGKILL)
    assert holder.wait() == -signal.SIGKILL
    got, locks = lease._grab([0], 1)  # free again at once: no stale lock to clear by hand
    assert got == [0]
    assert lease.holder(0) is not None  # now this process holds it
    for lock in locks:
        lock.release()
    assert lease.holder(0) is None


def test_several_gpus_are_leased_all_or_nothing(smi, procs):
    smi([A100, A100, A100])
    one = holder_process([0, 1, 2], 1)
    procs.append(one)
    assert read_until(one, "HOLDING") == "HOLDING 0"
    two = lease.acquire([0, 1, 2], 2, "train")
    assert two.indices == [1, 2]
    assert lease._grab([0, 1, 2], 1) == ([], [])  # none left, none half-taken
    with pytest.raises(ValueError):
        lease.acquire([0, 1], 3, "train")
    two.release()
