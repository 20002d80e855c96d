"""A kernel pushed, followed and pulled (doodle/kaggle/kernels.py) with the installed kaggle
client against the stand-in Kaggle on 127.0.0.1 (tests/kaggle_standin.py): what the pushed
kernel carries (no data, no credentials), that a push again is a new version of the same
kernel, every failure as one line naming its fix, and an interrupted output download that
resumes."""

import base64
import contextlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest

from doodle.errors import ConfigError, DoodleError
from doodle.kaggle import kernels as K
from doodle.kaggle.api import KaggleAuthError, KaggleError
from tests.conftest import ROOT
from tests.kaggle.test_api import ctrl_c_mid_download, login, statuses
from tests.kaggle_standin import (
    COMPETITION,
    TOKEN,
    USERNAME,
    KaggleStandIn,
    kernel_repo,
    secrets,
)

BIG = os.urandom(2_500_000)  # over two of the client's 1 MiB chunks


@pytest.fixture
def standin(tmp_path):
    """The stand-in, and this process's environment pointed at it (restored after); its
    teardown fails the test if anything else was asked for."""
    server = KaggleStandIn(COMPETITION, {}).start()
    saved = dict(os.environ)
    try:
        login(server, tmp_path, "token")
        with contextlib.redirect_stdout(io.StringIO()):  # the import authenticates
            from kaggle.api.kaggle_api_extended import KaggleApi
        assert "--local" in KaggleApi.args
        yield server
    finally:
        os.environ.clear()
        os.environ.update(saved)
        server.stop()
    assert server.unexpected == [], server.unexpected


def payload(script: str) -> dict[str, bytes]:
    """The files inside a kernel's script (its PAYLOAD)."""
    b64 = re.search(r'PAYLOAD = """\n(.*?)\n"""', script, re.S).group(1)
    data = base64.b64decode("".join(b64.split()))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


