"""The few lines ``make run`` ends with: the headline, what was submitted, where the files
are, and what to type next (``python -m doodle.summary``, from the repo root)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

PICTURES = ("reports/per_class_map3.png", "reports/confused_pairs.png", "reports/samples.png")


def summary(root: Path) -> str:
    """The lines, from ``reports/metrics.json`` (the ensemble stage's record)."""
    metrics_path = root / "reports" / "metrics.json"
    if not metrics_path.is_file():
        return f"no {metrics_path.relative_to(root)} yet: run `dvc repro` (or `make run`) first"
    m = json.loads(metrics_path.read_text())
    rows = m["rows"]
    test = (
        f"; test MAP@3 {m['test_map3']:.4f} (this data's test labels are known)"
        if "test_map3" in m
        else ""
    )
    members = ", ".join(f"{k} {v:.4f}" for k, v in m["members"].items())
    pictures = ", ".join(p for p in PICTURES if (root / p).is_file())
    return "\n".join(
        [
            f"holdout MAP@3 {m['holdout_map3']:.4f} on {rows['score']:,} held-apart rows, "
            f"submitted method {m['final']}{test}",
            f"members on the same rows: {members}",
            f"submission.csv: {rows['test']:,} rows; holdout rows in the same format: "
            "reports/holdout_submission.csv",
            f"pictures: {pictures or 'none'}",
            "next: make exp ARGS='-S train.grid_reduce=max'  (an experiment), make show "
            "(compare them), make submit MSG='...' (upload to Kaggle)",
        ]
    )


if __name__ == "__main__":
    print(summary(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".")))
