"""Helpers for end-to-end tests: a temporary copy of the repo with tiny params."""

from __future__ import annotations

import copy
import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COPY = (
    "doodle",
    "stages",
    "params.yaml",
    "dvc.yaml",
    ".dvc/config",
    "data/weights/README.md",  # the train stages depend on data/weights
    ".dvcignore",
    ".gitignore",
    "pyproject.toml",
)

# `source` (a fingerprint of the data source) is DVC's always_changed: it runs every time,
# and what follows runs only when the fingerprint changed.
WATCH = "source"
ALL_STAGES = [WATCH, "download", "shard", "tfrecord", "train@base", "predict@base", "ensemble"]


def _tiny() -> dict:
    """presets/tiny.args (what `make tiny` runs) as overrides of params.yaml."""
    from doodle.presets import apply_args, read_args

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    tiny = apply_args(copy.deepcopy(params), read_args(ROOT / "presets" / "tiny.args"))
    return _changed(params, tiny)


def _changed(before: dict, after: dict) -> dict:
    out = {}
    for k, v in after.items():
        if isinstance(v, dict) and isinstance(before.get(k), dict):
            sub = _changed(before[k], v)
            if sub:
                out[k] = sub
        elif before.get(k, object()) != v:
            out[k] = v
    return out


# The tiny settings the end-to-end repos run with (presets/tiny.args): eager steps (no graph
# tracing, a third of a tiny stage's time); these repos test the DVC wiring and the stages'
# logic, graph-mode training is tested in test_training.py and test_learning.py.
TINY = _tiny()


def env() -> dict:
    e = dict(os.environ)
    e["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{e['PATH']}"
    e["PYTHONUNBUFFERED"] = "1"
    return e


def merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


_jit_warm = False


def warm_jit_cache() -> None:
    """Compile the numba kernels into the package's cache once per test process (a lock keeps
    two workers from compiling the same kernels side by side): ``make_repo`` copies the
    package with that cache, so the stages of a temporary repo load kernels instead of
    compiling them (about 30 s a repo)."""
    global _jit_warm
    if _jit_warm:
        return
    import fcntl

    from tests.warm_jit import warm

    lock = ROOT / ".pytest_cache" / "warm_jit.lock"
    lock.parent.mkdir(exist_ok=True)
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        warm()
    _jit_warm = True


def make_repo(dest: Path, overrides: dict | None = None) -> Path:
    """Copy the project into ``dest`` (a git repo with one commit) with tiny params; the
    package travels with its compiled kernels (see :func:`warm_jit_cache`)."""
    warm_jit_cache()
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        elif src.exists():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dest / name)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params = merge(params, merge(TINY, overrides or {}))
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # A local identity: `dvc exp run` commits, and a clean CI machine has no global one.
    for cmd in (
        ["git", "init", "-q"],
        ["git", "config", "user.email", "test@example.com"],
        ["git", "config", "user.name", "doodle tests"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "init"],
    ):
        subprocess.run(cmd, cwd=dest, check=True)
    return dest


def run(
    cmd: list[str], cwd: Path, check: bool = True, timeout: int = 900
) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}"
        )
    return p


