"""The only place that talks to Kaggle.

Importing the ``kaggle`` package authenticates at import time and calls ``sys.exit`` when
no credentials are found, so this module checks for credentials itself first and imports
``kaggle`` lazily. Messages name where credentials were found, never their values.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from doodle.errors import DoodleError
from doodle.fileio import check_disk_space, write_json

logger = logging.getLogger(__name__)

COMPETITION = "quickdraw-doodle-recognition"

ACCEPTED_FORMS = (
    "the KAGGLE_API_TOKEN environment variable",
    "an API token in ~/.kaggle/access_token",
    "the KAGGLE_USERNAME and KAGGLE_KEY environment variables",
    "~/.kaggle/kaggle.json with 'username' and 'key'",
    "OAuth credentials from `kaggle auth login` (~/.kaggle/credentials.json)",
)


class KaggleCredentialsError(DoodleError, RuntimeError):
    """No usable Kaggle credentials; the message lists every accepted form."""

    def __init__(self, detail: str = "no Kaggle credentials found") -> None:
        forms = "\n".join(f"  - {f}" for f in ACCEPTED_FORMS)
        super().__init__(
            f"{detail}. Provide one of:\n{forms}\n"
            "(KAGGLE_CONFIG_DIR replaces ~/.kaggle; create a token at "
            "https://www.kaggle.com/settings -> API; `chmod 600` the file.)"
        )


def config_dir(env: Mapping[str, str] | None = None, home: Path | None = None) -> Path:
    """The folder kaggle reads kaggle.json from, resolved the way the kaggle package does.

    $KAGGLE_CONFIG_DIR, else ~/.kaggle, else (Linux, when ~/.kaggle is absent) the XDG
    folder $XDG_CONFIG_HOME/kaggle or ~/.config/kaggle.
    """
    env = os.environ if env is None else env
    if env.get("KAGGLE_CONFIG_DIR"):
        return Path(env["KAGGLE_CONFIG_DIR"]).expanduser()
    home = Path.home() if home is None else Path(home)
    default = home / ".kaggle"
    if default.exists() or not sys.platform.startswith("linux"):
        return default
    xdg = env.get("XDG_CONFIG_HOME") or str(home / ".config")
    return Path(xdg) / "kaggle"


def _token_files(env: Mapping[str, str], home: Path | None) -> list[Path]:
    """Where an access token file may live (kagglesdk itself only reads ~/.kaggle)."""
    home = Path.home() if home is None else Path(home)
    candidates = [config_dir(env, home) / "access_token"]
    candidates += [home / ".kaggle" / "access_token", home / ".kaggle" / "access_token.txt"]
    return list(dict.fromkeys(candidates))


def find_credentials(env: Mapping[str, str] | None = None, home: Path | None = None) -> str:
    """Describe which credential form is available (never its value); raise if none is.

    Returns "KAGGLE_API_TOKEN environment variable",
    "KAGGLE_USERNAME/KAGGLE_KEY environment variables" or the path of the credentials file.
    """
    env = os.environ if env is None else env
    folder = config_dir(env, home)
    if env.get("KAGGLE_API_TOKEN", "").strip():
        return "KAGGLE_API_TOKEN environment variable"
    for token in _token_files(env, home):
        if token.is_file() and token.stat().st_size > 0:
            return str(token)
    user, key = env.get("KAGGLE_USERNAME", "").strip(), env.get("KAGGLE_KEY", "").strip()
    if user and key:
        return "KAGGLE_USERNAME/KAGGLE_KEY environment variables"
    legacy = folder / "kaggle.json"
    if legacy.is_file():
        try:
            data = json.loads(legacy.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        if not (isinstance(data, dict) and data.get("username") and data.get("key")):
            # Deliberately no content in the message: the file holds a secret.
            raise KaggleCredentialsError(f"{legacy} is not JSON with 'username' and 'key'")
        return str(legacy)
    home_dir = Path.home() if home is None else Path(home)
    oauth = home_dir / ".kaggle" / "credentials.json"  # written by `kaggle auth login`
    if oauth.is_file():
        return str(oauth)
    if user or key:
        have, lack = (
            ("KAGGLE_USERNAME", "KAGGLE_KEY") if user else ("KAGGLE_KEY", "KAGGLE_USERNAME")
        )
        raise KaggleCredentialsError(f"{have} is set but {lack} is not")
    raise KaggleCredentialsError(f"no Kaggle credentials found (looked in env and {folder})")


def check_permissions(path: Path) -> str | None:
    """Warning text if a credentials file is accessible by group/others, else None."""
    path = Path(path)
    if os.name == "nt" or not path.is_file():
        return None
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return (
            f"{path} is accessible by other users (mode {mode:04o}); "
            f"run `chmod 600 {path}` to keep your Kaggle key private"
        )
    return None


def api(env: Mapping[str, str] | None = None, home: Path | None = None):
    """An authenticated ``KaggleApi``; raises KaggleCredentialsError before importing kaggle.

    ``env``/``home`` are only for checking; the kaggle package reads the real environment.
    """
    found = find_credentials(env, home)
    logger.info("Kaggle credentials: %s", found)
    if not found.endswith(("variable", "variables")):
        warning = check_permissions(Path(found))
        if warning:
            logger.warning(warning)
        # kagglesdk only reads ~/.kaggle/access_token; point it at a token kept elsewhere
        # (KAGGLE_CONFIG_DIR) by path, which KAGGLE_API_TOKEN accepts: no secret is copied.
        if env is None and Path(found).name == "access_token":
            os.environ.setdefault("KAGGLE_API_TOKEN", found)
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi  # lazy: authenticates on import

        client = KaggleApi()
        client.authenticate()
    except SystemExit as e:  # kaggle exits instead of raising when it finds no credentials
        raise KaggleCredentialsError(
            f"the kaggle package rejected the credentials ({found})"
        ) from e
    except ImportError as e:
        raise KaggleError("the `kaggle` package is not installed: pip install kaggle") from e
    return client


class KaggleError(DoodleError):
    """Kaggle answered with an error (the message quotes it)."""


def _kaggle_error(competition: str, error: Exception) -> KaggleError:
    """Kaggle's error as one sentence, with the fix for a 403 (rules not accepted)."""
    text = " ".join(str(error).split()) or type(error).__name__
    if "403" in text or "Forbidden" in text:
        return KaggleError(
            f"Kaggle refused access to {competition!r} (403). Accept the rules first at "
            f"https://www.kaggle.com/competitions/{competition}/rules"
        )
    return KaggleError(f"Kaggle answered {competition!r} with an error: {text}")


