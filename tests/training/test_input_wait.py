"""The input wait (doodle/training/input_wait.py): its arithmetic on made-up time stamps,
the warning, and tiny training runs on both engines in which a loader slowed on purpose
waits far more than a normal one (the two runs compared with each other, no threshold in
seconds), and -- on JAX with two workers -- every step trains on the very batch the stream
defines for it (Keras' enqueuer once served a set-up read's leftovers as the next epoch's
batches; the input-wait stamps showed it)."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from doodle.training import input_wait as iw
from tests.pipeline_utils import ROOT, env


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(iw.time, "perf_counter", c)
    return c


def _step(stamps, clock, batch, begin, end, ready=None):
    """One step: its batch's stamps (``{global step: time}``), then begin and end."""
    for key, t in (ready or {}).items():
        clock.t = t
        iw.batch_ready(key)
    clock.t = begin
    stamps.on_train_batch_begin(batch)
    clock.t = end
    stamps.on_train_batch_end(batch)


def _fit(wait, stamps, steps, epoch, clock, t0=0.0):
    stamps.set_params({"steps": steps})
    clock.t = t0
    stamps.on_train_begin()
    stamps.on_epoch_begin(epoch)


def test_wait_is_the_time_until_a_batch_is_ready_and_a_step_without_stamp_is_unmeasured(clock):
    wait = iw.InputWait(steps_per_epoch=4)
    stamps = wait.stamps(lookahead=0)
    _fit(wait, stamps, 4, 0, clock)
    _step(stamps, clock, 0, begin=0.1, end=0.6, ready={0: 0.5})  # waited 0.5 of 0.6
    _step(stamps, clock, 1, begin=0.61, end=0.9, ready={1: 0.55})  # ready early: 0.01
    _step(stamps, clock, 2, begin=0.95, end=1.0)  # no stamp: left out, never "no wait"
    _step(stamps, clock, 3, begin=1.05, end=1.6, ready={3: 1.5})  # 0.5 of 0.6
    logs = {}
    wait.on_epoch_end(0, logs)
    stamps.on_train_end()
    assert logs["input_wait"] == pytest.approx(1.01 / 1.5)
    assert logs["step_time_s"] == pytest.approx((1.5 - 1.01) / 3)
    assert wait.current.unmeasured == 1
    assert "input wait 67.3%" in wait.summary()
    iw.batch_ready(7)  # no fit running: ignored
    assert not stamps.ready


def test_one_batch_ahead_and_a_resumed_epoch_use_the_right_stamps(clock):
    # JAX on a GPU fetches batch k + 1 before running step k: step k waits for both. A
    # resumed segment starts mid-epoch (epoch 2, step 3 of 5): its keys start at 13.
    wait = iw.InputWait(steps_per_epoch=5)
    stamps = wait.stamps(first=2, start=3, lookahead=1)
    _fit(wait, stamps, 2, 2, clock)
    _step(stamps, clock, 0, begin=0.0, end=0.5, ready={13: 0.0, 14: 0.4})  # waits for 14
    _step(stamps, clock, 1, begin=0.5, end=1.0)  # 14, the last: nothing ahead
    logs = {}
    wait.on_epoch_end(2, logs)
    assert logs["input_wait"] == pytest.approx(0.4 / 1.0)
    stamps.on_epoch_begin(3)  # the next epoch starts at step 0: key 15
    _step(stamps, clock, 0, begin=1.0, end=1.2, ready={15: 1.1, 16: 1.0})
    wait.on_epoch_end(3, logs)
    assert logs["input_wait"] == pytest.approx(0.1 / 0.2)
    stamps.on_train_end()


def test_warning_names_the_knobs_only_above_the_share(monkeypatch):
    monkeypatch.setattr(iw, "cpu_cores", lambda: 16)
    wait = iw.InputWait(steps_per_epoch=10)
    wait.epoch, wait.worst = 2, (0.05, 0.1, 0)
    assert wait.warning("base", 2, 128) is None
    wait.worst = (0.34, 0.1, 0)
    line = wait.warning("base", 2, 128)
    assert line.startswith("train: warning: base waited for its input 34% of the time in epoch 3")
    assert "raise runtime.workers (now 2; 16 cores here)" in line
    assert "lower img_size (now 128" in line
    everything = wait.warning("seq", 16, None)  # a sequence member renders nothing
    assert "already covers the 16 cores" in everything and "img_size" not in everything
    wait.worst = (math.nan, math.nan, 0)
    assert wait.warning("base", 2, 128) is None
    assert wait.summary() == "input wait not measured"


