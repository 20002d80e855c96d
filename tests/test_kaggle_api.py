"""Credential detection and the Kaggle wrappers, with fake homes and a fake client."""

import json
import sys
import types
import zipfile
from pathlib import Path

import pytest

from doodle import kaggle_api
from doodle.kaggle_api import (
    KaggleCredentialsError,
    check_permissions,
    download_files,
    find_credentials,
    submit,
)

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


def test_api_fails_before_importing_kaggle(home, monkeypatch):
    # A None entry makes any `import kaggle` fail with ImportError, so getting the
    # credentials error proves the check ran first.
    monkeypatch.setitem(sys.modules, "kaggle", None)
    with pytest.raises(KaggleCredentialsError):
        kaggle_api.api({}, home)


def fake_kaggle(monkeypatch, authenticate):
    cls = type("KaggleApi", (), {"authenticate": authenticate})
    mods = {
        "kaggle": types.ModuleType("kaggle"),
        "kaggle.api": types.ModuleType("kaggle.api"),
        "kaggle.api.kaggle_api_extended": types.ModuleType("kaggle.api.kaggle_api_extended"),
    }
    mods["kaggle.api.kaggle_api_extended"].KaggleApi = cls
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)
    return cls


def test_api_wraps_system_exit(home, monkeypatch):
    def authenticate(self):
        raise SystemExit(1)

    fake_kaggle(monkeypatch, authenticate)
    env = {"KAGGLE_USERNAME": "a", "KAGGLE_KEY": SECRET}
    with pytest.raises(KaggleCredentialsError) as info:
        kaggle_api.api(env, home)
    assert SECRET not in str(info.value)


def test_api_returns_authenticated_client(home, monkeypatch):
    def authenticate(self):
        self.ok = True

    cls = fake_kaggle(monkeypatch, authenticate)
    client = kaggle_api.api({"KAGGLE_API_TOKEN": SECRET}, home)
    assert isinstance(client, cls) and client.ok


class FakeClient:
    def __init__(self, error: Exception | None = None):
        self.error = error
        self.calls = []

    def competition_download_file(self, competition, file_name, path, force=False, quiet=False):
        """As kaggle does: the file (Kaggle serves the test CSV zipped) lands in ``path``;
        ``interrupt`` stops one half-way, as a dropped connection does."""
        self.calls.append(("download", competition, file_name, path))
        if self.error:
            raise self.error
        if file_name.endswith(".csv"):
            with zipfile.ZipFile(Path(path) / f"{file_name}.zip", "w") as z:
                z.writestr(file_name, "key_id,countrycode,drawing\n")
        else:
            (Path(path) / file_name).write_bytes(b"PK" + bytes(1000))
        if file_name == getattr(self, "interrupt", None):
            raise KeyboardInterrupt

    def competition_list_files(self, competition, page_token=None, page_size=20):
        files = [types.SimpleNamespace(name=n, total_bytes=b) for n, b in self.listed.items()]
        return types.SimpleNamespace(files=files, next_page_token="")

    listed: dict = {}

    def competition_submit(self, file_name, message, competition):
        self.calls.append(("submit", file_name, message, competition))
        if self.error:
            raise self.error
        return types.SimpleNamespace(message="Successfully submitted")  # as kaggle answers


NAMES = ("train_simplified.zip", "test_simplified.csv")


def test_download_fetches_only_the_named_files_once(tmp_path, monkeypatch):
    client = FakeClient()
    monkeypatch.setattr(kaggle_api, "api", lambda: client)
    folder = tmp_path / "cache" / "comp"
    assert download_files("comp", NAMES, folder) == folder
    assert [c[2] for c in client.calls] == list(NAMES)  # by name: nothing else
    assert sorted(p.name for p in folder.iterdir()) == [
        "complete.json",
        "test_simplified.csv.zip",
        "train_simplified.zip",
    ]
    sizes = json.loads((folder / "complete.json").read_text())
    assert sizes["train_simplified.zip"] == {"file": "train_simplified.zip", "bytes": 1002}
    # a second run reuses what is complete and never calls Kaggle
    monkeypatch.setattr(kaggle_api, "api", lambda: pytest.fail("downloaded again"))
    download_files("comp", NAMES, folder)
    # a file whose size no longer matches (cut short on disk) is fetched again
    (folder / "train_simplified.zip").write_bytes(b"PK")
    client.calls.clear()
    monkeypatch.setattr(kaggle_api, "api", lambda: client)
    download_files("comp", NAMES, folder)
    assert [c[2] for c in client.calls] == ["train_simplified.zip"]


def test_interrupted_download_leaves_nothing_that_looks_finished(tmp_path, monkeypatch):
    client = FakeClient()
    client.interrupt = "test_simplified.csv"
    monkeypatch.setattr(kaggle_api, "api", lambda: client)
    folder = tmp_path / "comp"
    with pytest.raises(KeyboardInterrupt):
        download_files("comp", NAMES, folder)
    # the first file is complete and recorded; the second left no file and no temp folder
    assert sorted(p.name for p in folder.iterdir()) == ["complete.json", "train_simplified.zip"]
    assert list(json.loads((folder / "complete.json").read_text())) == ["train_simplified.zip"]


def test_download_403_hints_at_rules(tmp_path, monkeypatch):
    monkeypatch.setattr(kaggle_api, "api", lambda: FakeClient(RuntimeError("403 Forbidden")))
    with pytest.raises(
        kaggle_api.KaggleError, match="competitions/quickdraw-doodle-recognition/rules"
    ):
        download_files("quickdraw-doodle-recognition", NAMES, tmp_path / "comp")
    assert list((tmp_path / "comp").iterdir()) == []


def test_kaggle_errors_reach_the_user_in_one_line(tmp_path, monkeypatch):
    """Whatever the client raises (here a 400), the user reads Kaggle's own words."""
    monkeypatch.setattr(
        kaggle_api, "api", lambda: FakeClient(RuntimeError("400 Bad Request:\n daily limit"))
    )
    sub = tmp_path / "submission.csv"
    sub.write_text("key_id,word\n")
    with pytest.raises(kaggle_api.KaggleError, match="with an error: 400 Bad Request: daily"):
        submit(sub, "m")


def test_submit_passes_file_message_competition(tmp_path, monkeypatch):
    client = FakeClient()
    monkeypatch.setattr(kaggle_api, "api", lambda: client)
    sub = tmp_path / "submission.csv"
    sub.write_text("key_id,word\n")
    assert submit(sub, "blend v1") == "Successfully submitted"
    assert client.calls == [("submit", str(sub), "blend v1", "quickdraw-doodle-recognition")]
    with pytest.raises(FileNotFoundError):
        submit(tmp_path / "missing.csv", "x")


def test_download_checks_the_disk_before_writing(tmp_path, monkeypatch):
    import shutil

    from doodle.fileio import DiskSpaceError

    client = FakeClient()
    client.listed = {
        "train_simplified.zip": 7 << 30,
        "test_simplified.csv": 80 << 20,
        "train_raw.zip": 200 << 30,
    }
    monkeypatch.setattr(kaggle_api, "api", lambda: client)
    monkeypatch.setattr(
        shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(100 << 30, 95 << 30, 5 << 30)
    )
    with pytest.raises(
        DiskSpaceError,
        match=r"downloading train_simplified.zip, test_simplified.csv needs "
        r"about 7\.1 GiB .* only 5\.0 GiB is free",
    ):
        download_files("comp", NAMES, tmp_path / "comp")
    assert [c[0] for c in client.calls] == []  # nothing downloaded
