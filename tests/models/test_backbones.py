"""The backbone registry: every keras.applications family by name, with its documented
preprocessing inside the model, its width and input-size rules, ImageNet and local weights."""

import copy
import inspect
import urllib.error
import urllib.request
import warnings

import keras
import numpy as np
import pytest
import yaml

from doodle.config import parse_params
from doodle.errors import ConfigError
from doodle.models import backbones
from doodle.models.build import Preprocess, WeightsError, build_model, image_kernels, load_model
from tests.conftest import ROOT
from tests.models.test_build import KW  # build_model's other settings

RAW = yaml.safe_load((ROOT / "params.yaml").read_text())


def test_registry_covers_keras_applications_exactly():
    """Every name builds from a keras.applications constructor, and every image
    constructor Keras ships has a name (a new Keras family shows up here)."""
    shipped = {
        name
        for name in dir(keras.applications)
        if name[0].isupper() and inspect.isfunction(getattr(keras.applications, name))
    }
    assert {b.constructor for b in backbones.BACKBONES.values()} == shipped
    for b in backbones.BACKBONES.values():
        params = inspect.signature(getattr(keras.applications, b.constructor)).parameters
        assert ("alpha" in params) == b.has_width, b.name
        assert ("include_preprocessing" in params) == b.own_preprocessing, b.name


@pytest.mark.parametrize(
    "module, arch",
    [("mobilenet_v2", "mobilenetv2"), ("densenet", "densenet121"), ("resnet", "resnet50")],
)
def test_preprocessing_is_the_familys_own(module, arch):
    """Preprocess computes what the family's keras preprocess_input documents (tf, torch
    and caffe modes) on three-channel images."""
    x = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3)).astype("float32")
    expected = getattr(keras.applications, module).preprocess_input(x.copy())
    layer = Preprocess(backbones.lookup(arch).preprocess)
    got = keras.ops.convert_to_numpy(layer(x.astype("uint8")))
    assert np.allclose(got, keras.ops.convert_to_numpy(expected), atol=1e-4)


@pytest.mark.parametrize(
    "arch, size", [("densenet121", 32), ("efficientnetv2b0", 32), ("xception", 71)]
)
def test_new_families_build_on_grey_doodles(arch, size, tmp_path):
    """uint8 grey images in, probabilities out, at the family's smallest size; the model
    saves and loads (the preprocessing layer is registered)."""
    model = build_model(arch, size, 1, 5, **KW)
    x = np.random.default_rng(1).integers(0, 256, (2, size, size, 1), dtype=np.uint8)
    p = keras.ops.convert_to_numpy(model(x))
    assert p.shape == (2, 5) and np.allclose(p.sum(1), 1, atol=1e-4)
    model.save(tmp_path / "m.keras")
    again = keras.ops.convert_to_numpy(load_model(tmp_path / "m.keras")(x))
    assert np.allclose(again, p, atol=1e-5)


def test_width_in_the_name_or_in_alpha():
    named = build_model("mobilenetv2_050", 32, 1, 3, **KW)
    explicit = build_model("mobilenetv2", 32, 1, 3, **(KW | {"alpha": 0.5}))
    assert named.count_params() == explicit.count_params()
    assert named.count_params() < build_model("mobilenetv2", 32, 1, 3, **KW).count_params()


def _params(**changes):
    raw = copy.deepcopy(RAW)
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = raw
        for p in parents:
            node = node[p]
        node[last] = value
    return parse_params(raw)


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"arch": "densenet12"},
            "members.base: unknown arch densenet12; did you mean densenet121?",
        ),
        (
            {"arch": "densenet121", "train__alpha": 0.75},
            "members.base: densenet121 has no width multiplier, but alpha is 0.75 (train.alpha)",
        ),
        (
            {"arch": "mobilenetv2_050", "train__alpha": 0.75},
            "mobilenetv2_050 sets its width (0.5) in its name",
        ),
        ({"arch": "xception"}, "members.base: xception needs img_size >= 71, got 64"),
        (
            {"arch": "mobilenetv2", "train__alpha": 0.6, "train__weights": "imagenet"},
            "ImageNet weights for MobileNetV2 at alpha 0.35, 0.5, 0.75, 1, 1.3, 1.4 only",
        ),
        (
            {"arch": "lstm", "train__weights": "imagenet"},
            "arch lstm has no keras.applications backbone",
        ),
        (
            {"arch": "strokegrid", "train__weights": "imagenet"},
            "arch strokegrid has no keras.applications backbone",
        ),
        ({"arch": "strokegrd"}, "members.base: unknown arch strokegrd; did you mean strokegrid?"),
    ],
)
def test_member_checks_name_the_problem(changes, message):
    with pytest.raises(ConfigError) as e:
        backbones.check_members(_params(**changes))
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_a_new_family_needs_only_its_name():
    backbones.check_members(_params(arch="densenet121"))
    backbones.check_members(_params(arch="convnexttiny"))
    backbones.check_members(_params(arch="mobilenetv2", train__alpha=0.75))


