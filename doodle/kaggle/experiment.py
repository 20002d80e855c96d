"""A run that happened elsewhere (a pulled Kaggle kernel) recorded as a DVC experiment of this
repo, so that ``dvc exp show`` lists it beside the local ones and ``dvc exp apply`` brings
back its params, scores, submission.csv and models.

A DVC experiment is a git commit whose parent is the commit it was run from (its baseline),
under ``refs/exps/<baseline[:2]>/<baseline[2:]>/<name>``, with the outputs' content in the
DVC cache. ``dvc exp save`` would make one from the workspace, but it hashes every output
again, and a kernel's data outputs (the shards: GBs on the full data) stay on Kaggle. So
the commit is written here with git's own plumbing, in a separate index (the workspace and
the real index are not touched): the baseline's tree, with the code the kernel ran, its
params.yaml and dvc.lock as they were on Kaggle, its reports and dvclive/. The outputs that
came back go into the DVC cache through ``dvc add`` in a throwaway repository sharing this
one's cache, and only when DVC's hash of them is the one in the run's dvc.lock.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from doodle.errors import DoodleError
from doodle.kaggle.kernel_main import CODE_FILE, RUN_FILE

EXPS = "refs/exps"
KEPT = ("reports/submissions.csv",)  # this repo's record of uploads: never a run's
CODE_DIRS = ("doodle/", "stages/")


@dataclass
class Recorded:
    name: str
    ref: str
    commit: str
    base: str
    cached: list[str]  # outputs now in the DVC cache
    missing: list[str]  # outputs of the run's dvc.lock that did not come back
    existed: bool = False  # recorded by an earlier pull


def _git(repo: Path, *args: str, stdin: bytes | None = None, env: dict | None = None) -> str:
    p = subprocess.run(
        ["git", *args],
        cwd=repo,
        input=stdin,
        capture_output=True,
        env={**os.environ, **(env or {})},
    )
    if p.returncode != 0:
        raise DoodleError(f"git {args[0]} failed: {p.stderr.decode(errors='replace').strip()}")
    return p.stdout.decode().strip()


def exp_ref(base: str, name: str) -> str:
    return f"{EXPS}/{base[:2]}/{base[2:]}/{name}"


def _identity(repo: Path) -> dict[str, str]:
    """The repo's git identity, or a stand-in one when it has none (commit-tree needs one)."""
    env = {}
    for key, var in (("user.name", "NAME"), ("user.email", "EMAIL")):
        p = subprocess.run(["git", "config", key], cwd=repo, capture_output=True, text=True)
        if not p.stdout.strip():
            value = "doodle" if var == "NAME" else "doodle@localhost"
            env[f"GIT_AUTHOR_{var}"] = env[f"GIT_COMMITTER_{var}"] = value
    return env


def _run_files(run_dir: Path) -> dict[str, Path]:
    """The run's files that go into the commit: params.yaml, dvc.lock, dvclive/**, and the
    reports/ files git keeps (not the ignored pictures and CSVs, nor this repo's record)."""
    out = {n: run_dir / n for n in ("params.yaml", "dvc.lock") if (run_dir / n).is_file()}
    for top in ("dvclive", "reports"):
        for f in sorted((run_dir / top).rglob("*")):
            rel = f.relative_to(run_dir).as_posix()
            if f.is_file() and rel not in KEPT:
                out[rel] = f
    return out


def _ignored(repo: Path, paths: list[str]) -> set[str]:
    if not paths:
        return set()
    p = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin", "-z"],
        cwd=repo,
        input="\0".join(paths).encode(),
        capture_output=True,
    )
    return {x for x in p.stdout.decode().split("\0") if x}


