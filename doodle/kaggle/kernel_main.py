"""The entry point of the kernel that ``make kaggle-run`` pushes, run by Kaggle as a script.

``doodle.kaggle.kernels`` writes the kernel's one file: this module's source, then ``RUN``
(what was pushed: run id, base commit, time limit, the packages to install when missing)
and ``PAYLOAD`` (the project's code and the run's params.yaml, a base64 tar.gz). On Kaggle it

1. finds the competition's data where Kaggle mounts it (read in place, never copied);
2. unpacks the code into scratch space (``/kaggle/temp``: not part of the output);
3. pip-installs only what the notebook image lacks (dvc, dvclive), never the backend:
   the image's TensorFlow/Keras/JAX are built for its CUDA;
4. makes the folder a git repository (DVC needs one) and runs ``dvc repro``, stopping it
   itself before the time limit so that what was made is kept;
5. copies the run into ``/kaggle/working`` (Kaggle's output), under the repo's own paths:
   params.yaml, dvc.lock, submission.csv, reports/, dvclive/, models/*/model.keras, the
   small data outputs, the test shard's key_ids and classes (what ``make submit`` checks a
   submission against), the code it ran and ``doodle-run.json`` (how the run went).

It needs no Kaggle credentials: the data is mounted. Anything that would need them stops
with one line. Standard library only, until step 3 has installed the rest.
Paths come from ``$DOODLE_KAGGLE_INPUT``, ``$DOODLE_KAGGLE_WORKING`` and
``$DOODLE_KAGGLE_SCRATCH`` when set (the tests run it in temporary folders), else Kaggle's.
"""

from __future__ import annotations

import base64
import importlib.metadata
import importlib.util
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

NAME = "doodle-kernel"
INPUT_ENV, WORKING_ENV, SCRATCH_ENV = (
    "DOODLE_KAGGLE_INPUT",
    "DOODLE_KAGGLE_WORKING",
    "DOODLE_KAGGLE_SCRATCH",
)
KAGGLE_PATHS = {
    INPUT_ENV: "/kaggle/input",
    WORKING_ENV: "/kaggle/working",
    SCRATCH_ENV: "/kaggle/temp",
}
RUN_FILE = "doodle-run.json"  # how the run went: what `make kaggle-pull` reads first
CODE_FILE = "doodle-code.tar.gz"  # the code it ran: the experiment records exactly that
# Files of a test set that mark a folder as the competition's data.
TEST_FILES = ("test_simplified.csv", "test_raw.csv")
# The shards stay on Kaggle (GBs on the full data); these small files of theirs come back:
# the test set's key_ids and the classes (what a submission is checked against).
SHARD_KEEP = ("test.qds", "classes.json", "dataset.json")
# Outputs of dvc.lock that do not come back, but for these files (the data itself).
LEFT_ON_KAGGLE = {"data/shards": SHARD_KEEP, "data/tfrecord": ("manifest.json",)}
BACKEND = ("keras",)  # the notebook's own: checked, never installed here
KERAS_MIN = (3, 3)


class KernelError(Exception):
    """A problem the kernel's owner can fix: one line, naming the fix."""


def say(message: str) -> None:
    print(f"{NAME}: {message}", flush=True)


def paths(env: dict[str, str] | None = None) -> tuple[Path, Path, Path]:
    """(input root, working = the output, scratch) from the environment or Kaggle's."""
    env = os.environ if env is None else env
    return tuple(Path(env.get(k) or v) for k, v in KAGGLE_PATHS.items())  # type: ignore[return-value]


def find_data(input_root: Path, competition: str) -> Path:
    """The competition's folder under ``input_root``: ``<root>/<competition>`` as Kaggle
    mounts it, else the first folder (3 levels deep at most) holding a test file."""
    if not input_root.is_dir():
        raise KernelError(
            f"{input_root} does not exist: this runs where Kaggle mounts the data (a pushed "
            f"kernel), or with ${INPUT_ENV} set"
        )
    direct = input_root / competition
    if any((direct / f).is_file() for f in TEST_FILES):
        return direct
    for depth in ("*", "*/*", "*/*/*"):
        for folder in sorted(input_root.glob(depth)):
            if folder.is_dir() and any((folder / f).is_file() for f in TEST_FILES):
                return folder
    raise KernelError(
        f"the competition's data is not under {input_root}: the kernel needs "
        f"competition_sources [{competition}] (make kaggle-run sets it) and your account must "
        f"have accepted the rules at https://www.kaggle.com/competitions/{competition}/rules"
    )


