"""Print what a user sees from the Kaggle-kernel commands against the stand-in Kaggle
(tests/kaggle_standin.py), with the installed kaggle client, on 127.0.0.1 only:

    make kaggle-run PRESET=kaggle-notebook ARGS='<presets/tiny.args>'
    make kaggle-status  (queued)  ->  make kaggle-status  (running)
    make kaggle-status ARGS=--wait  (complete)  ->  make kaggle-pull  ->  make show
    make submit RUN=kaggle-<slug>-v1 ARGS=--dry-run  ->  dvc exp apply kaggle-<slug>-v1

then the pushed kernel's files, their size, and grep over them for the credentials and for
data. The stand-in runs the pushed script the way Kaggle does (its folders in a temporary
directory, Kaggle's environment variables, no credentials, no network) on the real sample in
../shared/data when it is there, else on synthetic data in Kaggle's layout; the tiny
settings on top of the preset make that a minute on a CPU.

    .venv/bin/python tests/kernel_transcript.py      # about 2 min

The same runs are asserted in tests/kaggle/test_kernel_e2e.py; this only shows them.
"""

from __future__ import annotations

import base64
import io
import re
import shlex
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.kaggle_standin import (  # noqa: E402
    LikeKaggle,
    client_env,
    kernel_repo,
    kernel_secrets,
    make,
    secrets,
    standin_for,
    tiny_args,
)
from tests.standin_transcripts import show  # noqa: E402


def kernel_data(base: Path) -> Path:
    """The real sample (../shared/data) if present, else synthetic data in Kaggle's layout."""
    from tests.conftest import REAL_SAMPLE

    if REAL_SAMPLE.is_dir():
        return REAL_SAMPLE
    from doodle.data.synthetic import write_synthetic

    write_synthetic(base / "synthetic", train_per_class=60, test_per_class=5, seed=1, n_classes=6)
    return base / "synthetic"


def unpacked(script: Path, dest: Path) -> list[tarfile.TarInfo]:
    """The files the pushed script carries (its PAYLOAD), written into ``dest``."""
    text = script.read_text()
    payload = re.search(r'PAYLOAD = """\n(.*?)\n"""', text, re.S).group(1)
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode("".join(payload.split())))) as tar:
        members = tar.getmembers()
        tar.extractall(dest)
    return members


def shell(repo: Path, line: str) -> None:
    print(f"$ {line}")
    p = subprocess.run(line, shell=True, cwd=repo, capture_output=True, text=True)
    print((p.stdout + p.stderr).rstrip() or "(nothing)")
    print(f"[exit status {p.returncode}]\n")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        data = kernel_data(base)
        repo = kernel_repo(base / "repo")
        with standin_for({}) as server:
            server.kernel_runner = LikeKaggle(data, base / "kaggle")
            env = client_env(server, base / "home") | {"COLUMNS": "250"}
            print(f"# the stand-in runs pushed kernels on {data.name} as Kaggle mounts it\n")
            show(repo, make("kaggle-run", "PRESET=kaggle-notebook", f"ARGS={tiny_args()}"), env)

            push = repo / "data" / "kaggle" / "push"
            [script] = push.glob("*.py")
            members = unpacked(script, base / "pushed")
            print("# what was pushed: the folder, and the files inside the script's PAYLOAD\n")
            shell(repo, "ls -l data/kaggle/push")
            total = sum(m.size for m in members)
            for m in members:
                print(f"{m.size:>9,}  {m.name}")
            print(f"{total:>9,}  in all ({len(members)} files)\n")
            print("# the credentials (the stand-in's token and key, the kernel's tokens) and the")
            print("# data (the first test drawing's key_id and strokes) appear nowhere in it\n")
            secret = "|".join(re.escape(s) for s in (*secrets(), *kernel_secrets()))
            key, strokes = _first_test_row(data)
            shell(base, f"grep -rlE {shlex.quote(secret)} pushed repo/data/kaggle/push")
            data_marks = f"-e {key} -e {shlex.quote(strokes)}"
            shell(base, f"grep -rlF {data_marks} pushed repo/data/kaggle/push")
            shell(base, r"find pushed -type f ! -name '*.py' | sort")

            show(repo, make("kaggle-status"), env)
            show(repo, make("kaggle-status"), env)
            show(repo, make("kaggle-status", "ARGS=--wait"), env)
            show(repo, make("kaggle-pull"), env)
            name = next((repo / "data" / "kaggle" / "runs").iterdir()).name
            print("# the run's output, as it came back\n")
            shell(
                repo,
                f"cd data/kaggle/runs/{name} && find . -type f -printf '%9s  %P\\n' | sort -k2",
            )
            shell(repo, f"cat data/kaggle/runs/{name}/reports/metrics.json")
            show(repo, make("show"), env)
            keep = (
                "Experiment|Created|holdout_map3|test_map3|img_size|^arch|data.source|train.epochs"
            )
            dvc = str(ROOT / ".venv/bin/dvc")
            show(repo, [dvc, "exp", "show", "--no-pager", "--drop", ".*", "--keep", keep], env)
            show(repo, make("submit", f"RUN={name}", "ARGS=--dry-run"), env)
            print("# the experiment brings back its params, scores, submission.csv and models\n")
            show(repo, [str(ROOT / ".venv/bin/dvc"), "exp", "apply", name], env)
            shell(repo, f"cmp submission.csv data/kaggle/runs/{name}/submission.csv && echo same")
            shell(repo, "git status --short | head -20")


def _first_test_row(data: Path) -> tuple[str, str]:
    """The first test drawing's key_id and its first stroke's x coordinates."""
    import csv
    import json

    with open(data / "test_simplified.csv", newline="") as f:
        row = next(csv.DictReader(f))
    return row["key_id"], json.dumps(json.loads(row["drawing"])[0][0])


if __name__ == "__main__":
    main()
