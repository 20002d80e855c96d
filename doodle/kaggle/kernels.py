"""Kaggle's own GPUs from a laptop: the pipeline pushed as a private Kaggle script kernel,
followed, and its output brought back (``make kaggle-run``, ``kaggle-status``,
``kaggle-pull``; docs/kaggle.md).

What a kernel carries (:func:`pack`): the project's code (``doodle/`` and ``stages/``
Python files, ``dvc.yaml``, ``pyproject.toml``, ``.dvcignore``, ``.gitignore``,
``data/weights/README.md``) and the run's ``params.yaml`` (this repo's, with the preset's
and the command's ``-S`` values applied as DVC applies them, and the data read where Kaggle
mounts the competition), as a base64 tar.gz inside one script whose code is
``doodle/kaggle/kernel_main.py``. Never data, models, caches, git or DVC internals, nor
credentials: every packed file is checked against the Kaggle credentials this machine holds,
and a pack holding one is refused.

The kernel's id is ``<user>/<slug>``: ``kernel.slug`` of params.yaml, else ``doodle-`` and
the first 8 hex digits of the repo's first commit, the same at every push and in every
clone, so pushing again makes a new version of the same kernel. Each push is recorded in
``data/kaggle/kernels.json`` (not in git); ``make kaggle-status`` and ``make kaggle-pull``
follow the last one. Pulled output goes to ``data/kaggle/runs/kaggle-<slug>-v<N>/`` the way
competition files are downloaded (a file at a time into ``.partial/``, resumed after an
interruption, recorded in ``complete.json`` once whole), and ``doodle.kaggle.experiment``
records it as a DVC experiment of this repo.

Every call goes through ``doodle.kaggle.api``'s retries, and every error is one line that
names the fix.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import io
import json
import logging
import os
import pprint
import re
import subprocess
import tarfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from doodle.errors import ConfigError, DoodleError
from doodle.fileio import human_bytes, write_json
from doodle.kaggle import api as kaggle_api
from doodle.kaggle.api import KaggleAuthError, KaggleError

logger = logging.getLogger(__name__)

ROOT = Path("data/kaggle")  # every file of a kernel's on this side; not in git
PUSH_DIR = ROOT / "push"  # the folder last pushed: kernel-metadata.json and the script
RECORD = ROOT / "kernels.json"  # every push: kernel, version, run id, base commit, ...
RUNS = ROOT / "runs"  # pulled output, one folder per run
MOUNT = "/kaggle/input"  # where Kaggle mounts a competition's data: /kaggle/input/<name>
KERNEL_URL = "https://www.kaggle.com/code/{}"
NO_ACCELERATOR = "none"

# The code a kernel carries: Python files of these folders, and these files.
CODE_DIRS = ("doodle", "stages")
CODE_FILES = ("dvc.yaml", "pyproject.toml", ".dvcignore", ".gitignore", "data/weights/README.md")
MAX_FILE = 512 << 10  # larger "code" is data: refused
MAX_PACK = 4 << 20
# Never installed in the kernel: the notebook's backend is built for its CUDA, and the
# kaggle client is not used there (the data is mounted).
NOT_INSTALLED = ("tensorflow", "keras", "jax", "kaggle", "kagglesdk")
MODULES = {"pyyaml": "yaml", "opencv-python-headless": "cv2", "scikit-learn": "sklearn"}
STATES = {
    "QUEUED": "queued",
    "NEW_SCRIPT": "queued",
    "RUNNING": "running",
    "COMPLETE": "complete",
    "ERROR": "error",
    "CANCEL_REQUESTED": "cancelled",
    "CANCEL_ACKNOWLEDGED": "cancelled",
}
OUTPUT_PAGE = 100


# -- what a kernel carries ---------------------------------------------------------------------
def git(*args: str, repo: Path = Path("."), check: bool = True) -> str:
    p = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise DoodleError(f"git {' '.join(args)} failed in {repo}: {p.stderr.strip()}")
    return p.stdout.strip()


def base_commit(repo: Path = Path(".")) -> str:
    """HEAD's full hash: the commit a run is recorded against."""
    head = git("rev-parse", "--verify", "-q", "HEAD", repo=repo, check=False)
    if not head:
        raise DoodleError(
            "this repo has no commit yet: commit the code first (git commit), so that the "
            "kernel's run can be recorded as an experiment of it"
        )
    return head


