"""The pipeline on Kaggle's own GPUs, from here (not a DVC stage: it talks to Kaggle):

python -m stages.kernel run [--preset NAME] [-S key=value ...] [--dry-run]
    pack the code and the run's params.yaml into a private script kernel with the
    competition's data, push it (a new version of the same kernel each time), print its URL
python -m stages.kernel status [--wait] [--kernel OWNER/SLUG[/VERSION]]
    queued / running / complete / error (the log's last lines and the fix on error)
python -m stages.kernel pull [--kernel OWNER/SLUG[/VERSION]]
    download its output (resumable) and record the run as a DVC experiment of this repo

The Makefile's kaggle-run, kaggle-status and kaggle-pull call these (docs/kaggle.md).
"""

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from doodle.cli import run_stage  # first: quiet start-up, environment check

POLL_S = 60.0  # between two looks at a running kernel (scaled by DOODLE_KAGGLE_WAIT_SCALE)


def say(command: str, message: str) -> None:
    print(f"{command}: {message}", flush=True)


def cmd_run(args) -> None:
    from doodle.fileio import human_bytes
    from doodle.kaggle import kernels as K

    if args.dry_run:  # no network: the id's owner as the environment names it
        client, found, user = None, "this machine", os.environ.get("KAGGLE_USERNAME") or "you"
    else:
        client, found, user = K.connect()
    prep = K.prepare(Path("."), args.preset, args.set, user, found)
    pack, settings = prep.pack, prep.settings
    say(
        "kaggle-run",
        f"{prep.kernel}: {len(pack.files)} files of code and params ({human_bytes(pack.size)}, "
        f"{human_bytes(len(pack.archive))} packed) in {prep.script} "
        f"({human_bytes(prep.script.stat().st_size)})",
    )
    if args.dry_run:
        say("kaggle-run", f"not pushed (--dry-run): {prep.folder} is what would be pushed")
        return
    quota = K.check_quota(client, found, settings.accelerator)
    pushed = K.push(client, found, user, prep.folder, prep.meta, pack.run["time_limit_s"])
    K.add_record(
        {
            "kernel": prep.kernel,
            "version": pushed.version,
            "url": pushed.url,
            "run_id": pack.run["run_id"],
            "base": pack.run["base"],
            "pushed_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "preset": args.preset,
            "overrides": args.set,
            "accelerator": settings.accelerator,
            "time_limit_h": settings.time_limit_h,
        }
    )
    where = settings.accelerator if settings.accelerator != K.NO_ACCELERATOR else "CPU only"
    extra = f", {quota}" if quota else ""
    say(
        "kaggle-run",
        f"pushed {prep.kernel} version {pushed.version} ({where}, stops itself at "
        f"{settings.time_limit_h:g} h{extra})",
    )
    say("kaggle-run", pushed.url)
    say("kaggle-run", "follow it: make kaggle-status (ARGS=--wait); then make kaggle-pull")


def _ago(entry: dict) -> str:
    try:
        pushed = datetime.strptime(entry["pushed_at"], "%Y-%m-%dT%H:%M:%SZ")
    except (KeyError, ValueError):
        return ""
    minutes = (datetime.now(timezone.utc).replace(tzinfo=None) - pushed).total_seconds() / 60
    return f" (pushed {minutes:.0f} min ago)"


def _failed(K, client, found, entry: dict, state: str, message: str, command: str) -> None:
    """Print the log's last lines, then raise the one-line reason with its fix."""
    from doodle.kaggle.api import KaggleError

    ref = K.ref_of(entry)
    log = K.kernel_log(client, found, ref)
    tail = K.log_tail(log)
    if tail:
        say(command, f"the log's last {len(tail)} lines:")
        for line in tail:
            print(f"  | {line}")
    if state == "cancelled":
        raise KaggleError(f"{ref} was cancelled on Kaggle: make kaggle-run pushes it again")
    raise KaggleError(f"{ref} {state}: {K.failure_line(entry['kernel'], message, log)}")


