"""The stroke-to-grid family: its points (resampled along the strokes, order and time
features, augmentation), the differentiable scatter onto the grid, the model (save, load,
country input, warm start to a larger grid and length), and a few training steps under
TensorFlow and JAX."""

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from doodle.data.strokes import pack
from doodle.models.build import build_model, load_model
from doodle.models.strokegrid import FEATURES, TIME_FEATURES, PointsToGrid, encode
from doodle.rendering.augment import flip_affines
from tests.conftest import ROOT

# two strokes: (10,20)->(30,20)->(30,60) (length 60), then a one-point dot at (200,100)
DRAWING = [([10, 30, 30], [20, 20, 60]), ([200], [100])]
F = {name: i for i, name in enumerate(TIME_FEATURES)}
KW = dict(
    alpha=0.5,
    weights=None,
    dropout=0.0,
    bn_momentum=0.9,
    seq_len=16,
    seq_features=len(FEATURES),
    grid_size=8,
    grid_reduce="sum",
    country=False,
)


def _xy(seq):
    return seq[..., F["x"]] * 128 + 127.5, seq[..., F["y"]] * 128 + 127.5


def test_points_are_resampled_along_the_strokes():
    seq = encode(pack([DRAWING]), None, 8, timed=False)
    assert seq.shape == (1, 8, len(FEATURES)) and seq.dtype == np.float32
    x, y = _xy(seq[0])
    # every stroke keeps its first point; the 6 spare points all go to the only stroke with
    # length, spread evenly from its first to its last point (7 points, 10 px apart)
    assert np.allclose(x, [10, 20, 30, 30, 30, 30, 30, 200])
    assert np.allclose(y, [20, 20, 20, 30, 40, 50, 60, 100])
    assert seq[0, :, F["valid"]].tolist() == [1] * 8
    assert seq[0, :, F["pen_up"]].tolist() == [0, 0, 0, 0, 0, 0, 1, 1]  # strokes' last points
    assert np.allclose(seq[0, :, F["order"]], np.arange(8) / 7)
    assert seq[0, :, F["stroke"]].tolist() == [0] * 7 + [1]
    assert np.allclose(seq[0, 1:, F["dx"]] * 32, np.diff(x)) and seq[0, 0, F["dx"]] == 0
    # longer drawings give more points, not other ones: the ends stay where they are
    long = encode(pack([DRAWING]), None, 32, timed=False)
    assert np.allclose(_xy(long[0])[0][[0, -2, -1]], [10, 30, 200])


def test_a_drawing_without_length_is_padded_and_empty_rows_are_zero():
    dots = encode(pack([[([5], [6]), ([7], [8])]]), None, 6, timed=False)
    assert dots[0, :, F["valid"]].tolist() == [1, 1, 0, 0, 0, 0]
    assert not dots[0, 2:].any()
    # more strokes than points: the first seq_len strokes' first points, the pen up at the end
    many = encode(pack([[([i], [i]) for i in range(5)]]), None, 3, timed=False)
    assert np.allclose(_xy(many[0])[0], [0, 1, 2]) and many[0, -1, F["pen_up"]] == 1
    with pytest.raises(ValueError, match="seq_len"):
        encode(pack([DRAWING]), None, 1, timed=False)


def test_times_are_interpolated_along_the_strokes():
    d = pack([DRAWING])
    d.t = np.array([0, 100, 300, 15_000], np.uint16)  # a 14.7 s pause before the dot
    seq = encode(d, None, 8, timed=True)
    assert seq.shape == (1, 8, len(TIME_FEATURES))
    assert np.array_equal(seq[..., : len(FEATURES)], encode(pack([DRAWING]), None, 8, False))
    t = seq[0, :, F["time"]] * 15_000
    assert np.allclose(t, [0, 50, 100, 150, 200, 250, 300, 15_000], atol=1e-2)
    assert np.allclose(seq[0, :7, F["dt"]], [0] + [0.05] * 6)
    assert seq[0, 7, F["dt"]] == 10.0  # capped at 10 s
    with pytest.raises(ValueError, match="times"):
        encode(pack([DRAWING]), None, 8, timed=True)


