"""Train/predict stages for real, on tiny shards: both backends, the stroke-sequence
family, and a SIGKILL mid-epoch followed by a resume."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.pipeline_utils import env, make_repo, run

pytestmark = [pytest.mark.slow, pytest.mark.e2e]  # trains through the stage scripts

PY = sys.executable


@pytest.fixture(scope="module")
def sharded_repo(tmp_path_factory):
    """A repo copy with download + shard done (stage scripts run directly, no DVC)."""
    repo = make_repo(tmp_path_factory.mktemp("trainrepo"))
    run([PY, "-m", "stages.download"], cwd=repo)
    run([PY, "-m", "stages.shard"], cwd=repo)
    return repo


def _set_params(repo, member="base", **train):
    import yaml

    p = yaml.safe_load((repo / "params.yaml").read_text())
    for k, v in train.items():
        if k in p["runtime"]:
            p["runtime"][k] = v
        elif member != "base":  # a member of its own: its overrides
            p["members"].setdefault(member, {})[k] = v
        elif k in ("img_size", "arch", "seed"):
            p[k] = v
        else:
            p["train"][k] = v
    (repo / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))


@pytest.fixture(scope="module")
def trained_repo(sharded_repo):
    """The TensorFlow backend trains and predicts member ``base`` through the stage scripts,
    graph mode, order3 (JAX, grey: tests/test_jax_pipeline.py runs the whole DAG)."""
    e = env() | {"KERAS_BACKEND": "tensorflow"}
    _set_params(
        sharded_repo,
        img_size=32,
        arch="mobilenet_035",
        encoding="order3",
        epochs=1,
        steps_per_epoch=2,
        eager=False,
    )
    for stage in ("train", "predict"):
        p = subprocess.run(
            [PY, f"stages/{stage}.py", "base"],
            cwd=sharded_repo,
            env=e,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return sharded_repo


def test_train_and_predict_tensorflow_order3(trained_repo):
    _check_outputs(trained_repo)
    from doodle.models.build import load_model

    model = load_model(trained_repo / "models/base/model.keras")
    assert model.input_shape == (None, 32, 32, 3)


def _check_outputs(repo, member="base"):
    import yaml

    params = yaml.safe_load((repo / "params.yaml").read_text())
    rows, classes = params["shard"]["val_size"], params["data"]["synthetic"]["classes"]
    pred = np.load(repo / f"data/predictions/members/{member}/holdout.npz")
    assert pred["probs"].shape == (rows, classes) and pred["probs"].dtype == np.float16
    assert np.allclose(pred["probs"].astype(np.float32).sum(1), 1, atol=1e-2)
    live = json.loads((repo / f"dvclive/{member}/metrics.json").read_text())
    keys = ("loss", "accuracy", "top3", "val_map3", "learning_rate", "images_per_s")
    for key in (*keys, "input_wait", "step_time_s"):
        assert key in live, key


def _read_state(path):
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):  # being replaced right now
        return None


def test_sigkill_mid_epoch_resumes_from_checkpoint(sharded_repo, tmp_path):
    """The stroke-sequence family (point sequences from the same shards, no rendering; the
    smallest graph to trace, and the checkpoint logic is every family's) killed early in
    its second epoch resumes there; its model (custom masking layers) then predicts. A member
    of its own, ``seq``: the other tests' ``base`` stays as they left it."""
    epochs, steps, every = 2, 10, 2
    _set_params(
        sharded_repo,
        "seq",
        arch="lstm",
        seq_len=24,
        epochs=epochs,
        steps_per_epoch=steps,
        checkpoint_every=every,
        eager=False,
        ema=0.9,  # the average's state resumes with the optimizer's
    )
    ckpt = sharded_repo / "models/seq/checkpoints/state.json"
    with open(tmp_path / "train.log", "w") as log:
        proc = subprocess.Popen(
            [PY, "-m", "stages.train", "seq"],
            cwd=sharded_repo,
            env=env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.time() + 400
        while time.time() < deadline and proc.poll() is None:
            state = _read_state(ckpt)
            if state and state["epoch"] == 1 and state["step"] >= 2:  # early in epoch 2
                break
            time.sleep(0.02)
        assert proc.poll() is None, "training ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    state = _read_state(ckpt)
    assert state["step"] % every == 0
    # killed mid-run: no model yet, and no half-written one
    assert not (sharded_repo / "models/seq/model.keras").exists()
    assert not list((sharded_repo / "models/seq").glob(".model.keras.tmp-*"))
    out = run([PY, "-m", "stages.train", "seq"], cwd=sharded_repo).stdout
    assert "lstm 24 points" in out
    assert "seq saves the moving average of its weights (ema 0.9)" in out
    assert f"resuming seq at epoch {state['epoch']}, step {state['step']}" in out
    done = state["epoch"] * steps + state["step"]
    assert f"(optimizer step {done})" in out  # optimizer state (and LR position) restored
    import keras

    from doodle.models.build import load_model

    model = load_model(sharded_repo / "models/seq/model.keras")
    # same total step count as an uninterrupted run: no step repeated or skipped
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == epochs * steps
    assert not (sharded_repo / "models/seq/checkpoints").exists()
    run([PY, "-m", "stages.predict", "seq"], cwd=sharded_repo)
    _check_outputs(sharded_repo, "seq")


def test_predict_killed_mid_run_keeps_old_outputs(trained_repo):
    """SIGKILL after the holdout file is written, before the test file: the old prediction
    folder (the fixture's) stays whole (both files byte-identical), only a temp sibling is
    left."""
    import yaml

    sharded_repo = trained_repo
    out = sharded_repo / "data/predictions/members/base"
    old = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(old) == ["holdout.npz", "test.npz"]
    # the killed run predicts in small batches with flip TTA: a wider window to kill in
    p = yaml.safe_load((sharded_repo / "params.yaml").read_text())
    p["predict"]["tta_flip"] = True
    p["runtime"]["predict_batch_size"] = 4
    (sharded_repo / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    proc = subprocess.Popen(
        [PY, "-m", "stages.predict", "base"],
        cwd=sharded_repo,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if list(out.parent.glob(".base.tmp-*/holdout.npz")):
            break
        time.sleep(0.002)
    assert proc.poll() is None, "predict finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == old
    # the next run completes and clears the leftover temp folder
    run([PY, "-m", "stages.predict", "base"], cwd=sharded_repo)
    assert not list(out.parent.glob(".base.tmp-*"))