def dvc(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return run([str(Path(sys.executable).parent / "dvc"), *args], cwd=cwd, check=check)


def status(repo: Path) -> dict:
    """``dvc status`` as a dict, without the always-changed ``source`` stage."""
    import json

    st = json.loads(dvc("status", "--json", cwd=repo).stdout or "{}")
    assert st.pop(WATCH, ["always changed"]) == ["always changed"], st
    return st


def stages_run(output: str) -> list[str]:
    """Stage names DVC reports as running in a repro/exp run output."""
    return [
        line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")
    ]


def activated_env() -> dict:
    """What `source .venv/bin/activate` gives a fresh shell: the venv first, then only the
    system's own folders (no other Python, no PYTHONPATH)."""
    venv_bin = Path(sys.executable).parent
    e = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PATH", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    e["PATH"] = os.pathsep.join([str(venv_bin), "/usr/local/bin", "/usr/bin", "/bin"])
    e["VIRTUAL_ENV"] = str(venv_bin.parent)
    e["COLUMNS"] = "200"  # a terminal's width: DVC sizes its tables to it
    return e


def shell(line: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run one command line as a user types it, in an activated environment."""
    p = subprocess.run(
        ["bash", "-c", line],
        cwd=cwd,
        env=activated_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if p.returncode != 0:
        raise AssertionError(
            f"{line!r} failed ({p.returncode}):\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}"
        )
    return p


DOCS = ("README.md", "docs")  # where the command lines a user types are printed


def doc_files() -> list[Path]:
    """The README and every page of docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def doc_block(marker: str) -> list[str]:
    """The lines of the code block that follows the one comment containing ``marker``, in the
    README or a page of docs/."""
    found = [p.read_text() for p in doc_files() if marker in p.read_text()]
    assert len(found) == 1, f"{marker!r} is in {len(found)} docs, not one"
    after = found[0][found[0].index(marker) :]
    block = after[after.index("```") :].split("\n", 1)[1]
    return [ln for ln in block[: block.index("```")].splitlines() if ln.strip()]


def read_test_keys(repo):
    """The key_ids of the test file data/raw holds or points at, in order."""
    from doodle.data.files import open_raw

    with open_raw(repo / "data/raw").test.open_text() as f:
        return [int(r["key_id"]) for r in csv.DictReader(f)]


def check_submission(repo, n_rows):
    """submission.csv is valid for the repo's test set of ``n_rows`` rows."""
    from doodle.data.shards import read_classes
    from doodle.kaggle.submission import validate_submission

    keys = read_test_keys(repo)
    assert len(keys) == n_rows
    classes = read_classes(repo / "data/shards")
    assert validate_submission(repo / "submission.csv", keys, classes) == []


def _map3_of_csv(path, truth: dict[int, str]) -> float:
    """MAP@3 of a submission-format file, computed here from scratch (not doodle.metrics)."""
    total, n = 0.0, 0
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            words = row["word"].split(" ")
            want = truth[int(row["key_id"])]
            total += next((1 / (i + 1) for i, w in enumerate(words[:3]) if w == want), 0.0)
            n += 1
    return total / n


def check_headline(repo) -> dict:
    """reports/metrics.json's holdout_map3 is the MAP@3 of reports/holdout_submission.csv
    against the holdout shard's labels, and its test_map3 that of submission.csv against
    the test labels (when known), both re-derived here; returns the metrics."""
    import json

    from doodle.data.shards import open_shard, read_classes

    m = json.loads((repo / "reports/metrics.json").read_text())
    classes = [c.replace(" ", "_") for c in read_classes(repo / "data/shards")]
    hold = open_shard(repo / "data/shards/holdout.qds")
    truth = {int(k): classes[int(lab)] for k, lab in zip(hold.key_id, hold.label, strict=True)}
    with open(repo / "reports/holdout_submission.csv", newline="") as f:
        assert sum(1 for _ in csv.DictReader(f)) == m["rows"]["score"]
    got = _map3_of_csv(repo / "reports/holdout_submission.csv", truth)
    assert abs(m["holdout_map3"] - got) < 1e-9, (m["holdout_map3"], got)
    test = open_shard(repo / "data/shards/test.qds")
    if (test.label >= 0).all():
        solution = {int(k): classes[int(v)] for k, v in zip(test.key_id, test.label, strict=True)}
        got = _map3_of_csv(repo / "submission.csv", solution)
        assert abs(m["test_map3"] - got) < 1e-9, (m["test_map3"], got)
    return m


def to_raw_layout(src: Path, dest: Path, seed: int = 0) -> Path:
    """A Kaggle-layout folder of simplified files -> the same drawings in Kaggle's raw layout
    (``train_raw/``, ``test_raw.csv``; ``test_simplified.csv`` and the solution kept): screen
    coordinates as floats (scaled, shifted off the 0..255 box) and increasing times. For
    tests that must run without the real raw sample in ../shared/data."""
    import json
    import random

    from doodle.data.layout import SOLUTION_FILE, TEST_FILE, TEST_RAW_FILE, TRAIN_DIR, TRAIN_RAW_DIR

    rng = random.Random(seed)
    src, dest = Path(src), Path(dest)

    def raw_cell(cell: str) -> str:
        t = 0
        strokes = []
        for xs, ys in json.loads(cell):
            ts = []
            for _ in xs:
                ts.append(t)
                t += rng.randint(5, 60)
            strokes.append([[x * 2.5 - 40.125 for x in xs], [y * 2.5 + 3.5 for y in ys], ts])
            t += rng.randint(100, 900)  # the pen is lifted
        return json.dumps(strokes)

    def convert(a: Path, b: Path) -> None:
        b.parent.mkdir(parents=True, exist_ok=True)
        with open(a, newline="", encoding="utf-8") as fa, open(b, "w", newline="") as fb:
            reader = csv.DictReader(fa)
            w = csv.DictWriter(fb, reader.fieldnames)
            w.writeheader()
            for row in reader:
                w.writerow(row | {"drawing": raw_cell(row["drawing"])})

    for f in sorted((src / TRAIN_DIR).glob("*.csv")):
        convert(f, dest / TRAIN_RAW_DIR / f.name)
    convert(src / TEST_FILE, dest / TEST_RAW_FILE)
    for name in (TEST_FILE, SOLUTION_FILE):
        if (src / name).is_file():
            shutil.copy(src / name, dest / name)
    return dest