def default_slug(repo: Path = Path(".")) -> str:
    """``doodle-`` and the first 8 hex digits of the repo's first commit: the same for
    every push and in every (full) clone."""
    roots = sorted(git("rev-list", "--max-parents=0", "HEAD", repo=repo).split())
    return f"doodle-{roots[0][:8]}"


def code_files(repo: Path = Path(".")) -> list[str]:
    """The files a kernel carries (tracked or new and not ignored; as they are on disk)."""
    listed = git(
        "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--",
        *CODE_DIRS, *CODE_FILES, repo=repo,
    ).split("\0")  # fmt: skip
    names = sorted(
        {n for n in listed if n and (repo / n).is_file() and (n in CODE_FILES or n.endswith(".py"))}
    )
    missing = [f for f in ("dvc.yaml", "pyproject.toml") if f not in names]
    if missing:
        raise DoodleError(f"{', '.join(missing)} not found in {repo}: run from the repo root")
    return names


def kernel_params(repo: Path, preset: str | None, overrides: list[str]) -> tuple[str, object]:
    """The run's params.yaml (text, comments kept) and its parsed form: this repo's, the
    preset's then ``overrides``' ``-S`` values applied, the data read in place where Kaggle
    mounts the competition, one log line an epoch."""
    import yaml
    from ruamel.yaml import YAML

    from doodle.config import WEIGHTS_DIR, parse_params
    from doodle.presets import apply_args, read_args

    rt = YAML()
    rt.width = 4096  # long values stay on their line
    params = rt.load((repo / "params.yaml").read_text())
    args = read_args(repo / "presets" / f"{preset}.args") if preset else []
    try:
        apply_args(params, args + list(overrides))
    except (KeyError, ValueError) as e:
        raise ConfigError(str(e).strip("\"'")) from None
    competition = params["data"]["kaggle"]["competition"]
    params["data"]["source"] = "local"
    params["data"]["local"]["path"] = f"{MOUNT}/{competition}"
    if params["runtime"]["verbose"] == 1:  # a progress bar per step floods a kernel's log
        params["runtime"]["verbose"] = 2
    buf = io.StringIO()
    rt.dump(params, buf)
    text = buf.getvalue()
    parsed = parse_params(yaml.safe_load(text), "the kernel's params.yaml")
    for name in parsed.member_names:
        weights = parsed.member(name).weights
        if weights and weights.startswith(WEIGHTS_DIR):
            raise ConfigError(
                f"member {name}: weights {weights} is a local file, which a kernel does not "
                "carry: use weights imagenet (downloaded there) or null"
            )
    return text, parsed


def requirements(pyproject: Path) -> list[list[str]]:
    """``[module, pip requirement]`` for every dependency of pyproject.toml the kernel may
    install when the notebook image lacks it (NOT_INSTALLED are never installed)."""
    import tomllib

    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    out = []
    for req in deps:
        dist = re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].strip().lower()
        if dist not in NOT_INSTALLED:
            out.append([MODULES.get(dist, dist.replace("-", "_")), req.split(";")[0].strip()])
    return out


