"""DVC stage `train@<member>`: data/shards -> models/<member>/model.keras (+ dvclive/<member>)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from doodle.cli import run_stage  # noqa: E402  (first: quiet start-up, environment check)
from doodle.config import load_params  # noqa: E402
from doodle.launch import is_chief, launch, launched  # noqa: E402

MEMBER = sys.argv[1] if len(sys.argv) > 1 else "base"


def main() -> None:
    params = load_params()
    cfg = params.member(MEMBER)  # checked before Keras is imported
    if params.runtime.processes > 1 and not launched():
        # this stage again as N cooperating processes, one GPU each; the chief writes
        code = launch([sys.executable, *sys.argv], params.runtime.processes, gpu_per_process=True)
        if code:
            raise SystemExit(code)
        return
    from doodle.training.fit import train_member

    train_member(
        cfg, params.runtime, Path("data/shards"), Path("models") / MEMBER, Path("dvclive") / MEMBER
    )


if __name__ == "__main__":
    # Of several training processes (python -m doodle.launch), the chief alone writes.
    outputs = (f"models/{MEMBER}/model.keras",) if is_chief() else ()
    run_stage("train", main, outputs, uses_keras=True)