MANIFEST = "complete.json"  # name -> bytes of each file downloaded completely


def download_files(competition: str, names: tuple[str, ...], folder: Path) -> Path:
    """Download the competition files ``names`` (by name: only what is read) into ``folder``;
    returns ``folder``.

    Each file goes to a temp folder and is moved in with os.replace, then its size is
    recorded in ``complete.json``: an interrupted download never looks finished, and a
    file already recorded with its size on disk is not downloaded again. Kaggle may serve
    a file zipped (``<name>.zip``); it is kept as served (read in place).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifest_path = folder / MANIFEST
    done = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    todo = [n for n in names if not _complete(folder, done.get(n))]
    for n in names:
        if n not in todo:
            logger.info("%s: already downloaded (%s)", n, folder / done[n]["file"])
    if not todo:
        return folder
    client = api()
    sizes = listed_sizes(client, competition)
    if all(n in sizes for n in todo):  # the disk check predicts a full disk before writing
        check_disk_space(folder, sum(sizes[n] for n in todo), f"downloading {', '.join(todo)}")
    for name in todo:
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.download-", dir=folder))
        try:
            try:
                client.competition_download_file(
                    competition, name, path=str(tmp), force=True, quiet=False
                )
            except Exception as e:  # whatever the client raises, the user sees Kaggle's words
                raise _kaggle_error(competition, e) from e
            got = [p for p in tmp.iterdir() if p.name in (name, name + ".zip")]
            if len(got) != 1:
                found = sorted(p.name for p in tmp.iterdir())
                raise KaggleError(f"expected {name} from Kaggle in {tmp}, found {found}")
            os.replace(got[0], folder / got[0].name)
            done[name] = {"file": got[0].name, "bytes": (folder / got[0].name).stat().st_size}
            write_json(manifest_path, done)
            logger.info("downloaded %s (%d bytes)", folder / got[0].name, done[name]["bytes"])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def listed_sizes(client, competition: str) -> dict[str, int]:
    """Kaggle's file list for the competition: name -> bytes ({} when it cannot be read:
    the download then goes ahead unchecked, as kaggle itself would)."""
    sizes: dict[str, int] = {}
    token = None
    try:
        while True:
            page = client.competition_list_files(competition, page_token=token, page_size=200)
            sizes.update({f.name: int(f.total_bytes) for f in page.files})
            token = getattr(page, "next_page_token", None)
            if not token:
                return sizes
    except Exception as e:  # listing is only for the disk check: never fatal
        logger.info("could not list %s's files (%s); no disk check", competition, e)
        return {}


def _complete(folder: Path, entry: dict | None) -> bool:
    if not entry:
        return False
    f = folder / entry["file"]
    return f.is_file() and f.stat().st_size == entry["bytes"]


def submit(path: Path, message: str, competition: str = COMPETITION) -> str:
    """Upload a submission file to the competition; returns Kaggle's answer."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"submission file not found: {path}")
    client = api()
    try:
        result = client.competition_submit(str(path), message, competition)
    except Exception as e:  # whatever the client raises, the user sees Kaggle's words
        raise _kaggle_error(competition, e) from e
    answer = getattr(result, "message", None) or str(result)
    logger.info("submitted %s to %s", path, competition)
    return answer