def secret_values(env: dict[str, str] | None = None, home: Path | None = None) -> list[str]:
    """The Kaggle secrets this machine holds (values only, to look for; never shown)."""
    env = dict(os.environ) if env is None else env
    home = Path.home() if home is None else Path(home)
    found = [env.get("KAGGLE_KEY", ""), env.get("KAGGLE_API_TOKEN", "")]
    token = found[-1].strip()
    if token and len(token) < 4096 and Path(token).expanduser().is_file():
        found.append(Path(token).expanduser().read_text(errors="replace"))
    files = [*kaggle_api._token_files(env, home)]
    for f in files:
        if f.is_file():
            found.append(f.read_text(errors="replace"))
    for f in (kaggle_api.config_dir(env, home) / "kaggle.json", home / ".kaggle/credentials.json"):
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(f.read_text())
            found += (
                [v for v in data.values() if isinstance(v, str)] if isinstance(data, dict) else []
            )
    return sorted({v.strip() for v in found if len(v.strip()) >= 8})


@dataclass
class Pack:
    """A kernel's code and params as files, the archive of them, and the run's settings."""

    files: dict[str, bytes]  # path -> bytes (params.yaml is the run's)
    archive: bytes  # tar.gz of files
    run: dict  # RUN of the script (kernel_main.main's first argument)

    @property
    def size(self) -> int:
        return sum(len(b) for b in self.files.values())


def archive(files: dict[str, bytes]) -> bytes:
    """A reproducible tar.gz of ``files`` (sorted, no times, no owners)."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(files):
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(files[name]), 0o644, 0
                tar.addfile(info, io.BytesIO(files[name]))
    return buf.getvalue()


def check_pack(files: dict[str, bytes], secrets: list[str], credentials: str) -> None:
    """Refuse a pack holding a credential, or anything as large as data."""
    for name, data in files.items():
        for secret in secrets:
            if secret.encode() in data:
                raise DoodleError(
                    f"{name} contains your Kaggle secret (the one from {credentials}): take it "
                    "out of the code; nothing was pushed"
                )
        if len(data) > MAX_FILE:
            raise DoodleError(
                f"{name} is {human_bytes(len(data))}, too large for code (at most "
                f"{human_bytes(MAX_FILE)} a file): a kernel carries no data; nothing was pushed"
            )
    total = sum(len(b) for b in files.values())
    if total > MAX_PACK:
        raise DoodleError(
            f"the code comes to {human_bytes(total)} (at most {human_bytes(MAX_PACK)}): a "
            "kernel carries no data; nothing was pushed"
        )


def pack(
    repo: Path, params_text: str, kernel: str, competition: str, settings, secrets: list[str],
    credentials: str,
) -> Pack:  # fmt: skip
    """The kernel's code and params, checked (see :func:`check_pack`)."""
    files = {name: (repo / name).read_bytes() for name in code_files(repo)}
    files["params.yaml"] = params_text.encode()
    check_pack(files, secrets, credentials)
    run = {
        "run_id": uuid.uuid4().hex[:12],
        "kernel": kernel,
        "base": base_commit(repo),
        "competition": competition,
        "time_limit_s": round(settings.time_limit_h * 3600),
        "internet": settings.internet,
        "requirements": requirements(repo / "pyproject.toml"),
        "packed": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return Pack(files, archive(files), run)


def script(p: Pack) -> str:
    """The kernel's one file: kernel_main.py, then RUN and PAYLOAD, then the call."""
    source = (Path(__file__).parent / "kernel_main.py").read_text()
    b64 = base64.b64encode(p.archive).decode()
    lines = "\n".join(b64[i : i + 100] for i in range(0, len(b64), 100))
    header = (
        "# The doodle pipeline as a Kaggle kernel, written by `make kaggle-run` (docs/kaggle.md).\n"
        f"# PAYLOAD: the project's code and params.yaml ({len(p.files)} files, "
        f"{human_bytes(p.size)}), a base64 tar.gz.\n"
    )
    return (
        f"{header}{source}\n\nRUN = {pprint.pformat(p.run, width=96)}\n"
        f'PAYLOAD = """\n{lines}\n"""\n\nif __name__ == "__main__":\n'
        "    sys.exit(main(RUN, PAYLOAD))\n"
    )


def metadata(kernel: str, competition: str, settings) -> dict:
    """kernel-metadata.json: a private script kernel with the competition's data."""
    accelerator = settings.accelerator
    slug = kernel.split("/")[1]
    meta = {
        "id": kernel,
        "title": slug.replace("-", " "),  # Kaggle's slug of the title is the id's
        "code_file": f"{slug}.py",
        "language": "python",
        "kernel_type": "script",
        "is_private": True,
        "enable_gpu": accelerator.startswith("Nvidia"),
        "enable_tpu": accelerator.startswith("Tpu"),
        "enable_internet": settings.internet,
        "dataset_sources": [],
        "competition_sources": [competition],
        "kernel_sources": [],
        "model_sources": [],
    }
    if accelerator != NO_ACCELERATOR:
        meta["machine_shape"] = accelerator
    return meta


def write_kernel(folder: Path, meta: dict, text: str) -> Path:
    """The folder ``kaggle kernels push`` reads (emptied first)."""
    folder = Path(folder)
    if folder.exists():
        for f in folder.iterdir():
            f.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / meta["code_file"]).write_text(text)
    write_json(folder / "kernel-metadata.json", meta)
    return folder