# -- what a kernel carries ------------------------------------------------------------------------
def test_the_kernel_carries_the_code_and_the_runs_params_and_nothing_else(tmp_path):
    prep = K.prepare(ROOT, "kaggle-notebook", ["train.epochs=3"], "me", "env", tmp_path / "p")
    assert sorted(p.name for p in prep.folder.iterdir()) == [
        f"{prep.kernel.split('/')[1]}.py",
        "kernel-metadata.json",
    ]
    files = payload(prep.script.read_text())
    assert files == prep.pack.files
    others = sorted(n for n in files if not n.endswith(".py"))
    assert others == [
        ".dvcignore",
        ".gitignore",
        "data/weights/README.md",
        "dvc.yaml",
        "params.yaml",
        "pyproject.toml",
    ]
    assert all(n.startswith(("doodle/", "stages/")) for n in files if n.endswith(".py"))
    assert {"doodle/kaggle/kernel_main.py", "stages/train.py"} <= set(files)
    assert not any("__pycache__" in n or n.startswith((".git/", ".venv", ".dvc/")) for n in files)
    tracked = subprocess.run(
        ["git", "ls-files", "doodle", "stages"], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    assert {n for n in tracked if n.endswith(".py")} <= set(files)
    assert prep.pack.size < 2 << 20 and prep.script.stat().st_size < 1 << 20
    import yaml

    params = yaml.safe_load(files["params.yaml"])
    assert params["data"]["source"] == "local"
    assert params["data"]["local"]["path"] == f"/kaggle/input/{COMPETITION}"
    assert (params["train"]["epochs"], params["train"]["steps_per_epoch"]) == (3, 3000)
    assert params["runtime"]["verbose"] == 2  # one log line an epoch, not a bar a step
    assert "# synthetic (offline)" in files["params.yaml"].decode()  # comments kept


def test_kernel_metadata_is_a_private_script_with_the_competitions_data(tmp_path):
    prep = K.prepare(ROOT, None, ["kernel.slug=my-doodle-run"], "me", "env", tmp_path / "p")
    meta = json.loads((prep.folder / "kernel-metadata.json").read_text())
    assert meta == {
        "id": "me/my-doodle-run",
        "title": "my doodle run",
        "code_file": "my-doodle-run.py",
        "language": "python",
        "kernel_type": "script",
        "is_private": True,
        "enable_gpu": True,
        "enable_tpu": False,
        "enable_internet": True,
        "dataset_sources": [],
        "competition_sources": [COMPETITION],
        "kernel_sources": [],
        "model_sources": [],
        "machine_shape": "NvidiaTeslaT4",
    }
    cpu = K.prepare(ROOT, None, ["kernel.accelerator=none"], "me", "env", tmp_path / "q")
    assert not cpu.meta["enable_gpu"] and "machine_shape" not in cpu.meta
    assert prep.pack.run["time_limit_s"] == 11.5 * 3600  # under Kaggle's 12 h


def test_the_slug_is_the_repos_first_commit_in_every_clone(tmp_path):
    repo = kernel_repo(tmp_path / "repo")
    first = subprocess.run(
        ["git", "rev-list", "--max-parents=0", "HEAD"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    assert K.default_slug(repo) == f"doodle-{first[:8]}"
    (repo / "stages" / "new.py").write_text("x = 1\n")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "more"], cwd=repo, check=True)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    assert K.default_slug(clone) == K.default_slug(repo) == f"doodle-{first[:8]}"


def test_a_pack_holding_a_credential_is_refused_without_showing_it(tmp_path, monkeypatch):
    repo = kernel_repo(tmp_path / "repo")
    (repo / "doodle" / "leak.py").write_text(f'TOKEN = "{TOKEN}"\n')  # new, not ignored
    monkeypatch.setenv("KAGGLE_API_TOKEN", TOKEN)
    with pytest.raises(DoodleError) as info:
        K.prepare(repo, None, [], "me", "KAGGLE_API_TOKEN environment variable", tmp_path / "p")
    message = str(info.value)
    assert message.startswith("doodle/leak.py contains your Kaggle secret (the one from KAGGLE")
    assert "nothing was pushed" in message and TOKEN not in message
    assert not (tmp_path / "p").exists()
    # a token kept in a file (KAGGLE_CONFIG_DIR/access_token) is looked for as well
    monkeypatch.delenv("KAGGLE_API_TOKEN")
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "access_token").write_text(TOKEN + "\n")
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "cfg"))
    assert TOKEN in K.secret_values()
    with pytest.raises(DoodleError, match="contains your Kaggle secret"):
        K.prepare(repo, None, [], "me", "a file", tmp_path / "p")


def test_data_is_not_code(tmp_path):
    repo = kernel_repo(tmp_path / "repo")
    (repo / "stages" / "table.py").write_text("ROWS = '" + "x" * (600 << 10) + "'\n")
    with pytest.raises(DoodleError, match=r"stages/table\.py is 600\.0 KiB, too large for code"):
        K.prepare(repo, None, [], "me", "env", tmp_path / "p")


def test_the_runs_params_are_checked_before_anything_is_pushed(tmp_path):
    with pytest.raises(ConfigError, match="no key 'epoch'"):
        K.prepare(ROOT, None, ["train.epoch=3"], "me", "env", tmp_path / "p")
    with pytest.raises(ConfigError, match=r"kernel.time_limit_h must be in \(0, 12\]"):
        K.prepare(ROOT, None, ["kernel.time_limit_h=13"], "me", "env", tmp_path / "p")
    weights = ["++members.base.weights=data/weights/mine.h5"]
    with pytest.raises(ConfigError, match="is a local file, which a kernel does not carry"):
        K.prepare(ROOT, None, weights, "me", "env", tmp_path / "p")


def test_every_dependency_is_installed_when_missing_or_is_the_images_own():
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    reqs = K.requirements(ROOT / "pyproject.toml")
    backend = [d for d in deps if re.split(r"[<>=]", d)[0] in K.NOT_INSTALLED]
    assert len(reqs) + len(backend) == len(deps) and len(backend) == 4  # tf, keras, kaggle x2
    import importlib.util

    for module, req in reqs:  # the module names are right: each imports here
        assert importlib.util.find_spec(module) is not None, (module, req)
        assert req in deps


