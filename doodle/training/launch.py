"""Start a command (the train stage) as N cooperating processes, on one host or several.

    python -m doodle.training.launch --nproc 2 -- python -m stages.train base

Each process gets the environment both engines read: ``TF_CONFIG`` (TensorFlow's
MultiWorkerMirroredStrategy) and ``KERAS_DISTRIBUTION_JOB_ADDRESSES`` /
``_NUM_PROCESSES`` / ``_PROCESS_ID`` (``keras.distribution.initialize`` on JAX), plus
``DOODLE_LOCAL_RANK``. Process 0 is the chief: it alone prints progress and writes the model,
checkpoints and dvclive files; the others' lines are prefixed ``[process i]``.

Several hosts: run the same command on every host with ``--hosts h0,h1,... --host-index i
--port P`` (process ``host_index * nproc + k`` listens on ``h_i:P+k``; ``h_i:PORT`` gives a
host its own first port); every host needs the data (``dvc pull``) and, to resume, a copy of
the chief's ``models/<member>/checkpoints``.

If a process dies, the launcher stops its others and exits with that process's code; a
rerun resumes from the chief's last checkpoint. On several hosts each launcher only sees
its own processes: the engines notice a lost peer themselves (TensorFlow's coordination
service, JAX's heartbeats) and stop the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

GRACE_S = 10.0  # how long processes told to stop get to exit before SIGKILL
PEER_GRACE_S = 2.0  # the same after a peer died: they wait in a collective that never ends


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` ports nothing listens on now (bound together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def addresses(hosts: Sequence[str], nproc: int, port: int | None) -> list[str]:
    """``host:port`` of every process, host by host: process k of a host listens on its
    port + k (a host given as ``host:port`` has its own port, else ``port``); fresh local
    ports for one host without a port."""
    if port is None and len(hosts) == 1 and ":" not in hosts[0]:
        return [f"{hosts[0]}:{p}" for p in free_ports(nproc, hosts[0])]
    out = []
    for h in hosts:
        name, _, own = h.partition(":")
        if not own and port is None:
            raise SystemExit(f"launch: host {h}: give --port, or the host as {h}:PORT")
        first = int(own) if own else port
        out += [f"{name}:{first + k}" for k in range(nproc)]
    return out


def process_env(addrs: Sequence[str], rank: int, local_rank: int) -> dict[str, str]:
    """The variables that place process ``rank`` among ``addrs`` for either engine."""
    tf_config = {"cluster": {"worker": list(addrs)}, "task": {"type": "worker", "index": rank}}
    return {
        "TF_CONFIG": json.dumps(tf_config),
        "KERAS_DISTRIBUTION_JOB_ADDRESSES": ",".join(addrs),
        "KERAS_DISTRIBUTION_NUM_PROCESSES": str(len(addrs)),
        "KERAS_DISTRIBUTION_PROCESS_ID": str(rank),
        "DOODLE_LOCAL_RANK": str(local_rank),
    }


def tf_config_rank() -> tuple[int, int]:
    """(this process, processes) from ``TF_CONFIG``: a ``chief`` task counts first, then
    the ``worker`` tasks in order (without a chief, worker 0 is the chief)."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    cluster, task = config.get("cluster", {}), config.get("task", {})
    chiefs = len(cluster.get("chief", []))
    processes = chiefs + len(cluster.get("worker", []))
    index = int(task.get("index", 0))
    return (index + chiefs if task.get("type", "worker") == "worker" else index), max(1, processes)


def process_gpus(nproc: int, gpus: Sequence[int | str] | None = None) -> list[str]:
    """The GPU of each local process: the k-th of ``gpus``, else of the GPUs
    ``CUDA_VISIBLE_DEVICES`` shows this launcher, else GPU k."""
    if gpus is None and os.environ.get("CUDA_VISIBLE_DEVICES", "").strip():
        gpus = [g.strip() for g in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if g.strip()]
    ids = [str(g) for g in gpus] if gpus is not None else [str(k) for k in range(nproc)]
    if len(ids) < nproc:
        raise SystemExit(
            f"launch: {nproc} processes, one GPU each, but only GPU(s) {','.join(ids)} to give"
        )
    return ids[:nproc]


def is_chief() -> bool:
    """Whether this process is process 0 of its run (true outside the launcher)."""
    jax_rank = int(os.environ.get("KERAS_DISTRIBUTION_PROCESS_ID", "0"))
    return jax_rank == 0 and tf_config_rank()[0] == 0


def launched() -> bool:
    """Whether this process was started by the launcher."""
    return "DOODLE_LOCAL_RANK" in os.environ


