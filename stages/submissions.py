"""Show the record of uploads (reports/submissions.csv): holdout MAP@3 beside Kaggle's
public and private scores, after asking Kaggle for the scores still pending (not a DVC
stage: it reads Kaggle).

python -m stages.submissions             # refresh the pending scores, then print the record
python -m stages.submissions --offline   # print the record as it is
"""

import argparse

from doodle.cli import run_stage  # first: quiet start-up, environment check


def main() -> None:
    from doodle.kaggle import submissions as submission_log

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--offline", action="store_true", help="do not ask Kaggle")
    args = ap.parse_args()
    record = submission_log.RECORD
    rows = submission_log.read(record)
    if not rows:
        print(f"submissions: none recorded yet in {record} (make submit adds them)")
        return
    waiting = submission_log.pending(rows)
    error = None
    if waiting and not args.offline:
        try:
            refresh(waiting)
        except Exception as e:  # still show the record; the error follows it
            error = e
        rows = submission_log.read(record)
        scored = len(waiting) - len(submission_log.pending(rows))
        print(f"submissions: asked Kaggle about {len(waiting)} pending: {scored} scored since")
    print(submission_log.table(rows))
    print("submissions: " + submission_log.summary(rows))
    if error is not None:
        raise error


def refresh(waiting: list[dict[str, str]]) -> None:
    """Ask Kaggle (one list per competition) for the pending rows' status and scores."""
    from doodle.kaggle import api as kaggle_api
    from doodle.kaggle import submissions as submission_log

    for competition in sorted({r["competition"] for r in waiting}):
        subs = kaggle_api.connect(competition).submissions()
        submission_log.apply(subs, submission_log.RECORD)


if __name__ == "__main__":
    run_stage("submissions", main)