def test_flip_and_stroke_dropout_are_the_other_families():
    d = pack([DRAWING, [([0, 255], [0, 255])]])
    plain = encode(d, None, 9, timed=False)
    flipped = encode(d, None, 9, timed=False, affine=flip_affines(2))
    assert np.allclose(flipped[..., F["x"]], -plain[..., F["x"]])
    assert np.allclose(flipped[..., F["y"]], plain[..., F["y"]])
    strokes = {
        int(
            encode(pack([DRAWING]), None, 8, False, None, 0.5, np.array([s], np.uint64))[
                0, :, F["pen_up"]
            ].sum()
        )
        for s in range(40)
    }
    assert strokes == {1, 2}  # one stroke or both, never none


def _grid(reduce: str, feats: np.ndarray, xy: np.ndarray, valid: np.ndarray, size: int = 4):
    points = np.zeros((*xy.shape[:2], len(FEATURES)), np.float32)
    points[..., F["valid"]] = valid
    points[..., F["x"]], points[..., F["y"]] = (
        (xy[..., 0] - 127.5) / 128,
        (xy[..., 1] - 127.5) / 128,
    )
    layer = PointsToGrid(size, reduce)
    return layer, points


def test_points_to_grid_sums_or_maxes_per_cell_and_is_differentiable():
    # batch of 2, 3 points each; cells of 64 px on a 4x4 grid
    xy = np.array([[[10, 10], [50, 20], [200, 130]], [[250, 250], [0, 255], [70, 70]]], float)
    feats = np.arange(12, dtype=np.float32).reshape(2, 3, 2) + 1
    valid = np.array([[1, 1, 1], [1, 1, 0]], np.float32)  # the last point is padding
    layer, points = _grid("sum", feats, xy, valid)
    grid = keras.ops.convert_to_numpy(layer([feats, points]))
    assert grid.shape == (2, 4, 4, 2)
    assert np.allclose(grid[0, 0, 0], feats[0, 0] + feats[0, 1])  # both in cell (0, 0)
    assert np.allclose(grid[0, 2, 3], feats[0, 2])  # y 130 -> row 2, x 200 -> column 3
    assert np.allclose(grid[1, 3, 3], feats[1, 0]) and np.allclose(grid[1, 3, 0], feats[1, 1])
    assert np.isclose(grid.sum(), feats[0].sum() + feats[1, :2].sum())  # padding goes nowhere
    top = keras.ops.convert_to_numpy(PointsToGrid(4, "max")([feats, points]))
    assert np.allclose(top[0, 0, 0], np.maximum(feats[0, 0], feats[0, 1]))
    assert (top == 0).sum() == (grid == 0).sum()  # empty cells are 0, not -inf
    import tensorflow as tf

    x = tf.constant(feats)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = tf.reduce_sum(
            layer([x, points]) * np.arange(1, 33, dtype=np.float32).reshape(1, 4, 4, 2)
        )
    grad = tape.gradient(out, x).numpy()
    # d/d(feature) = the weight of the cell it went to; padding gets none
    assert np.allclose(grad[0, 0], [1, 2]) and np.allclose(grad[0, 1], [1, 2])
    assert np.allclose(grad[1, 2], 0) and np.abs(grad[1, :2]).min() > 0