def _save_backbone_weights(path, channels):
    net = keras.applications.MobileNet(
        include_top=False, weights=None, input_shape=(32, 32, channels), pooling="avg", alpha=0.25
    )
    net.save_weights(path)
    return net.get_weights()


@pytest.mark.parametrize("channels, repeat", [(1, 1), (3, 3)])
def test_grey_member_loads_a_local_weights_file(tmp_path, channels, repeat):
    """A grey backbone's file loads as it is; a three-channel file (what Keras' ImageNet
    file is) loads behind the grey channel repeated three times, into a backbone built
    once for it: Keras has nothing to warn about (no layer left at its initial weights)."""
    path = tmp_path / "mobilenet.weights.h5"
    saved = _save_backbone_weights(path, channels)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = build_model("mobilenet_025", 32, 1, 4, **(KW | {"weights": str(path)}))
    assert [str(w.message) for w in caught] == []
    assert model.get_layer("preprocess").repeat == repeat
    backbone = [layer for layer in model.layers if isinstance(layer, keras.Model)][0]
    assert all(np.array_equal(a, b) for a, b in zip(backbone.get_weights(), saved, strict=True))


@pytest.mark.parametrize(
    "arch, channels, says",
    [
        ("mobilenet_050", 1, "its first convolution is 3x3x3x8, the model's 3x3x3x16"),
        ("mobilenet_025", 3, "reads 1 channel(s), this member's images have 3"),
    ],
)
def test_weights_file_that_does_not_fit(tmp_path, arch, channels, says):
    """Another width, or a grey file for a three-channel member: one line, before Keras
    builds or loads anything."""
    path = tmp_path / "mobilenet.weights.h5"
    _save_backbone_weights(path, 3 if channels == 1 else 1)
    with pytest.raises(WeightsError, match=f"does not fit {arch}") as e:
        build_model(arch, 32, channels, 4, **(KW | {"weights": str(path)}))
    assert says in str(e.value) and "\n" not in str(e.value)


def test_a_keras_2_imagenet_style_file_loads_into_a_grey_member(tmp_path):
    """Keras' ImageNet downloads are Keras 2 ``.h5`` files (arrays in layer order): read
    the same way, loaded behind the repeated grey channel."""
    import h5py
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    net = keras.applications.MobileNet(
        include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg", alpha=0.25
    )
    path = tmp_path / "mobilenet_2_5_224_tf_no_top.h5"
    with h5py.File(path, "w") as f:
        save_weights_to_hdf5_group(f, net)
    assert image_kernels(path) == [(3, 3, 3, 8)]
    model = build_model("mobilenet_025", 32, 1, 4, **(KW | {"weights": str(path)}))
    assert model.get_layer("preprocess").repeat == 3
    backbone = [layer for layer in model.layers if isinstance(layer, keras.Model)][0]
    assert all(
        np.array_equal(a, b) for a, b in zip(backbone.get_weights(), net.get_weights(), strict=True)
    )


def test_first_kernel_is_read_from_every_weights_format(tmp_path):
    """A .keras model file holds the same arrays as a .weights.h5 file; a file that is
    not Keras weights is one line."""
    net = keras.applications.MobileNet(
        include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg", alpha=0.25
    )
    net.save(tmp_path / "m.keras")
    net.save_weights(tmp_path / "m.weights.h5")
    assert image_kernels(tmp_path / "m.keras") == image_kernels(tmp_path / "m.weights.h5")
    assert image_kernels(tmp_path / "m.keras") == [(3, 3, 3, 8)]
    (tmp_path / "notes.h5").write_text("not hdf5")
    with pytest.raises(WeightsError, match="notes.h5: not a Keras weights file"):
        image_kernels(tmp_path / "notes.h5")


def test_offline_imagenet_says_which_file_to_put_where(tmp_path, monkeypatch):
    """No network: one line naming the URL Keras wanted and where the file must go."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlretrieve", offline)
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(WeightsError) as e:
        build_model("densenet121", 32, 1, 4, **(KW | {"weights": "imagenet"}))
    msg = str(e.value)
    name = "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5"
    target = tmp_path / "keras" / "models" / name
    assert "https://" in msg and str(target) in msg and "\n" not in msg, msg