def cmd_status(args) -> None:
    from doodle.kaggle import api as kaggle_api
    from doodle.kaggle import kernels as K

    entry = K.find_push(args.kernel)
    ref = K.ref_of(entry)
    client, found, _ = K.connect()
    last = None
    while True:
        state, message = K.state(client, found, ref)
        if state != last:
            say("kaggle-status", f"{ref}: {state}{_ago(entry)}")
            last = state
        if state == "complete":
            say("kaggle-status", "make kaggle-pull brings its output back as an experiment")
            return
        if state in ("error", "cancelled"):
            _failed(K, client, found, entry, state, message, "kaggle-status")
        if not args.wait:
            say("kaggle-status", entry.get("url") or K.KERNEL_URL.format(entry["kernel"]))
            return
        time.sleep(POLL_S * kaggle_api.wait_scale())


def cmd_pull(args) -> None:
    from doodle.errors import DoodleError
    from doodle.fileio import human_bytes
    from doodle.kaggle import experiment
    from doodle.kaggle import kernels as K
    from doodle.kaggle.kernel_main import RUN_FILE

    entry = K.find_push(args.kernel)
    ref, name = K.ref_of(entry), K.run_name(entry)
    folder = K.run_folder(name)
    client, found, _ = K.connect()
    state, message = K.state(client, found, ref)
    if state in ("queued", "running"):
        raise DoodleError(f"{ref} is {state}: nothing to pull yet (make kaggle-status ARGS=--wait)")
    files = K.download_output(client, found, ref, folder)
    say(
        "kaggle-pull",
        f"{ref} {state}: {len(files)} files ({human_bytes(sum(files.values()))}) in {folder}",
    )
    info_path = folder / RUN_FILE
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    if state != "complete" or info.get("status") != "complete":
        _failed(
            K,
            client,
            found,
            entry,
            "error" if state == "complete" else state,
            message,
            "kaggle-pull",
        )
    if entry.get("run_id") and info.get("run_id") != entry["run_id"]:
        raise DoodleError(
            f"{folder}: the output is of run {info.get('run_id')}, not of the push recorded as "
            f"version {entry['version']} (run {entry['run_id']}): remove the folder and pull again"
        )
    what = ", ".join(
        f"{k} {v}" for k, v in info.get("versions", {}).items() if k in ("tensorflow", "keras")
    )
    gpus = ", ".join(info.get("versions", {}).get("gpus", [])) or "no GPU"
    say("kaggle-pull", f"ran {info.get('seconds', 0) / 60:.1f} min on {gpus} ({what})")
    url = entry.get("url") or K.KERNEL_URL.format(entry["kernel"])
    rec = experiment.record(folder, name, f"{name}: kernel {ref} on Kaggle ({url})")
    m = experiment.metrics(folder) or {}
    score = (
        f"holdout MAP@3 {m['holdout_map3']:.5f} ({m.get('final')})"
        if "holdout_map3" in m
        else "no holdout score"
    )
    again = " (already recorded)" if rec.existed else ""
    say("kaggle-pull", f"experiment {name}{again} of commit {rec.base[:7]}: {score}")
    left = ", ".join(rec.missing) or "none"
    say("kaggle-pull", f"{len(rec.cached)} outputs in the DVC cache; left on Kaggle: {left}")
    head = K.git("rev-parse", "HEAD")
    shown = (
        "make show lists it"
        if head == rec.base
        else f"dvc exp show --rev {rec.base[:7]} lists it (HEAD moved on)"
    )
    say("kaggle-pull", f"{shown}; make submit RUN={name} uploads its submission.csv")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="pack and push the pipeline as a Kaggle kernel")
    run.add_argument("--preset", help="presets/<NAME>.args applied first")
    run.add_argument("-S", dest="set", action="append", default=[], metavar="KEY=VALUE")
    run.add_argument("--dry-run", action="store_true", help="write the kernel's folder only")
    for name, text in (("status", "follow the pushed kernel"), ("pull", "bring its run back")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--kernel", help="owner/slug[/version] (default: the last push from here)")
        if name == "status":
            p.add_argument("--wait", action="store_true", help="look again until it ends")
    args = ap.parse_args()
    {"run": cmd_run, "status": cmd_status, "pull": cmd_pull}[args.command](args)


if __name__ == "__main__":
    command = next((a for a in sys.argv[1:] if not a.startswith("-")), "")
    run_stage(f"kaggle-{command}" if command else "kaggle", main)
