"""Print what a user sees from the model levers through `dvc exp run`, on tiny settings in a
temporary copy of the repo (synthetic data, no network): two new backbone families, a
misspelt one, a finetune member warm-started from `base` at a larger size, then pseudo-labels
voted by two members, and a third member added, which re-runs the pseudo-labels but not the
finetune member they did not change.

    .venv/bin/python tests/levers_transcript.py      # 4-5 minutes on 2 cores

Plumbing, not skill: the scores are those of 3 training steps. The same runs are asserted
in tests/test_levers.py and tests/test_backbones.py; this only shows them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.pipeline_utils import check_submission, dvc, make_repo, stages_run  # noqa: E402

SHOWN = ("Running stage", "train:", "predict:", "pseudo:", "ensemble:", "ERROR")


def show(repo: Path, *args: str, ok: bool = True) -> str:
    """Run ``dvc args`` in ``repo``; print the command, its exit status and its stage lines."""
    t = time.time()
    p = dvc(*args, cwd=repo, check=False)
    print(f"\n$ dvc {' '.join(args)}   (exit {p.returncode}, {time.time() - t:.0f} s)")
    lines = [ln for ln in (p.stdout + p.stderr).splitlines() if ln.startswith(SHOWN)]
    print("\n".join(lines), flush=True)
    if ok and p.returncode:
        raise SystemExit(f"dvc {' '.join(args)} failed")
    return p.stdout


def main() -> None:
    repo = make_repo(Path(tempfile.mkdtemp(prefix="levers-")))
    rows = 6 * 4  # the tiny preset's synthetic test set: 6 classes x 4 drawings
    for arch in ("densenet121", "efficientnetv2b0"):
        show(repo, "exp", "run", "-S", f"arch={arch}")
        check_submission(repo, rows)
        print(f"submission valid: {rows} rows")
    show(repo, "exp", "run", "-S", "arch=densenet12", ok=False)
    # DVC leaves a failed run's params in the workspace: back to the committed ones
    subprocess.run(["git", "checkout", "-q", "params.yaml"], cwd=repo, check=True)
    out = show(
        repo,
        "exp",
        "run",
        "-S",
        "++finetune.big.init_from=base",
        "-S",
        "++finetune.big.img_size=96",
    )
    print("order:", stages_run(out))
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    deps = [d["path"] for d in lock["finetune@big"]["deps"]]
    print(
        "dvc.lock finetune@big deps (data and models):",
        sorted({d for d in deps if d.startswith(("data/", "models/"))}),
    )
    # pseudo-labels by the mean vote of base and a second member (another seed)
    out = show(
        repo,
        "exp",
        "run",
        "-S",
        "++members.b2.seed=2",
        "-S",
        "++finetune.big.pseudo_share=0.5",
        "-S",
        "++finetune.big.pseudo_from=[base,b2]",
    )
    print("order:", stages_run(out))
    # a member that teaches no one: pseudo@big re-runs (it depends on every member's
    # predictions) into the same bytes, so finetune@big is not trained again
    out = show(repo, "exp", "run", "-S", "++members.b3.seed=3")
    print("order:", stages_run(out))


if __name__ == "__main__":
    main()
