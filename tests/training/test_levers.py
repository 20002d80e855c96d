"""End-to-end, tiny settings: the model levers through `dvc exp run` in a copy of the repo --
a local weights file DVC tracks by content, a finetune member warm-started at a larger size
and trained on pseudo-labelled test drawings too, ordered after the member it starts from
(its model) and its teachers' predictions (the pseudo@ stage), and a misspelt family stopped
in one line (the families themselves build and train in tests/test_backbones.py)."""

import keras
import pytest
import yaml

from tests.pipeline_utils import (
    check_headline,
    check_submission,
    dvc,
    make_repo,
    stages_run,
    status,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WEIGHTS = "data/weights/mobilenet_035.weights.h5"


def _write_weights(repo, seed: int) -> None:
    keras.utils.set_random_seed(seed)
    net = keras.applications.MobileNet(
        include_top=False, weights=None, input_shape=(32, 32, 1), pooling="avg", alpha=0.35
    )
    net.save_weights(repo / WEIGHTS)


def test_families_weights_warm_start_and_pseudo_labels(tmp_path):
    repo = make_repo(tmp_path)
    _write_weights(repo, seed=1)
    out = dvc(
        "exp",
        "run",
        "-S",
        f"++members.base.weights={WEIGHTS}",
        "-S",
        "++finetune.big.init_from=base",
        "-S",
        "++finetune.big.img_size=40",
        "-S",
        "++finetune.big.pseudo_share=0.5",
        "-S",
        "++finetune.big.pseudo_from=[base]",  # a list of teachers (here of one)
        cwd=repo,
    ).stdout
    ran = stages_run(out)
    # DVC orders the finetune member after the member it starts from (its model) and after
    # its pseudo-labels, which come after the teachers' predictions
    assert ran.index("train@base") < ran.index("finetune@big"), ran
    assert ran.index("predict@base") < ran.index("pseudo@big") < ran.index("finetune@big"), ran
    assert ran.index("finetune@big") < ran.index("finetune_predict@big") < ran.index("ensemble")
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    assert {"models/base/model.keras", "data/pseudo/big"} <= {
        d["path"] for d in lock["finetune@big"]["deps"]
    }
    assert "data/predictions/members" in {d["path"] for d in lock["pseudo@big"]["deps"]}
    assert "data/weights" in {d["path"] for d in lock["train@base"]["deps"]}
    assert "big starts from base's model" in out
    assert "big: 12 of 24 test drawings pseudo-labelled by base" in out  # half of 6 x 4
    assert "big adds 12 test drawings pseudo-labelled by base" in out  # and trained on
    metrics = check_headline(repo)
    assert set(metrics["members"]) == {"base", "big"}
    check_submission(repo, 6 * 4)

    # pseudo@big depends on every member's predictions (DVC cannot list its teachers), but
    # a change there that leaves its teachers' predictions alone (here: a file beside them)
    # re-runs it into the same bytes, and DVC then trains nothing of big's again
    (repo / "data/predictions/members/NOTES.txt").write_text("not a member\n")
    assert set(status(repo)) == {"pseudo@big", "ensemble"}, status(repo)
    again = stages_run(dvc("repro", cwd=repo).stdout)
    assert sorted(again) == ["ensemble", "pseudo@big", "source"], again
    (repo / "data/predictions/members/NOTES.txt").unlink()
    dvc("repro", cwd=repo)

    # the weights file's bytes are a dependency: new bytes make training stale (every
    # member's: the train stages depend on the whole data/weights folder)
    assert status(repo) == {}
    _write_weights(repo, seed=2)
    stale = status(repo)
    assert stale["train@base"] == [{"changed deps": {"data/weights": "modified"}}], stale

    # a misspelt family stops the stage in one line, with the closest name
    bad = dvc("exp", "run", "-S", "arch=densenet12", cwd=repo, check=False)
    text = bad.stdout + bad.stderr
    assert bad.returncode != 0
    assert "unknown arch densenet12; did you mean densenet121?" in text
    assert "Traceback" not in text
