"""Credential detection and the Kaggle wrappers, with fake homes and a fake client."""

import sys
import types
import zipfile
from pathlib import Path

import pytest

from doodle import kaggle_api
from doodle.kaggle_api import (
    KaggleCredentialsError,
    check_permissions,
    download_competition,
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

    def competition_download_files(self, competition, path, quiet=True):
        self.calls.append(("download", competition, path))
        if self.error:
            raise self.error
        with zipfile.ZipFile(Path(path) / f"{competition}.zip", "w") as z:
            z.writestr("test_simplified.csv", "key_id,countrycode,drawing\n")

    def competition_submit(self, file_name, message, competition):
        self.calls.append(("submit", file_name, message, competition))
        if self.error:
            raise self.error
        return types.SimpleNamespace(message="Successfully submitted")  # as kaggle answers


def test_download_moves_zip_into_dest(tmp_path, monkeypatch):
    client = FakeClient()
    monkeypatch.setattr(kaggle_api, "api", lambda: client)
    dest = tmp_path / "data" / "raw"
    out = download_competition(dest)
    assert out == dest / "quickdraw-doodle-recognition.zip"
    assert zipfile.ZipFile(out).namelist() == ["test_simplified.csv"]
    assert sorted(p.name for p in dest.parent.iterdir()) == ["raw"]  # temp folder removed
    assert client.calls[0][1] == "quickdraw-doodle-recognition"


def test_download_403_hints_at_rules(tmp_path, monkeypatch):
    monkeypatch.setattr(kaggle_api, "api", lambda: FakeClient(RuntimeError("403 Forbidden")))
    with pytest.raises(kaggle_api.KaggleError,
                       match="competitions/quickdraw-doodle-recognition/rules"):
        download_competition(tmp_path / "raw")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


def test_kaggle_errors_reach_the_user_in_one_line(tmp_path, monkeypatch):
    """Whatever the client raises (here a 400), the user reads Kaggle's own words."""
    monkeypatch.setattr(kaggle_api, "api",
                        lambda: FakeClient(RuntimeError("400 Bad Request:\n daily limit")))
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
