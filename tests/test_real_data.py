"""End-to-end on real drawings: the real Quick, Draw! sample (339 classes, Kaggle's layout,
read in place from ../shared) through every stage with `dvc repro`."""

import json

import pytest

from tests.conftest import REAL_SAMPLE
from tests.pipeline_utils import ALL_STAGES, check_submission, dvc, make_repo, stages_run

pytestmark = pytest.mark.e2e


@pytest.mark.skipif(not REAL_SAMPLE.is_dir(), reason="needs the real data in ../shared/data")
def test_real_sample_flows_through_every_stage(tmp_path):
    repo = make_repo(
        tmp_path,
        {
            "data": {"source": "local", "local": {"path": str(REAL_SAMPLE)}},
            "shard": {"n_shards": 10, "val_size": 200},
        },
    )
    out = dvc("repro", cwd=repo).stdout
    assert stages_run(out) == ALL_STAGES
    check_submission(repo, 1695)
    assert json.loads((repo / "reports/shard.json").read_text())["classes"] == 339
    m = json.loads((repo / "reports/metrics.json").read_text())
    assert "test_map3" in m  # the real sample's test labels are known
