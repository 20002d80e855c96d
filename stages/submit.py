"""Validate submission.csv, submit it to Kaggle, wait for its score (not a DVC stage: it has
side effects).

python -m stages.submit --dry-run     # validate only, no network
python -m stages.submit [-m MESSAGE]  # validate, check it is a real submission, upload,
                                      # wait for the public score (--no-wait: don't)
python -m stages.submit --force       # upload even if the data is not the competition's
python -m stages.submit --run NAME    # a pulled Kaggle kernel's run (make kaggle-pull):
                                      # data/kaggle/runs/NAME/submission.csv, checked against
                                      # that run's test set, quoted with its holdout score

Each upload is recorded in reports/submissions.csv (holdout MAP@3 beside Kaggle's scores);
`make submissions` shows the record and fetches the scores still pending.
"""

import argparse
import sys
from pathlib import Path

from doodle.cli import run_stage  # first: quiet start-up, environment check
from doodle.kaggle.submission import (
    check_submission,
    git_revision,
    read_metrics,
    submission_guard,
    submission_message,
)

SHARDS = Path("data/shards")
METRICS = Path("reports/metrics.json")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", type=Path, default=Path("submission.csv"))
    ap.add_argument("--dry-run", action="store_true", help="validate only, submit nothing")
    ap.add_argument(
        "--force",
        action="store_true",
        help="upload even when the data is synthetic or not the competition's",
    )
    ap.add_argument(
        "-m",
        "--message",
        default=None,
        help="Kaggle's description (default: git rev, method and holdout MAP@3)",
    )
    ap.add_argument(
        "--wait",
        type=float,
        default=900,
        metavar="SECONDS",
        help="how long to wait for Kaggle's score after the upload (default 900)",
    )
    ap.add_argument("--no-wait", action="store_true", help="do not wait for the score")
    ap.add_argument(
        "--run",
        metavar="NAME",
        help="a pulled Kaggle kernel's run (kaggle-<slug>-v<N>, make kaggle-pull) instead of "
        "this workspace's",
    )
    args = ap.parse_args()
    shards, metrics_path, revision = SHARDS, METRICS, None
    if args.run:
        args.file, shards, metrics_path, revision = pulled_run(args.run)
    n = check_submission(args.file, shards)
    print(f"submit: {args.file} is valid ({n:,} rows)")
    if args.dry_run:
        return
    submission_guard(shards, force=args.force)

    from doodle.config import load_params
    from doodle.kaggle import api as kaggle_api
    from doodle.kaggle import submissions as submission_log

    competition = load_params().data.kaggle.competition
    metrics = read_metrics(metrics_path)
    message = args.message or submission_message(metrics_path)
    if revision:  # the pulled run's name and commit, not this workspace's
        message = f"doodle {args.run} ({revision}): {message.partition(': ')[2]}"
    kaggle = kaggle_api.connect(competition)
    sent = kaggle.submit(args.file, message)
    print(f"submit: sent {args.file} to {competition} with message {message!r}")
    print(f"submit: Kaggle says: {sent.answer} (submission {sent.ref})")
    rev = revision or git_revision()
    row = submission_log.new_row(competition, sent.ref, rev, metrics, args.file, message)
    count = submission_log.append(row, submission_log.RECORD)
    print(f"submit: recorded as pending in {submission_log.RECORD} (row {count})")
    if args.no_wait or not sent.ref:
        print("submit: not waiting for the score; `make submissions` fetches it later")
        return
    scored = wait(kaggle, sent.ref, args.wait)
    if scored is None or scored.status == "pending":
        print(
            f"submit: not scored after {args.wait:.0f} s; `make submissions` fetches the "
            "score later"
        )
        return
    submission_log.apply([scored], submission_log.RECORD)
    if scored.status == "error":
        raise kaggle_api.KaggleError(
            f"Kaggle could not score submission {sent.ref}: {scored.error or 'no reason given'}"
        )
    print("submit: " + side_by_side(scored, metrics))
    print(f"submit: scores recorded in {submission_log.RECORD} (`make submissions` lists them)")


def pulled_run(name: str) -> tuple[Path, Path, Path, str]:
    """(submission, shards, metrics, short commit) of a Kaggle kernel's pulled run."""
    import json

    from doodle.kaggle.kernel_main import RUN_FILE
    from doodle.kaggle.kernels import run_folder

    folder = run_folder(name)
    if not (folder / RUN_FILE).is_file():
        raise FileNotFoundError(
            f"{folder / RUN_FILE} not found: make kaggle-pull brings a run there first"
        )
    info = json.loads((folder / RUN_FILE).read_text())
    return folder / "submission.csv", folder / SHARDS, folder / METRICS, info["base"][:7]


def wait(kaggle, ref: int, seconds: float):
    """Kaggle's submission ``ref`` once scored, or as last seen after ``seconds``."""
    from doodle.kaggle.api import KaggleError

    print(f"submit: waiting up to {seconds:.0f} s for Kaggle to score it (--no-wait skips)")

    def progress(sub, waited: float) -> None:
        print(f"submit: {sub.status if sub else 'not listed yet'} after {waited:.0f} s")

    try:
        return kaggle.wait_for_score(ref, seconds, progress)
    except KeyboardInterrupt:
        print(
            f"submit: stopped waiting; submission {ref} was sent and is recorded as pending "
            "(`make submissions` fetches its score)",
            file=sys.stderr,
        )
        sys.exit(130)
    except KaggleError as e:
        raise KaggleError(
            f"submission {ref} was sent and is recorded as pending, but waiting for its "
            f"score failed: {e}"
        ) from e


def side_by_side(scored, metrics: dict | None) -> str:
    """'public score 0.87654 (private 0.87321) beside holdout MAP@3 0.88010 ...'."""
    public = "not published" if scored.public_score is None else f"{scored.public_score:.5f}"
    text = f"public score {public}"
    if scored.private_score is not None:
        text += f" (private {scored.private_score:.5f})"
    if metrics is None:
        return text + "; holdout MAP@3 unknown (no reports/metrics.json)"
    holdout = float(metrics["holdout_map3"])
    text += (
        f" beside holdout MAP@3 {holdout:.5f} ({metrics['final']}, "
        f"{metrics['rows']['score']} held-apart rows)"
    )
    if scored.public_score is not None:
        text += f": public - holdout {scored.public_score - holdout:+.5f}"
    return text


if __name__ == "__main__":
    run_stage("submit", main)
