"""The launcher (`python -m doodle.training.launch`): what each process is told, and what happens
when one dies. Training through it: test_multiprocess.py."""

import json
import subprocess
import sys
import time

import pytest

from doodle.training import launch
from tests.pipeline_utils import ROOT


def test_process_env_places_each_process_for_both_engines(monkeypatch):
    addrs = launch.addresses(["hostA", "hostB"], 2, 7000)
    assert addrs == ["hostA:7000", "hostA:7001", "hostB:7000", "hostB:7001"]
    env = launch.process_env(addrs, rank=3, local_rank=1)
    tf_config = json.loads(env["TF_CONFIG"])
    assert tf_config == {"cluster": {"worker": addrs}, "task": {"type": "worker", "index": 3}}
    assert env["KERAS_DISTRIBUTION_JOB_ADDRESSES"] == ",".join(addrs)
    assert env["KERAS_DISTRIBUTION_NUM_PROCESSES"] == "4"
    assert env["KERAS_DISTRIBUTION_PROCESS_ID"] == "3"
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert launch.tf_config_rank() == (3, 4) and not launch.is_chief()
    # a cluster with a separate chief task counts it first
    monkeypatch.setenv(
        "TF_CONFIG",
        json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:1"]}, "task": {"type": "chief"}}),
    )
    monkeypatch.setenv("KERAS_DISTRIBUTION_PROCESS_ID", "0")
    assert launch.tf_config_rank() == (0, 2) and launch.is_chief()
    # one host: distinct free local ports; several hosts need a port
    local = launch.addresses(["127.0.0.1"], 3, None)
    assert len(set(local)) == 3 and all(a.startswith("127.0.0.1:") for a in local)
    with pytest.raises(SystemExit, match="give --port"):
        launch.addresses(["a", "b"], 1, None)
    # a host with its own port (two "hosts" on one machine, as test_multiprocess.py runs)
    assert launch.addresses(["a:5000", "a:6000"], 1, None) == ["a:5000", "a:6000"]


def _launcher(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "doodle.training.launch", *args, "--", sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_process_runs_with_its_rank_and_chief_output_is_not_prefixed():
    # one write a line: the chief's output and the others' prefixed lines share a terminal
    script = (
        "import os, sys\n"
        "sys.stdout.write('rank ' + os.environ['KERAS_DISTRIBUTION_PROCESS_ID'] + '\\n')\n"
    )
    p = _launcher(script, "--nproc", "3")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert "rank 0" in lines
    assert "[process 1] rank 1" in lines and "[process 2] rank 2" in lines


def test_a_killed_process_stops_the_others_with_a_clear_message():
    # process 1 dies by SIGKILL (as when the OOM killer strikes); process 0 would run for
    # minutes and even ignores SIGTERM, as a process blocked in a collective does
    script = (
        "import os, signal, time\n"
        "if os.environ['KERAS_DISTRIBUTION_PROCESS_ID'] == '1':\n"
        "    time.sleep(1); os.kill(os.getpid(), signal.SIGKILL)\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "time.sleep(300)\n"
    )
    t0 = time.time()
    p = _launcher(script, "--nproc", "2")
    took = time.time() - t0
    assert p.returncode == 137, (p.returncode, p.stderr)
    assert "process 1 (pid" in p.stderr and "was killed by SIGKILL" in p.stderr
    assert "stopping process(es) [0]" in p.stderr and "resume" in p.stderr
    assert took < 60, took  # GRACE_S, then SIGKILL: not the 300 s of the survivor


def test_launcher_exit_status_and_usage():
    assert _launcher("raise SystemExit(3)", "--nproc", "2").returncode == 3
    p = subprocess.run(
        [sys.executable, "-m", "doodle.training.launch", "--nproc", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert p.returncode == 2 and "give the command after --" in p.stderr


def test_one_gpu_per_process_from_the_lease_or_the_visible_ones(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert launch.process_gpus(2) == ["0", "1"]  # GPU k
    assert launch.process_gpus(2, [3, 1]) == ["3", "1"]  # the train stage's leased GPUs
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5,7")
    assert launch.process_gpus(2) == ["2", "5"]  # the k-th GPU this launcher may use
    with pytest.raises(SystemExit, match="only GPU"):
        launch.process_gpus(4)