def _code(run_dir: Path) -> dict[str, bytes]:
    """The code the kernel ran (its own archive, kept in its output)."""
    path = run_dir / CODE_FILE
    if not path.is_file():
        raise DoodleError(f"{path} not found: the run's output is incomplete; make kaggle-pull")
    with tarfile.open(fileobj=io.BytesIO(path.read_bytes()), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def _tree(repo: Path, base: str, files: dict[str, bytes], drop: list[str], index: Path) -> str:
    """The baseline's tree with ``drop`` removed and ``files`` written, in ``index``."""
    env = {"GIT_INDEX_FILE": str(index)}
    _git(repo, "read-tree", base, env=env)
    listed = _git(repo, "ls-files", "-z", "--cached", env=env).split("\0")
    gone = [p for p in listed if p and any(p.startswith(d) for d in drop) and p not in files]
    if gone:
        _git(repo, "update-index", "--force-remove", "-z", "--stdin", stdin=_z(gone), env=env)
    lines = []
    for path in sorted(files):
        blob = _git(repo, "hash-object", "-w", "--stdin", stdin=files[path])
        lines.append(f"100644 {blob}\t{path}")
    _git(repo, "update-index", "--index-info", stdin=("\n".join(lines) + "\n").encode(), env=env)
    return _git(repo, "write-tree", env=env)


def _z(paths: list[str]) -> bytes:
    return ("\0".join(paths) + "\0").encode()


def record(run_dir: Path, name: str, message: str, repo: Path = Path(".")) -> Recorded:
    """Record the complete run in ``run_dir`` (a kernel's pulled output) as experiment
    ``name`` of this repo; an experiment already recorded for the same run is kept."""
    run_dir, repo = Path(run_dir), Path(repo)
    info = json.loads((run_dir / RUN_FILE).read_text())
    if info.get("status") != "complete":
        raise DoodleError(
            f"{run_dir}: the run did not complete ({info.get('status')}): nothing to record"
        )
    base = info["base"]
    p = subprocess.run(
        ["git", "cat-file", "-e", f"{base}^{{commit}}"], cwd=repo, capture_output=True
    )
    if p.returncode != 0:
        raise DoodleError(
            f"the run was pushed from commit {base[:7]}, which this repo does not have: fetch "
            "it (git fetch) from the clone that pushed it, then make kaggle-pull again"
        )
    ref = exp_ref(base, name)
    lock = yaml.safe_load((run_dir / "dvc.lock").read_text())
    known = subprocess.run(
        ["git", "rev-parse", "-q", "--verify", ref], cwd=repo, capture_output=True, text=True
    )
    if known.returncode == 0:
        body = _git(repo, "log", "-1", "--format=%B", known.stdout.strip())
        if info["run_id"] not in body:
            raise DoodleError(
                f"experiment {name} exists and records another run: remove it "
                f"(dvc exp remove {name}) to record this one"
            )
        cached, missing = cache_outputs(repo, run_dir, lock)
        return Recorded(name, ref, known.stdout.strip(), base, cached, missing, existed=True)

    code = _code(run_dir)
    files = {p: b for p, b in code.items() if p != "params.yaml"}
    run_files = _run_files(run_dir)
    ignored = _ignored(repo, [p for p in run_files if p.startswith("reports/")])
    files |= {p: f.read_bytes() for p, f in run_files.items() if p not in ignored}
    drop = [*CODE_DIRS, "dvclive/"]
    with tempfile.TemporaryDirectory(prefix="doodle-exp-") as tmp:
        tree = _tree(repo, base, files, drop, Path(tmp) / "index")
    text = f"{message}\n\nrun {info['run_id']}"
    commit = _git(repo, "commit-tree", tree, "-p", base, "-m", text, env=_identity(repo))
    _git(repo, "update-ref", ref, commit)
    cached, missing = cache_outputs(repo, run_dir, lock)
    return Recorded(name, ref, commit, base, cached, missing)


def _dvc(cwd: Path, *args: str) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}  # the throwaway repo reports nothing
    p = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True, env=env
    )
    if p.returncode != 0:
        raise DoodleError(f"dvc {args[0]} failed: {(p.stderr or p.stdout).strip()[-400:]}")
    return p.stdout.strip()


def lock_outputs(lock: dict) -> dict[str, str]:
    """path -> md5 of every output dvc.lock lists."""
    return {
        o["path"]: o["md5"]
        for stage in (lock or {}).get("stages", {}).values()
        for o in stage.get("outs", [])
        if o.get("md5")
    }


def cache_outputs(repo: Path, run_dir: Path, lock: dict) -> tuple[list[str], list[str]]:
    """Put the run's outputs that came back into this repo's DVC cache, each only when DVC's
    hash of it is the one in the run's dvc.lock. Returns (cached, not here)."""
    outs = lock_outputs(lock)
    here = [p for p in outs if (run_dir / p).exists()]
    cached: list[str] = []
    if here:
        cache_dir = _dvc(repo, "cache", "dir")
        tmp_root = repo / ".dvc" / "tmp"
        tmp_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="kaggle-pull-", dir=tmp_root) as tmp:
            scratch = Path(tmp)
            _dvc(scratch, "init", "--no-scm", "-q")
            _dvc(scratch, "config", "cache.dir", cache_dir)
            _dvc(scratch, "config", "cache.type", "hardlink,copy")
            _dvc(scratch, "config", "core.check_update", "false")
            for p in here:
                _copy_tree(run_dir / p, scratch / p)
            _dvc(scratch, "add", "-q", *here)
            for p in here:
                meta = yaml.safe_load((scratch / f"{p}.dvc").read_text())
                if meta["outs"][0]["md5"] == outs[p]:
                    cached.append(p)
    return cached, [p for p in outs if p not in cached]


def _copy_tree(src: Path, dest: Path) -> None:
    """``src`` (file or folder) copied to ``dest`` (copies: the cache's files are made
    read-only by DVC, the pulled run's stay as they are)."""
    if src.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
    else:
        shutil.copytree(src, dest)


def metrics(run_dir: Path) -> dict | None:
    with contextlib.suppress(OSError, ValueError):
        return json.loads((Path(run_dir) / "reports" / "metrics.json").read_text())
    return None