# -- push, status, output against the stand-in ----------------------------------------------------
def push(tmp_path, *overrides: str, name: str = "p"):
    client, found, user = K.connect()
    prep = K.prepare(ROOT, "tiny", list(overrides), user, found, tmp_path / name)
    return K.push(client, found, user, prep.folder, prep.meta, prep.pack.run["time_limit_s"]), prep


def test_pushing_twice_makes_two_versions_of_one_private_kernel(standin, tmp_path):
    first, prep = push(tmp_path)
    second, _ = push(tmp_path, name="q")
    kernel = f"{USERNAME}/{K.default_slug(ROOT)}"
    assert (first.kernel, first.version, second.version) == (kernel, 1, 2)
    assert first.url == f"https://www.kaggle.com/code/{kernel}"
    assert [v.number for v in standin.versions(kernel)] == [1, 2]
    body = standin.versions(kernel)[0].request
    assert body["slug"] == kernel and body["newTitle"] == kernel.split("/")[1].replace("-", " ")
    assert (body["kernelType"], body["language"], body["isPrivate"]) == ("script", "python", True)
    assert (body["enableGpu"], body["enableInternet"]) == (True, True)
    assert body["competitionDataSources"] == [COMPETITION]
    assert body["machineShape"] == "NvidiaTeslaT4"
    assert body["sessionTimeoutSeconds"] == 41_400
    assert body["text"] == prep.script.read_text()
    # the credentials of this push (KAGGLE_API_TOKEN is the stand-in's) are in none of the
    # pushed text, nor in any file packed inside it (base64 would hide them from a grep)
    inside = payload(body["text"])
    assert sorted(inside) == sorted(prep.pack.files)
    for secret in secrets():
        assert secret not in json.dumps(body)
        assert not any(secret.encode() in data for data in inside.values())


def test_status_follows_a_version_from_queued_to_complete(standin, tmp_path):
    pushed, _ = push(tmp_path)
    client, found, _ = K.connect()
    ref = f"{pushed.kernel}/{pushed.version}"
    seen = [K.state(client, found, ref) for _ in range(4)]
    assert seen == [("queued", ""), ("running", ""), ("complete", ""), ("complete", "")]
    [look] = standin.rpcs("GetKernelSessionStatus")[:1]
    assert look.body["versionLabel"] == "v1"


@pytest.mark.parametrize(
    "case",
    ["slug-taken", "rules", "quota-answer", "sessions", "other-error", "quota-precheck", "5xx"],
)
def test_push_failures_are_one_line_naming_the_fix(standin, tmp_path, case):
    kernel = f"{USERNAME}/{K.default_slug(ROOT)}"
    expected = {
        "slug-taken": f"Kaggle refused kernel {kernel} (403 Forbidden: Permission "
        "'kernels.update' was denied): it is not a kernel of standin-user",
        "rules": f"Kaggle pushed kernel {kernel} (version 1) without the competition's data",
        "quota-answer": f"Kaggle did not run kernel {kernel}: You have exceeded your GPU quota. "
        "Your weekly accelerator quota is used up",
        "sessions": f"Kaggle did not run kernel {kernel}: Maximum batch GPU session count of 2 "
        "reached. Too many of your sessions are running",
        "other-error": f"Kaggle did not save kernel {kernel}: Notebook slug is in use. If the "
        "slug is another kernel's",
        "quota-precheck": "your weekly GPU quota is used up (30.0 of 30.0 h; it refills "
        "2026-01-03 00:00 UTC)",
        "5xx": f"Kaggle answered the push of {kernel} with 500 Server Error: Internal Server "
        "Error; it may have made the version anyway",
    }[case]
    fix = {
        "slug-taken": "-S kernel.slug=NAME",
        "rules": f"https://www.kaggle.com/competitions/{COMPETITION}/rules",
        "quota-answer": "-S kernel.accelerator=none",
        "sessions": "wait for one to end",
        "other-error": "-S kernel.slug=NAME",
        "quota-precheck": "-S kernel.accelerator=none",
        "5xx": "make kaggle-status tells",
    }[case]
    if case == "slug-taken":
        standin.foreign_kernels.add(kernel)
    elif case == "rules":
        standin.rules_accepted = False
    elif case == "quota-answer":
        standin.save_error = "You have exceeded your GPU quota"
    elif case == "sessions":
        standin.save_error = "Maximum batch GPU session count of 2 reached"
    elif case == "other-error":
        standin.save_error = "Notebook slug is in use"
    elif case == "quota-precheck":
        standin.gpu_quota_used_s = standin.gpu_quota_total_s
    elif case == "5xx":
        standin.fail("SaveKernel", 500)
    with pytest.raises(KaggleError) as info:
        if case == "quota-precheck":
            client, found, _ = K.connect()
            K.check_quota(client, found, "NvidiaTeslaT4")
        else:
            push(tmp_path)
    message = str(info.value)
    assert message.startswith(expected), message
    assert fix in message and "\n" not in message
    if case == "5xx":
        assert statuses(standin, "SaveKernel") == [500]  # not tried again