@dataclass
class Prepared:
    """A kernel ready to push: its id, what it carries, its metadata, its folder."""

    kernel: str
    pack: Pack
    meta: dict
    folder: Path
    settings: object  # params.yaml's kernel section, as the run has it

    @property
    def script(self) -> Path:
        return self.folder / self.meta["code_file"]


def prepare(
    repo: Path, preset: str | None, overrides: list[str], user: str, credentials: str,
    folder: Path = PUSH_DIR,
) -> Prepared:  # fmt: skip
    """The kernel's folder (``folder``) for this repo's code with the preset's and the
    ``overrides``' (``key=value``) params, owned by ``user``, checked for secrets."""
    text, params = kernel_params(repo, preset, [x for kv in overrides for x in ("-S", kv)])
    settings = params.kernel
    competition = params.data.kaggle.competition
    kernel = f"{user}/{settings.slug or default_slug(repo)}"
    p = pack(repo, text, kernel, competition, settings, secret_values(), credentials)
    meta = metadata(kernel, competition, settings)
    return Prepared(kernel, p, meta, write_kernel(folder, meta, script(p)), settings)


# -- Kaggle's answers as one line ----------------------------------------------------------------
def _words_of(error: Exception) -> str:
    return kaggle_api._words(error)


def _explainer(kernel: str, client, credentials: str, competition: str):
    """``explain`` for api._retrying: a kernel's 401/403/404 as one line naming the fix
    (the client turns a 401/403 on a kernel into a ValueError; the HTTP error is its context)."""

    def explain(error: Exception) -> KaggleError | None:
        cause = error
        if isinstance(error, ValueError) and str(error).startswith("Cannot access kernel"):
            cause = error.__context__ or error
        status = kaggle_api._status(cause)
        if status == 401:
            return KaggleAuthError(kaggle_api._rejected(credentials))
        user = client.get_config_value("username") or "?"
        if status == 403:
            return KaggleError(
                f"Kaggle refused kernel {kernel} ({_words_of(cause)}): it is not a kernel of "
                f"{user}, the account of the credentials from {kaggle_api._where(credentials)}; "
                "pick a slug of your own with -S kernel.slug=NAME, or use that account's token"
            )
        if status == 404:
            return KaggleError(
                f"Kaggle does not know kernel {kernel} ({_words_of(cause)}): was it pushed with "
                f"another account than {user}? make kaggle-run pushes it (again)"
            )
        if cause is not error:
            return KaggleError(f"Kaggle refused kernel {kernel}: {' '.join(str(error).split())}")
        return None

    return explain


