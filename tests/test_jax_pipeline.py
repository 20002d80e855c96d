"""The README's JAX line, `KERAS_BACKEND=jax dvc repro`, typed in an activated environment
on tiny params: every stage runs under JAX, with jit-compiled train and predict steps (as
on a GPU box, not eagerly), and the submission is valid. (The stroke-sequence family trains,
evaluates and resumes under JAX in tests/test_multiprocess.py.)"""

import json
import re

import pytest

from tests.pipeline_utils import (
    ALL_STAGES,
    check_headline,
    check_submission,
    doc_files,
    make_repo,
    shell,
    stages_run,
)

pytestmark = pytest.mark.e2e


def test_keras_backend_jax_dvc_repro(tmp_path):
    docs = "".join(p.read_text() for p in doc_files())
    line = re.search(r"`(KERAS_BACKEND=jax dvc repro)`", docs)
    assert line, "the docs no longer give the JAX line"
    # jit: true, what `jit: auto` picks on a GPU (on a CPU auto runs JAX op by op); grey
    # images (test_training.py covers order3 on TensorFlow). One member: each Keras stage
    # costs seconds of start-up and tracing, and the ensemble's blending of several members
    # does not depend on the backend (tests/test_pipeline.py).
    repo = make_repo(
        tmp_path,
        {
            "train": {"steps_per_epoch": 2, "jit": True},
            "runtime": {"eager": False},
        },
    )
    out = shell(line.group(1), repo).stdout
    assert sorted(stages_run(out)) == sorted(ALL_STAGES), out
    assert "train: base: mobilenet_035 32px x1" in out
    check_submission(repo, 6 * 4)
    metrics = check_headline(repo)  # the headlines re-derived from the written files
    live = json.loads((repo / "dvclive/base/metrics.json").read_text())
    assert {"val_map3", "input_wait", "step_time_s"} <= set(live)  # measured under JAX
    assert set(metrics["members"]) == {"base"}
    # the model was built and saved by JAX and loads back with the input the params ask for
    from doodle.models.build import load_model

    assert load_model(repo / "models/base/model.keras").input_shape == (None, 32, 32, 1)
