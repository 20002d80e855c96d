"""The pushed kernel's entry point (doodle/kaggle/kernel_main.py), piece by piece: where it
finds the data, what it installs, how it unpacks, stops at its time limit and reports."""

import base64
import io
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from doodle.kaggle import kernel_main as km
from doodle.kaggle.kernels import archive


def test_the_paths_are_kaggles_unless_the_environment_moves_them(tmp_path):
    assert km.paths({}) == (Path("/kaggle/input"), Path("/kaggle/working"), Path("/kaggle/temp"))
    env = {km.INPUT_ENV: "/a", km.WORKING_ENV: "/b", km.SCRATCH_ENV: "/c"}
    assert km.paths(env) == (Path("/a"), Path("/b"), Path("/c"))


def test_the_data_is_found_where_kaggle_mounts_it_or_a_few_levels_down(tmp_path):
    root = tmp_path / "input"
    direct = root / "quickdraw-doodle-recognition"
    direct.mkdir(parents=True)
    (direct / "test_simplified.csv").write_text("key_id,countrycode,drawing\n")
    assert km.find_data(root, "quickdraw-doodle-recognition") == direct
    (direct / "test_simplified.csv").unlink()
    nested = root / "competitions" / "quickdraw-doodle-recognition"
    nested.mkdir(parents=True)
    (nested / "test_raw.csv").write_text("key_id,countrycode,drawing\n")
    assert km.find_data(root, "quickdraw-doodle-recognition") == nested


def test_missing_data_is_one_line_naming_the_rules_page(tmp_path):
    (tmp_path / "input" / "other-dataset").mkdir(parents=True)
    with pytest.raises(km.KernelError) as info:
        km.find_data(tmp_path / "input", "quickdraw-doodle-recognition")
    message = str(info.value)
    assert "competition_sources [quickdraw-doodle-recognition]" in message
    assert "https://www.kaggle.com/competitions/quickdraw-doodle-recognition/rules" in message
    assert "\n" not in message
    with pytest.raises(km.KernelError, match=r"does not exist: this runs where Kaggle mounts"):
        km.find_data(tmp_path / "nowhere", "quickdraw-doodle-recognition")


def test_only_missing_packages_are_installed_and_never_without_internet(capsys):
    reqs = [["json", "json-is-stdlib"], ["no_such_module_here", "no-such-module>=1"]]
    assert km.missing_packages(reqs) == ["no-such-module>=1"]
    km.install([], internet=False)  # nothing missing: no pip, no network
    assert "nothing to install" in capsys.readouterr().out
    with pytest.raises(km.KernelError, match=r"lacks no-such-module>=1 and the kernel has no "):
        km.install(["no-such-module>=1"], internet=False)


def test_the_backend_is_the_images_keras_3(monkeypatch):
    import importlib.metadata

    assert km.check_backend() == importlib.metadata.version("keras")
    monkeypatch.setattr(importlib.metadata, "version", lambda dist: "2.15.0")
    with pytest.raises(
        km.KernelError, match=r"has Keras 2\.15\.0; the pipeline needs Keras >= 3\.3"
    ):
        km.check_backend()


def payload_of(files: dict[str, bytes]) -> str:
    return base64.b64encode(archive(files)).decode()


def test_unpack_writes_the_code_and_keeps_its_archive(tmp_path):
    files = {"doodle/__init__.py": b"", "params.yaml": b"a: 1\n"}
    dest = tmp_path / "repo"
    (dest / "stale").mkdir(parents=True)  # an earlier run's files go
    assert km.unpack(payload_of(files), dest) == 2
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == [
        km.CODE_FILE,
        "doodle/__init__.py",
        "params.yaml",
    ]
    assert (dest / km.CODE_FILE).read_bytes() == archive(files)


