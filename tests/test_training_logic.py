import keras
import numpy as np
import pytest

from doodle.training.checkpoint import fit_segments
from doodle.training.hardware import jit_setting, set_precision
from doodle.training.schedule import lr_schedule


def test_fit_segments_fresh_and_resumed():
    assert fit_segments(3, 0, 0) == [(0, 0, 3)]
    # killed at epoch 1, step 4: finish epoch 1 from step 4, then epoch 2
    assert fit_segments(3, 1, 4) == [(1, 4, 2), (2, 0, 3)]
    assert fit_segments(3, 2, 4) == [(2, 4, 3)]
    assert fit_segments(3, 3, 0) == []  # all done: only the model save remains


def test_one_cycle_schedule():
    sched = lr_schedule(0.01, total_steps=100, warmup_steps=10)
    lr = np.array([float(keras.ops.convert_to_numpy(sched(s))) for s in (0, 5, 10, 55, 99)])
    assert lr[0] == pytest.approx(0.001, rel=1e-3)  # warm-up starts at lr/10
    assert lr[0] < lr[1] < lr[2] == pytest.approx(0.01, rel=1e-3)  # ...rises to lr
    assert lr[2] > lr[3] > lr[4] and lr[4] < 0.001  # then cosine decay
    flat = lr_schedule(0.01, total_steps=10, warmup_steps=0)
    assert float(keras.ops.convert_to_numpy(flat(0))) == pytest.approx(0.01)


def test_precision_and_jit_choices():
    try:
        assert set_precision("auto", "cpu") == "float32"
        assert set_precision("auto", "gpu") == "mixed_bfloat16"
        assert set_precision("fp16", "gpu") == "mixed_float16"
        with pytest.raises(ValueError, match="mixed_precision"):
            set_precision("int8", "gpu")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert jit_setting("auto", "cpu") is False and jit_setting("auto", "gpu") == "auto"
    assert jit_setting(True, "cpu") is True and jit_setting(False, "gpu") is False