def test_a_busy_kaggle_is_tried_again_and_a_bad_key_is_one_line(standin, tmp_path):
    standin.fail("SaveKernel", 429, 429)
    pushed, _ = push(tmp_path)
    assert statuses(standin, "SaveKernel") == [429, 429, 200] and pushed.version == 1
    client, found, _ = K.connect()
    assert (
        K.check_quota(client, found, "NvidiaTeslaT4") == "GPU quota 27.0 of 30.0 h left this week"
    )
    login(standin, tmp_path / "other", "bad-key")  # a legacy key is checked at the first call
    with pytest.raises(KaggleAuthError) as info:
        push(tmp_path, name="q")
    assert str(info.value).startswith(
        "Kaggle rejected the credentials from the KAGGLE_USERNAME/KAGGLE_KEY environment "
        "variables (401 Unauthorized)"
    )


def kernel_cli(tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m stages.kernel ARGS`` in ``tmp_path`` (where data/kaggle/kernels.json is)."""
    e = dict(os.environ) | (env or {}) | {"PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "stages.kernel", *args],
        cwd=tmp_path,
        env=e,
        capture_output=True,
        text=True,
        timeout=120,
    )


def recorded(tmp_path: Path, pushed: K.Pushed) -> None:
    entry = {"kernel": pushed.kernel, "version": pushed.version, "url": pushed.url}
    (tmp_path / "data" / "kaggle").mkdir(parents=True, exist_ok=True)
    (tmp_path / "data" / "kaggle" / "kernels.json").write_text(json.dumps({"pushes": [entry]}))


LOG = [
    "Running stage 'train@base':",
    "> python -m stages.train base",
    "train: error: CUDA_ERROR_OUT_OF_MEMORY: out of memory",
    "doodle-kernel: error: dvc repro failed (exit 1) in stage train@base: its lines are "
    "above; fix it and make kaggle-run again (a new version)",
]


@pytest.mark.e2e  # runs python -m stages.kernel
@pytest.mark.parametrize("case", ["own-error", "timed-out", "cancelled"])
def test_a_run_that_failed_shows_its_logs_last_lines_and_one_line(standin, tmp_path, case):
    standin.kernel_statuses = ["RUNNING", "CANCEL_ACKNOWLEDGED" if case == "cancelled" else "ERROR"]
    lines = LOG if case == "own-error" else LOG[:2]
    standin.kernel_log = json.dumps(
        [{"stream_name": "stdout", "time": i, "data": f"{ln}\n"} for i, ln in enumerate(lines)]
    )
    standin.kernel_failure = "Kernel timed out after 41400 seconds" if case == "timed-out" else ""
    pushed, _ = push(tmp_path)
    recorded(tmp_path, pushed)
    env = dict(os.environ)
    p = kernel_cli(tmp_path, "status", "--wait", env=env)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    out = p.stdout.splitlines()
    ref = f"{pushed.kernel}/1"
    assert out[0] == f"kaggle-status: {ref}: running"
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("kaggle-status: error: ")]
    assert len(errors) == 1, p.stderr
    error = errors[0]
    if case == "own-error":
        assert out[-len(LOG) :] == [f"  | {ln}" for ln in LOG]
        assert error == (
            f"kaggle-status: error: {ref} error: dvc repro failed (exit 1) in stage train@base: "
            "its lines are above; fix it and make kaggle-run again (a new version)"
        )
    elif case == "timed-out":
        assert error == (
            f"kaggle-status: error: {ref} error: Kaggle stopped the run at its time limit "
            "(Kernel timed out after 41400 seconds): lower the budget (train.epochs x "
            "train.steps_per_epoch) or raise kernel.time_limit_h (cap 12 h)"
        )
    else:
        cancelled = f"{ref} was cancelled on Kaggle: make kaggle-run pushes it again"
        assert error == f"kaggle-status: error: {cancelled}"
    for secret in secrets():
        assert secret not in p.stdout + p.stderr


@pytest.mark.e2e  # runs python -m stages.kernel
def test_status_without_a_push_or_of_an_unknown_kernel(standin, tmp_path):
    p = kernel_cli(tmp_path, "status")
    assert p.returncode == 1
    assert p.stderr.strip().endswith(
        "kaggle-status: error: no kernel pushed from this repo yet (data/kaggle/kernels.json): "
        "make kaggle-run"
    )
    p = kernel_cli(tmp_path, "status", "--kernel", f"{USERNAME}/nothing-here/3")
    assert p.returncode == 1
    assert (
        f"kaggle-status: error: Kaggle does not know kernel {USERNAME}/nothing-here/3 "
        "(404 Not Found: Notebook not found)"
    ) in p.stderr


@pytest.mark.e2e  # runs python -m stages.kernel
def test_nothing_is_pulled_while_the_kernel_runs(standin, tmp_path):
    standin.kernel_statuses = ["RUNNING"]
    pushed, _ = push(tmp_path)
    recorded(tmp_path, pushed)
    p = kernel_cli(tmp_path, "pull")
    assert p.returncode == 1
    assert p.stderr.strip().splitlines()[-1] == (
        f"kaggle-pull: error: {pushed.kernel}/1 is running: nothing to pull yet "
        "(make kaggle-status ARGS=--wait)"
    )
    assert standin.rpcs("ListKernelSessionOutput") == []


OUTPUT = {
    "doodle-run.json": b"{}",
    "dvc.lock": b"stages: {}\n",
    "models/base/model.keras": BIG,
    "submission.csv": b"key_id,word\n",
    "reports/metrics.json": b"{}",
}


def test_an_interrupted_output_download_resumes_and_never_fetches_a_whole_file_again(
    standin, tmp_path
):
    assert threading.current_thread() is threading.main_thread()  # SIGINT lands here
    standin.kernel_outputs = OUTPUT
    standin.kernel_log = json.dumps([{"stream_name": "stdout", "time": 0, "data": "ran\n"}])
    pushed, _ = push(tmp_path)
    client, found, _ = K.connect()
    ref = f"{pushed.kernel}/{pushed.version}"
    folder = tmp_path / "run"
    part = folder / ".partial" / "models" / "base" / "model.keras"
    ctrl_c_mid_download(
        standin,
        "models/base/model.keras",
        part,
        lambda: K.download_output(client, found, ref, folder),
    )
    done = json.loads((folder / "complete.json").read_text())
    assert done == {"doodle-run.json": 2, "dvc.lock": len(OUTPUT["dvc.lock"])}
    cut = part.stat().st_size
    assert 0 < cut < len(BIG)
    assert not (folder / "models").exists()  # nothing half-written among the finished files

    standin.calls.clear()
    got = K.download_output(client, found, ref, folder)
    assert got == {name: len(data) for name, data in OUTPUT.items()}
    storage = [(c.name, c.status, c.range) for c in standin.calls if c.kind == "storage"]
    assert storage == [
        ("models/base/model.keras", 200, None),
        ("models/base/model.keras", 206, f"bytes={cut}-"),  # the rest, not the whole file
        ("reports/metrics.json", 200, None),
        ("submission.csv", 200, None),
    ]
    for name, data in OUTPUT.items():
        assert (folder / name).read_bytes() == data
    assert not (folder / ".partial").exists()
    assert (folder / "kernel.log").read_text() == "ran\n"

    standin.calls.clear()
    K.download_output(client, found, ref, folder)
    assert [c.kind for c in standin.calls] == ["rpc"]  # the list only: every file is whole


def test_the_output_list_is_read_page_by_page_and_stays_in_its_folder(
    standin, tmp_path, monkeypatch
):
    standin.kernel_outputs = {f"reports/f{i}.json": b"{}" for i in range(5)}
    pushed, _ = push(tmp_path)
    client, found, _ = K.connect()
    monkeypatch.setattr(K, "OUTPUT_PAGE", 2)
    got = K.download_output(client, found, f"{pushed.kernel}/1", tmp_path / "run")
    assert sorted(got) == sorted(standin.kernel_outputs)
    assert len(standin.rpcs("ListKernelSessionOutput")) == 3
    standin.kernel_outputs = {"../outside.txt": b"x"}
    pushed, _ = push(tmp_path, name="q")
    with pytest.raises(KaggleError, match="names a file outside its folder: '../outside.txt'"):
        K.download_output(client, found, f"{pushed.kernel}/2", tmp_path / "run2")
    assert not (tmp_path / "outside.txt").exists()


@pytest.mark.parametrize("status", [401, 403, 404])
def test_a_refused_look_at_a_kernel_is_one_line(standin, tmp_path, status):
    pushed, _ = push(tmp_path)
    client, found, _ = K.connect()
    standin.fail("GetKernelSessionStatus", status)
    with pytest.raises(KaggleError) as info:
        K.state(client, found, f"{pushed.kernel}/1")
    message = str(info.value)
    expected = {
        401: "Kaggle rejected the credentials from the KAGGLE_API_TOKEN environment variable",
        403: f"Kaggle refused kernel {pushed.kernel}/1 (403 Forbidden",
        404: f"Kaggle does not know kernel {pushed.kernel}/1 (404 Not Found",
    }[status]
    assert message.startswith(expected) and "\n" not in message, message
    assert isinstance(info.value, KaggleAuthError) == (status == 401)
    assert "benchmark" not in message  # the client's own words about another product


def test_a_push_without_a_version_number_is_followed_as_the_latest():
    entry = {"kernel": "me/doodle-x", "version": None}
    assert (K.ref_of(entry), K.run_name(entry)) == ("me/doodle-x", "kaggle-doodle-x-latest")
    entry["version"] = 3
    assert (K.ref_of(entry), K.run_name(entry)) == ("me/doodle-x/3", "kaggle-doodle-x-v3")


def test_a_run_is_recorded_only_when_complete_and_from_a_commit_this_repo_has(tmp_path):
    from doodle.kaggle import experiment

    repo = kernel_repo(tmp_path / "repo")
    run = tmp_path / "run"
    run.mkdir()
    (run / "doodle-run.json").write_text(json.dumps({"status": "timed out", "run_id": "r"}))
    with pytest.raises(DoodleError, match=r"the run did not complete \(timed out\)"):
        experiment.record(run, "kaggle-x-v1", "m", repo)
    info = {"status": "complete", "run_id": "r", "base": "ab" * 20}
    (run / "doodle-run.json").write_text(json.dumps(info))
    with pytest.raises(DoodleError, match=r"pushed from commit abababa, which this repo does not"):
        experiment.record(run, "kaggle-x-v1", "m", repo)
