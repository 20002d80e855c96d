"""The only place that talks to Kaggle, through the installed ``kaggle`` client (2.2).

Importing the ``kaggle`` package authenticates at import time and calls ``sys.exit`` when
no credentials are found, so this module checks for credentials itself first and imports
``kaggle`` lazily. Messages name where credentials were found, never their values.

:func:`connect` gives a :class:`Kaggle` for one competition: files listed and downloaded
by name (:func:`download_files` keeps a cache, shared by processes under per-file locks, that
resumes an interrupted file and never fetches a finished one again), a submission uploaded, the
list of submissions with their status and scores, and a bounded wait for a score. Every call
Kaggle answers with 429 or 5xx (or not at all) is tried again, TRIES times in all, with a
growing wait; that and every other error reach the user as one line (401: the credentials;
403: the rules page).
``$DOODLE_KAGGLE_WAIT_SCALE`` scales every wait (the tests set it near 0).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import stat
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TypeVar

from doodle.errors import DoodleError
from doodle.fileio import check_disk_space, human_bytes, write_json

logger = logging.getLogger(__name__)
T = TypeVar("T")

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


class KaggleError(DoodleError):
    """Kaggle answered with an error (the message quotes it)."""


class KaggleAuthError(KaggleError):
    """Kaggle rejected the credentials (401)."""


# What kaggle's competition_submit answers, instead of raising, when the upload failed.
UPLOAD_FAILED = "Could not submit to competition"


class _UploadFailed(Exception):
    """The client's upload of a submission file did not complete (the client reports this
    in its answer, not by raising); nothing was submitted, so trying again is safe."""


# -- waits: every one of them is multiplied by wait_scale() ----------------------------------
TRIES = 4  # a call Kaggle answers with 429 or 5xx: the first try and up to three retries
RETRY_WAIT_S = 2.0  # before the first retry, doubled before each next one: 2, 4, 8 s
MAX_RETRY_WAIT_S = 60.0  # Kaggle's Retry-After is followed up to this long
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
POLL_S = 10.0  # between two looks at a submission being scored
WAIT_SCALE_ENV = "DOODLE_KAGGLE_WAIT_SCALE"
RULES_URL = "https://www.kaggle.com/competitions/{}/rules"
TOKEN_URL = "https://www.kaggle.com/settings"


def wait_scale() -> float:
    """The factor on every wait here (retries, score polling, the scoring deadline): 1, or
    $DOODLE_KAGGLE_WAIT_SCALE (the tests set it near 0, so that nothing sleeps seconds)."""
    text = os.environ.get(WAIT_SCALE_ENV, "").strip()
    if not text:
        return 1.0
    try:
        scale = float(text)
    except ValueError:
        scale = -1.0
    if not scale >= 0:
        raise KaggleError(f"{WAIT_SCALE_ENV}={text!r} is not a number >= 0")
    return scale


def _status(error: BaseException) -> int | None:
    """The HTTP status of an error the client raised (requests' HTTPError), if any."""
    status = getattr(getattr(error, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def _words(error: BaseException) -> str:
    """Kaggle's words, on one line: its JSON message, or the status line (without the
    URL, which for a download is a long signed link)."""
    text = " ".join(str(error).split()) or type(error).__name__
    text = text.split(" for url: ")[0].rstrip(".")
    status = _status(error)
    if status is not None and not text.startswith(str(status)):
        reason = getattr(getattr(error, "response", None), "reason", "") or ""
        head = f"{status} {reason}".strip()
        text = head if text in ("", reason) else f"{head}: {text}"
    return text


def _network_error(error: BaseException) -> bool:
    """Kaggle could not be reached (a connection refused, reset or timed out)."""
    return type(error).__module__.split(".")[0] in ("requests", "urllib3") and isinstance(
        error, OSError
    )


def _where(credentials: str) -> str:
    """'the KAGGLE_API_TOKEN environment variable', or the credentials file's path."""
    return credentials if credentials.endswith((".json", "access_token")) else f"the {credentials}"


def _rejected(credentials: str) -> str:
    return (
        f"Kaggle rejected the credentials from {_where(credentials)} (401 Unauthorized): the token "
        f"or key is wrong, expired or revoked. Create a new API token at {TOKEN_URL} and "
        "save it as ~/.kaggle/access_token (chmod 600) or set KAGGLE_API_TOKEN"
    )


def _error(what: str, error: Exception, credentials: str, competition: str) -> KaggleError:
    """A one-line KaggleError for an answer that trying again will not change."""
    status = _status(error)
    if status == 401:
        return KaggleAuthError(_rejected(credentials))
    if status == 403:
        return KaggleError(
            f"Kaggle refused {what} ({_words(error)}). Accept the competition's rules at "
            f"{RULES_URL.format(competition)} with the account of the credentials from "
            f"{_where(credentials)}, then run this again"
        )
    if status == 404:
        return KaggleError(
            f"Kaggle does not know {what} ({_words(error)}): check the name, and "
            f"data.kaggle.competition in params.yaml ({competition!r})"
        )
    return KaggleError(f"Kaggle answered {what} with an error: {_words(error)}")


def _retry_wait(error: Exception, attempt: int) -> float:
    """Seconds before retry ``attempt`` (1, 2, ...): Kaggle's Retry-After when it sends
    one (in seconds), else RETRY_WAIT_S doubled per retry; at most MAX_RETRY_WAIT_S."""
    header = getattr(getattr(error, "response", None), "headers", None) or {}
    try:
        wait = float(header.get("Retry-After", ""))
    except (TypeError, ValueError):
        wait = RETRY_WAIT_S * 2 ** (attempt - 1)
    return min(max(wait, 0.0), MAX_RETRY_WAIT_S) * wait_scale()


def _authenticate(env: Mapping[str, str] | None, home: Path | None):
    """(authenticated KaggleApi, where its credentials were found); raises
    KaggleCredentialsError before importing kaggle when there are none."""
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

    def authenticate():
        # kaggle prints a page of help to stdout when it rejects credentials (at import, and
        # again in authenticate): the user gets one line from here instead.
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                from kaggle.api.kaggle_api_extended import KaggleApi  # lazy: authenticates
            except ImportError as e:
                raise KaggleError(
                    f"the `kaggle` package cannot be imported ({e}): make install"
                ) from e
            client = KaggleApi()
            client.authenticate()
        return client

    try:
        client = _retrying("the credentials check", authenticate, found, "")
    except SystemExit as e:  # kaggle exits instead of raising when it accepts no credentials
        raise KaggleAuthError(_rejected(found)) from e
    return client, found


def api(env: Mapping[str, str] | None = None, home: Path | None = None):
    """An authenticated ``KaggleApi``; raises KaggleCredentialsError before importing kaggle.

    ``env``/``home`` are only for checking; the kaggle package reads the real environment.
    """
    return _authenticate(env, home)[0]


def _retrying(
    what: str,
    call: Callable[[], T],
    credentials: str,
    competition: str,
    before_retry: Callable[[Exception], T | None] | None = None,
    explain: Callable[[Exception], KaggleError | None] | None = None,
) -> T:
    """``call()``, tried again (TRIES in all, with a wait) while Kaggle answers 429 or 5xx;
    any other error, or the last of those, becomes one KaggleError line (``explain(error)``
    may give that line first). ``before_retry(error)`` may return the result instead of
    trying again."""
    waited = 0.0
    for attempt in range(1, TRIES + 1):
        try:
            return call()
        except DoodleError:
            raise  # already one line of ours
        except Exception as e:  # whatever the client raises, the user sees Kaggle's words
            status = _status(e)
            if status in RETRY_STATUSES:
                said = f"Kaggle answered {what} with {_words(e)}"
                why = (
                    "Kaggle is rate-limiting" if status == 429 else "Kaggle is failing on its side"
                )
            elif status is None and _network_error(e):
                said = f"Kaggle did not answer {what} ({type(e).__name__})"
                why = "check the network"
            elif isinstance(e, _UploadFailed):
                said = f"Kaggle's storage did not take {what}"
                why = "nothing was submitted"
            else:
                said = explain(e) if explain is not None else None
                raise (said or _error(what, e, credentials, competition)) from e
            if attempt == TRIES:
                raise KaggleError(
                    f"{said}, {TRIES} times over {waited:.1f} s ({why}); nothing more was "
                    "tried: run this again later"
                ) from e
            if before_retry is not None:
                done = before_retry(e)
                if done is not None:
                    return done
            wait = _retry_wait(e, attempt)
            logger.warning("%s; retry %d of %d in %.1f s", said, attempt, TRIES - 1, wait)
            time.sleep(wait)
            waited += wait
    raise AssertionError("unreachable")


@dataclass
class Submission:
    """One submission as Kaggle lists it."""

    ref: int
    status: str  # pending | complete | error
    public_score: float | None
    private_score: float | None
    description: str
    date: datetime | None  # UTC
    error: str  # Kaggle's description of a scoring error ("" when none)


@dataclass
class Submitted:
    """What Kaggle said to an upload: its answer and the new submission's ref."""

    ref: int | None
    answer: str


def _score(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def _submission(s) -> Submission:
    status = getattr(s.status, "name", str(s.status)).lower()
    return Submission(
        ref=int(s.ref),
        status=status if status in ("pending", "complete", "error") else "pending",
        public_score=_score(s.public_score),
        private_score=_score(s.private_score),
        description=s.description or "",
        date=s.date,
        error=(s.error_description or "").strip(),
    )


class Kaggle:
    """One competition through an authenticated client (see :func:`connect`): every call
    is tried again on 429 and 5xx, and any error reaches the user as one line."""

    def __init__(self, competition: str, client, credentials: str) -> None:
        self.competition = competition
        self.client = client
        self.credentials = credentials  # where they were found, never their value

    def call(self, what: str, call: Callable[[], T], before_retry=None) -> T:
        return _retrying(what, call, self.credentials, self.competition, before_retry)

    def listed_sizes(self) -> dict[str, int]:
        """The competition's files: name -> bytes ({} when the list cannot be read: the
        download then goes ahead unchecked, as kaggle itself would)."""
        sizes: dict[str, int] = {}
        token = None
        try:
            while True:
                page = self.call(
                    "the list of files",
                    lambda t=token: self.client.competition_list_files(
                        self.competition, page_token=t, page_size=200
                    ),
                )
                sizes.update({f.name: int(f.total_bytes) for f in page.files})
                token = getattr(page, "next_page_token", None)
                if not token:
                    return sizes
        except KaggleError as e:  # listing is only for the disk check: never fatal
            logger.info("could not list %s's files (%s); no disk check", self.competition, e)
            return {}

    def download(self, name: str, folder: Path) -> None:
        """Download ``name`` into ``folder``; a partial file the client left there for the
        same remote file is resumed (HTTP Range), a complete one is kept."""
        self.call(
            f"the download of {name}",
            lambda: self.client.competition_download_file(
                self.competition, name, path=str(folder), force=False, quiet=False
            ),
        )

    def submit(self, path: Path, message: str) -> Submitted:
        """Upload a submission file with ``message`` as its description."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"submission file not found: {path}")
        started = datetime.now(timezone.utc).replace(tzinfo=None)

        def once():
            result = self.client.competition_submit(str(path), message, self.competition)
            if result.message == UPLOAD_FAILED:
                raise _UploadFailed(f"the upload of {path.name} did not complete")
            return Submitted(int(result.ref) or None, result.message)

        def created_anyway(error: Exception) -> Submitted | None:
            # A 5xx from the create call itself may come after Kaggle created the
            # submission: look before trying again, so that no daily slot is spent twice.
            url = getattr(getattr(getattr(error, "response", None), "request", None), "url", "")
            if not (str(url).endswith("/CreateSubmission") and (_status(error) or 0) >= 500):
                return None
            try:
                mine = [
                    s
                    for s in self.submissions()
                    if s.description == message and s.date and s.date >= started - _SKEW
                ]
            except KaggleError:
                return None
            if mine:
                logger.warning("Kaggle created submission %d despite the error", mine[0].ref)
                return Submitted(mine[0].ref, "created (Kaggle answered with an error)")
            return None

        result = self.call(f"the upload of {path.name}", once, before_retry=created_anyway)
        logger.info("submitted %s to %s", path, self.competition)
        return result

    def submissions(self) -> list[Submission]:
        """The newest submissions (Kaggle's first page, newest first)."""
        subs = self.call(
            "the list of submissions",
            lambda: self.client.competition_submissions(self.competition),
        )
        return [_submission(s) for s in subs or []]

    def wait_for_score(
        self,
        ref: int,
        timeout_s: float,
        progress: Callable[[Submission | None, float], None] | None = None,
    ) -> Submission | None:
        """Poll until submission ``ref`` is scored (or failed) or ``timeout_s`` passed;
        returns it as last seen (still pending on a timeout; None if never listed).
        ``progress(submission, seconds waited)`` is called before each wait."""
        scale = wait_scale()
        t0 = time.monotonic()
        deadline = t0 + timeout_s * scale
        while True:
            sub = next((s for s in self.submissions() if s.ref == ref), None)
            if sub is not None and sub.status != "pending":
                return sub
            left = deadline - time.monotonic()
            if left <= 0:
                return sub
            if progress is not None:
                progress(sub, time.monotonic() - t0)
            time.sleep(min(POLL_S * scale, left))


_SKEW = timedelta(minutes=10)  # clock difference tolerated between here and Kaggle


def connect(competition: str) -> Kaggle:
    """An authenticated :class:`Kaggle` for ``competition`` (credentials checked first)."""
    client, found = _authenticate(None, None)
    return Kaggle(competition, client, found)


MANIFEST = "complete.json"  # name -> file and bytes of each file downloaded completely
PARTIAL = ".partial"  # downloads under way (the client resumes them from there)
LOCKS = ".locks"  # <name>.lock: held by the process downloading <name>; complete.json.lock


def download_files(competition: str, names: tuple[str, ...], folder: Path) -> Path:
    """Download the competition files ``names`` (by name: only what is read) into ``folder``;
    returns ``folder``.

    A file is downloaded into ``folder/.partial`` and moved in with os.replace, then recorded
    with its size in ``complete.json``: an interrupted download never looks finished (the next
    run resumes it, from where it stopped when Kaggle's storage shows it is the same file), and
    a file already recorded with its size on disk is not downloaded again. Kaggle may serve a
    file zipped (``<name>.zip``); it is kept as served (read in place).

    Several processes may share ``folder`` (experiments run at once, clones pointing at one
    cache): each file is downloaded under its own lock (``.locks/<name>.lock``, an OS file lock,
    released when its holder exits or is killed), so one process downloads it while the others
    say what they wait for, then reuse it; a killed downloader's partial file is resumed by the
    next holder. ``complete.json`` is read, changed and written (temp file + rename) under its
    own lock, so no entry is lost.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    done = _read_manifest(folder)
    todo = [n for n in names if not _complete(folder, done.get(n))]
    for n in names:
        if n not in todo:
            logger.info("%s: already downloaded (%s)", n, folder / done[n]["file"])
    if not todo:
        return folder
    fetch = _Fetcher(competition, folder, todo)
    waiting = []
    for name in todo:  # first the files nobody else is downloading, then wait for the rest
        lock = _lock(folder, name)
        if _try_acquire(lock):
            with _held(lock):
                fetch(name)
        else:
            waiting.append((name, lock))
    for name, lock in waiting:
        logger.warning(
            "%s: another process is downloading it into %s; waiting for it to finish (lock %s)",
            name,
            folder,
            Path(lock.lock_file).relative_to(folder),
        )
        with lock:
            fetch(name)
    return folder


def _lock(folder: Path, name: str):
    """The OS lock (flock: the kernel releases it when its process dies) of ``name``."""
    from filelock import FileLock  # installed with DVC

    (folder / LOCKS).mkdir(exist_ok=True)
    return FileLock(folder / LOCKS / f"{name}.lock")


def _try_acquire(lock) -> bool:
    from filelock import Timeout

    try:
        lock.acquire(timeout=0)
    except Timeout:
        return False
    return True


@contextlib.contextmanager
def _held(lock):
    """Release an acquired lock at the end of the block."""
    try:
        yield lock
    finally:
        lock.release()


class _Fetcher:
    """Downloads one file at a time, its lock held by the caller; connects to Kaggle (and
    checks the disk) only when a file must really be downloaded."""

    def __init__(self, competition: str, folder: Path, todo: list[str]) -> None:
        self.competition, self.folder, self.todo = competition, folder, todo
        self.kaggle: Kaggle | None = None

    def __call__(self, name: str) -> None:
        entry = _read_manifest(self.folder).get(name)
        if _complete(self.folder, entry):  # another process finished it while we waited
            logger.info("%s: downloaded by another process (%s)", name, self.folder / entry["file"])
            return
        if self.kaggle is None:
            self.kaggle = connect(self.competition)
            self._check_disk()
        _download_one(self.kaggle, name, self.folder, self.folder / PARTIAL)

    def _check_disk(self) -> None:
        """Predict a full disk before writing: the listed sizes of the files still missing."""
        assert self.kaggle is not None
        sizes = self.kaggle.listed_sizes()
        done = _read_manifest(self.folder)
        left = [n for n in self.todo if not _complete(self.folder, done.get(n))]
        if all(n in sizes for n in left):
            partial = self.folder / PARTIAL
            need = sum(sizes[n] for n in left) - sum(_partial_bytes(partial, n) for n in left)
            check_disk_space(self.folder, need, f"downloading {', '.join(left)}")


def _download_one(kaggle: Kaggle, name: str, folder: Path, partial: Path) -> None:
    """Download ``name`` into ``partial`` (the client makes the folder when it writes), move it
    into ``folder``, record it (its lock held)."""
    try:
        kaggle.download(name, partial)
    except KeyboardInterrupt:
        logger.warning(
            "%s: interrupted with %s downloaded; the next run resumes it (%s)",
            name,
            human_bytes(_partial_bytes(partial, name)),
            partial,
        )
        raise
    there = list(partial.iterdir()) if partial.is_dir() else []
    got = [p for p in there if p.name in (name, name + ".zip")]
    if len(got) != 1:
        found = sorted(p.name for p in there)
        raise KaggleError(f"expected {name} from Kaggle in {partial}, found {found}")
    os.replace(got[0], folder / got[0].name)
    (partial / f"{got[0].name}.kaggle-partial").unlink(missing_ok=True)  # the client's marker
    entry = {"file": got[0].name, "bytes": (folder / got[0].name).stat().st_size}
    _record(folder, name, entry)
    logger.info("downloaded %s (%d bytes)", folder / got[0].name, entry["bytes"])


def _read_manifest(folder: Path) -> dict:
    """``complete.json`` (written whole by rename, so never seen half-written)."""
    path = folder / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}


def _record(folder: Path, name: str, entry: dict) -> None:
    """Add ``name`` to ``complete.json``: read, change and write under the manifest's lock,
    so that two processes recording different files at once both keep their entry."""
    with _lock(folder, MANIFEST):
        done = _read_manifest(folder)
        done[name] = entry
        write_json(folder / MANIFEST, done)  # temp file + rename


def _partial_bytes(partial: Path, name: str) -> int:
    """Bytes of ``name`` already in the partial folder (as served: plain or zipped)."""
    return sum(p.stat().st_size for p in (partial / name, partial / f"{name}.zip") if p.is_file())


def _complete(folder: Path, entry: dict | None) -> bool:
    if not entry:
        return False
    f = folder / entry["file"]
    return f.is_file() and f.stat().st_size == entry["bytes"]


def submit(path: Path, message: str, competition: str) -> Submitted:
    """Upload a submission file to ``competition`` (see :meth:`Kaggle.submit`)."""
    return connect(competition).submit(path, message)
