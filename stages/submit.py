"""Validate submission.csv, then submit it to Kaggle (not a DVC stage: it has side effects).

    python stages/submit.py --dry-run     # validate only
    python stages/submit.py [-m MESSAGE]  # validate, then submit with the kaggle package
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from doodle.cli import run_stage  # noqa: E402
from doodle.shards import open_shard, read_classes  # noqa: E402
from doodle.submission import submission_message, validate_submission  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", type=Path, default=Path("submission.csv"))
    ap.add_argument("--dry-run", action="store_true", help="validate only, submit nothing")
    ap.add_argument("-m", "--message", default=None)
    args = ap.parse_args()
    shard_dir = Path("data/shards")
    keys = open_shard(shard_dir / "test.qds").key_id
    problems = validate_submission(args.file, keys, read_classes(shard_dir))
    if problems:
        for p in problems:
            print(f"{args.file}: " + (f"row {p.row}: " if p.row is not None else "") + p.message,
                  file=sys.stderr)
        raise ValueError(f"{args.file}: not valid ({len(problems)} problem(s) shown above); "
                         "nothing was submitted")
    print(f"submit: {args.file} is valid ({len(keys):,} rows)")
    if args.dry_run:
        return
    from doodle.kaggle_api import submit

    message = args.message or submission_message(Path("reports/metrics.json"))
    submit(args.file, message)
    print(f"submit: sent {args.file} with message {message!r}")


if __name__ == "__main__":
    run_stage("submit", main)