def _prefix_lines(stream, prefix: str) -> None:
    for line in iter(stream.readline, b""):
        sys.stdout.buffer.write(prefix.encode() + line)
        sys.stdout.flush()


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _stop(procs: dict[int, subprocess.Popen], grace: float = GRACE_S) -> None:
    """SIGTERM, then SIGKILL after ``GRACE_S``: a process blocked in a collective waiting
    for a dead peer may never act on SIGTERM."""
    for p in procs.values():
        if p.poll() is None:
            p.terminate()
    deadline = time.time() + grace
    for p in procs.values():
        try:
            p.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def launch(
    command: Sequence[str],
    nproc: int,
    hosts: Sequence[str] = ("127.0.0.1",),
    host_index: int = 0,
    port: int | None = None,
    gpu_per_process: bool = False,
    gpus: Sequence[int | str] | None = None,
) -> int:
    """Run ``command`` as this host's ``nproc`` processes; the exit status of the run.

    ``gpu_per_process``: local process k sees only the k-th of ``gpus`` (the GPUs the train
    stage leased), else of ``CUDA_VISIBLE_DEVICES``, else GPU k."""
    if nproc < 1:
        raise SystemExit("launch: --nproc must be at least 1")
    if not 0 <= host_index < len(hosts):
        raise SystemExit(f"launch: --host-index {host_index} is not in 0..{len(hosts) - 1}")
    per_process = process_gpus(nproc, gpus) if gpu_per_process else None
    addrs = addresses(hosts, nproc, port)
    procs: dict[int, subprocess.Popen] = {}
    for k in range(nproc):
        rank = host_index * nproc + k
        env = os.environ | process_env(addrs, rank, k)
        if per_process is not None:
            env["CUDA_VISIBLE_DEVICES"] = per_process[k]
        piped = rank != 0  # the chief's output (progress bars) passes through untouched
        procs[rank] = subprocess.Popen(
            list(command),
            env=env,
            stdout=subprocess.PIPE if piped else None,
            stderr=subprocess.STDOUT if piped else None,
        )
        if piped:
            threading.Thread(
                target=_prefix_lines, args=(procs[rank].stdout, f"[process {rank}] "), daemon=True
            ).start()
    print(
        f"launch: {len(addrs)} processes ({nproc} on this host: "
        f"{', '.join(f'{r} pid {p.pid}' for r, p in procs.items())})",
        flush=True,
    )

    stop = {}  # set when the launcher itself is told to stop

    def forward(signum, _frame):
        stop.setdefault("at", time.time())
        stop["signum"] = signum
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signum)

    saved = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _watch(procs, stop)
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


def _watch(procs: dict[int, subprocess.Popen], stop: dict) -> int:
    """Wait for the processes; stop them all when one fails or the launcher is told to."""
    while True:
        codes = {r: p.poll() for r, p in procs.items()}
        if stop and time.time() - stop["at"] > GRACE_S:
            # JAX's distributed runtime catches SIGTERM (a preemption notice) and goes on
            _stop(procs)
            return 128 + stop["signum"]
        failed = [r for r, c in codes.items() if c not in (None, 0)]
        if failed and not stop:
            rank = failed[0]
            others = [r for r, c in codes.items() if c is None]
            print(
                f"launch: process {rank} (pid {procs[rank].pid}) {_describe(codes[rank])}; "
                + (f"stopping process(es) {others}; " if others else "")
                + "rerun the same command to resume from the last checkpoint",
                file=sys.stderr,
                flush=True,
            )
            _stop(procs, PEER_GRACE_S)
            return codes[rank] if codes[rank] > 0 else 128 - codes[rank]
        if stop and all(c is not None for c in codes.values()):
            return 128 + stop["signum"]
        if all(c == 0 for c in codes.values()):
            return 0
        time.sleep(0.2)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m doodle.training.launch",
        description="Run a command (the train stage) as N cooperating training processes.",
        epilog="example: python -m doodle.training.launch --nproc 2 -- python -m stages.train base",
    )
    parser.add_argument("--nproc", type=int, default=1, help="processes on this host")
    parser.add_argument(
        "--hosts",
        default="127.0.0.1",
        help="comma-separated hosts (host or host:port), the chief's first",
    )
    parser.add_argument("--host-index", type=int, default=0, help="this host's place in --hosts")
    parser.add_argument(
        "--port", type=int, default=None, help="first port (required with several hosts)"
    )
    parser.add_argument(
        "--gpu-per-process",
        action="store_true",
        help="give local process k only GPU k (or the k-th of CUDA_VISIBLE_DEVICES)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command after --, e.g. -- python -m stages.train base")
    hosts = [h.strip() for h in args.hosts.split(",") if h.strip()]
    return launch(command, args.nproc, hosts, args.host_index, args.port, args.gpu_per_process)


if __name__ == "__main__":
    sys.exit(main())
