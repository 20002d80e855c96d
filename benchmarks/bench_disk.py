"""Disk benchmark: what the project holds after the data stages, per DVC ``cache.type``, and
after a whole ``dvc exp run``, on a Kaggle-format zip read in place.

In temporary copies of the repo (tiny training params, ``data.source: local`` on the zip):

* ``dvc repro shard`` with ``cache.type`` ``copy`` and then ``hardlink`` (this repo's
  ``.dvc/config`` says ``hardlink,symlink``): ``du -sk`` of the project before and after
  (hard links counted once), of ``data/shards`` and of ``.dvc/cache``, and how many CSVs
  ended up under the project (none should: the zip is streamed);
* one ``dvc exp run`` of the whole pipeline: seconds, the project's size before and after,
  and a valid submission.

    python benchmarks/bench_disk.py /tmp/doodle-fulldata/data-1250000/train_simplified.zip

(``make bench-full`` generates that zip.) Writes ``reports/bench_disk.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.pipeline_utils import check_submission, dvc, make_repo  # noqa: E402


def du_kb(*paths: Path) -> int:
    """KiB on disk of ``paths`` together, a hard-linked file counted once."""
    out = subprocess.run(
        ["du", "-sk", "-c", *map(str, paths)], capture_output=True, text=True, check=True
    ).stdout
    return int(out.strip().splitlines()[-1].split()[0])


def local_repo(dest: Path, zip_path: Path) -> Path:
    return make_repo(
        dest,
        {
            "data": {"source": "local", "local": {"path": str(zip_path)}},
            "shard": {"n_shards": 10, "val_size": 2000},
        },
    )


def shard_per_cache_type(zip_path: Path, work: Path) -> dict:
    out = {}
    for kind in ("copy", "hardlink"):
        dest = work / f"cache-{kind}"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        repo = local_repo(dest, zip_path)
        dvc("config", "cache.type", kind, cwd=repo)
        before = du_kb(repo)
        dvc("repro", "shard", cwd=repo)
        csvs = [p for p in repo.rglob("*.csv") if p.name != "skipped_rows.csv"]
        out[kind] = {
            "project_kb_before": before,
            "project_kb_after": du_kb(repo),
            "shards_kb": du_kb(repo / "data/shards"),
            "cache_kb": du_kb(repo / ".dvc/cache"),
            "csvs_under_project": len(csvs),
        }
        print(kind, out[kind], flush=True)
        shutil.rmtree(dest)
    return out


def whole_exp_run(zip_path: Path, work: Path) -> dict:
    dest = work / "exp-run"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    repo = local_repo(dest, zip_path)
    before = du_kb(repo)
    t0 = time.time()
    dvc("exp", "run", "-S", "train.steps_per_epoch=20", cwd=repo)
    seconds = time.time() - t0
    test_rows = json.loads((repo / "data/raw/dataset.json").read_text())["test_rows"]
    check_submission(repo, test_rows)
    res = {
        "seconds": round(seconds),
        "project_kb_before": before,
        "project_kb_after": du_kb(repo),
        "shards_kb": du_kb(repo / "data/shards"),
        "predictions_kb": du_kb(repo / "data/predictions"),
        "csvs_under_project": len(
            [
                p
                for p in repo.rglob("*.csv")
                if p.parent.name not in ("reports",)
                and p.name not in ("submission.csv", "skipped_rows.csv")
            ]
        ),
    }
    shutil.rmtree(dest)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "zip",
        type=Path,
        help="a Kaggle-format train_simplified.zip (with test_simplified.csv beside it)",
    )
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "doodle-disk")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "bench_disk.json")
    args = ap.parse_args()
    zip_path = args.zip.absolute()
    result = {
        "zip": str(zip_path),
        "zip_kb": du_kb(zip_path),
        "shard_per_cache_type": shard_per_cache_type(zip_path, args.workdir),
        "exp_run": whole_exp_run(zip_path, args.workdir),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
