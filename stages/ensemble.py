"""DVC stage `ensemble`: members' predictions -> submission.csv + reports/metrics.json.

Also writes reports/holdout_submission.csv: the held-apart holdout rows in the submission's
format, predicted exactly as the test set is, so that ``holdout_map3`` can be re-derived.
"""

from pathlib import Path

from doodle.cli import run_stage  # first: quiet start-up, environment check
from doodle.config import load_params
from doodle.ensemble.choose import run_ensemble
from doodle.ensemble.reports import holdout_report, samples_grid, shown_member
from doodle.fileio import write_json
from doodle.kaggle.submission import write_submission
from doodle.metrics import top_k


def main() -> None:
    params = load_params()
    members = params.member_names
    pred = {m: Path("data/predictions") / params.section_of(m) / m for m in members}
    r = run_ensemble(
        [pred[m] / "holdout.npz" for m in members],
        [pred[m] / "test.npz" for m in members],
        params.ensemble,
        members,
    )
    write_submission(Path("submission.csv"), r.test_key_ids, top_k(r.test_scores, 3), r.classes)
    write_submission(
        Path("reports/holdout_submission.csv"), r.score_key_ids, top_k(r.score_scores, 3), r.classes
    )
    write_json(Path("reports/metrics.json"), r.metrics)
    holdout_report(pred[r.metrics["best_member"]] / "holdout.npz", Path("reports"))
    shown = shown_member(params, r.metrics)
    samples_grid(
        Path("data/shards"),
        None,
        Path("reports/samples.png"),
        shown.img_size,
        shown.encoding,
        shown.line_width,
    )
    m = r.metrics
    test = f", test MAP@3 {m['test_map3']:.4f}" if "test_map3" in m else ""
    print(
        f"ensemble: final={m['final']}, holdout MAP@3 {m['holdout_map3']:.4f} on "
        f"{m['rows']['score']:,} held-apart rows{test}; {len(r.test_key_ids):,} rows -> "
        "submission.csv"
    )


if __name__ == "__main__":
    run_stage("ensemble", main, ("submission.csv",))
