"""The image backbones by name: every keras.applications family, each with the input
preprocessing its family documents, its minimum input size and whether it has a width
multiplier (``alpha``).

A name is what ``arch`` takes in params.yaml: the keras.applications constructor in lower
case (``densenet121``, ``resnet50v2``, ``efficientnetv2b0``, ``convnexttiny``,
``xception``, ...). A family with a width multiplier also takes the width in its name,
timm-style: ``mobilenetv2_050`` is MobileNetV2 at alpha 0.5 (``mobilenetv2`` with
``alpha: 0.5`` is the same model).

Preprocessing (applied inside the model by :class:`doodle.models.build.Preprocess`, so the loader
keeps shipping uint8):

* ``tf``    -- ``x / 127.5 - 1`` (MobileNet, ResNet-V2, Xception, Inception, NASNet);
* ``tf128`` -- ``x / 128 - 1`` (EfficientNetV2-S/M/L);
* ``torch`` -- ``(x / 255 - mean) / std`` with ImageNet's RGB statistics (DenseNet,
  EfficientNetV2-B*, ConvNeXt);
* ``caffe`` -- RGB -> BGR, then ``x - mean`` with ImageNet's BGR means (ResNet, VGG);
* ``none``  -- the raw 0..255 values: EfficientNet B0-B7 normalise inside the backbone.

Families whose constructor can include this preprocessing itself (``include_preprocessing``)
are built without it and get the same arithmetic from our layer, so that every family is
preprocessed in one place, for one channel as for three.

This module imports no Keras: the config checks ``arch`` names, widths and sizes before a
stage starts Keras. Adding a family is one line in ``_FAMILIES``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from doodle.config import SEQUENCE_ARCHS
from doodle.errors import ConfigError

if TYPE_CHECKING:
    from doodle.config import MemberConfig, Params

PREPROCESSING = ("tf", "tf128", "torch", "caffe", "none")


@dataclass(frozen=True)
class Backbone:
    """One keras.applications image model, as ``arch`` names it."""

    name: str
    constructor: str  # the keras.applications attribute
    preprocess: str  # one of PREPROCESSING
    widths: tuple[float, ...] = ()  # the alphas Keras has ImageNet weights for; () = no width
    min_size: int = 32  # the smallest img_size Keras accepts
    own_preprocessing: bool = False  # the constructor has include_preprocessing (set False)
    alpha: float | None = None  # a width fixed by the name (mobilenetv2_050)

    @property
    def has_width(self) -> bool:
        return bool(self.widths)


# constructors, preprocessing, (ImageNet widths), min size, include_preprocessing flag
_FAMILIES: list[tuple[tuple[str, ...], str, tuple[float, ...], int, bool]] = [
    (("MobileNet",), "tf", (0.25, 0.5, 0.75, 1.0), 32, False),
    (("MobileNetV2",), "tf", (0.35, 0.5, 0.75, 1.0, 1.3, 1.4), 32, False),
    (("MobileNetV3Small", "MobileNetV3Large"), "tf", (0.75, 1.0), 32, True),
    (tuple(f"EfficientNetB{i}" for i in range(8)), "none", (), 32, False),
    (tuple(f"EfficientNetV2B{i}" for i in range(4)), "torch", (), 32, True),
    (("EfficientNetV2S", "EfficientNetV2M", "EfficientNetV2L"), "tf128", (), 32, True),
    (
        tuple(f"ConvNeXt{s}" for s in ("Tiny", "Small", "Base", "Large", "XLarge")),
        "torch",
        (),
        32,
        True,
    ),
    (("DenseNet121", "DenseNet169", "DenseNet201"), "torch", (), 32, False),
    (("ResNet50", "ResNet101", "ResNet152"), "caffe", (), 32, False),
    (("ResNet50V2", "ResNet101V2", "ResNet152V2"), "tf", (), 32, False),
    (("Xception",), "tf", (), 71, False),
    (("InceptionV3",), "tf", (), 75, False),
    (("InceptionResNetV2",), "tf", (), 75, False),
    (("NASNetMobile", "NASNetLarge"), "tf", (), 32, False),
    (("VGG16", "VGG19"), "caffe", (), 32, False),
]

BACKBONES: dict[str, Backbone] = {
    ctor.lower(): Backbone(ctor.lower(), ctor, pre, widths, size, own)
    for ctors, pre, widths, size, own in _FAMILIES
    for ctor in ctors
}
_WIDTH_NAME = re.compile(r"^(?P<family>[a-z0-9]+)_(?P<width>\d{3})$")


def width_names() -> list[str]:
    """The width-suffixed names of the families with ImageNet widths (for hints, docs)."""
    return [f"{b.name}_{round(w * 100):03d}" for b in BACKBONES.values() for w in b.widths]


def all_names() -> list[str]:
    """Every name ``arch`` accepts in its canonical spelling."""
    return [*BACKBONES, *width_names(), *SEQUENCE_ARCHS]


class UnknownArch(ValueError):
    """An ``arch`` that names no backbone; the message has the closest valid name."""


def lookup(name: str) -> Backbone:
    """The backbone ``name`` names (``mobilenetv2_050``: MobileNetV2 at alpha 0.5)."""
    if name in BACKBONES:
        return BACKBONES[name]
    m = _WIDTH_NAME.match(name)
    if m and m["family"] in BACKBONES and BACKBONES[m["family"]].has_width:
        base = BACKBONES[m["family"]]
        alpha = int(m["width"]) / 100
        if alpha > 0:
            return Backbone(**{**base.__dict__, "name": name, "alpha": alpha})
    close = difflib.get_close_matches(name, all_names(), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else " (README: Model families)"
    raise UnknownArch(f"unknown arch {name}{hint}")


def is_sequence(name: str) -> bool:
    return name in SEQUENCE_ARCHS


def check_members(params: Params) -> None:
    """Every member's arch names a backbone that fits its settings (width, input size,
    ImageNet widths); ConfigError names the member and the key. The model stages run this
    after loading params.yaml."""
    for name in params.member_names:
        section = "members" if name in params.members else "finetune"
        over = getattr(params, section)[name] or {}
        check_member(params.member(name), over, f"{section}.{name}")


def check_member(c: MemberConfig, over: dict, where: str) -> None:
    """One member (see :func:`check_members`); ``over`` is its own overrides (to name
    where a value came from)."""
    if is_sequence(c.arch):
        if c.weights is not None:
            raise ConfigError(
                f"{where}: weights {c.weights!r}: arch {c.arch} has no keras.applications "
                "backbone to load them into (set weights to null)"
            )
        return
    try:
        spec = lookup(c.arch)
    except UnknownArch as e:
        raise ConfigError(f"{where}: {e}") from None
    if c.alpha is not None:
        source = f"{where}.alpha" if "alpha" in over else "train.alpha"
        if not spec.has_width:
            raise ConfigError(
                f"{where}: {c.arch} has no width multiplier, but alpha is {c.alpha:g} "
                f"({source}); set it to null"
            )
        if spec.alpha is not None:
            raise ConfigError(
                f"{where}: {c.arch} sets its width ({spec.alpha:g}) in its name, and alpha "
                f"is {c.alpha:g} ({source}): set alpha to null or use arch "
                f"{spec.constructor.lower()}"
            )
    if c.img_size < spec.min_size:
        raise ConfigError(f"{where}: {c.arch} needs img_size >= {spec.min_size}, got {c.img_size}")
    if c.weights == "imagenet" and spec.has_width:
        width = spec.alpha or (1.0 if c.alpha is None else c.alpha)
        if width not in spec.widths:
            raise ConfigError(
                f"{where}: Keras has ImageNet weights for {spec.constructor} at alpha "
                f"{', '.join(f'{w:g}' for w in spec.widths)} only, not {width:g}"
            )
