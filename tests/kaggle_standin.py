"""A stand-in for Kaggle's API on 127.0.0.1, for the installed ``kaggle`` client to talk to.

It speaks what the calls of :mod:`doodle.kaggle.api` send, as read from the client's source
(kaggle 2.2 on kagglesdk): JSON ``POST /api/v1/<service>/<method>`` calls, a 302 from
``DownloadDataFile`` to a storage URL that serves the file (``Range`` and ``ETag`` as cloud
storage does), a ``PUT`` of the submission to the URL ``StartSubmissionUpload`` hands out.

How the client finds it: ``KAGGLE_API_ENVIRONMENT=LOCALHOST`` points kagglesdk at
``http://localhost`` (``kagglesdk/kaggle_env.py``), and the ``http_proxy`` variables route
every request to this server's port, so no fixed port is needed and nothing else on the
machine is reached. ``https_proxy`` points here too: a request meant for the real Kaggle
(``CONNECT api.kaggle.com:443``) is refused and recorded in :attr:`KaggleStandIn.unexpected`.

Errors on demand: :meth:`KaggleStandIn.fail` queues answers (401, 403, 429, 500...) for a
call; ``rules_accepted = False`` answers 403 as Kaggle does before the rules are accepted;
credentials other than the stand-in's get 401. Slow storage on demand: ``throttle_bps`` serves
file bytes at that rate (so that processes started at once overlap, or a kill lands mid-file).
:meth:`KaggleStandIn.download_requests` counts, per file, the download calls and the storage
requests that reached the server (from any number of processes).

Kernels (``kaggle kernels push / status / output``, as the client calls them): ``SaveKernel``
keeps each push as a :class:`KernelVersion` of ``<owner>/<slug>``; ``GetKernelSessionStatus``
answers from the version's script of statuses (queued, running, complete by default) or, with
:attr:`KaggleStandIn.kernel_runner` set, runs the pushed script like Kaggle (:class:`LikeKaggle`)
when it is first seen running; ``ListKernelSessionOutput`` lists the version's output files
(paged) with URLs served like storage (Range, ETag, interruptions) and its log;
``GetAcceleratorQuotaStatistics`` reports :attr:`gpu_quota_used_s`. The stand-in's error words
(a slug of another account, a push ``error`` answer) are stand-ins for Kaggle's, not quotes.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import socket
import sys
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

# Fake credentials: they mean something to this server only.
TOKEN = "standin-token-0123456789"
USERNAME = "standin-user"
KEY = "standin-key-abcdef"

HOST = "localhost"  # what kagglesdk's LOCALHOST environment calls the API host
LAST_MODIFIED = "Wed, 21 Nov 2018 10:00:00 GMT"
SUBMITTED = "Successfully submitted to Quick, Draw! Doodle Recognition Challenge"
COMPETITION_SERVICE = "competitions.CompetitionApiService"
KERNEL_METHODS = (
    "SaveKernel",
    "GetKernelSessionStatus",
    "ListKernelSessionOutput",
    "GetAcceleratorQuotaStatistics",
)
# What Kaggle sets in a kernel's environment (the tokens here are fake, to be looked for in
# the kernel's output: none may end up there).
KERNEL_ENV = {
    "KAGGLE_KERNEL_RUN_TYPE": "Batch",
    "KAGGLE_URL_BASE": "https://www.kaggle.com",
    "KAGGLE_DOCKER_IMAGE": "gcr.io/kaggle-gpu-images/python",
    "KAGGLE_DATA_PROXY_TOKEN": "standin-data-proxy-token-9876",
    "KAGGLE_USER_SECRETS_TOKEN": "standin-user-secrets-token-5432",
    "KAGGLE_GCP_ZONE": "us-central1-a",
}


@dataclass
class Call:
    """One request the stand-in answered."""

    kind: str  # "rpc" | "storage" | "upload"
    name: str  # the RPC method (ListDataFiles, ...) or the file name
    status: int
    range: str | None = None  # the Range header of a storage request
    body: dict = field(default_factory=dict)


@dataclass
class _Failure:
    status: int
    retry_after: str | None


@dataclass
class KernelVersion:
    """One push of a kernel, as the stand-in keeps it."""

    owner: str
    slug: str
    number: int
    request: dict  # SaveKernel's body: the script is request["text"]
    statuses: list[str]  # the answers to the next looks at its status (the last one stays)
    failure: str = ""  # failureMessage once it failed
    files: dict[str, bytes] = field(default_factory=dict)  # its output, by path
    log: str = ""  # as Kaggle keeps it: a JSON list of {stream_name, time, data}
    looks: int = 0
    thread: threading.Thread | None = None

    @property
    def kernel(self) -> str:
        return f"{self.owner}/{self.slug}"

    @property
    def script(self) -> str:
        return self.request.get("text", "")


def zipped(name: str, data: bytes) -> bytes:
    """``data`` as Kaggle serves a large file: a zip holding it under ``name``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name, data)
    return buf.getvalue()


