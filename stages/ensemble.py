"""DVC stage `ensemble`: members' predictions -> submission.csv + reports/metrics.json."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from doodle.cli import run_stage  # noqa: E402
from doodle.config import load_params  # noqa: E402
from doodle.ensemble import run_ensemble  # noqa: E402
from doodle.metrics import top_k  # noqa: E402
from doodle.reports import holdout_report  # noqa: E402
from doodle.shards import write_json  # noqa: E402
from doodle.submission import write_submission  # noqa: E402


def main() -> None:
    params = load_params()
    members = list(params["members"])
    pred = Path("data/predictions")
    metrics, scores, key_ids, classes = run_ensemble(
        [pred / m / "holdout.npz" for m in members], [pred / m / "test.npz" for m in members],
        params["ensemble"])
    write_submission(Path("submission.csv"), key_ids, top_k(scores, 3), classes)
    write_json(Path("reports/metrics.json"), metrics)
    holdout_report(pred / metrics["best_member"] / "holdout.npz", Path("reports"))
    print(f"ensemble: final={metrics['final']} holdout_map3={metrics['holdout_map3']:.4f}, "
          f"{len(key_ids):,} rows -> submission.csv")


if __name__ == "__main__":
    run_stage("ensemble", main, ("submission.csv",))
