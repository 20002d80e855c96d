import keras
import numpy as np

from doodle.models.build import build_model

# build_model's settings besides arch, size, channels and classes (params.yaml's train keys)
KW = dict(
    alpha=None,
    weights=None,
    dropout=0.0,
    bn_momentum=0.9,
    seq_len=128,
    seq_features=5,
    grid_size=32,
    grid_reduce="sum",
    country=False,
)


def build(arch, size, channels, n, **over):
    return build_model(arch, size, channels, n, **(KW | over))


def _bn_momenta(model):
    backbone = [layer for layer in model.layers if isinstance(layer, keras.Model)][0]
    return {
        layer.momentum
        for layer in backbone.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    }


def test_mobilenetv2_uint8_in_probabilities_out():
    model = build("mobilenetv2", 32, 1, 7, alpha=0.35)
    assert model.input.dtype == "uint8" and model.input_shape == (None, 32, 32, 1)
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 1), dtype=np.uint8)
    p = keras.ops.convert_to_numpy(model(x))
    assert p.shape == (2, 7) and np.allclose(p.sum(1), 1, atol=1e-5)
    assert model.layers[-1].dtype_policy.name == "float32"


def test_bn_momentum_is_settable_and_saved(tmp_path):
    # Keras' 0.999 leaves moving statistics near their initial values for short runs,
    # which makes inference near chance: the default must be lower.
    assert _bn_momenta(build("mobilenetv2", 32, 1, 3, alpha=0.35)) == {0.9}
    model = build("mobilenetv2", 32, 1, 3, alpha=0.35, bn_momentum=0.8)
    assert _bn_momenta(model) == {0.8}
    model.save(tmp_path / "m.keras")
    assert _bn_momenta(keras.models.load_model(tmp_path / "m.keras")) == {0.8}
    assert _bn_momenta(build("mobilenetv2", 32, 1, 3, alpha=0.35, bn_momentum=None)) == {0.999}


def test_sequence_model_masks_padding_and_round_trips(tmp_path):
    """arch lstm: point sequences in, probabilities out; padded steps change nothing; the
    saved model (custom layers) loads through doodle.models.build.load_model."""
    from doodle.data.strokes import pack
    from doodle.models.build import load_model
    from doodle.models.sequences import encode

    model = build("lstm", 32, 1, 5, alpha=0.25, seq_len=12)
    assert model.input_shape == (None, 12, 5)
    d = pack([[([10, 30, 30], [20, 20, 60]), ([200], [100])], [([0, 99], [5, 250])]])
    short = encode(d, None, 12)
    p = keras.ops.convert_to_numpy(model(short))
    assert p.shape == (2, 5) and np.allclose(p.sum(1), 1, atol=1e-5)
    # padding is invisible: the same weights on the same drawings padded further agree
    wider = build("lstm", 32, 1, 5, alpha=0.25, seq_len=20)
    wider.set_weights(model.get_weights())
    padded = np.zeros((2, 20, 5), np.float32)
    padded[:, :12] = short
    assert np.allclose(keras.ops.convert_to_numpy(wider(padded)), p, atol=1e-5)
    model.save(tmp_path / "m.keras")
    again = load_model(tmp_path / "m.keras")
    assert np.allclose(keras.ops.convert_to_numpy(again(short)), p, atol=1e-6)
