"""Several processes sharing one download cache (doodle.kaggle.api.download_files), against the
stand-in Kaggle on 127.0.0.1 (tests/kaggle_standin.py): three started at once make one download
request per file and end with the same bytes and a full manifest; a downloader killed mid-file
hands its partial file to the process waiting for it, which resumes it."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from doodle.data.layout import TEST_FILE
from tests.conftest import ROOT
from tests.kaggle_standin import KaggleStandIn, client_env

pytestmark = pytest.mark.e2e  # processes talking to the stand-in

COMP = "quickdraw-doodle-recognition"
BIG = np.random.default_rng(1).bytes(2_500_000)  # over two of the client's 1 MiB chunks
TEST_CSV = b'key_id,countrycode,drawing\n9000000000,US,"[[[0, 9], [0, 9]]]"\n' * 2000
FILES = {"train_simplified.zip": BIG, TEST_FILE: TEST_CSV}
NAMES = ("train_simplified.zip", TEST_FILE)

# One process of the cache's users: says "ready" once imported, starts when the go file
# appears (so that all start at once), then prints what it ended with.
CHILD = """
import hashlib, json, logging, sys, time
from pathlib import Path
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
from doodle.kaggle.api import MANIFEST, download_files
names, folder, go = json.loads(sys.argv[1])
folder = Path(folder)
print("ready", flush=True)
while go and not Path(go).exists():
    time.sleep(0.002)
download_files("quickdraw-doodle-recognition", tuple(names), folder)
manifest = json.loads((folder / MANIFEST).read_text())
sha = {n: hashlib.sha256((folder / manifest[n]["file"]).read_bytes()).hexdigest() for n in names}
print(json.dumps({"manifest": manifest, "sha256": sha}))
"""


def start(env: dict, folder: Path, go: Path | None) -> subprocess.Popen:
    argv = json.dumps([list(NAMES), str(folder), str(go) if go else ""])
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    return proc


def finish(proc: subprocess.Popen) -> tuple[dict, str]:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1]), err


def served_sha(server: KaggleStandIn, name: str) -> str:
    return hashlib.sha256(server.served[name][1]).hexdigest()


def test_three_processes_at_once_download_each_file_once(tmp_path):
    folder = tmp_path / "cache" / COMP
    go = tmp_path / "go"
    with KaggleStandIn(COMP, FILES, zip_served=(TEST_FILE,)) as server:
        server.throttle_bps = 1 << 20  # ~2.4 s for the big file: the three overlap
        env = client_env(server, tmp_path / "home")
        procs = [start(env, folder, go) for _ in range(3)]
        go.touch()  # all three are imported and waiting: they start together
        results = [finish(p) for p in procs]
        requests = server.download_requests()
        assert server.unexpected == []
    print(f"\nrequests per file: {json.dumps(requests)}")
    for i, (res, _) in enumerate(results):
        print(f"process {i}: {json.dumps(res['sha256'])}")
    assert requests == {n: {"DownloadDataFile": 1, "storage": 1} for n in NAMES}
    want = {n: served_sha(server, n) for n in NAMES}
    assert [res["sha256"] for res, _ in results] == [want] * 3  # the same bytes, as served
    for res, _ in results:
        assert res["manifest"] == {
            "train_simplified.zip": {"file": "train_simplified.zip", "bytes": len(BIG)},
            TEST_FILE: {"file": TEST_FILE + ".zip", "bytes": len(server.served[TEST_FILE][1])},
        }
    # The others waited, each with one line that says for what, then reused the file.
    waits = [ln for _, err in results for ln in err.splitlines() if "waiting for it" in ln]
    print("\n".join(waits))
    assert waits, [err for _, err in results]
    for line in waits:
        assert line.startswith("WARNING ") and str(folder) in line
        assert any(line.startswith(f"WARNING {n}: another process is downloading") for n in NAMES)
    # Each process took each file once: downloaded it (2 in all, one per file), or found it
    # downloaded by another (after waiting, or when its lock came free), or already there.
    said = [
        sum(err.count(f"INFO {what}") for _, err in results)
        for what in ("downloaded /", "train_simplified.zip: downloaded by another process",
                     f"{TEST_FILE}: downloaded by another process", "train_simplified.zip: "
                     "already downloaded", f"{TEST_FILE}: already downloaded")
    ]  # fmt: skip
    assert said[0] == 2 and sum(said) == 3 * len(NAMES), said
    assert said[1] + said[3] == 2 and said[2] + said[4] == 2, said
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == sorted(
        ["complete.json", "train_simplified.zip", TEST_FILE + ".zip"]
    )
    assert list((folder / ".partial").iterdir()) == []


def test_a_killed_downloader_leaves_a_partial_file_the_waiting_process_resumes(tmp_path):
    folder = tmp_path / "cache" / COMP
    part = folder / ".partial" / "train_simplified.zip"
    with KaggleStandIn(COMP, FILES, zip_served=(TEST_FILE,)) as server:
        env = client_env(server, tmp_path / "home")
        first = start(env, folder, None)
        second: list[subprocess.Popen] = []
        waiting = threading.Event()

        def kill() -> None:
            # Part of the file is on disk: start a second process, let it wait for the lock,
            # then kill the first as a power cut would (SIGKILL: no cleanup, no message).
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not (part.is_file() and part.stat().st_size):
                time.sleep(0.005)
            second.append(start(env, folder, None))
            for line in second[0].stderr:
                if "another process is downloading it" in line:
                    waiting.set()
                    break
            first.kill()

        server.interrupt("train_simplified.zip", after_bytes=1_600_000, hook=kill)
        first.communicate(timeout=60)
        server.release.set()
        assert first.returncode == -9
        assert waiting.is_set(), "the second process did not wait for the lock"
        res, _ = finish(second[0])
        storage = [(c.name, c.status, c.range) for c in server.calls if c.kind == "storage"]
        assert server.unexpected == []
    print(f"\nstorage requests: {storage}")
    big = [(status, rng) for name, status, rng in storage if name == "train_simplified.zip"]
    # The first process, killed mid-file; then the second: the client opens the file, sees the
    # partial one is the same (ETag), and asks for the rest only.
    assert len(big) == 3 and big[:2] == [(200, None), (200, None)], big
    assert big[2][0] == 206 and 0 < int(big[2][1].removeprefix("bytes=").rstrip("-")) < len(BIG)
    assert [c for c in storage if c[0] == TEST_FILE] == [(TEST_FILE, 200, None)]
    assert (folder / "train_simplified.zip").read_bytes() == BIG
    assert res["sha256"]["train_simplified.zip"] == hashlib.sha256(BIG).hexdigest()
    assert res["manifest"]["train_simplified.zip"] == {
        "file": "train_simplified.zip",
        "bytes": len(BIG),
    }