def unpack(payload: str, dest: Path) -> int:
    """Write the code in ``payload`` into ``dest`` (emptied first); returns the file count."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    data = base64.b64decode("".join(payload.split()))
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = tar.getmembers()
        for m in members:  # written by kernels.pack: plain files with relative names only
            if not m.isfile() or m.name.startswith("/") or ".." in Path(m.name).parts:
                raise KernelError(f"the kernel's code archive holds an unexpected entry {m.name}")
        tar.extractall(dest)
    (dest / CODE_FILE).write_bytes(data)
    return len(members)


def missing_packages(requirements: list[list[str]]) -> list[str]:
    """The requirements (``[module, pip requirement]``) whose module cannot be imported."""
    return [req for module, req in requirements if importlib.util.find_spec(module) is None]


def install(requirements: list[str], internet: bool) -> None:
    """pip install ``requirements`` (only what is missing; pip leaves the rest as it is)."""
    if not requirements:
        say("every package the pipeline needs is in the notebook image: nothing to install")
        return
    if not internet:
        raise KernelError(
            f"the notebook image lacks {', '.join(requirements)} and the kernel has no internet "
            "to install them: push with internet on (-S kernel.internet=true)"
        )
    say(f"installing what the notebook image lacks: {' '.join(requirements)}")
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-input", *requirements]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        tail = " | ".join(p.stdout.strip().splitlines()[-3:])
        raise KernelError(
            f"pip could not install {' '.join(requirements)} ({tail}): the kernel needs "
            "internet (-S kernel.internet=true) and Kaggle's package index reachable"
        )


def check_backend() -> str:
    """The notebook's Keras, which must be Keras 3; never installed over the image's."""
    try:
        version = importlib.metadata.version("keras")
    except importlib.metadata.PackageNotFoundError:
        version = None
    parts = tuple(int(p) for p in (version or "0").split(".")[:2] if p.isdigit())
    if version is None or parts < KERAS_MIN:
        raise KernelError(
            f"the notebook image has Keras {version or 'missing'}; the pipeline needs Keras "
            f">= {'.'.join(map(str, KERAS_MIN))} (Keras 3): use Kaggle's latest environment "
            "(the kernel's settings: Environment -> Always use latest)"
        )
    return version


def set_data_path(repo: Path, data: Path) -> None:
    """Point params.yaml's data.local.path at the mounted data (its comments kept)."""
    from ruamel.yaml import YAML  # installed with dvc

    yaml = YAML()
    yaml.width = 4096  # a long path stays on its line
    path = repo / "params.yaml"
    params = yaml.load(path.read_text())
    if params["data"]["source"] != "local":
        raise KernelError(
            f"params.yaml has data.source {params['data']['source']!r}: in a kernel the data "
            "is mounted and nothing may need Kaggle credentials; push with make kaggle-run, "
            "which sets data.source: local"
        )
    params["data"]["local"]["path"] = str(data)
    with open(path, "w") as f:
        yaml.dump(params, f)


def git_repo(repo: Path) -> None:
    """A git repository with one commit (DVC needs one) and an identity of its own."""
    if shutil.which("git") is None:
        raise KernelError("git is not in the notebook image: DVC needs it")
    cmds = [
        ["git", "init", "-q"],
        ["git", "config", "user.name", "doodle kernel"],
        ["git", "config", "user.email", "kernel@doodle.invalid"],
        [sys.executable, "-m", "dvc", "init", "-q"],
        [sys.executable, "-m", "dvc", "config", "core.analytics", "false"],
        [sys.executable, "-m", "dvc", "config", "core.check_update", "false"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "the pushed code"],
    ]
    for cmd in cmds:
        p = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, env=run_env())
        if p.returncode != 0:
            raise KernelError(f"`{' '.join(cmd[-3:])}` failed: {p.stderr.strip()[-300:]}")


