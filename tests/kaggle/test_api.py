"""Credential detection (fake homes), then the installed kaggle client through
doodle.kaggle.api against the stand-in Kaggle on 127.0.0.1 (tests/kaggle_standin.py):
downloads by name, an interrupted one resumed, uploads, scores, and each error answer."""

import contextlib
import io
import json
import os
import signal
import sys
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from doodle.data.layout import TEST_FILE
from doodle.kaggle import api as kaggle_api
from doodle.kaggle.api import (
    TRIES,
    KaggleAuthError,
    KaggleCredentialsError,
    KaggleError,
    check_permissions,
    connect,
    download_files,
    find_credentials,
)
from tests.kaggle_standin import SUBMITTED, KaggleStandIn, client_env, secrets

SECRET = "s3cr3t-0123456789abcdef"


@pytest.fixture
def home(tmp_path) -> Path:
    h = tmp_path / "home"
    (h / ".kaggle").mkdir(parents=True)
    return h


def write_secret(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def test_token_env_var(home):
    found = find_credentials({"KAGGLE_API_TOKEN": SECRET}, home)
    assert found == "KAGGLE_API_TOKEN environment variable"


def test_access_token_file(home):
    token = write_secret(home / ".kaggle" / "access_token", SECRET)
    assert find_credentials({}, home) == str(token)


def test_username_key_env_vars(home):
    env = {"KAGGLE_USERNAME": "alice", "KAGGLE_KEY": SECRET}
    assert find_credentials(env, home) == "KAGGLE_USERNAME/KAGGLE_KEY environment variables"


def test_kaggle_json(home):
    path = write_secret(home / ".kaggle" / "kaggle.json", f'{{"username": "a", "key": "{SECRET}"}}')
    assert find_credentials({}, home) == str(path)


def test_config_dir_moves_the_folder(tmp_path, home):
    cfg = tmp_path / "elsewhere"
    path = write_secret(cfg / "kaggle.json", f'{{"username": "a", "key": "{SECRET}"}}')
    assert find_credentials({"KAGGLE_CONFIG_DIR": str(cfg)}, home) == str(path)
    token = write_secret(cfg / "access_token", SECRET)
    assert find_credentials({"KAGGLE_CONFIG_DIR": str(cfg)}, home) == str(token)


def test_token_beats_legacy_forms(home):
    write_secret(home / ".kaggle" / "kaggle.json", f'{{"username": "a", "key": "{SECRET}"}}')
    env = {"KAGGLE_API_TOKEN": SECRET, "KAGGLE_USERNAME": "a", "KAGGLE_KEY": SECRET}
    assert find_credentials(env, home) == "KAGGLE_API_TOKEN environment variable"


def test_missing_credentials_message_names_all_forms(home):
    with pytest.raises(KaggleCredentialsError) as info:
        find_credentials({"KAGGLE_API_TOKEN": "  "}, home)  # blank counts as unset
    message = str(info.value)
    for form in (
        "KAGGLE_API_TOKEN",
        "access_token",
        "KAGGLE_USERNAME",
        "KAGGLE_KEY",
        "kaggle.json",
        "KAGGLE_CONFIG_DIR",
    ):
        assert form in message


def test_half_legacy_env_and_bad_json_never_leak_the_secret(home):
    with pytest.raises(KaggleCredentialsError) as info:
        find_credentials({"KAGGLE_KEY": SECRET}, home)
    assert "KAGGLE_KEY is set but KAGGLE_USERNAME is not" in str(info.value)
    assert SECRET not in str(info.value)

    write_secret(home / ".kaggle" / "kaggle.json", f'{{"key": "{SECRET}"')  # broken JSON
    with pytest.raises(KaggleCredentialsError) as info:
        find_credentials({}, home)
    assert "is not JSON with 'username' and 'key'" in str(info.value)
    assert SECRET not in str(info.value)


def test_found_descriptions_never_contain_the_secret(home):
    write_secret(home / ".kaggle" / "kaggle.json", f'{{"username": "a", "key": "{SECRET}"}}')
    for env in ({"KAGGLE_API_TOKEN": SECRET}, {"KAGGLE_USERNAME": "a", "KAGGLE_KEY": SECRET}, {}):
        assert SECRET not in find_credentials(env, home)


def test_permission_warning(home):
    loose = write_secret(home / ".kaggle" / "kaggle.json", "{}", mode=0o644)
    warning = check_permissions(loose)
    assert warning is not None and f"chmod 600 {loose}" in warning and "0644" in warning
    tight = write_secret(home / ".kaggle" / "access_token", SECRET, mode=0o600)
    assert check_permissions(tight) is None
    assert check_permissions(home / "absent") is None


def _hide_kaggle(monkeypatch) -> None:
    """Make every `import kaggle...` fail with ImportError, also when an earlier test in this
    process imported its submodules (they stay in sys.modules and would be found first)."""
    for name in [m for m in sys.modules if m == "kaggle" or m.startswith("kaggle.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "kaggle", None)


def test_a_missing_kaggle_package_is_one_line(home, monkeypatch):
    _hide_kaggle(monkeypatch)
    with pytest.raises(
        KaggleError, match=r"the `kaggle` package cannot be imported .*make install"
    ):
        kaggle_api.api({"KAGGLE_API_TOKEN": SECRET}, home)


def test_api_fails_before_importing_kaggle(home, monkeypatch):
    # With `import kaggle` failing, getting the credentials error proves the check ran first.
    _hide_kaggle(monkeypatch)
    with pytest.raises(KaggleCredentialsError):
        kaggle_api.api({}, home)


# -- the installed client against the stand-in ------------------------------------------------
COMP = "quickdraw-doodle-recognition"
BIG = np.random.default_rng(0).bytes(2_500_000)  # over two of the client's 1 MiB chunks
TEST_CSV = b'key_id,countrycode,drawing\n9000000000,US,"[[[0, 9], [0, 9]]]"\n'
FILES = {
    "train_simplified.zip": BIG,
    TEST_FILE: TEST_CSV,
    "train_raw.zip": b"PK" + bytes(5000),
    "test_raw.csv": b'key_id,countrycode,drawing\n1,US,"[[[0], [0], [0]]]"\n',
}
NAMES = ("train_simplified.zip", TEST_FILE)


@pytest.fixture
def standin(tmp_path):
    """The stand-in server, and this process's environment pointed at it (restored after);
    its teardown fails the test if anything else was asked for (e.g. the real Kaggle)."""
    server = KaggleStandIn(COMP, FILES, zip_served=(TEST_FILE, "test_raw.csv")).start()
    saved = dict(os.environ)
    try:
        login(server, tmp_path, "token")
        with contextlib.redirect_stdout(io.StringIO()):  # the import authenticates
            from kaggle.api.kaggle_api_extended import KaggleApi
        assert "--local" in KaggleApi.args, (
            "kaggle was imported in this process before KAGGLE_API_ENVIRONMENT pointed it "
            "at the stand-in (it reads the variable once, at import)"
        )
        yield server
    finally:
        os.environ.clear()
        os.environ.update(saved)
        server.stop()
    assert server.unexpected == [], server.unexpected


def login(server: KaggleStandIn, tmp_path: Path, credentials: str) -> None:
    """Replace this process's environment with one using ``credentials`` (fake ones)."""
    env = client_env(server, tmp_path / "home", credentials)
    os.environ.clear()
    os.environ.update(env)


def statuses(server: KaggleStandIn, method: str) -> list[int]:
    return [c.status for c in server.rpcs(method)]


def ctrl_c_mid_download(
    standin: KaggleStandIn, name: str, part: Path, download: Callable[[], object]
) -> None:
    """``download()`` cut off by a Ctrl-C: the stand-in stops serving ``name`` after 1.6 MB
    and, once the client has written its first chunk to ``part``, SIGINT reaches the main
    thread; the download must end in KeyboardInterrupt."""

    def ctrl_c():  # in the server's thread
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (part.is_file() and part.stat().st_size):
            time.sleep(0.005)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    standin.interrupt(name, after_bytes=1_600_000, hook=ctrl_c)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            download()
    finally:
        signal.signal(signal.SIGINT, previous)
        standin.release.set()


def test_downloads_by_name_resume_an_interrupted_file_and_never_refetch_a_finished_one(
    standin, tmp_path
):
    # Ctrl-C arrives as SIGINT in the main thread: so must this test run (pytest-xdist's
    # workers run tests there too).
    assert threading.current_thread() is threading.main_thread()
    folder = tmp_path / "cache" / COMP
    names = (TEST_FILE, "train_simplified.zip")  # the second is cut off part-way
    part = folder / ".partial" / "train_simplified.zip"
    ctrl_c_mid_download(
        standin, "train_simplified.zip", part, lambda: download_files(COMP, names, folder)
    )
    served_test = standin.served[TEST_FILE][1]  # Kaggle serves the test CSV zipped
    assert json.loads((folder / "complete.json").read_text()) == {
        TEST_FILE: {"file": TEST_FILE + ".zip", "bytes": len(served_test)}
    }
    assert sorted(p.name for p in folder.iterdir()) == [
        ".locks",  # a lock file per name (flock: released when the process exits)
        ".partial",
        "complete.json",
        TEST_FILE + ".zip",
    ]
    cut = part.stat().st_size
    assert 0 < cut < len(BIG)

    standin.calls.clear()
    assert download_files(COMP, names, folder) == folder
    downloads = [c.body["fileName"] for c in standin.rpcs("DownloadDataFile")]
    assert downloads == ["train_simplified.zip"]  # the finished file is not asked for again
    # the client opens the file, sees the partial one is the same (ETag), asks for the rest
    storage = [(c.name, c.status, c.range) for c in standin.calls if c.kind == "storage"]
    assert storage == [
        ("train_simplified.zip", 200, None),
        ("train_simplified.zip", 206, f"bytes={cut}-"),
    ]
    assert (folder / "train_simplified.zip").read_bytes() == BIG
    assert (folder / (TEST_FILE + ".zip")).read_bytes() == served_test
    with zipfile.ZipFile(folder / (TEST_FILE + ".zip")) as z:
        assert z.read(TEST_FILE) == TEST_CSV
    assert sorted(p.name for p in folder.iterdir()) == [
        ".locks",
        ".partial",
        "complete.json",
        TEST_FILE + ".zip",
        "train_simplified.zip",
    ]
    assert list((folder / ".partial").iterdir()) == []  # nothing partial left

    standin.calls.clear()
    download_files(COMP, names, folder)
    assert standin.calls == []  # all complete: no call at all, not even a credentials check


def test_any_competition_file_downloads_by_name(standin, tmp_path):
    """Names are not special: Kaggle's raw layout goes the same way (one served zipped)."""
    folder = download_files(COMP, ("test_raw.csv", "train_raw.zip"), tmp_path / "dl")
    assert json.loads((folder / "complete.json").read_text()) == {
        "test_raw.csv": {
            "file": "test_raw.csv.zip",
            "bytes": len(standin.served["test_raw.csv"][1]),
        },
        "train_raw.zip": {"file": "train_raw.zip", "bytes": len(FILES["train_raw.zip"])},
    }
    with zipfile.ZipFile(folder / "test_raw.csv.zip") as z:
        assert z.read("test_raw.csv") == FILES["test_raw.csv"]
    assert (folder / "train_raw.zip").read_bytes() == FILES["train_raw.zip"]
    assert [c.body["fileName"] for c in standin.rpcs("DownloadDataFile")] == [
        "test_raw.csv",
        "train_raw.zip",
    ]


def test_the_file_list_feeds_the_disk_check_before_any_download(standin, tmp_path, monkeypatch):
    import shutil

    from doodle.fileio import DiskSpaceError

    assert connect(COMP).listed_sizes() == {
        name: len(served) for name, (_, served) in standin.served.items()
    }
    standin.listed = {"train_simplified.zip": 7 << 30, TEST_FILE: 80 << 20}
    monkeypatch.setattr(
        shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(100 << 30, 95 << 30, 5 << 30)
    )
    with pytest.raises(
        DiskSpaceError,
        match=r"downloading train_simplified.zip, test_simplified.csv needs "
        r"about 7\.1 GiB .* only 5\.0 GiB is free",
    ):
        download_files(COMP, NAMES, tmp_path / "dl")
    assert standin.rpcs("DownloadDataFile") == []


@pytest.mark.parametrize(
    "credentials, inactive, where",
    [
        ("bad-token", False, "the KAGGLE_API_TOKEN environment variable"),
        ("bad-token", True, "the KAGGLE_API_TOKEN environment variable"),
        ("bad-key", False, "the KAGGLE_USERNAME/KAGGLE_KEY environment variables"),
    ],
    ids=["token-401", "token-inactive", "key-401"],
)
@pytest.mark.parametrize("action", ["download", "submit"])
def test_rejected_credentials_are_one_line(
    standin, tmp_path, capsys, credentials, inactive, where, action
):
    """A token is checked at sign-in (401, or `active: false`, where kaggle exits); a
    username/key pair at the first call."""
    login(standin, tmp_path, credentials)
    standin.introspect_inactive = inactive
    sub = tmp_path / "submission.csv"
    sub.write_text("key_id,word\n")
    with pytest.raises(KaggleAuthError) as info:
        if action == "download":
            download_files(COMP, NAMES, tmp_path / "dl")
        else:
            connect(COMP).submit(sub, "m")
    message = str(info.value)
    assert message.startswith(f"Kaggle rejected the credentials from {where} (401 Unauthorized)")
    assert "\n" not in message and "https://www.kaggle.com/settings" in message
    out = capsys.readouterr()
    assert "Authentication required" not in out.out  # kaggle's own page of help is held back
    for secret in secrets():
        assert secret not in message + out.out + out.err
    assert not (tmp_path / "dl" / "complete.json").exists()
    assert standin.submissions == []


@pytest.mark.parametrize("action", ["download", "submit"])
def test_rules_not_accepted_is_one_line_with_the_rules_page(standin, tmp_path, action):
    standin.rules_accepted = False
    sub = tmp_path / "submission.csv"
    sub.write_text("key_id,word\n")
    with pytest.raises(KaggleError) as info:
        if action == "download":
            download_files(COMP, NAMES, tmp_path / "dl")
        else:
            connect(COMP).submit(sub, "m")
    message = str(info.value)
    what = "the download of train_simplified.zip" if action == "download" else "the upload"
    assert message.startswith(f"Kaggle refused {what}")
    assert "(403 Forbidden: You must accept this competition's rules" in message
    assert f"https://www.kaggle.com/competitions/{COMP}/rules" in message and "\n" not in message
    if action == "download":
        # nothing downloaded, not even a partial folder: only the (released) lock of the file
        assert [p.name for p in (tmp_path / "dl").iterdir()] == [".locks"]
        assert [p.name for p in (tmp_path / "dl" / ".locks").iterdir()] == [
            "train_simplified.zip.lock"
        ]
    assert standin.submissions == []


@pytest.mark.parametrize(
    "failing, status",
    [("DownloadDataFile", 429), ("train_simplified.zip", 500), ("DownloadDataFile", 503)],
    ids=["api-429", "storage-500", "api-503"],
)
def test_busy_answers_are_retried_with_a_wait(standin, tmp_path, caplog, failing, status):
    standin.fail(failing, status, status)
    folder = download_files(COMP, ("train_simplified.zip",), tmp_path / "dl")
    assert (folder / "train_simplified.zip").read_bytes() == BIG
    if failing == "DownloadDataFile":
        assert statuses(standin, "DownloadDataFile") == [status, status, 302]
    else:
        assert [c.status for c in standin.calls if c.kind == "storage"] == [500, 500, 200]
    retries = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert len(retries) == 2, retries
    assert retries[0].startswith(
        f"Kaggle answered the download of train_simplified.zip with {status} "
    )
    assert retries[0].endswith("retry 1 of 3 in 0.0 s")  # 2 s, scaled 1000-fold down here


def test_retry_after_is_followed(standin, tmp_path, caplog):
    standin.fail("ListSubmissions", 429, retry_after="0")
    assert connect(COMP).submissions() == []
    assert statuses(standin, "ListSubmissions") == [429, 200]
    assert any("retry 1 of 3 in 0.0 s" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "failing, status, what",
    [
        ("CreateSubmission", 429, "the upload of submission.csv"),
        ("StartSubmissionUpload", 500, "the upload of submission.csv"),
        ("ListSubmissions", 500, "the list of submissions"),
        ("DownloadDataFile", 429, "the download of train_simplified.zip"),
    ],
)
def test_a_lasting_busy_answer_gives_up_after_a_bounded_number_of_tries_in_one_line(
    standin, tmp_path, failing, status, what
):
    standin.fail(failing, *[status] * TRIES)
    sub = tmp_path / "submission.csv"
    sub.write_text("key_id,word\n")
    kaggle = connect(COMP)
    with pytest.raises(KaggleError) as info:
        if failing == "ListSubmissions":
            kaggle.submissions()
        elif failing == "DownloadDataFile":
            download_files(COMP, ("train_simplified.zip",), tmp_path / "dl")
        else:
            kaggle.submit(sub, "m")
    message = str(info.value)
    why = "rate-limiting" if status == 429 else "failing on its side"
    assert message.startswith(f"Kaggle answered {what} with {status} "), message
    assert f", {TRIES} times over " in message and f"(Kaggle is {why})" in message
    assert "\n" not in message
    assert statuses(standin, failing) == [status] * TRIES  # bounded: no fifth try
    assert standin.submissions == []


def test_submit_uploads_the_files_bytes_then_waits_for_the_score(standin, tmp_path):
    sub = tmp_path / "submission.csv"
    sub.write_text("key_id,word\n9000000000,cat dog The_Eiffel_Tower\n")
    standin.expected_upload = sub.read_bytes()
    kaggle = connect(COMP)
    result = kaggle.submit(sub, "doodle abc1234: blend, holdout MAP@3 0.9000")
    assert (result.ref, result.answer) == (40_000_001, SUBMITTED)
    assert standin.uploads == {"blob-1": sub.read_bytes()}
    [create] = standin.rpcs("CreateSubmission")
    assert create.body["submissionDescription"] == "doodle abc1234: blend, holdout MAP@3 0.9000"
    seen = []
    scored = kaggle.wait_for_score(result.ref, 600, lambda s, t: seen.append(s.status))
    assert seen == ["pending", "pending"]  # two looks while Kaggle scores, then the score
    assert (scored.status, scored.public_score, scored.private_score) == (
        "complete",
        0.87654,
        0.87321,
    )
    assert len(standin.rpcs("ListSubmissions")) == 3

    standin.expected_upload = b"other bytes"  # the server really compares them
    with pytest.raises(KaggleError, match="400 .*Uploaded bytes differ from the file"):
        kaggle.submit(sub, "again")


def test_the_wait_for_a_score_is_bounded_and_a_scoring_error_is_reported(standin, tmp_path):
    sub = tmp_path / "submission.csv"
    sub.write_text("key_id,word\n")
    kaggle = connect(COMP)
    standin.pending_polls = 10**9
    ref = kaggle.submit(sub, "slow").ref
    late = kaggle.wait_for_score(ref, 20)  # 20 s, scaled to 20 ms: polls every 10 ms
    assert late.status == "pending" and late.public_score is None
    assert 1 <= len(standin.rpcs("ListSubmissions")) <= 3

    standin.pending_polls = 0
    standin.score_error = "Submission must have 2 columns"
    failed = kaggle.wait_for_score(kaggle.submit(sub, "bad").ref, 600)
    assert (failed.status, failed.error, failed.public_score) == (
        "error",
        "Submission must have 2 columns",
        None,
    )


def test_an_error_after_kaggle_created_the_submission_does_not_submit_twice(standin, tmp_path):
    sub = tmp_path / "submission.csv"
    sub.write_text("key_id,word\n")
    standin.create_then_fail = 1
    result = connect(COMP).submit(sub, "once")
    assert [s["ref"] for s in standin.submissions] == [result.ref]
    assert statuses(standin, "CreateSubmission") == [500]


@pytest.mark.parametrize("credentials", ["token-file", "key"])
def test_other_credential_forms_reach_kaggle(standin, tmp_path, credentials):
    login(standin, tmp_path, credentials)
    sub = tmp_path / "submission.csv"
    sub.write_text("key_id,word\n")
    kaggle = connect(COMP)
    assert kaggle.credentials.endswith(
        "access_token" if credentials == "token-file" else "KAGGLE_KEY environment variables"
    )
    assert kaggle.submit(sub, "m").ref == 40_000_001


def test_an_unreachable_kaggle_is_tried_a_bounded_number_of_times(standin, tmp_path, caplog):
    standin.stop()  # nothing listens any more: every connection is refused
    with pytest.raises(KaggleError) as info:
        connect(COMP)
    message = str(info.value)
    assert message.startswith("Kaggle did not answer the credentials check (ProxyError)")
    assert f", {TRIES} times over " in message and "(check the network)" in message
    assert sum(" retry " in r.getMessage() for r in caplog.records) == TRIES - 1
