"""DVC stages `predict@<member>` and `finetune_predict@<member>`: model + shards ->
data/predictions/<section>/<member>/{holdout,test}.npz (section: members or finetune)."""

import sys
from pathlib import Path

from doodle.cli import run_stage  # first: quiet start-up, environment check
from doodle.config import load_params

MEMBER = sys.argv[1] if len(sys.argv) > 1 else "base"


def main() -> None:
    params = load_params()
    from doodle.models.backbones import check_members

    check_members(params)  # every arch names a backbone that fits
    cfg = params.member(MEMBER)
    from doodle.gpu.guard import start

    start("predict", params.runtime)  # a leased GPU, then Keras; stops if it cannot use it
    from doodle.predict import predict_member

    predict_member(
        Path("models") / MEMBER / "model.keras",
        Path("data/shards"),
        Path("data/predictions") / params.section_of(MEMBER) / MEMBER,
        cfg,
        params.runtime,
        tta_flip=params.predict.tta_flip,
        tfrec_dir=Path("data/tfrecord"),
    )


if __name__ == "__main__":
    # the member's folder is under members/ or finetune/ (whichever exists is reported)
    outputs = tuple(f"data/predictions/{section}/{MEMBER}" for section in ("members", "finetune"))
    run_stage("predict", main, outputs)  # main loads Keras (doodle.gpu.guard)
