"""One GPU per running experiment: with a stand-in nvidia-smi listing 2 GPUs (and the CPU
opt-in, since nothing here can use them), three tiny queued experiments run with
`dvc exp run --run-all -j 3`: two hold distinct GPUs, the third waits for one of them and
then trains. Asserted from each experiment's logged lease lines (CUDA_VISIBLE_DEVICES, the
pids), not from timing.

To make the third's wait certain, the test itself first holds both GPUs (as two running
experiments would) until all three train stages are waiting (their ``waiting-<pid>.json``
in the lease folder), then lets go: two take the GPUs, and the third can only get one
when one of those two has trained and exited."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from doodle.gpu import lease
from tests.gpu.standin import A100
from tests.pipeline_utils import dvc, env, make_repo

pytestmark = pytest.mark.e2e

LEASED = re.compile(
    r"^train: leased GPU (\d) \(NVIDIA A100-SXM4-80GB\) after waiting \d+s for pid (\d+) "
    r"\((\w+)(?:, exp ([\w-]+))?.*\): CUDA_VISIBLE_DEVICES=(\d) \(pid (\d+)\)$"
)


def test_queued_experiments_get_one_gpu_each_and_the_third_waits(smi, tmp_path):
    smi([A100, A100])
    repo = make_repo(tmp_path / "repo")
    dvc("repro", "shard", cwd=repo)  # the queued runs check the data out of the cache
    names = ["gpu-a", "gpu-b", "gpu-c"]
    for seed, name in enumerate(names, 1):
        dvc("exp", "run", "--queue", "-n", name, "-S", f"seed={seed}",
            "-S", "runtime.allow_cpu=true", "train@base", cwd=repo)  # fmt: skip
    held = lease.acquire([0, 1], 2, "test")
    # Output to a file, not a pipe: DVC's queue workers are daemons that inherit it and
    # may outlive the command by seconds.
    with open(tmp_path / "run-all.log", "w") as log:
        run = subprocess.Popen(
            [str(Path(sys.executable).parent / "dvc"), "exp", "run", "--run-all", "-j", "3"],
            cwd=repo,
            env=env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 300
        while len(lease.waiting()) < 3:  # all three train stages are waiting for a GPU
            assert run.poll() is None and time.monotonic() < deadline, "not 3 waiting"
            time.sleep(0.2)
        held.release()
        code = run.wait(timeout=600)
    finally:
        held.release()
        if run.poll() is None:
            run.kill()
            run.wait()
    assert code == 0, (tmp_path / "run-all.log").read_text()[-4000:]

    leases = {}
    for name in names:
        log = dvc("queue", "logs", name, cwd=repo).stdout
        assert "train: base done" in log, log[-3000:]  # it ran, on the CPU by the opt-in
        waits = [ln for ln in log.splitlines() if ln.startswith("train: waiting for a free GPU")]
        assert len(waits) == 1, log[-3000:]  # one line, naming what it waits for
        (line,) = [ln for ln in log.splitlines() if ln.startswith("train: leased GPU")]
        m = LEASED.match(line)
        assert m, line
        gpu, waited_pid, waited_stage, waited_exp, visible, pid = m.groups()
        assert gpu == visible
        leases[name] = dict(
            gpu=visible, pid=pid, after=waited_pid, stage=waited_stage, exp=waited_exp
        )
    firsts = [n for n, x in leases.items() if x["after"] == str(os.getpid())]  # the test's GPUs
    (third,) = [n for n in names if n not in firsts]
    # two experiments held the two GPUs at once: distinct ones
    assert len(firsts) == 2 and {leases[n]["gpu"] for n in firsts} == {"0", "1"}, leases
    # the third waited for one of them (its train stage, by pid and experiment name), then
    # took the GPU that one released
    t = leases[third]
    (freed,) = [n for n in firsts if leases[n]["pid"] == t["after"]]
    assert t["stage"] == "train" and t["exp"] == freed and t["gpu"] == leases[freed]["gpu"], leases
