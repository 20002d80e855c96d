"""End to end, tiny settings: `dvc exp run -S arch=strokegrid` gives a valid submission under
TensorFlow (with a finetune member warm-started on a larger grid and longer point sequences,
with the weights' moving average, taught by the strokegrid member's pseudo-labels) and under
`KERAS_BACKEND=jax`; on Kaggle's raw layout, `train.encoding: time3` gives the family its
time features."""

import json
import zipfile

import pytest

from tests.conftest import RAW_SAMPLE
from tests.pipeline_utils import check_headline, check_submission, dvc, make_repo, shell, stages_run

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# tiny points and grid: the test is about the wiring
SMALL = ["-S", "train.seq_len=24", "-S", "train.grid_size=8"]


def _input_shapes(model_file) -> list:
    """The input shapes saved in a .keras file (from its config, no Keras import)."""
    with zipfile.ZipFile(model_file) as z:
        layers = json.loads(z.read("config.json"))["config"]["layers"]
    return [
        layer["config"]["batch_shape"] for layer in layers if layer["class_name"] == "InputLayer"
    ]


def test_dvc_exp_run_arch_strokegrid_tensorflow(tmp_path):
    repo = make_repo(tmp_path)
    extra = {
        "init_from": "base",
        "grid_size": 16,  # a larger grid and longer sequences: every weight carries over
        "seq_len": 32,
        "ema": 0.9,
        "pseudo_share": 0.5,  # the strokegrid member teaches
    }
    args = [a for k, v in extra.items() for a in ("-S", f"++finetune.big.{k}={v}")]
    out = dvc("exp", "run", "-S", "arch=strokegrid", *SMALL, *args, cwd=repo).stdout
    ran = stages_run(out)
    assert ran.index("predict@base") < ran.index("pseudo@big") < ran.index("finetune@big")
    assert "train: base: strokegrid 24 points x8 on a 8x8 grid (sum)" in out
    assert (
        "train: big: strokegrid 32 points x8 on a 16x16 grid (sum), weights' moving average 0.9"
        in out
    )
    assert "big starts from base's model" in out and "big saves the moving average" in out
    assert "big: 12 of 24 test drawings pseudo-labelled by base" in out
    check_submission(repo, 6 * 4)
    metrics = check_headline(repo)
    assert set(metrics["members"]) == {"base", "big"}
    assert _input_shapes(repo / "models/big/model.keras") == [[None, 32, 8]]


def test_keras_backend_jax_dvc_exp_run_arch_strokegrid(tmp_path):
    repo = make_repo(tmp_path)
    # jit-compiled steps, as on a GPU box (op by op, JAX dispatches the scatter's many small
    # operations one at a time); with the country input
    line = (
        f"KERAS_BACKEND=jax dvc exp run -S arch=strokegrid {' '.join(SMALL)} "
        "-S train.country=true -S train.jit=true -S runtime.eager=false"
    )
    out = shell(line, repo).stdout
    assert {"train@base", "predict@base", "ensemble"} <= set(stages_run(out))
    assert "train: base: strokegrid 24 points x8 on a 8x8 grid (sum), + country" in out
    check_submission(repo, 6 * 4)
    assert _input_shapes(repo / "models/base/model.keras") == [[None, 24, 8], [None]]


@pytest.mark.skipif(not RAW_SAMPLE.is_dir(), reason="needs the real data in ../shared/data")
def test_time3_on_the_raw_sample_gives_the_points_their_times(tmp_path):
    repo = make_repo(tmp_path, {"shard": {"n_shards": 4, "val_size": 60}})
    out = dvc(
        "exp",
        "run",
        "-S",
        "data.source=local",
        "-S",
        f"data.local.path={RAW_SAMPLE}",
        "-S",
        "data.local.layout=raw",
        "-S",
        "arch=strokegrid",
        "-S",
        "train.encoding=time3",
        *SMALL,
        cwd=repo,
    ).stdout
    # the time features: 10 a point (time and dt added to the 8 of drawings without times)
    assert "train: base: strokegrid 24 points x10 on a 8x8 grid" in out
    assert _input_shapes(repo / "models/base/model.keras") == [[None, 24, 10]]
    report = json.loads((repo / "data/shards/report.json").read_text())
    assert report["layout"] == "raw"
    check_submission(repo, 1518)
