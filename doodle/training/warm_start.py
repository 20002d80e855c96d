"""Warm starts: a finetune member begins from another member's trained weights.

Every weight is copied in order (``get_weights`` / ``set_weights``): the two models must
be the same family at the same widths and channels, which the config checks before any
model is built. ``img_size`` may differ, since the convolutions do not depend on the
input size and global pooling feeds the head (progressive resizing: 64 -> 128 -> 256 px).
The optimizer starts fresh, on the member's own learning-rate cycle.
"""

from __future__ import annotations

from pathlib import Path

import keras

from doodle.errors import InputError
from doodle.training.multiworker import no_distribution


def warm_start(model: keras.Model, source: Path, name: str | None) -> None:
    """Copy the weights of the model saved at ``source`` (member ``name``) into ``model``."""
    from doodle.models.build import load_model

    source = Path(source)
    if not source.is_file():
        raise InputError(f"{source}: {name}'s model is missing; train it first (dvc repro)")
    with no_distribution():  # a model of its own, outside any distribution
        trained = load_model(source)
    theirs, mine = trained.get_weights(), model.get_weights()
    shapes = [w.shape for w in theirs], [w.shape for w in mine]
    if shapes[0] != shapes[1]:
        raise InputError(
            f"{source}: {name}'s model has {len(theirs)} weights of other shapes than this "
            f"member's {len(mine)}: a warm start needs the same family and widths"
        )
    model.set_weights(theirs)