def push_error(kernel: str, answer: str, user: str, competition: str) -> KaggleError:
    """Kaggle's ``error`` answer to a push as one line naming the fix."""
    low = answer.lower()
    if "quota" in low:
        return KaggleError(
            f"Kaggle did not run kernel {kernel}: {answer}. Your weekly accelerator quota is "
            "used up: wait for it to refill (kaggle.com/settings shows when), or push without "
            "one (-S kernel.accelerator=none; far slower)"
        )
    if "session" in low and ("maximum" in low or "limit" in low):
        return KaggleError(
            f"Kaggle did not run kernel {kernel}: {answer}. Too many of your sessions are "
            "running: wait for one to end (make kaggle-status), then push again"
        )
    return KaggleError(
        f"Kaggle did not save kernel {kernel}: {answer}. If the slug is another kernel's "
        f"(another account's, or one of {user}'s made by hand), pick another with "
        "-S kernel.slug=NAME"
    )


def rules_error(kernel: str, competition: str, user: str, version: int | None) -> KaggleError:
    return KaggleError(
        f"Kaggle pushed kernel {kernel} (version {version}) without the competition's data "
        f"({competition} is not a valid source for {user}): accept the rules at "
        f"{kaggle_api.RULES_URL.format(competition)} with that account, then make kaggle-run "
        "again (this version stops at once: its data is not there)"
    )


# -- the calls ----------------------------------------------------------------------------------
@dataclass
class Pushed:
    kernel: str
    version: int | None
    url: str


def connect():
    """(authenticated client, where its credentials were found, the account's user name)."""
    client, found = kaggle_api._authenticate(None, None)
    user = client.get_config_value("username")
    if not user:
        raise KaggleError(
            f"Kaggle's client found no user name for the credentials from "
            f"{kaggle_api._where(found)}: set KAGGLE_USERNAME, or use an API token"
        )
    return client, found, user


def check_quota(client, credentials: str, accelerator: str) -> str | None:
    """Refuse (one line) a GPU/TPU push when the week's quota of it is used up; the
    quota as text, or None when Kaggle would not say (then the push goes ahead)."""
    if accelerator == NO_ACCELERATOR:
        return None
    try:
        stats = kaggle_api._retrying("the accelerator quota", client.quota_view, credentials, "")
    except KaggleError as e:
        logger.info("could not read the accelerator quota (%s); pushing anyway", e)
        return None
    quota = stats.tpu_quota if accelerator.startswith("Tpu") else stats.gpu_quota
    if quota is None or quota.total_time_allowed is None or quota.time_used is None:
        return None
    used = quota.time_used.total_seconds() / 3600
    total = quota.total_time_allowed.total_seconds() / 3600
    refill = stats.quota_refresh_time
    when = f"; it refills {refill:%Y-%m-%d %H:%M} UTC" if refill else ""
    kind = "TPU" if accelerator.startswith("Tpu") else "GPU"
    if used >= total:
        raise KaggleError(
            f"your weekly {kind} quota is used up ({used:.1f} of {total:.1f} h{when}): wait "
            "for it, or push without an accelerator (-S kernel.accelerator=none; far slower)"
        )
    return f"{kind} quota {total - used:.1f} of {total:.1f} h left this week"


def push(client, credentials: str, user: str, folder: Path, meta: dict, limit_s: int) -> Pushed:
    """``kaggle kernels push`` of ``folder``; a 429 is tried again, a 5xx is not (Kaggle may
    have made the version: running it twice would spend the quota twice)."""
    kernel = meta["id"]
    accelerator = meta.get("machine_shape")
    competition = meta["competition_sources"][0]

    def once():
        try:
            return client.kernels_push(str(folder), timeout=str(limit_s), acc=accelerator)
        except Exception as e:
            status = kaggle_api._status(e)
            if status is not None and status >= 500:
                raise KaggleError(
                    f"Kaggle answered the push of {kernel} with {_words_of(e)}; it may have "
                    "made the version anyway: make kaggle-status tells, else push again"
                ) from e
            raise

    explain = _explainer(kernel, client, credentials, competition)
    answer = kaggle_api._retrying(
        f"the push of {kernel}", once, credentials, competition, explain=explain
    )
    if answer is None or answer.error:
        raise push_error(
            kernel, (answer.error if answer else "no answer").strip(), user, competition
        )
    version = answer.version_number
    if competition in (answer.invalid_competition_sources or []):
        raise rules_error(kernel, competition, user, version)
    return Pushed(kernel, version, answer.url or KERNEL_URL.format(kernel))


