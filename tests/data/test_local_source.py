"""A local source read in place, end to end through DVC: nothing copied or extracted into the
project, a replaced file re-runs download and shard, an untouched source re-runs nothing."""

import json
import os
import shutil
import zipfile

import pytest

from tests.pipeline_utils import WATCH, dvc, make_repo, stages_run, status

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def local_repo(tmp_path_factory, synthetic_raw):
    src = tmp_path_factory.mktemp("kaggle") / "quickdraw"
    shutil.copytree(synthetic_raw, src)
    repo = make_repo(
        tmp_path_factory.mktemp("localrepo"),
        {"data": {"source": "local", "local": {"path": str(src)}}},
    )
    return repo, src


def _csvs(repo):
    return [p for p in (repo / "data").rglob("*.csv") if p.name != "skipped_rows.csv"]


def test_local_folder_change_reruns_download_and_shard(local_repo):
    repo, src = local_repo
    out = dvc("repro", "shard", cwd=repo).stdout
    assert stages_run(out) == [WATCH, "download", "shard"], out
    assert _csvs(repo) == []  # read in place: no CSV under the project
    # the DVC cache holds the shards as hard links (.dvc/config), not a second copy
    shards = list((repo / "data/shards").glob("*.qds"))
    assert shards and all(p.stat().st_nlink == 2 for p in shards)
    assert json.loads((repo / "data/raw/location.json").read_text())["path"] == str(src)
    # untouched: the fingerprint runs, nothing else does
    assert stages_run(dvc("repro", "shard", cwd=repo).stdout) == [WATCH]
    assert status(repo).keys() <= {"tfrecord", "train@base", "predict@base", "ensemble"}
    # a class file replaced at the same path (one more row): download and shard re-run
    f = src / "train_simplified" / "circle.csv"
    lines = f.read_text().splitlines()
    head, key, *tail = lines[1].rsplit(",", 4)
    lines.append(",".join([head, str(int(key) + 1), *tail]))
    f.write_text("\n".join(lines) + "\n")
    out = dvc("repro", "shard", cwd=repo).stdout
    assert stages_run(out) == [WATCH, "download", "shard"], out
    assert json.loads((repo / "data/shards/report.json").read_text())["rows_read"] == 8 * 60 + 1


def test_local_zip_is_streamed_not_extracted(local_repo, tmp_path):
    repo, src = local_repo
    z = tmp_path / "quickdraw.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(src.rglob("*.csv")):
            zf.write(p, p.relative_to(src).as_posix())
    out = dvc("exp", "run", "-S", f"data.local.path={z}", "shard", cwd=repo).stdout
    assert stages_run(out) == [WATCH, "download", "shard"], out
    assert _csvs(repo) == []
    # the shards are the same bytes as the folder's, already cached: DVC relinks them
    # (with a `copy` fallback in cache.type it would leave them as second copies)
    assert all(p.stat().st_nlink == 2 for p in (repo / "data/shards").glob("*.qds"))
    report = json.loads((repo / "data/shards/report.json").read_text())
    assert report["source"] == str(z) and report["rows_read"] == 8 * 60 + 1
    assert all(
        name.startswith(f"{z}:train_simplified/")
        for name in report["files"]
        if not name.endswith("test_simplified.csv")
    )
    # touched: a cheap fingerprint (no reading) sees a new file, and re-runs what reads it
    os.utime(z)
    out = dvc("repro", "shard", cwd=repo).stdout
    assert stages_run(out) == [WATCH, "download", "shard"], out
