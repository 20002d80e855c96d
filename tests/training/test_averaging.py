"""The weights' moving average (``train.ema``): Keras' optimizer EMA, with the copy into the
model deferred from every ``fit`` call to the end of training, so that a run split into
several ``fit`` calls (a resumed one) trains exactly as one call does, and the model is saved
holding the averages. (A killed and resumed run against an uninterrupted one, on both
engines: tests/training/test_multiprocess.py, which trains with ``ema``.)"""

import keras
import numpy as np

from doodle.training.schedule import (
    AVERAGES,
    apply_average,
    averaged_weights,
    defer_average,
)


def _model(ema: float | None, defer: bool = True) -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    x = keras.layers.Dense(8, activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    opt = keras.optimizers.AdamW(0.05, use_ema=ema is not None, ema_momentum=ema or 0.99)
    if ema is not None and defer:
        defer_average(opt)
    model.compile(opt, "categorical_crossentropy")
    return model


def _data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 6)).astype(np.float32)
    return x, np.eye(3, dtype=np.float32)[rng.integers(0, 3, 64)]


def _fit(model, segments):
    x, y = _data()
    for first, end in segments:
        model.fit(x, y, batch_size=16, shuffle=False, initial_epoch=first, epochs=end, verbose=0)
    return model


def test_keras_keeps_the_averages_where_we_read_them():
    model = _fit(_model(0.9), [(0, 1)])
    averages = getattr(model.optimizer, AVERAGES)
    assert len(averages) == len(model.trainable_variables)
    assert [a.shape for a in averages] == [v.shape for v in model.trainable_variables]


def test_training_split_into_fit_calls_equals_one_call():
    whole = _fit(_model(0.9), [(0, 3)])
    split = _fit(_model(0.9), [(0, 1), (1, 3)])
    for a, b in zip(whole.get_weights(), split.get_weights(), strict=True):
        assert np.allclose(a, b, atol=1e-6)
    # without the deferral Keras copies the averages in after the first call, and the split
    # run trains on from them: not the same run
    keras_default = _fit(_model(0.9, defer=False), [(0, 1), (1, 3)])
    assert not all(
        np.allclose(a, b, atol=1e-6)
        for a, b in zip(whole.get_weights(), keras_default.get_weights(), strict=True)
    )


def test_the_saved_weights_are_the_averages():
    model = _fit(_model(0.8), [(0, 2)])
    live = model.get_weights()
    averaged = averaged_weights(model)
    trainable = {id(v) for v in model.trainable_variables}
    averages = [keras.ops.convert_to_numpy(a) for a in getattr(model.optimizer, AVERAGES)]
    k = 0
    for v, w, a in zip(model.weights, live, averaged, strict=True):
        if id(v) in trainable:
            assert np.array_equal(a, averages[k]) and not np.allclose(a, w)
            k += 1
        else:  # BatchNorm's moving statistics are not averaged
            assert np.array_equal(a, w)
    assert apply_average(model)
    for w, a in zip(model.get_weights(), averaged, strict=True):
        assert np.array_equal(w, a)
    assert averaged_weights(_model(None)) is None and not apply_average(_model(None))