def state(client, credentials: str, ref: str) -> tuple[str, str]:
    """(queued | running | complete | error | cancelled, Kaggle's failure message) of
    ``ref`` (owner/slug/version)."""
    explain = _explainer(ref, client, credentials, "")
    answer = kaggle_api._retrying(
        f"the status of {ref}", lambda: client.kernels_status(ref), credentials, "", explain=explain
    )
    name = getattr(answer.status, "name", str(answer.status))
    return STATES.get(name, name.lower()), (answer.failure_message or "").strip()


def log_text(raw: str) -> str:
    """A kernel's log as plain text: Kaggle keeps it as a JSON list of
    ``{stream_name, time, data}``; anything else is taken as text."""
    try:
        events = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(events, list):
        return raw
    return "".join(str(e.get("data", "")) for e in events if isinstance(e, dict))


def log_tail(text: str, n: int = 15) -> list[str]:
    """The last ``n`` non-empty lines (a progress bar's last state for each)."""
    lines = [ln.split("\r")[-1].rstrip() for ln in text.splitlines()]
    return [ln for ln in lines if ln.strip()][-n:]


def kernel_log(client, credentials: str, ref: str) -> str:
    explain = _explainer(ref, client, credentials, "")
    raw = kaggle_api._retrying(
        f"the log of {ref}", lambda: client.kernels_logs(ref), credentials, "", explain=explain
    )
    return log_text(raw or "")


def failure_line(kernel: str, message: str, log: str) -> str:
    """What went wrong and the fix, in one line: the kernel's own error line when it wrote
    one, else Kaggle's failure message."""
    own = [ln for ln in log.splitlines() if ln.startswith("doodle-kernel: error: ")]
    if own:
        return own[-1].removeprefix("doodle-kernel: error: ")
    low = message.lower()
    if "timeout" in low or "timed out" in low or "time limit" in low:
        return (
            f"Kaggle stopped the run at its time limit ({message}): lower the budget "
            "(train.epochs x train.steps_per_epoch) or raise kernel.time_limit_h (cap 12 h)"
        )
    reason = message or "no message from Kaggle"
    return f"the run failed ({reason}): its log's last lines are above; fix it and make kaggle-run"


# -- the output ----------------------------------------------------------------------------------
def output_files(client, credentials: str, ref: str) -> tuple[list, str]:
    """Every file of the run's output (``file_name``, ``url``) and the log, all pages."""
    from kagglesdk.kernels.types.kernels_api_service import ApiListKernelSessionOutputRequest

    owner, slug, *version = ref.split("/")
    explain = _explainer(ref, client, credentials, "")
    files, log, token = [], "", None
    while True:

        def page(t=token):
            request = ApiListKernelSessionOutputRequest()
            request.user_name, request.kernel_slug = owner, slug
            if version:
                request.version_label = f"v{version[0]}"
            request.page_size = OUTPUT_PAGE
            if t:
                request.page_token = t
            with client.build_kaggle_client() as kaggle:
                return kaggle.kernels.kernels_api_client.list_kernel_session_output(request)

        answer = kaggle_api._retrying(
            f"the output list of {ref}", page, credentials, "", explain=explain
        )
        files += list(answer.files or [])
        log = log or (answer.log or "")
        token = answer.next_page_token
        if not token:
            return files, log


MANIFEST = "complete.json"
PARTIAL = ".partial"


def _inside(folder: Path, name: str) -> Path:
    path = (folder / name).resolve()
    if not name or os.path.commonpath([folder.resolve(), path]) != str(folder.resolve()):
        raise KaggleError(f"the run's output names a file outside its folder: {name!r}")
    return path