def test_one_process_gathers_its_own_row():
    rows = iw.gather_rows(None, [0.25, 0.5])
    assert rows.shape == (1, 2) and rows[0].tolist() == [0.25, 0.5]


def drive(out: str, backend: str) -> None:
    """Run in a subprocess: two tiny train_member runs, one with a loader slowed on
    purpose; on JAX also record the batches the steps took."""
    import contextlib
    import io
    import time
    from pathlib import Path

    import yaml

    from doodle.config import parse_params
    from doodle.data.sharding import shard_dataset
    from doodle.data.shards import train_shard_paths
    from doodle.data.synthetic import write_synthetic
    from doodle.training import dataset
    from doodle.training.fit import TrainPaths, train_member

    tmp = Path(out).parent
    write_synthetic(tmp / "raw", train_per_class=40, test_per_class=2, seed=5, n_classes=6)
    shard_dataset(tmp / "raw", tmp / "shards", 2, 30, 0, tmp / "shard.json")
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["img_size"], raw["arch"] = 32, "mobilenet"
    raw["train"].update(
        alpha=0.35, batch_size=16, epochs=2, steps_per_epoch=4, jit=backend == "jax"
    )
    raw["runtime"].update(workers=2, checkpoint_every=0, verbose=0, eager=False)
    params = parse_params(raw)
    cfg = params.member("base")
    seen: list[float] = []
    if backend == "jax":
        from keras.src.backend.jax.trainer import JAXEpochIterator

        batches = JAXEpochIterator._get_iterator

        def recorded(self):
            for b in batches(self):
                if len(b) == 2:  # training (x, y); the holdout predicts on (x,)
                    seen.append(float(np.asarray(b[0], np.float64).sum()))
                yield b

        JAXEpochIterator._get_iterator = recorded
    result = {}
    for name, delay in (("normal", 0.0), ("slowed", 0.3)):
        encode = dataset.DrawingDataset.encode
        if delay:

            def slowed(self, *a, _encode=encode, _delay=delay, **k):
                time.sleep(_delay)
                return _encode(self, *a, **k)

            dataset.DrawingDataset.encode = slowed
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            paths = TrainPaths(
                tmp / "shards", tmp / "tfrecord", tmp / name, tmp / f"live-{name}", None, None
            )
            train_member(cfg, params.runtime, paths)
        dataset.DrawingDataset.encode = encode
        live = json.loads((tmp / f"live-{name}" / "metrics.json").read_text())
        result[name] = {"live": live, "output": text.getvalue(), "seen": seen[:]}
        seen.clear()
    stream = dataset.member_dataset(
        cfg,
        train_shard_paths(tmp / "shards"),
        batch_size=16,
        training=True,
        seed=cfg.seed,
        augment=cfg.augment,
        shuffle_buffer=cfg.shuffle_buffer,
        steps_per_epoch=4,
        n_classes=6,
    )
    result["expected"] = [
        float(stream.batch_at(e, s)[0].astype(np.float64).sum()) for e in (0, 1) for s in range(4)
    ]
    Path(out).write_text(json.dumps(result))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_slowed_loader_waits_far_more_than_a_normal_one(tmp_path, backend):
    out = tmp_path / "result.json"
    code = f"from tests.training.test_input_wait import drive; drive({str(out)!r}, {backend!r})"
    p = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env() | {"KERAS_BACKEND": backend},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    res = json.loads(out.read_text())
    normal, slowed = res["normal"], res["slowed"]
    fast, slow = normal["live"]["input_wait"], slowed["live"]["input_wait"]
    print(f"{backend}: input wait normal {fast:.1%}, slowed {slow:.1%}")
    # The slowed loader sleeps 0.3 s a shard it reads, far longer than a tiny step: the
    # loop waits most of the time; the normal loader is done long before each step.
    assert slow > 0.5 and slow > 3 * fast, (fast, slow)
    for run in (normal, slowed):
        assert run["live"]["step_time_s"] > 0
        assert "; input wait " in run["output"] and "s a step without it)" in run["output"]
    assert "train: warning: base waited for its input" in slowed["output"]
    assert "runtime.workers" in slowed["output"] and "img_size" in slowed["output"]
    # the same batches, so the same training: only the clock differs
    assert normal["live"]["loss"] == pytest.approx(slowed["live"]["loss"], abs=1e-4)
    if backend == "jax":  # every step took the batch the stream defines for it
        for run in (normal, slowed):
            assert run["seen"] == pytest.approx(res["expected"]), (run["seen"], res["expected"])