class KaggleStandIn:
    """The server and its state. ``files`` maps a competition file name to the bytes served
    for it; names in ``zip_served`` are served zipped as ``<name>.zip``, as Kaggle serves
    its large files."""

    def __init__(
        self,
        competition: str,
        files: dict[str, bytes],
        zip_served: tuple[str, ...] = (),
    ) -> None:
        self.competition = competition
        self.served = {
            name: ((name + ".zip", zipped(name, data)) if name in zip_served else (name, data))
            for name, data in files.items()
        }
        self.rules_accepted = True
        self.introspect_inactive = False  # answer a bad token's check with active:false
        self.expected_upload: bytes | None = None  # bytes an upload must have
        self.pending_polls = 2  # ListSubmissions answers a new submission PENDING this often
        self.public_score = "0.87654"
        self.private_score = "0.87321"
        self.score_error: str | None = None  # scoring fails with this description
        self.create_then_fail = 0  # CreateSubmission creates, then answers 500, this often
        self.listed: dict[str, int] = {}  # sizes ListDataFiles claims, beside the real ones
        self.throttle_bps: float | None = None  # serve file bytes at this rate (None: at once)
        self.calls: list[Call] = []
        self.unexpected: list[str] = []
        # kernels: "owner/slug" -> its versions; what a new version's status goes through
        self.kernels: dict[str, list[KernelVersion]] = {}
        self.kernel_statuses = ["QUEUED", "RUNNING", "COMPLETE"]
        self.kernel_runner: Callable[[KernelVersion], None] | None = None
        self.kernel_outputs: dict[str, bytes] = {}  # a new version's output (no runner)
        self.kernel_log = ""  # and its log
        self.kernel_failure = ""  # and its failureMessage when its statuses end in ERROR
        self.foreign_kernels: set[str] = set()  # "owner/slug" of kernels of other accounts
        self.save_error: str | None = None  # SaveKernel answers 200 with this error
        self.gpu_quota_used_s = 3 * 3600.0
        self.gpu_quota_total_s = 30 * 3600.0
        self.uploads: dict[str, bytes] = {}
        self.submissions: list[dict] = []
        self._failures: dict[str, list[_Failure]] = {}
        self._interrupts: dict[str, tuple[int, Callable[[], None]]] = {}
        self.release = threading.Event()  # lets an interrupted transfer's connection go
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- life cycle -------------------------------------------------------------------
    @property
    def proxy(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> KaggleStandIn:
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> KaggleStandIn:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """Environment variables that send the installed client here (and nowhere else)."""
        return {
            "KAGGLE_API_ENVIRONMENT": "LOCALHOST",
            **{k: self.proxy for k in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY")},
        }

    # --- scripting ---------------------------------------------------------------------
    def fail(self, name: str, *statuses: int, retry_after: str | None = None) -> None:
        """Answer the next calls of ``name`` (an RPC method, or a file name for its storage
        download) with ``statuses``, one each, before answering normally."""
        with self._lock:
            self._failures.setdefault(name, []).extend(_Failure(s, retry_after) for s in statuses)

    def interrupt(self, name: str, after_bytes: int, hook: Callable[[], None]) -> None:
        """The next download of ``name`` sends ``after_bytes`` bytes, calls ``hook`` (in the
        server's thread), then holds the connection until :attr:`release` is set and drops
        it: a transfer cut off mid-way."""
        self._interrupts[name] = (after_bytes, hook)

    def versions(self, kernel: str) -> list[KernelVersion]:
        return self.kernels.get(kernel, [])

    def names(self, kind: str) -> list[str]:
        """The names of the calls of one kind, in order."""
        return [c.name for c in self.calls if c.kind == kind]

    def rpcs(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.kind == "rpc" and c.name == method]

    def download_requests(self) -> dict[str, dict[str, int]]:
        """Per competition file: ``{"DownloadDataFile": calls, "storage": GETs of its bytes}``
        that reached the server (any answer)."""
        rpc = Counter(c.body.get("fileName") for c in self.rpcs("DownloadDataFile"))
        storage = Counter(c.name for c in self.calls if c.kind == "storage")
        return {
            name: {"DownloadDataFile": rpc[name], "storage": storage[name]}
            for name in sorted(set(rpc) | set(storage))
        }

    # --- answers -----------------------------------------------------------------------
    def _take_failure(self, name: str) -> _Failure | None:
        with self._lock:
            queue = self._failures.get(name)
            return queue.pop(0) if queue else None

    def _authorized(self, header: str | None) -> bool:
        if not header:
            return False
        if header.startswith("Bearer "):
            return header[len("Bearer ") :] == TOKEN
        if header.startswith("Basic "):
            want = base64.b64encode(f"{USERNAME}:{KEY}".encode()).decode()
            return header[len("Basic ") :] == want
        return False

    def rpc(self, method: str, body: dict, authorized: bool) -> tuple[int, dict, dict]:
        """(status, JSON body, extra headers) for one API call."""
        if method == "IntrospectToken":
            if not authorized and self.introspect_inactive:
                return 200, {"active": False}, {}
            if not authorized:
                return 401, {"code": 401, "message": "Unauthenticated"}, {}
            return 200, {"active": True, "username": USERNAME}, {}
        if not authorized:
            return 401, {"code": 401, "message": "Unauthenticated"}, {}
        if body.get("competitionName") not in (None, self.competition):
            return 404, {"code": 404, "message": "Competition not found"}, {}
        rules = {
            "code": 403,
            "message": "You must accept this competition's rules before you'll be able to "
            "download files or make submissions.",
        }
        if method == "ListDataFiles":
            sizes = {name: len(served) for name, (_, served) in self.served.items()}
            files = [{"name": n, "totalBytes": b} for n, b in (sizes | self.listed).items()]
            return 200, {"files": files, "nextPageToken": ""}, {}
        if method == "DownloadDataFile":
            if not self.rules_accepted:
                return 403, rules, {}
            name = body.get("fileName", "")
            if name not in self.served:
                return 404, {"code": 404, "message": f"File {name} not found"}, {}
            url = (
                f"http://{HOST}/storage/{self.competition}/{self.served[name][0]}"
                "?X-Goog-Signature=standin"
            )
            return 302, {}, {"Location": url}
        if method == "StartSubmissionUpload":
            if not self.rules_accepted:
                return 403, rules, {}
            token = f"blob-{len(self.uploads) + 1}"
            self.uploads[token] = b""
            return 200, {"token": token, "createUrl": f"http://{HOST}/upload/{token}"}, {}
        if method == "CreateSubmission":
            token = body.get("blobFileTokens", "")
            data = self.uploads.get(token)
            if not data:
                return 400, {"code": 400, "message": f"Unknown blob token {token}"}, {}
            if self.expected_upload is not None and data != self.expected_upload:
                return 400, {"code": 400, "message": "Uploaded bytes differ from the file"}, {}
            ref = 40_000_000 + len(self.submissions) + 1
            self.submissions.append(
                {
                    "ref": ref,
                    "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    "description": body.get("submissionDescription", ""),
                    "fileName": "submission.csv",
                    "totalBytes": len(data),
                    "polls": 0,
                }
            )
            return 200, {"message": SUBMITTED, "ref": ref}, {}
        if method == "ListSubmissions":
            out = []
            for s in reversed(self.submissions):  # newest first, as Kaggle sorts by date
                s["polls"] += 1
                row = {k: v for k, v in s.items() if k != "polls"}
                if s["polls"] <= self.pending_polls:
                    row["status"] = "PENDING"
                elif self.score_error:
                    row |= {"status": "ERROR", "errorDescription": self.score_error}
                else:
                    row |= {
                        "status": "COMPLETE",
                        "publicScore": self.public_score,
                        "privateScore": self.private_score,
                    }
                out.append(row)
            return 200, {"submissions": out, "nextPageToken": ""}, {}
        if method in KERNEL_METHODS:
            return getattr(self, f"_{method}")(body)
        self.unexpected.append(f"RPC {method}")
        return 404, {"code": 404, "message": f"stand-in does not know {method}"}, {}

    # --- kernels -----------------------------------------------------------------------
    def _version(self, body: dict) -> KernelVersion | None:
        versions = self.versions(f"{body.get('userName')}/{body.get('kernelSlug')}")
        label = body.get("versionLabel")
        if not label:
            return versions[-1] if versions else None
        return next((v for v in versions if f"v{v.number}" == label), None)

    def _SaveKernel(self, body: dict) -> tuple[int, dict, dict]:
        kernel = body.get("slug", "")
        owner = kernel.split("/")[0]
        if owner != USERNAME or kernel in self.foreign_kernels:
            return 403, {"code": 403, "message": "Permission 'kernels.update' was denied"}, {}
        if self.save_error:
            return 200, {"error": self.save_error}, {}
        versions = self.kernels.setdefault(kernel, [])
        statuses = list(self.kernel_statuses)
        version = KernelVersion(owner, kernel.split("/")[1], len(versions) + 1, body, statuses)
        if self.kernel_runner is None:
            version.files = dict(self.kernel_outputs)
            version.log, version.failure = self.kernel_log, self.kernel_failure
        versions.append(version)
        invalid = [
            c
            for c in body.get("competitionDataSources", [])
            if c != self.competition or not self.rules_accepted
        ]
        answer = {
            "ref": f"/code/{kernel}",
            "url": f"https://www.kaggle.com/code/{kernel}",
            "versionNumber": version.number,
            "invalidCompetitionSources": invalid,
        }
        return 200, answer, {}

    def _GetKernelSessionStatus(self, body: dict) -> tuple[int, dict, dict]:
        version = self._version(body)
        if version is None:
            return 404, {"code": 404, "message": "Notebook not found"}, {}
        version.looks += 1
        if self.kernel_runner is not None:
            status = self._run_status(version)
        else:
            status = version.statuses.pop(0) if len(version.statuses) > 1 else version.statuses[0]
        answer = {"status": status}
        if status == "ERROR":
            answer["failureMessage"] = version.failure
        return 200, answer, {}

    def _run_status(self, version: KernelVersion) -> str:
        """Queued at the first look; the run starts at the second (a thread); running while
        it runs; then its last status."""
        if version.looks == 1:
            return "QUEUED"
        if version.thread is None:
            version.thread = threading.Thread(
                target=self.kernel_runner, args=(version,), daemon=True
            )
            version.thread.start()
            return "RUNNING"
        return "RUNNING" if version.thread.is_alive() else version.statuses[-1]

    def _ListKernelSessionOutput(self, body: dict) -> tuple[int, dict, dict]:
        version = self._version(body)
        if version is None:
            return 404, {"code": 404, "message": "Notebook not found"}, {}
        names = sorted(version.files)
        start = int(body.get("pageToken") or 0)
        size = int(body.get("pageSize") or 20)
        page = names[start : start + size]
        base = f"http://{HOST}/kernel-output/{version.kernel}/v{version.number}"
        files = [{"fileName": n, "url": f"{base}/{quote(n)}"} for n in page]
        answer = {"files": files, "log": version.log}
        if start + size < len(names):
            answer["nextPageToken"] = str(start + size)
        return 200, answer, {}

    def _GetAcceleratorQuotaStatistics(self, body: dict) -> tuple[int, dict, dict]:
        quota = {
            "timeUsed": f"{self.gpu_quota_used_s:.0f}s",
            "totalTimeAllowed": f"{self.gpu_quota_total_s:.0f}s",
        }
        answer = {"gpuQuota": quota, "quotaRefreshTime": "2026-01-03T00:00:00.000Z"}
        return 200, answer, {}

    def output_file(self, path: str) -> tuple[str, bytes] | None:
        """(file name, bytes) of a kernel output URL's path, if there is such a file."""
        parts = path.strip("/").split("/")
        if len(parts) < 5 or parts[0] != "kernel-output":
            return None
        owner, slug, label = parts[1:4]
        name = unquote("/".join(parts[4:]))
        version = next(
            (v for v in self.versions(f"{owner}/{slug}") if f"v{v.number}" == label), None
        )
        if version is None or name not in version.files:
            return None
        return name, version.files[name]


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client killed mid-request (as the tests do): nothing to report
        super().handle_error(request, client_address)


def _handler(standin: KaggleStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the client's sessions expect

        def log_message(self, format, *args):  # quiet: the calls are in standin.calls
            pass

        # the client sends absolute URLs to its proxy: http://localhost/api/v1/...
        def _target(self) -> tuple[str, str] | None:
            url = urlsplit(self.path)
            host = url.hostname or (self.headers.get("Host") or "").split(":")[0]
            if host != HOST:
                standin.unexpected.append(f"{self.command} {self.path}")
                self._send(502, b"stand-in: only http://localhost is served", "text/plain")
                return None
            return url.path, url.query

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                out = b""
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        return out
                    out += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _fail(self, failure: _Failure) -> None:
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            if failure.status >= 500:  # a server error is an HTML page, not the API's JSON
                page = b"<html><body>500 Internal Server Error</body></html>"
                self._send(failure.status, page, "text/html", headers)
                return
            reason = self.responses.get(failure.status, ("Error",))[0]
            body = json.dumps({"code": failure.status, "message": reason}).encode()
            self._send(failure.status, body, "application/json", headers)

        def do_CONNECT(self):  # an HTTPS request: meant for the real Kaggle, never allowed
            standin.unexpected.append(f"CONNECT {self.path}")
            self._send(403, b"stand-in: no HTTPS, no real Kaggle", "text/plain")
            self.close_connection = True

        def do_POST(self):
            target = self._target()
            raw = self._body()
            if target is None:
                return
            path, _ = target
            parts = path.strip("/").split("/")
            if len(parts) != 4 or parts[:2] != ["api", "v1"]:
                standin.unexpected.append(f"POST {path}")
                self._send(404, b"{}", "application/json")
                return
            method = parts[3]
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                standin.unexpected.append(f"POST {path}: body is not JSON")
                body = {}
            failure = standin._take_failure(method)
            if failure:
                standin.calls.append(Call("rpc", method, failure.status, body=body))
                self._fail(failure)
                return
            authorized = standin._authorized(self.headers.get("Authorization"))
            status, answer, headers = standin.rpc(method, body, authorized)
            if method == "CreateSubmission" and status == 200 and standin.create_then_fail:
                standin.create_then_fail -= 1  # created, but the answer is lost in an error
                standin.calls.append(Call("rpc", method, 500, body=body))
                self._fail(_Failure(500, None))
                return
            standin.calls.append(Call("rpc", method, status, body=body))
            self._send(status, json.dumps(answer).encode(), "application/json", headers)

        def do_GET(self):
            target = self._target()
            if target is None:
                return
            path, _ = target
            parts = path.strip("/").split("/")
            if parts[0] == "kernel-output":
                found = standin.output_file(path)
                if found is None:
                    self._send(404, b"not found", "text/plain")
                    return
                self._storage(*found)
                return
            if len(parts) != 3 or parts[0] != "storage" or parts[1] != standin.competition:
                standin.unexpected.append(f"GET {path}")
                self._send(404, b"not found", "text/plain")
                return
            served = parts[2]
            name = next((n for n, (s, _) in standin.served.items() if s == served), None)
            if name is None:
                self._send(404, b"not found", "text/plain")
                return
            self._storage(name, standin.served[name][1])

        def _storage(self, name: str, data: bytes) -> None:
            """Serve ``data`` as cloud storage does (ETag, Range), failures and cuts on cue."""
            range_header = self.headers.get("Range")
            failure = standin._take_failure(name)
            if failure:
                standin.calls.append(Call("storage", name, failure.status, range_header))
                self._fail(failure)
                return
            etag = '"' + hashlib.sha1(data).hexdigest()[:16] + '"'
            headers = {"ETag": etag, "Last-Modified": LAST_MODIFIED, "Accept-Ranges": "bytes"}
            start, status = 0, 200
            if range_header and self.headers.get("If-Range", etag) == etag:
                start = int(range_header.removeprefix("bytes=").split("-")[0])
                status = 206
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            standin.calls.append(Call("storage", name, status, range_header))
            body = data[start:]
            cut = standin._interrupts.pop(name, None)
            if cut is None and standin.throttle_bps:
                self._send_slowly(status, body, headers, standin.throttle_bps)
                return
            if cut is None:
                self._send(status, body, "application/octet-stream", headers)
                return
            after, hook = cut
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body[:after])
            self.wfile.flush()
            hook()
            standin.release.wait(10)
            self.connection.shutdown(socket.SHUT_RDWR)  # the rest never comes
            self.close_connection = True

        def _send_slowly(self, status: int, body: bytes, headers: dict, rate: float) -> None:
            """Send ``body`` in 64 KiB pieces at ``rate`` bytes a second."""
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            piece = 64 << 10
            for start in range(0, len(body), piece):
                try:
                    self.wfile.write(body[start : start + piece])
                    self.wfile.flush()
                except OSError:  # the client went away (killed): nothing more to send
                    self.close_connection = True
                    return
                time.sleep(piece / rate)

        def do_PUT(self):
            target = self._target()
            data = self._body()
            if target is None:
                return
            path, _ = target
            parts = path.strip("/").split("/")
            if len(parts) != 2 or parts[0] != "upload" or parts[1] not in standin.uploads:
                standin.unexpected.append(f"PUT {path}")
                self._send(404, b"not found", "text/plain")
                return
            failure = standin._take_failure("upload")
            if failure:
                standin.calls.append(Call("upload", parts[1], failure.status))
                self._fail(failure)
                return
            standin.uploads[parts[1]] = data
            standin.calls.append(Call("upload", parts[1], 200))
            self._send(200, b"{}", "application/json")

    return Handler


_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def client_env(standin: KaggleStandIn, home: Path, credentials: str = "token") -> dict[str, str]:
    """The environment of a process whose kaggle client talks to ``standin`` only:
    ``os.environ`` without any Kaggle credentials or proxy settings it had, a fake
    ``home`` (``~/.kaggle`` and ``KAGGLE_CONFIG_DIR`` in it), waits shortened 1000-fold,
    and ``credentials``: ``token`` / ``bad-token`` (KAGGLE_API_TOKEN), ``key`` / ``bad-key``
    (KAGGLE_USERNAME + KAGGLE_KEY), ``token-file`` (an access_token file in
    KAGGLE_CONFIG_DIR), ``json`` (kaggle.json there) or ``none``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("KAGGLE_") and k.lower() not in _PROXY_VARS
    }
    config = home / ".kaggle"
    config.mkdir(parents=True, exist_ok=True)
    env |= standin.env() | {
        "HOME": str(home),
        "KAGGLE_CONFIG_DIR": str(config),
        "DOODLE_KAGGLE_WAIT_SCALE": "0.001",
    }
    if credentials in ("token", "bad-token"):
        env["KAGGLE_API_TOKEN"] = TOKEN if credentials == "token" else "revoked-" + TOKEN
    elif credentials in ("key", "bad-key"):
        env["KAGGLE_USERNAME"] = USERNAME
        env["KAGGLE_KEY"] = KEY if credentials == "key" else "wrong-" + KEY
    elif credentials == "token-file":
        (config / "access_token").write_text(TOKEN)
        (config / "access_token").chmod(0o600)
    elif credentials == "json":
        (config / "kaggle.json").write_text(json.dumps({"username": USERNAME, "key": KEY}))
        (config / "kaggle.json").chmod(0o600)
    elif credentials != "none":
        raise ValueError(f"unknown credentials {credentials!r}")
    return env


def secrets() -> tuple[str, ...]:
    """The fake secrets, which no output may contain."""
    return (TOKEN, KEY)


def kernel_secrets() -> tuple[str, ...]:
    """The fake tokens of a kernel's environment on Kaggle (KERNEL_ENV)."""
    return tuple(v for k, v in KERNEL_ENV.items() if k.endswith("_TOKEN"))


# -- a repository copy whose stages and make targets talk to the stand-in ---------------------
ROOT = Path(__file__).resolve().parents[1]
COMPETITION = "quickdraw-doodle-recognition"
WORDS = ("cat", "house", "The Eiffel Tower")
RECORD = "reports/submissions.csv"  # tracked: the copy starts with the project's (empty) one
TEST_ROWS = 112_199  # as many as the competition's test file, so the submit guard lets it go


def competition_files(train_rows_per_class: int = 4000, seed: int = 0) -> dict[str, bytes]:
    """The two files the pipeline downloads, in Kaggle's layout and small:
    ``train_simplified.zip`` (three class CSVs, stored, a few MiB: over the client's 1 MiB
    chunks) and ``test_simplified.csv`` with the competition's 112,199 rows."""
    import numpy as np

    rng = np.random.default_rng(seed)

    def drawing() -> str:
        strokes = []
        for _ in range(int(rng.integers(1, 4))):
            k = int(rng.integers(2, 12))
            strokes.append([rng.integers(0, 256, k).tolist(), rng.integers(0, 256, k).tolist()])
        return json.dumps(strokes)

    def csv_text(header: list[str], rows) -> bytes:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
        return buf.getvalue().encode()

    train = io.BytesIO()
    key = 4_000_000_000
    with zipfile.ZipFile(train, "w", zipfile.ZIP_STORED) as z:
        for word in WORDS:
            rows = []
            for _ in range(train_rows_per_class):
                key += 1
                rows.append(["US", drawing(), key, "True", "2017-03-10 10:00:00.00000", word])
            header = ["countrycode", "drawing", "key_id", "recognized", "timestamp", "word"]
            z.writestr(f"{word}.csv", csv_text(header, rows))
    test = csv_text(
        ["key_id", "countrycode", "drawing"],
        ([9_000_000_000 + i, "US", "[[[0, 30, 60], [0, 40, 10]]]"] for i in range(TEST_ROWS)),
    )
    return {"train_simplified.zip": train.getvalue(), "test_simplified.csv": test}


def standin_for(files: dict[str, bytes]) -> KaggleStandIn:
    """A stand-in serving ``files`` for the competition, the test CSV zipped as Kaggle does."""
    return KaggleStandIn(COMPETITION, files, zip_served=("test_simplified.csv",))


def kaggle_repo(dest: Path, download_dir: Path) -> Path:
    """A copy of the project in ``dest`` (a git repo with one commit) reading Kaggle
    (``data.source: kaggle``, downloads into ``download_dir``); its ``.venv`` is this
    checkout's, so ``make`` targets run there (call them with ``make -o .venv/.runtime``
    so that make never reinstalls)."""
    import shutil
    import subprocess

    import yaml

    dest.mkdir(parents=True)
    for name in ("doodle", "stages"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "reports").mkdir()
    for name in ("Makefile", "pyproject.toml", ".gitignore", "params.yaml", RECORD):
        shutil.copy2(ROOT / name, dest / name)
    (dest / ".venv").symlink_to(ROOT / ".venv")
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params["data"]["source"] = "kaggle"
    params["data"]["kaggle"]["download_dir"] = str(download_dir)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "init"],
    ):
        subprocess.run(cmd, cwd=dest, check=True)
    return dest


