"""Validate submission.csv, then submit it to Kaggle (not a DVC stage: it has side effects).

python stages/submit.py --dry-run     # validate only, no network
python stages/submit.py [-m MESSAGE]  # validate, check it is a real submission, upload
python stages/submit.py --force       # upload even if the data is not the competition's
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from doodle.cli import run_stage  # noqa: E402  (first: quiet start-up, environment check)
from doodle.submission import check_submission, submission_guard, submission_message  # noqa: E402

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
    args = ap.parse_args()
    n = check_submission(args.file, SHARDS)
    print(f"submit: {args.file} is valid ({n:,} rows)")
    if args.dry_run:
        return
    submission_guard(SHARDS, force=args.force)
    from doodle.kaggle_api import submit

    message = args.message or submission_message(METRICS)
    answer = submit(args.file, message)
    print(f"submit: sent {args.file} with message {message!r}")
    print(f"submit: Kaggle says: {answer}")


if __name__ == "__main__":
    run_stage("submit", main)
