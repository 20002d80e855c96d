"""DVC stage `train@<member>`: data/shards -> models/<member>/model.keras (+ dvclive/<member>)."""

import sys
from pathlib import Path

from doodle.cli import run_stage  # first: quiet start-up, environment check
from doodle.config import load_params
from doodle.training.launch import is_chief, launch, launched

MEMBER = sys.argv[1] if len(sys.argv) > 1 else "base"


def main() -> None:
    params = load_params()
    from doodle.models.backbones import check_members

    check_members(params)  # every arch names a backbone that fits
    cfg = params.member(MEMBER)  # checked before Keras is imported
    from doodle.gpu.guard import start

    # lease this run's GPUs, then load Keras; stop here if the backend cannot use them
    state = start("train", params.runtime, params.runtime.processes)
    if params.runtime.processes > 1 and not launched():
        # this stage again as N cooperating processes, one (leased) GPU each; the chief writes
        code = launch(
            [sys.executable, *sys.argv],
            params.runtime.processes,
            gpu_per_process=True,
            gpus=state.given or None,
        )
        if code:
            raise SystemExit(code)
        return
    from doodle.training.fit import TrainPaths, train_member

    parent = cfg.init_from  # a finetune member: the member whose model it starts from
    paths = TrainPaths(
        shards=Path("data/shards"),
        tfrecord=Path("data/tfrecord"),
        model_dir=Path("models") / MEMBER,
        live_dir=Path("dvclive") / MEMBER,
        init_model=Path("models") / parent / "model.keras" if parent else None,
        pseudo=Path("data/pseudo") / MEMBER / "pseudo.qds" if cfg.pseudo_share else None,
    )
    train_member(cfg, params.runtime, paths)


if __name__ == "__main__":
    # Of several training processes (python -m doodle.training.launch), the chief alone writes.
    outputs = (f"models/{MEMBER}/model.keras",) if is_chief() else ()
    run_stage("train", main, outputs)  # main loads Keras (doodle.gpu.guard)
