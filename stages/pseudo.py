"""DVC stage `pseudo@<member>`: teachers' test predictions -> data/pseudo/<member>/."""

import sys
from pathlib import Path

from doodle.cli import run_stage  # first: quiet start-up, environment check
from doodle.config import load_params
from doodle.training.pseudo import write_pseudo_labels

MEMBER = sys.argv[1] if len(sys.argv) > 1 else "big"


def main() -> None:
    cfg = load_params().member(MEMBER)
    out = Path("data/pseudo") / MEMBER
    teachers = {t: Path("data/predictions/members") / t / "test.npz" for t in cfg.pseudo_from}
    s = write_pseudo_labels(teachers, Path("data/shards/test.qds"), cfg.pseudo_share, out)
    if not cfg.pseudo_share:
        print(f"pseudo: {MEMBER}: no pseudo-labels (pseudo_share 0) -> {out}")
        return
    print(
        f"pseudo: {MEMBER}: {s['rows']:,} of {s['of']:,} test drawings pseudo-labelled by "
        f"{' + '.join(s['teachers'])} (mean confidence {s['confidence']:.3f}) -> {out}"
    )


if __name__ == "__main__":
    run_stage("pseudo", main, (f"data/pseudo/{MEMBER}",))