def test_model_saves_loads_and_takes_the_country(tmp_path):
    d = pack([DRAWING, [([0, 99], [5, 250])]])
    x = encode(d, None, 16, timed=False)
    model = build_model("strokegrid", 64, 1, 5, **(KW | {"country": True}))
    assert [tuple(i.shape) for i in model.inputs] == [(None, 16, len(FEATURES)), (None,)]
    countries = np.array([3, 0], np.int32)
    p = keras.ops.convert_to_numpy(model((x, countries)))
    assert p.shape == (2, 5) and np.allclose(p.sum(1), 1, atol=1e-5)
    other = keras.ops.convert_to_numpy(model((x, np.array([7, 0], np.int32))))
    assert not np.allclose(other[0], p[0]) and np.allclose(other[1], p[1])
    model.save(tmp_path / "m.keras")
    again = load_model(tmp_path / "m.keras")
    assert np.allclose(keras.ops.convert_to_numpy(again((x, countries))), p, atol=1e-6)


def test_warm_start_carries_every_weight_to_a_larger_grid_and_length(tmp_path):
    from doodle.training.warm_start import warm_start

    small = build_model("strokegrid", 64, 1, 5, **KW)
    small.save(tmp_path / "small.keras")
    big = build_model("strokegrid", 64, 1, 5, **(KW | {"grid_size": 16, "seq_len": 32}))
    warm_start(big, tmp_path / "small.keras", "small")
    for a, b in zip(small.get_weights(), big.get_weights(), strict=True):
        assert np.array_equal(a, b)
    x = encode(pack([DRAWING]), None, 32, timed=False)
    assert keras.ops.convert_to_numpy(big(x)).shape == (1, 5)


# A few training steps and a prediction on both engines, the scatter's gradient on JAX: a
# subprocess per engine (the backend is chosen once per process).
_STEPS = textwrap.dedent(
    """
    import numpy as np, keras
    from doodle.data.strokes import pack
    from doodle.models.build import build_model
    from doodle.models.strokegrid import FEATURES, PointsToGrid, encode

    rng = np.random.default_rng(0)
    drawings = pack([
        [(rng.integers(0, 256, 6).tolist(), rng.integers(0, 256, 6).tolist()) for _ in range(3)]
        for _ in range(32)
    ])
    x = encode(drawings, None, 24, timed=False)
    c = rng.integers(0, 251, 32).astype(np.int32)
    y = np.eye(4, dtype=np.float32)[np.arange(32) % 4]
    model = build_model("strokegrid", 64, 1, 4, alpha=0.5, weights=None, dropout=0.1,
                        bn_momentum=0.9, seq_len=24, seq_features=len(FEATURES), grid_size=8,
                        grid_reduce="max", country=True)
    model.compile(keras.optimizers.AdamW(0.01, use_ema=True), "categorical_crossentropy",
                  jit_compile={jit})
    before = [w.copy() for w in model.get_weights()]
    h = model.fit((x, c), y, batch_size=8, epochs=2, verbose=0)
    after = model.get_weights()
    changed = sum(not np.allclose(a, b) for a, b in zip(before, after))
    p = model.predict((x, c), batch_size=16, verbose=0)
    assert p.shape == (32, 4) and np.allclose(p.sum(1), 1, atol=1e-4)
    assert np.isfinite(h.history["loss"]).all()
    if keras.backend.backend() == "jax":
        import jax, jax.numpy as jnp
        layer = PointsToGrid(8, "sum")
        pts = jnp.asarray(x[:2])
        g = jax.grad(lambda f: jnp.sum(layer([f, pts]) ** 2))(jnp.ones((2, 24, 5)))
        assert np.abs(np.asarray(g)).sum() > 0
    print("ok", keras.backend.backend(), changed, len(after))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_trains_a_few_steps_and_predicts(backend):
    p = subprocess.run(
        [sys.executable, "-c", _STEPS.replace("{jit}", "True" if backend == "jax" else "False")],
        cwd=ROOT,
        env={**__import__("os").environ, "KERAS_BACKEND": backend},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    word, engine, changed, total = p.stdout.split()[-4:]
    assert (word, engine) == ("ok", backend)
    assert int(changed) >= int(total) - 6  # every weight moved (BatchNorm counters aside)