def test_unpack_refuses_a_path_out_of_its_folder(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("../escape.py")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(km.KernelError, match=r"unexpected entry \.\./escape\.py"):
        km.unpack(base64.b64encode(buf.getvalue()).decode(), tmp_path / "repo")
    assert not (tmp_path / "escape.py").exists()


def test_repro_is_stopped_at_the_deadline_and_names_its_stage(tmp_path, capfd):
    sleeper = (
        "import time; print(\"Running stage 'train@base':\", flush=True); "
        "print('epoch 1', flush=True); time.sleep(120)"
    )
    t0 = time.monotonic()
    code, stage, stopped = km.repro(
        tmp_path, time.monotonic() + 1.0, cmd=[sys.executable, "-c", sleeper]
    )
    assert stopped and stage == "train@base" and code != 0
    assert time.monotonic() - t0 < 60  # stopped by SIGINT, not waited out
    out = capfd.readouterr().out
    assert "epoch 1" in out and "the time limit is near: stopping dvc repro" in out


def test_collect_keeps_the_run_not_the_data(tmp_path):
    repo, working = tmp_path / "repo", tmp_path / "working"
    lock = {
        "stages": {
            "shard": {"outs": [{"path": "data/shards"}]},
            "train@base": {"outs": [{"path": "models/base/model.keras"}]},
            "ensemble": {"outs": [{"path": "submission.csv"}, {"path": "reports/a.png"}]},
        }
    }
    files = {
        "dvc.lock": json.dumps(lock),
        "params.yaml": "a: 1\n",
        "submission.csv": "key_id,word\n",
        "reports/a.png": "png",
        "reports/metrics.json": "{}",
        "dvclive/base/metrics.json": "{}",
        "models/base/model.keras": "model",
        "models/base/checkpoints/step-2.keras": "a checkpoint",
        "data/shards/train-000.qds": "training drawings",
        "data/shards/test.qds": "test drawings",
        "data/shards/classes.json": "[]",
        "data/shards/dataset.json": "{}",
    }
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    copied = km.collect(repo, working)
    got = sorted(p.relative_to(working).as_posix() for p in working.rglob("*") if p.is_file())
    assert got == sorted(
        set(files) - {"models/base/checkpoints/step-2.keras", "data/shards/train-000.qds"}
    )
    assert copied["models/base/model.keras"] == len("model")


def run_main(tmp_path, monkeypatch, repro_result, params: str):
    """kernel_main.main on a one-file payload, with dvc repro replaced by ``repro_result``."""
    data = tmp_path / "input" / "quickdraw-doodle-recognition"
    data.mkdir(parents=True)
    (data / "test_simplified.csv").write_text("key_id,countrycode,drawing\n")
    for var, sub in (
        (km.INPUT_ENV, "input"),
        (km.WORKING_ENV, "working"),
        (km.SCRATCH_ENV, "temp"),
    ):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setattr(km, "repro", lambda repo, deadline: repro_result)
    run = {
        "run_id": "abc123",
        "kernel": "me/doodle-x",
        "base": "0" * 40,
        "competition": "quickdraw-doodle-recognition",
        "time_limit_s": 3600,
        "internet": False,
        "requirements": [["yaml", "pyyaml>=6.0"]],
    }
    code = km.main(run, payload_of({"params.yaml": params.encode()}))
    return code, json.loads((tmp_path / "working" / km.RUN_FILE).read_text())


PARAMS = "data:\n  source: local  # read in place\n  local:\n    path: /kaggle/input/x\n"


@pytest.mark.e2e  # git init and dvc init in subprocesses
def test_a_run_stopped_at_its_time_limit_says_so_and_keeps_what_it_made(
    tmp_path, monkeypatch, capsys
):
    code, record = run_main(tmp_path, monkeypatch, (130, "train@base", True), PARAMS)
    assert code == 1
    assert record["status"] == "timed out" and record["stage"] == "train@base"
    assert record["error"].startswith("stopped at the time limit (1 h) in stage train@base")
    assert "kernel.time_limit_h" in record["error"]
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == f"doodle-kernel: error: {record['error']}"
    # the params it ran with point at the mounted data, comments kept
    params = (tmp_path / "working" / "params.yaml").read_text()
    assert f"path: {tmp_path / 'input' / 'quickdraw-doodle-recognition'}" in params
    assert "# read in place" in params
    assert (tmp_path / "working" / km.CODE_FILE).is_file()
    subprocess.run(["git", "log", "-1"], cwd=tmp_path / "temp" / "doodle", check=True)


@pytest.mark.e2e  # git init and dvc init in subprocesses
def test_a_failed_stage_and_a_completed_run(tmp_path, monkeypatch):
    code, record = run_main(tmp_path / "a", monkeypatch, (1, "predict@base", False), PARAMS)
    assert code == 1 and record["status"] == "error"
    assert record["error"].startswith("dvc repro failed (exit 1) in stage predict@base")
    code, record = run_main(tmp_path / "b", monkeypatch, (0, "ensemble", False), PARAMS)
    assert code == 0 and record["status"] == "complete" and record["error"] is None


@pytest.mark.e2e  # git init and dvc init in subprocesses
def test_params_that_would_need_credentials_stop_the_run(tmp_path, monkeypatch):
    kaggle = "data:\n  source: kaggle\n  local:\n    path: null\n"
    code, record = run_main(tmp_path, monkeypatch, (0, "ensemble", False), kaggle)
    assert code == 1 and record["status"] == "error"
    assert record["error"].startswith("params.yaml has data.source 'kaggle': in a kernel the data")