def run_env() -> dict[str, str]:
    """The stages' environment: this interpreter's ``python`` first on PATH, quiet bars."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env["DVC_NO_ANALYTICS"] = "1"  # nothing sent anywhere from a kernel
    env.setdefault("TQDM_MININTERVAL", "30")  # a log line per bar every 30 s, not per step
    return env


def repro(
    repo: Path, deadline: float, cmd: list[str] | None = None
) -> tuple[int, str | None, bool]:
    """``dvc repro`` (or ``cmd``) with its output passed on to the log; stopped (SIGINT,
    then SIGKILL) at ``deadline`` (time.monotonic()). Returns (exit status, last stage
    started, whether it was stopped)."""
    cmd = cmd or [sys.executable, "-m", "dvc", "repro"]
    proc = subprocess.Popen(
        cmd, cwd=repo, env=run_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    seen: dict[str, str] = {}

    def pump() -> None:  # bytes as they come (progress bars redraw with \r, kept as is)
        for raw in iter(proc.stdout.readline, b""):
            sys.stdout.buffer.write(raw)
            sys.stdout.flush()
            if raw.startswith(b"Running stage '"):
                seen["stage"] = raw.split(b"'")[1].decode()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    stopped = False
    while proc.poll() is None:
        if not stopped and time.monotonic() > deadline:
            stopped = True
            say("the time limit is near: stopping dvc repro to keep what it made")
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(0.2)
    reader.join(30)
    return proc.wait(), seen.get("stage"), stopped


def _copy(src: Path, dest: Path) -> int:
    """Copy a file or folder; returns the bytes copied."""
    if src.is_dir():
        shutil.copytree(src, dest, dirs_exist_ok=True)
        return sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)
    return dest.stat().st_size


def lock_outputs(repo: Path) -> list[str]:
    """Every output dvc.lock lists (files and folders), in order."""
    import yaml

    path = repo / "dvc.lock"
    if not path.is_file():
        return []
    stages = (yaml.safe_load(path.read_text()) or {}).get("stages", {})
    return [o["path"] for s in stages.values() for o in s.get("outs", [])]


def collect(repo: Path, working: Path) -> dict[str, int]:
    """Copy the run into ``working`` under the repo's own paths; returns path -> bytes."""
    working.mkdir(parents=True, exist_ok=True)
    wanted = ["params.yaml", "dvc.lock", "submission.csv", "reports", "dvclive", CODE_FILE]
    wanted += [p for p in lock_outputs(repo) if p not in wanted]
    wanted += [str(p.relative_to(repo)) for p in sorted(repo.glob("models/*/model.keras"))]
    copied: dict[str, int] = {}
    for rel in dict.fromkeys(wanted):
        if rel.startswith("models/") and not rel.endswith("model.keras"):
            continue  # checkpoints stay: the trained model is models/<member>/model.keras
        src = repo / rel
        keep = LEFT_ON_KAGGLE.get(rel)
        if keep is not None:
            for name in keep:
                if (src / name).is_file():
                    copied[f"{rel}/{name}"] = _copy(src / name, working / rel / name)
        elif src.exists():
            copied[rel] = _copy(src, working / rel)
    return copied


def versions() -> dict[str, str | list[str]]:
    """What ran it: Python, the backend, DVC, the GPUs (nvidia-smi)."""
    out: dict[str, str | list[str]] = {"python": sys.version.split()[0]}
    for dist in ("tensorflow", "keras", "jax", "dvc", "dvclive"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    if shutil.which("nvidia-smi"):
        p = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
        )
        out["gpus"] = [ln.strip() for ln in p.stdout.splitlines() if ln.strip()]
    return out


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def main(run: dict, payload: str) -> int:
    """Run the pushed pipeline; 0 when it completed, 1 (with one ``error:`` line) if not."""
    t0 = time.monotonic()
    input_root, working, scratch = paths()
    record = {
        "run_id": run["run_id"],
        "kernel": run["kernel"],
        "base": run["base"],
        "started": now(),
        "run_type": os.environ.get("KAGGLE_KERNEL_RUN_TYPE", "none (not on Kaggle)"),
        "time_limit_s": run["time_limit_s"],
    }
    say(f"run {run['run_id']} of {run['kernel']} (commit {run['base'][:7]})")
    repo = scratch / "doodle"
    status, error = "error", None
    try:
        data = find_data(input_root, run["competition"])
        say(f"the competition's data: {data} (read in place)")
        say(f"{unpack(payload, repo)} files of code unpacked into {repo}")
        install(missing_packages(run["requirements"]), run["internet"])
        say(f"Keras {check_backend()} from the notebook image")
        set_data_path(repo, data)
        git_repo(repo)
        # stop with time left to copy the output (a tenth of the limit, at most 15 min)
        limit = float(run["time_limit_s"])
        deadline = t0 + limit - min(900.0, 0.1 * limit)
        code, stage, stopped = repro(repo, deadline)
        record["stage"] = stage
        if stopped:
            status = "timed out"
            error = (
                f"stopped at the time limit ({limit / 3600:g} h) in stage {stage}: lower the "
                "budget (train.epochs x train.steps_per_epoch) or raise kernel.time_limit_h "
                "(Kaggle's cap: 12 h)"
            )
        elif code != 0:
            error = (
                f"dvc repro failed (exit {code}) in stage {stage}: its lines are above; fix "
                "it and make kaggle-run again (a new version)"
            )
        else:
            status = "complete"
    except KernelError as e:
        error = str(e)
    record.update(status=status, error=error, finished=now(), seconds=time.monotonic() - t0)
    record["versions"] = versions()
    if repo.is_dir():
        record["outputs"] = collect(repo, working)
    working.mkdir(parents=True, exist_ok=True)
    (working / RUN_FILE).write_text(json.dumps(record, indent=1) + "\n")
    if error:
        say(f"error: {error}")
        return 1
    size = sum(record["outputs"].values())
    say(f"done in {record['seconds']:.0f} s: {len(record['outputs'])} outputs, {size:,} bytes")
    return 0