def prepare_submission(repo: Path) -> None:
    """Shard what the download stage fetched (the shard stage's own code, in this process)
    and write a valid submission.csv and reports/metrics.json, as the pipeline would."""
    import numpy as np

    from doodle.data.sharding import shard_dataset
    from doodle.data.shards import open_shard, read_classes
    from doodle.kaggle.submission import write_submission

    shards = repo / "data" / "shards"
    shard_dataset(
        repo / "data" / "raw", shards, n_shards=2, val_size=30, seed=0,
        report_path=repo / "reports" / "shard.json",
    )  # fmt: skip
    keys = np.asarray(open_shard(shards / "test.qds").key_id)
    classes = read_classes(shards)
    top = np.tile(np.arange(3), (len(keys), 1))
    write_submission(repo / "submission.csv", keys, top, classes)
    metrics = {"final": "blend_balanced", "holdout_map3": 0.88012, "rows": {"score": 888}}
    (repo / "reports" / "metrics.json").write_text(json.dumps(metrics) + "\n")


def run_in(repo: Path, argv: list[str], env: dict[str, str], timeout: int = 120):
    """Run ``argv`` in ``repo`` with ``env``; the CompletedProcess (text)."""
    import subprocess

    return subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=timeout)


def make(target: str, *assignments: str) -> list[str]:
    """``make -o .venv/.runtime <target> <assignments>`` (never reinstalling)."""
    return ["make", "--no-print-directory", "-o", ".venv/.runtime", target, *assignments]


