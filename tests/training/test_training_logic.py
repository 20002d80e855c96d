import keras
import numpy as np
import pytest

from doodle.training.checkpoint import fit_segments
from doodle.training.hardware import Device, choose_precision, jit_setting, set_precision
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


def gpu(name: str, cc: tuple[int, int] | None) -> Device:
    return Device("gpu", name, cc)


@pytest.mark.parametrize(
    "devs, policy, why",
    [
        ([Device("cpu")], "float32", "CPU"),
        ([Device("tpu", "TPU")], "mixed_bfloat16", "TPU"),
        ([gpu("NVIDIA H200", (9, 0))], "mixed_bfloat16", "compute capability 9.0 (bf16 units)"),
        ([gpu("NVIDIA A100-SXM4-40GB", (8, 0))], "mixed_bfloat16", "8.0 (bf16 units)"),
        ([gpu("Tesla T4", (7, 5))] * 2, "mixed_float16", "7.5 (no bf16 units; fp16 + loss"),
        ([gpu("Tesla V100-SXM2-16GB", (7, 0))], "mixed_float16", "7.0"),
        ([gpu("Tesla P100-PCIE-16GB", (6, 0))], "mixed_float16", "Tesla P100-PCIE-16GB"),
        ([gpu("Tesla K80", (3, 7))], "float32", "no fast half precision"),
        ([gpu("A100", (8, 0)), gpu("Tesla T4", (7, 5))], "mixed_float16", "7.5"),  # the slowest
        ([gpu("?", None)], "float32", "compute capability unknown"),
    ],
)
def test_auto_precision_follows_the_hardware(devs, policy, why):
    got, reason = choose_precision("auto", devs)
    assert got == policy and why in reason, reason


def test_precision_set_by_hand_and_jit_choices():
    t4 = [gpu("Tesla T4", (7, 5))]
    try:
        assert set_precision("bf16", t4)[0] == "mixed_bfloat16"  # as set, whatever the GPU
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
        assert set_precision("off", t4)[0] == "float32"
        with pytest.raises(ValueError, match="mixed_precision"):
            set_precision("int8", t4)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert jit_setting("auto", "cpu") is False and jit_setting("auto", "gpu") == "auto"
    assert jit_setting(True, "cpu") is True and jit_setting(False, "gpu") is False


def test_fp16_compiles_with_loss_scaling():
    """Under fp16 (older GPUs) Keras wraps the optimizer in a LossScaleOptimizer."""
    from tests.models.test_build import build

    try:
        set_precision("fp16", [gpu("Tesla T4", (7, 5))])
        model = build("mobilenet_025", 32, 1, 3)
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert model.layers[-1].dtype_policy.name == "float32"  # the head stays float32
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize(
    "mode, backend",
    [("mirrored", "jax"), ("multiworker", "jax"), ("tpu", "jax"), ("data_parallel", "tensorflow")],
)
def test_a_distribute_mode_the_backend_cannot_honour_stops(mode, backend):
    from doodle.errors import ConfigError
    from doodle.training.hardware import _check_mode

    with pytest.raises(ConfigError, match=f"{mode} cannot run under KERAS_BACKEND={backend}"):
        _check_mode(mode, backend)
    _check_mode("auto", backend)


def test_private_keras_the_multiprocess_patch_needs_is_checked(monkeypatch):
    from types import SimpleNamespace

    from keras.src.backend.tensorflow import trainer

    from doodle.errors import DoodleError
    from doodle.training.multiworker import check_private_keras

    check_private_keras(trainer)  # this Keras has them all
    renamed = SimpleNamespace(reduce_per_replica=1, TensorFlowTrainer=trainer.TensorFlowTrainer)
    with pytest.raises(DoodleError, match=f"Keras {keras.__version__} lacks .*_collective_all"):
        check_private_keras(renamed)
    # a model's own attributes (set when it is made, None until compiled) are checked too
    model = SimpleNamespace(_compile_metrics=None, _distribute_strategy=None)
    monkeypatch.setattr(keras, "Sequential", lambda: model)
    with pytest.raises(DoodleError, match="lacks a keras.Model._compile_loss,"):
        check_private_keras(trainer)
