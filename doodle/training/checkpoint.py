"""Step checkpoints and resume: what a checkpoint belongs to, saving, loading, and the
fit segments a resumed run still has to do."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import keras

from doodle.config import MemberConfig
from doodle.data.shards import read_header, train_shard_paths
from doodle.fileio import atomic_path, remove, sha256_file, write_json
from doodle.training.multiworker import no_distribution

# Settings that change what a checkpoint means; a checkpoint made under others is discarded.
_RESUME_KEYS = (
    "arch",
    "img_size",
    "encoding",
    "alpha",
    "seed",  # (not batch_size: the global batch below is what the stream position counts)
    "epochs",
    "steps_per_epoch",
    "learning_rate",
    "warmup_epochs",
    "weight_decay",
    "label_smoothing",
    "line_width",
    "augment",
    "shuffle_buffer",
    "weights",
    "dropout",
    "mixed_precision",
    "scale_lr",
    "input",
    "bn_momentum",
    "seq_len",
    "grid_size",
    "grid_reduce",
    "ema",
    "country",
    "init_from",
    "pseudo_from",
    "pseudo_share",
    "pseudo_repeat",
)


class StepCheckpoint(keras.callbacks.Callback):
    """Weights + optimizer state every ``every`` steps and at each epoch end."""

    def __init__(
        self, folder: Path, every: int, steps: int, fingerprint: str, epoch: int, start_step: int
    ):
        super().__init__()
        self.folder, self.every, self.steps = Path(folder), int(every), int(steps)
        self.fingerprint = fingerprint
        self.epoch, self.start_step = epoch, start_step

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self._saved = self.start_step

    def on_train_batch_end(self, batch, logs=None):
        # With steps_per_execution > 1 Keras calls this every few steps: save whenever a
        # multiple of `every` was crossed, not only when hit exactly.
        step = self.start_step + batch + 1
        if self.every > 0 and step // self.every > self._saved // self.every and step < self.steps:
            self.save(self.epoch, step)

    def on_epoch_end(self, epoch, logs=None):
        self.start_step = 0
        self.save(epoch + 1, 0)

    def save(self, epoch: int, step: int) -> None:
        # Weights under a new name first, then the state file that points at them: a kill
        # at any moment leaves a state file naming a complete weights file.
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"ckpt-e{epoch:04d}-s{step:06d}.weights.h5"
        # no_distribution: saving creates scratch variables, which under a JAX distribution
        # would be collective steps that the chief alone (the one saving) cannot take.
        with atomic_path(self.folder / name) as tmp, no_distribution():
            self.model.save_weights(str(tmp) + ".weights.h5")
            os.replace(str(tmp) + ".weights.h5", tmp)
        self._saved = step
        state = {"epoch": epoch, "step": step, "weights": name, "fingerprint": self.fingerprint}
        write_json(self.folder / "state.json", state)
        for old in self.folder.glob("ckpt-*.weights.h5"):
            if old.name != name:
                old.unlink()


def load_checkpoint(folder: Path, fingerprint: str, clear_stale: bool = True) -> dict | None:
    """The last checkpoint's state if it belongs to this config, else None (and clear it,
    unless ``clear_stale`` is off: only the chief of several processes clears)."""
    state_file = Path(folder) / "state.json"
    if not state_file.is_file():
        return None
    try:
        state = json.loads(state_file.read_text())
    except json.JSONDecodeError:
        state = {}
    if state.get("fingerprint") != fingerprint or not (Path(folder) / state["weights"]).is_file():
        print(f"train: ignoring checkpoint in {folder} (made with other settings)")
        if clear_stale:
            remove(folder)
        return None
    return state


def fingerprint(cfg: MemberConfig, shard_dir: Path, global_batch: int, inputs: list[Path]) -> str:
    """What a checkpoint belongs to: the settings that shape training, the global batch
    (the stream position is step x global batch: a run may resume with another number of
    processes or GPUs, at the same global batch), the data (class list and every shard's
    header, so re-sharded data never resumes a stale checkpoint) and the content of the
    other ``inputs`` (the model a warm start copies, the pseudo-label shard, a weights
    file)."""
    shard_dir = Path(shard_dir)
    data = [(shard_dir / "classes.json").read_text()]
    data += [json.dumps(read_header(p)[0], sort_keys=True) for p in train_shard_paths(shard_dir)]
    key = {k: getattr(cfg, k) for k in _RESUME_KEYS} | {
        "global_batch": global_batch,
        "backend": keras.backend.backend(),
        "data": hashlib.sha256("\n".join(data).encode()).hexdigest(),
        "inputs": [sha256_file(p) for p in inputs],
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def fit_segments(epochs: int, epoch0: int, step0: int) -> list[tuple[int, int, int]]:
    """``(initial_epoch, start_step, end_epoch)`` of each ``fit`` call: a run resumed
    mid-epoch first finishes that epoch (from ``step0``), then runs the remaining ones."""
    segments = []
    if epoch0 < epochs and step0:
        segments.append((epoch0, step0, epoch0 + 1))
        epoch0 += 1
    if epoch0 < epochs:
        segments.append((epoch0, 0, epochs))
    return segments
