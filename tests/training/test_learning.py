"""The model must actually learn: a short run on 8 synthetic classes beats chance by far on
the holdout (inference mode). Guards against bugs that only show at inference, such as
BatchNorm moving statistics that never settle (train accuracy high, holdout at chance)."""

import copy

import pytest
import yaml

from doodle.config import parse_params
from doodle.data.sharding import shard_dataset
from doodle.data.synthetic import write_synthetic
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_short_training_run_learns(tmp_path):
    write_synthetic(tmp_path / "raw", train_per_class=200, test_per_class=2, seed=5, n_classes=8)
    shard_dataset(
        tmp_path / "raw",
        tmp_path / "shards",
        n_shards=2,
        val_size=200,
        seed=0,
        report_path=tmp_path / "shard.json",
    )
    raw = copy.deepcopy(yaml.safe_load((ROOT / "params.yaml").read_text()))
    raw["img_size"], raw["arch"] = 32, "mobilenetv2"
    raw["train"].update(
        alpha=0.35, batch_size=32, epochs=3, steps_per_epoch=50, learning_rate=0.003, jit=False
    )
    raw["runtime"].update(workers=1, checkpoint_every=0, verbose=0, eval_batch_size=100)
    params = parse_params(raw)
    from doodle.training.fit import TrainPaths, train_member

    paths = TrainPaths(
        tmp_path / "shards", tmp_path / "tfrecord", tmp_path / "m", tmp_path / "live", None, None
    )
    summary = train_member(params.member("base"), params.runtime, paths)
    # chance MAP@3 with 8 classes is (1 + 1/2 + 1/3) / 8 = 0.23; twice that at least
    assert summary["val_map3"] > 0.46, summary
    assert (tmp_path / "m" / "model.keras").is_file()
