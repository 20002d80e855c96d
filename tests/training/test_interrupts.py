"""Stages killed mid-run leave the old output or none, never a partial one.

Each long stage (download, shard) runs as the real stage script in a subprocess; the test
waits until work is visibly in progress (its temp sibling has files in it), kills it with
SIGKILL (no cleanup code runs) or SIGINT (Ctrl-C), and checks the output path. Training is
covered by the resume tests.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from doodle.fileio import DiskSpaceError, check_disk_space
from tests.pipeline_utils import merge

ROOT = Path(__file__).resolve().parents[2]
DOWNLOAD = {
    "source": "synthetic",
    "synthetic": {"classes": 24, "train_per_class": 400, "test_per_class": 10, "seed": 1},
}
# many shards: a wide write phase; 2 worker processes: Ctrl-C and SIGKILL with a pool
SHARD = {"n_shards": 120, "val_size": 200, "seed": 0, "workers": 2}
COPIES = 20  # each synthetic row repeated with new key_ids: 24 x 80 x 20 = 38,400 drawings


def start(stage: str, cwd: Path, params: dict) -> subprocess.Popen:
    """Run a stage script with the repo's params.yaml, ``params`` merged over it."""
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    (cwd / "params.yaml").write_text(yaml.safe_dump(merge(base, params)))
    log = open(cwd / f"{stage}.log", "w")  # a file, not a pipe: a full pipe would stall it
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("DOODLE_TRACEBACK", None)
    return subprocess.Popen(
        [sys.executable, str(ROOT / "stages" / f"{stage}.py")],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_until(
    proc: subprocess.Popen,
    ready: Callable[[], bool],
    timeout: float = 25.0,
    log: Path | None = None,
) -> None:
    """Poll until ``ready()``; fail if the process ends first (it finished too soon)."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            text = log.read_text() if log else ""
            pytest.fail(f"stage ended (rc {proc.returncode}) before the kill point:\n{text}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("kill point not reached in time")
        time.sleep(0.005)


def kill(proc: subprocess.Popen, sig: int) -> int:
    os.killpg(proc.pid, sig)
    return proc.wait(timeout=30)


def temps(folder: Path, name: str) -> list[Path]:
    return sorted(folder.glob(f".{name}.tmp-*"))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def assert_old_or_nothing(
    data: Path, name: str, old: dict[str, bytes] | None, inputs: tuple[str, ...] = ()
) -> None:
    """``data/name`` is exactly the old output (or absent); other entries are the stage's
    ``inputs`` or temp siblings."""
    out = data / name
    if old is None:
        assert not out.exists(), f"{out} exists after the kill: a partial output"
    else:
        assert snapshot(out) == old, f"{out} changed after the kill"
    strays = [p.name for p in data.iterdir() if p.name not in (name, *inputs)]
    assert all(s.startswith(f".{name}.tmp-") for s in strays), strays


def old_output(folder: Path) -> dict[str, bytes]:
    folder.mkdir(parents=True)
    (folder / "train_simplified").mkdir()
    (folder / "train_simplified" / "old.csv").write_text("old output\n")
    (folder / "marker.txt").write_text("from the previous run\n")
    return snapshot(folder)


# -- download ----------------------------------------------------------------------------------


@pytest.mark.e2e  # runs a stage script in a subprocess
@pytest.mark.parametrize("had_output", [False, True], ids=["first_run", "rerun"])
def test_download_killed(tmp_path: Path, had_output: bool) -> None:
    data = tmp_path / "data"
    data.mkdir()
    old = old_output(data / "raw") if had_output else None
    proc = start("download", tmp_path, {"data": DOWNLOAD})

    def writing() -> bool:  # some class files written, many to go
        return any(
            len(list((t / "train_simplified").glob("*.csv"))) >= 2 for t in temps(data, "raw")
        )

    wait_until(proc, writing, log=tmp_path / "download.log")
    assert kill(proc, signal.SIGKILL) == -signal.SIGKILL
    assert_old_or_nothing(data, "raw", old)
    assert len(temps(data, "raw")) == 1  # the killed run's temp folder, dot-prefixed

    # The next run completes and removes the stale temp folder the killed one left.
    small = {
        **DOWNLOAD,
        "synthetic": {
            **DOWNLOAD["synthetic"],
            "train_per_class": 3,
            "test_per_class": 1,
            "classes": 3,
        },
    }
    done = start("download", tmp_path, {"data": small})
    assert done.wait(timeout=60) == 0, (tmp_path / "download.log").read_text()
    assert sorted(p.name for p in data.iterdir()) == ["raw"]
    assert len(list((data / "raw" / "train_simplified").glob("*.csv"))) == 3


# -- shard -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_raw(tmp_path_factory) -> Path:
    """~38k drawings in Kaggle's layout: a small synthetic set, each row repeated with new
    key_ids (generating that many drawings would take far longer than sharding them)."""
    from doodle.data.synthetic import write_synthetic

    raw = tmp_path_factory.mktemp("big") / "raw"
    write_synthetic(raw, train_per_class=80, test_per_class=5, seed=3, n_classes=24)
    for f in (raw / "train_simplified").glob("*.csv"):
        header, *rows = f.read_text(encoding="utf-8").splitlines()
        out = [header]
        for copy in range(COPIES):
            for row in rows:  # countrycode,"drawing",key_id,recognized,timestamp,word
                head, key, *tail = row.rsplit(",", 4)
                out.append(",".join([head, str(int(key) + copy * 10**16), *tail]))
        f.write_text("\n".join(out) + "\n", encoding="utf-8")
    return raw


def test_big_raw_is_valid(big_raw: Path, tmp_path: Path) -> None:
    """The amplified rows parse (so the kill tests below interrupt real work)."""
    from doodle.data.rows import read_csv_rows

    class Log:
        def skip(self, *args: object) -> None:
            raise AssertionError(f"bad row {args}")

    f = next((big_raw / "train_simplified").glob("*.csv"))
    rows = list(read_csv_rows(f, ["countrycode", "drawing", "key_id", "word"], Log()))
    keys = {int(r["key_id"]) for _, r in rows}
    assert len(rows) == 80 * COPIES == len(keys)


def _shard_workdir(tmp_path: Path, big_raw: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "raw").symlink_to(big_raw, target_is_directory=True)
    return data


KILL_POINTS = {
    # reading the class files into the per-shard spill files
    "spilling": lambda t: any(t.glob(".spill/*.rec")),
    # writing the shuffled shard files
    "writing": lambda t: any(t.glob("train-*.qds")),
}


@pytest.mark.e2e  # runs a stage script in a subprocess
@pytest.mark.parametrize("point", KILL_POINTS)
@pytest.mark.parametrize("had_output", [False, True], ids=["first_run", "rerun"])
def test_shard_killed(tmp_path: Path, big_raw: Path, point: str, had_output: bool) -> None:
    data = _shard_workdir(tmp_path, big_raw)
    old = old_output(data / "shards") if had_output else None
    reports = tmp_path / "reports"
    old_report = None
    if had_output:
        reports.mkdir()
        (reports / "shard.json").write_text('{"old": true}\n')
        old_report = snapshot(reports)
    proc = start("shard", tmp_path, {"shard": SHARD})
    wait_until(
        proc,
        lambda: any(KILL_POINTS[point](t) for t in temps(data, "shards")),
        log=tmp_path / "shard.log",
    )
    assert kill(proc, signal.SIGKILL) == -signal.SIGKILL
    assert_old_or_nothing(data, "shards", old, inputs=("raw",))
    assert len(temps(data, "shards")) == 1
    # The stage's report is written after its output: it is still the old one (or none).
    assert (snapshot(reports) if reports.exists() else None) == old_report


@pytest.mark.e2e  # runs a stage script in a subprocess
def test_shard_ctrl_c_cleans_up(tmp_path: Path, big_raw: Path) -> None:
    """Ctrl-C (SIGINT): one sentence, exit 130, the old output kept, no temp folder left."""
    data = _shard_workdir(tmp_path, big_raw)
    old = old_output(data / "shards")
    proc = start("shard", tmp_path, {"shard": SHARD})
    wait_until(
        proc,
        lambda: any(KILL_POINTS["spilling"](t) for t in temps(data, "shards")),
        log=tmp_path / "shard.log",
    )
    assert kill(proc, signal.SIGINT) == 130
    assert_old_or_nothing(data, "shards", old, inputs=("raw",))
    assert temps(data, "shards") == []
    log = (tmp_path / "shard.log").read_text()
    assert "shard: interrupted; no output was written" in log and "Traceback" not in log


@pytest.mark.e2e  # runs a stage script in a subprocess
def test_shard_after_a_kill_completes(tmp_path: Path, big_raw: Path) -> None:
    """A run after a killed one succeeds, replaces the output and drops the stale temp."""
    data = _shard_workdir(tmp_path, big_raw)
    proc = start("shard", tmp_path, {"shard": SHARD})
    wait_until(
        proc,
        lambda: any(KILL_POINTS["spilling"](t) for t in temps(data, "shards")),
        log=tmp_path / "shard.log",
    )
    kill(proc, signal.SIGKILL)
    assert len(temps(data, "shards")) == 1
    again = start("shard", tmp_path, {"shard": SHARD})
    assert again.wait(timeout=120) == 0, (tmp_path / "shard.log").read_text()
    assert sorted(p.name for p in data.iterdir()) == ["raw", "shards"]
    report = json.loads((tmp_path / "reports" / "shard.json").read_text())
    assert report["train_rows"] + report["holdout_rows"] == 24 * 80 * COPIES


# -- disk space --------------------------------------------------------------------------------


def test_check_disk_space_names_the_size(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(
        shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(100 << 30, 99 << 30, 1 << 30)
    )
    with pytest.raises(DiskSpaceError) as err:
        check_disk_space(tmp_path / "not" / "yet", 3 << 30, "sharding")
    msg = str(err.value)
    assert "sharding needs about 3.0 GiB" in msg and "only 1.0 GiB is free" in msg
    assert str(tmp_path / "not" / "yet") in msg
    check_disk_space(tmp_path, 1 << 30, "exactly enough")  # needed == free is fine


# -- tfrecord ----------------------------------------------------------------------------------


@pytest.mark.e2e  # runs a stage script in a subprocess
@pytest.mark.parametrize("had_output", [False, True], ids=["first_run", "rerun"])
def test_tfrecord_killed(tmp_path: Path, big_raw: Path, had_output: bool) -> None:
    from doodle.data.sharding import shard_dataset

    data = tmp_path / "data"
    shard_dataset(
        big_raw,
        data / "shards",
        n_shards=SHARD["n_shards"],
        val_size=200,
        seed=0,
        report_path=tmp_path / "shard.json",
    )
    old = old_output(data / "tfrecord") if had_output else None
    proc = start(
        "tfrecord",
        tmp_path,
        {"tfrecord": {"enabled": True, "input": "shards"}, "runtime": {"tfrecord_workers": 1}},
    )
    wait_until(
        proc,
        lambda: any(any(t.glob("*.tfrec")) for t in temps(data, "tfrecord")),
        timeout=120,
        log=tmp_path / "tfrecord.log",
    )
    assert kill(proc, signal.SIGKILL) == -signal.SIGKILL
    assert_old_or_nothing(data, "tfrecord", old, inputs=("shards",))
    assert len(temps(data, "tfrecord")) == 1
