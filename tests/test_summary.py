"""`make run`'s last lines: headline, method, files, next commands."""

import json

from doodle.summary import summary


def test_summary_gives_the_headline_and_the_next_commands(tmp_path):
    assert "run `dvc repro`" in summary(tmp_path)
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "per_class_map3.png").write_bytes(b"png")
    metrics = {
        "holdout_map3": 0.91234,
        "test_map3": 0.9,
        "final": "blend_balanced",
        "members": {"base": 0.9, "seq": 0.88},
        "rows": {"fit": 1200, "score": 1200, "test": 2400},
    }
    (tmp_path / "reports" / "metrics.json").write_text(json.dumps(metrics))
    lines = summary(tmp_path).splitlines()
    assert lines[0].startswith("holdout MAP@3 0.9123 on 1,200 held-apart rows, submitted method ")
    assert "blend_balanced; test MAP@3 0.9000" in lines[0]
    assert "base 0.9000, seq 0.8800" in lines[1] and "2,400 rows" in lines[2]
    assert lines[3] == "pictures: reports/per_class_map3.png"
    assert "make exp" in lines[-1] and "make show" in lines[-1] and "make submit" in lines[-1]
    assert len(lines) <= 6