def download_output(client, credentials: str, ref: str, folder: Path) -> dict[str, int]:
    """Download the run's output into ``folder``, a file at a time into ``.partial/`` and
    moved in when whole (an interrupted one is resumed by the next call with HTTP Range when
    the storage shows the same file; a file already whole is not asked for again); the log
    is ``kernel.log``. Returns name -> bytes."""
    import requests

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    done_path = folder / MANIFEST
    done = json.loads(done_path.read_text()) if done_path.is_file() else {}
    files, log = output_files(client, credentials, ref)
    partial = folder / PARTIAL
    todo = [
        f
        for f in files
        if not (
            (folder / f.file_name).is_file()
            and (folder / f.file_name).stat().st_size == done.get(f.file_name)
        )
    ]
    logger.info("%s: %d output files, %d to download", ref, len(files), len(todo))
    for f in todo:
        target = _inside(folder, f.file_name)
        temp = _inside(partial, f.file_name)

        def fetch(f=f, temp=temp):
            answer = requests.get(f.url, stream=True, timeout=300)
            answer.raise_for_status()
            client.download_file(answer, str(temp), None, quiet=True, resume=True)

        try:
            kaggle_api._retrying(f"the download of {f.file_name}", fetch, credentials, "")
        except KeyboardInterrupt:
            size = temp.stat().st_size if temp.is_file() else 0
            logger.warning(
                "%s: interrupted with %s downloaded; make kaggle-pull resumes it (%s)",
                f.file_name, human_bytes(size), partial,
            )  # fmt: skip
            raise
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, target)
        Path(f"{temp}.kaggle-partial").unlink(missing_ok=True)
        done[f.file_name] = target.stat().st_size
        write_json(done_path, done)
    if partial.exists():
        for d in sorted(partial.rglob("*"), reverse=True):
            if d.is_dir():
                with contextlib.suppress(OSError):
                    d.rmdir()
        with contextlib.suppress(OSError):
            partial.rmdir()
    (folder / "kernel.log").write_text(log_text(log))
    return {f.file_name: done[f.file_name] for f in files}


# -- the record of pushes ----------------------------------------------------------------------
def read_record(path: Path = RECORD) -> list[dict]:
    return json.loads(path.read_text())["pushes"] if path.is_file() else []


def add_record(entry: dict, path: Path = RECORD) -> None:
    pushes = read_record(path)
    write_json(path, {"pushes": [*pushes, entry]})


def find_push(kernel: str | None, path: Path = RECORD) -> dict:
    """The push to follow: ``kernel`` (``owner/slug/version``, or ``owner/slug`` for its
    last push recorded here), else the last push from this repo."""
    pushes = read_record(path)
    if kernel:
        parts = kernel.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise DoodleError(f"--kernel {kernel!r}: expected owner/slug or owner/slug/version")
        mine = [p for p in pushes if p["kernel"] == "/".join(parts[:2])]
        if len(parts) == 3:
            mine = [p for p in mine if str(p["version"]) == parts[2].lstrip("v")]
            if not mine:  # pushed from elsewhere: followed without this repo's record
                return {"kernel": "/".join(parts[:2]), "version": int(parts[2].lstrip("v"))}
        if mine:
            return mine[-1]
        raise DoodleError(
            f"no push of {kernel} recorded in {path}: name its version (owner/slug/N)"
        )
    if not pushes:
        raise DoodleError(f"no kernel pushed from this repo yet ({path}): make kaggle-run")
    return pushes[-1]


def run_name(entry: dict) -> str:
    """The experiment's name: ``kaggle-<slug>-v<version>`` (``-latest`` when Kaggle did
    not say which version a push made)."""
    version = f"v{entry['version']}" if entry.get("version") else "latest"
    return f"kaggle-{entry['kernel'].split('/')[1]}-{version}"


def ref_of(entry: dict) -> str:
    """``owner/slug/version``, or ``owner/slug`` (its latest version) without a version."""
    return f"{entry['kernel']}/{entry['version']}" if entry.get("version") else entry["kernel"]


def run_folder(name: str) -> Path:
    return RUNS / name