# -- a pushed kernel run here as Kaggle runs it ---------------------------------------------------
def kernel_env(work: Path) -> dict[str, str]:
    """The environment of a kernel on Kaggle, in ``work``: what Kaggle sets (KERNEL_ENV),
    no Kaggle credentials and no proxy (the kernel needs no network here), a home of its own,
    this interpreter's ``python`` first on PATH, and Kaggle's folders moved into ``work``
    (``input/``, ``working/``, ``temp/``) through the variables kernel_main reads."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KAGGLE_", "DOODLE_KAGGLE")) and k.lower() not in _PROXY_VARS
    }
    home = work / "home"
    home.mkdir(parents=True, exist_ok=True)
    env |= KERNEL_ENV | {
        "HOME": str(home),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "DOODLE_KAGGLE_INPUT": str(work / "input"),
        "DOODLE_KAGGLE_WORKING": str(work / "working"),
        "DOODLE_KAGGLE_SCRATCH": str(work / "temp"),
    }
    return env


def run_script(script: str, data: Path, work: Path, competition: str = COMPETITION):
    """Run a kernel's script as Kaggle does, on ``data`` mounted (a link: read in place) at
    ``work/input/<competition>``; returns (exit status, output lines, output files by path)."""
    import subprocess

    (work / "input").mkdir(parents=True, exist_ok=True)
    (work / "input" / competition).symlink_to(Path(data).resolve())
    (work / "working").mkdir(exist_ok=True)
    path = work / "src" / "kernel.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(script)
    p = subprocess.run(
        [sys.executable, str(path)],
        cwd=work / "working",
        env=kernel_env(work),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=600,
    )
    lines = p.stdout.decode(errors="replace").splitlines()
    out = {
        f.relative_to(work / "working").as_posix(): f.read_bytes()
        for f in sorted((work / "working").rglob("*"))
        if f.is_file()
    }
    return p.returncode, lines, out


class LikeKaggle:
    """A :attr:`KaggleStandIn.kernel_runner`: runs each pushed version's script as Kaggle
    would (:func:`run_script`, in ``root/<slug>-v<N>``) on ``data``, and keeps its output,
    its log (Kaggle's JSON list) and its end (COMPLETE, or ERROR with a failure message)."""

    def __init__(self, data: Path, root: Path) -> None:
        self.data, self.root = Path(data), Path(root)

    def __call__(self, version: KernelVersion) -> None:
        work = self.root / f"{version.slug}-v{version.number}"
        code, lines, files = run_script(version.script, self.data, work)
        events = [
            {"stream_name": "stdout", "time": round(i * 0.01, 2), "data": f"{line}\n"}
            for i, line in enumerate(lines)
        ]
        version.log = json.dumps(events)
        version.files = files
        if code == 0:
            version.statuses = ["COMPLETE"]
        else:
            version.statuses = ["ERROR"]
            version.failure = f"The kernel's script exited with status {code} (stand-in's words)"


def kernel_repo(dest: Path, with_git_identity: bool = True) -> Path:
    """A copy of the project in ``dest`` as a user's clone (a git repo with one commit, the
    project's own params.yaml), whose ``make`` targets run with this checkout's .venv (call
    them with :func:`make`); for ``make kaggle-run`` and what follows."""
    import shutil
    import subprocess

    from tests.pipeline_utils import COPY

    dest.mkdir(parents=True)
    for name in (*COPY, ".dvc/.gitignore", "Makefile", "presets", RECORD):
        src = ROOT / name
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    (dest / ".venv").symlink_to(ROOT / ".venv")
    cmds = [["git", "init", "-q"]]
    if with_git_identity:
        cmds += [
            ["git", "config", "user.email", "t@example.com"],
            ["git", "config", "user.name", "t"],
        ]
    cmds += [
        ["git", "add", "-A"],
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "init"],
    ]
    for cmd in cmds:
        subprocess.run(cmd, cwd=dest, check=True)
    return dest


def tiny_args() -> str:
    """presets/tiny.args as one ARGS value (-S key=value ...)."""
    from doodle.presets import read_args

    return " ".join(read_args(ROOT / "presets" / "tiny.args"))
