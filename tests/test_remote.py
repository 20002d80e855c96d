"""Shared data for several hosts: `dvc push` of the shards to a remote (a local path here),
then a second clone pulls them and re-runs neither download nor shard."""

import subprocess

import pytest

from tests.pipeline_utils import WATCH, dvc, make_repo, stages_run, status

pytestmark = pytest.mark.e2e


def _git(*args, cwd):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_push_then_pull_on_another_host_skips_download_and_shard(tmp_path):
    a = make_repo(tmp_path / "host_a")
    assert stages_run(dvc("repro", "shard", cwd=a).stdout) == [WATCH, "download", "shard"]
    dvc("remote", "add", "-d", "store", str(tmp_path / "remote"), cwd=a)
    _git("add", "-A", cwd=a)
    _git("commit", "-qm", "shards", cwd=a)
    dvc("push", "--with-deps", "shard", cwd=a)  # data/raw and data/shards

    _git("clone", "-q", str(a), str(tmp_path / "host_b"), cwd=tmp_path)
    b = tmp_path / "host_b"
    _git("config", "user.email", "test@example.com", cwd=b)
    _git("config", "user.name", "doodle tests", cwd=b)
    dvc("pull", "--with-deps", "shard", cwd=b)
    shards_a = {p.name: p.read_bytes() for p in (a / "data/shards").iterdir()}
    assert {p.name: p.read_bytes() for p in (b / "data/shards").iterdir()} == shards_a
    # host b re-runs only the fingerprint (its data/source.json is not cached: it is
    # rewritten, the same); download and shard are up to date, training would start next
    assert stages_run(dvc("repro", "shard", cwd=b).stdout) == [WATCH]
    left = status(b)
    assert "train@base" in left and not {"download", "shard"} & set(left)
