"""params.yaml as typed settings: one schema, checked at the start of every stage.

``params.yaml`` is the single source of defaults: every key of the schema below must be
there, and nothing else may be. A misspelt or unknown key, in a section or in a member
override, stops the stage with the key's full path and the closest valid name; so does a
value of the wrong type. The package never falls back to a default of its own.

The sections and who reads them:

* ``img_size``, ``arch``, ``seed``, ``train``: the training recipe of every member
  (``members.<name>`` overrides any of these keys for one member);
* ``finetune``: members that start from another member's trained model (``init_from``);
  each inherits that member's recipe and overrides what it changes;
* ``data``, ``shard``, ``tfrecord``, ``predict``, ``ensemble``: one stage each;
* ``runtime``: knobs that change how fast or how loud a stage runs, never its output
  (loader threads, evaluation batch sizes, checkpoint interval, verbosity). No stage
  declares them in dvc.yaml, so changing one re-runs nothing.
* ``kernel``: the pipeline pushed as a Kaggle kernel (``make kaggle-run``); read by no stage.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml

from doodle.errors import ConfigError

# Local backbone weights files live here, so that DVC tracks their content (dvc.yaml: the
# train stages depend on this folder; a link to a file elsewhere works).
WEIGHTS_DIR = "data/weights"
# The point families (points in, no rendering: doodle.models.build's LSTM and
# doodle.models.strokegrid), with widths of their own; every other arch is an image backbone
# (doodle.models.backbones).
SEQUENCE_ARCHS = ("lstm", "strokegrid")
GRID_SIZES = (4, 128)  # arch strokegrid: the grid side S it accepts
GRID_REDUCES = ("sum", "max")  # how the points in one grid cell are pooled
STACK_FEATURES = ("strokes", "country")  # the stacker's per-drawing features
IMG_SIZES = (32, 256)  # the img_size range the renderer draws (doodle/rendering/raster.py)
SOURCES = ("synthetic", "kaggle", "local")
# Image encodings (doodle/rendering/raster.py): grey (1 channel), stroke order (3), draw time (3).
Encoding = Literal["grey", "order3", "time3"]
TIME_ENCODINGS = ("time3",)  # need per-point times: shards made from Kaggle's raw files
# Keys that were renamed: the message says what replaced them.
RENAMED = {"channels": "encoding (channels 1 = grey, 3 = order3; time3 draws time)"}
METHODS = ("best_member", "blend", "stack")
FINALS = ("auto", *METHODS, *(f"{m}_balanced" for m in METHODS))
KERNEL_CAP_H = 12.0  # Kaggle's limit on one notebook run (GPU or CPU)
KERNEL_SLUG = re.compile(r"[a-z][a-z0-9-]{4,49}")


# -- the schema -------------------------------------------------------------------------------
@dataclass(frozen=True)
class SyntheticData:
    """The procedural doodle generator (``data.source: synthetic``)."""

    classes: int
    train_per_class: int
    test_per_class: int
    seed: int


@dataclass(frozen=True)
class KaggleData:
    """The competition files through the kaggle package (``data.source: kaggle``)."""

    competition: str
    download_dir: str | None  # None: ~/.cache/doodle/kaggle (reused by every clone)
    layout: Literal["simplified", "raw"]  # which competition files are fetched and read


@dataclass(frozen=True)
class LocalData:
    """Files already on disk (``data.source: local``)."""

    path: str | None  # Kaggle-layout folder, competition zip, or ndjson folder
    ndjson_test_per_class: int  # ndjson has no test split: hold out this many per class
    layout: Literal["auto", "simplified", "raw"]  # auto: simplified files if there, else raw


@dataclass(frozen=True)
class DataConfig:
    source: Literal["synthetic", "kaggle", "local"]
    synthetic: SyntheticData
    kaggle: KaggleData
    local: LocalData


@dataclass(frozen=True)
class ShardConfig:
    n_shards: int
    val_size: int
    seed: int
    workers: int  # parse processes (0 = all cores, fewer for small data); same bytes for any


@dataclass(frozen=True)
class TfrecordConfig:
    enabled: bool
    input: Literal["shards", "tfrecord"]


@dataclass(frozen=True)
class Augment:
    """Stroke augmentation (``train.augment``; applied by :mod:`doodle.rendering.augment`)."""

    flip: float  # probability of a horizontal flip
    scale: float  # relative scale jitter, e.g. 0.1 -> x0.9..x1.1
    shift: float  # shift as a fraction of the frame, e.g. 0.05 -> +-12.8 px
    rotate: float  # max rotation in degrees
    stroke_dropout: float  # probability of dropping each stroke

    @property
    def geometric(self) -> bool:
        return any((self.flip, self.scale, self.shift, self.rotate))


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe (``train:``), shared by every member unless overridden."""

    encoding: Encoding
    line_width: float
    seq_len: int  # points per drawing for the point families (arch: lstm, strokegrid)
    grid_size: int  # arch strokegrid: the grid's side S (cells of 256 / S px)
    grid_reduce: Literal["sum", "max"]  # arch strokegrid: how points in one cell are pooled
    alpha: float | None  # None: the family's width (1.0, or the one its arch name gives)
    dropout: float
    bn_momentum: float
    batch_size: int
    epochs: int
    steps_per_epoch: int
    learning_rate: float
    scale_lr: bool
    warmup_epochs: float
    weight_decay: float
    label_smoothing: float
    augment: Augment
    shuffle_buffer: int
    mixed_precision: Literal["auto", "off", "bf16", "fp16"]
    jit: Literal["auto", True, False]
    distribute: Literal["auto", "none", "mirrored", "multiworker", "tpu", "data_parallel"]
    steps_per_execution: int
    weights: str | None  # null | imagenet | a file under data/weights
    pseudo_share: float  # finetune members: share of the test set pseudo-labelled (0 = none)
    pseudo_repeat: int  # times each pseudo-labelled drawing appears in a pass
    ema: float | None  # decay of the weights' moving average (None: off); the model saves it
    country: bool  # an embedding of the drawing's country beside the head


@dataclass(frozen=True)
class MemberConfig(TrainConfig):
    """One member's resolved recipe: ``train:`` + the top-level keys + its overrides (a
    finetune member: the recipe of the member it starts from + its overrides)."""

    name: str
    img_size: int
    arch: str  # a name of doodle.models.backbones, lstm or strokegrid
    seed: int
    input: Literal["shards", "tfrecord"]  # tfrecord.input: where the drawings are read
    init_from: str | None  # finetune members: the member whose trained model it starts from
    pseudo_from: tuple[str, ...]  # finetune members: the members whose test predictions label
    # the pseudo-labelled drawings (default: init_from); () without pseudo-labels

    @property
    def sequence(self) -> bool:
        """A point family (lstm, strokegrid): point sequences in, no rendering."""
        return self.arch in SEQUENCE_ARCHS

    @property
    def channels(self) -> int:
        """Image channels, from the encoding (read-only: set ``encoding``)."""
        return 1 if self.encoding == "grey" else 3

    @property
    def needs_time(self) -> bool:
        """The encoding reads per-point times (shards made from Kaggle's raw files): an image
        family's time3 draws them, strokegrid's adds them to each point (lstm reads times
        whenever the shards have them, whatever the encoding)."""
        return self.arch != "lstm" and self.encoding in TIME_ENCODINGS


@dataclass(frozen=True)
class PredictConfig:
    tta_flip: bool


@dataclass(frozen=True)
class EnsembleConfig:
    blend: bool
    stack: bool
    stack_model: Literal["hgb", "logreg"]
    stack_top_k: int
    stack_folds: int
    stack_features: tuple[str, ...]  # per-drawing features of the stacker (STACK_FEATURES)
    balance: bool
    final: str
    score_fraction: float
    seed: int


@dataclass(frozen=True)
class RuntimeConfig:
    """Speed and verbosity only: no stage's output depends on these."""

    workers: int
    verbose: int
    eval_batch_size: int
    predict_batch_size: int
    checkpoint_every: int
    tfrecord_workers: int
    eager: bool  # run steps eagerly: no graph to trace (tiny runs, debugging)
    processes: int  # the train stage as this many cooperating processes (doodle.training.launch)
    gpus: Any  # auto | all | a count | a list of nvidia-smi indices (doodle.gpu.guard)
    allow_cpu: bool  # train/predict on the CPU although nvidia-smi lists a GPU


@dataclass(frozen=True)
class KernelConfig:
    """``make kaggle-run``: the pipeline as a private Kaggle kernel (doodle/kaggle/kernels.py)."""

    slug: str | None  # None: doodle-<first 8 hex digits of the repo's first commit>
    accelerator: str  # Kaggle's machine shape (NvidiaTeslaT4: the free GPU), or none
    time_limit_h: float  # the run stops itself here (Kaggle caps a notebook run at 12 h)
    internet: bool  # pip installs what the notebook image lacks (dvc, dvclive)


@dataclass(frozen=True)
class Params:
    img_size: int
    arch: str
    seed: int
    data: DataConfig
    shard: ShardConfig
    tfrecord: TfrecordConfig
    train: TrainConfig
    predict: PredictConfig
    members: dict[str, Any]
    finetune: dict[str, Any]
    ensemble: EnsembleConfig
    runtime: RuntimeConfig
    kernel: KernelConfig

    @property
    def member_names(self) -> list[str]:
        """Every member of the ensemble: ``members`` first, then ``finetune``."""
        return [*self.members, *self.finetune]

    def section_of(self, name: str) -> str:
        """``members`` or ``finetune``: the params section (and the folder of
        ``data/predictions``) that holds member ``name``."""
        if name in self.finetune:
            return "finetune"
        if name in self.members:
            return "members"
        raise ConfigError(f"member {name!r} is not in params.yaml members or finetune")

    def member(self, name: str) -> MemberConfig:
        """The resolved recipe of member ``name`` (see ``MemberConfig``)."""
        return self._member(name, ())

    def _member(self, name: str, chain: tuple[str, ...]) -> MemberConfig:
        if name in self.finetune:
            return self._finetune_member(name, chain)
        if name not in self.members:
            raise ConfigError(
                f"member {name!r} is not in params.yaml members or finetune: "
                f"{sorted(self.member_names)}"
            )
        merged = {
            **dataclasses.asdict(self.train),
            "img_size": self.img_size,
            "arch": self.arch,
            "seed": self.seed,
            "init_from": None,
            "pseudo_from": (),
        }
        return self._resolve(name, "members", merged, self.members[name] or {})

    def _finetune_member(self, name: str, chain: tuple[str, ...]) -> MemberConfig:
        where = f"finetune.{name}"
        over = dict(self.finetune[name] or {})
        parent = over.pop("init_from", None)
        teachers = over.pop("pseudo_from", None)
        if not isinstance(parent, str) or not parent:
            raise ConfigError(f"{where}: init_from must name the member it starts from")
        if parent in (*chain, name):
            raise ConfigError(
                f"{where}: init_from makes a loop: {' -> '.join((*chain, name, parent))}"
            )
        base = self._member(parent, (*chain, name))
        for key in ("weights",):
            if key in over:
                raise ConfigError(
                    f"{where}.{key}: a finetune member starts from {parent}'s trained model"
                )
        # the start is the parent's trained model, not the parent's own start
        merged = dataclasses.asdict(base) | {"init_from": parent, "weights": None}
        merged.pop("name"), merged.pop("input")
        cfg = self._resolve(name, "finetune", merged, over)
        _check_warm_start(cfg, base, where)
        return dataclasses.replace(cfg, pseudo_from=self._teachers(cfg, base, teachers, where))

    def _teachers(
        self, cfg: MemberConfig, parent: MemberConfig, given: Any, where: str
    ) -> tuple[str, ...]:
        """A finetune member's pseudo-label teachers: ``pseudo_from`` (a name or a list),
        else those of the member it starts from, else that member itself. Teachers are
        ``members``: their predictions come before every finetune member's, so a DVC
        stage can depend on all of them without a loop."""
        if given is None:
            if not cfg.pseudo_share:
                return ()
            names = parent.pseudo_from or (parent.name,)
            if names[0] in self.finetune:
                raise ConfigError(
                    f"{where}: pseudo_share needs pseudo_from here: the member it starts from, "
                    f"{parent.name}, is a finetune member, and teachers are members "
                    f"({', '.join(self.members)}), whose predictions come first"
                )
        else:
            names = (given,) if isinstance(given, str) else given
            if not isinstance(names, (list, tuple)) or not all(
                isinstance(n, str) and n for n in names
            ):
                raise ConfigError(
                    f"{where}.pseudo_from: expected a member or a list, got {given!r}"
                )
            if not cfg.pseudo_share:
                raise ConfigError(
                    f"{where}.pseudo_from does nothing with pseudo_share 0: set "
                    f"{where}.pseudo_share (e.g. 0.5) or drop pseudo_from"
                )
        for n in names:
            if n in self.finetune:
                raise ConfigError(
                    f"{where}.pseudo_from: {n} is a finetune member; teachers are members "
                    f"({', '.join(self.members)}), whose predictions come first"
                )
            if n not in self.members:
                close = difflib.get_close_matches(n, list(self.members), n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]}?" if close else ""
                raise ConfigError(
                    f"{where}.pseudo_from: no member {n} (members: {', '.join(self.members)}){hint}"
                )
        if len(set(names)) != len(names):
            raise ConfigError(f"{where}.pseudo_from names a member twice: {list(names)}")
        return tuple(names)

    def _resolve(self, name: str, section: str, merged: dict, over: dict) -> MemberConfig:
        for key, value in over.items():
            if key == "augment":
                merged["augment"] = {**merged["augment"], **value}
            else:
                merged[key] = value
        # TFRecords feed the image families' tf.data renderer (points only, no times, no
        # country); the point families, the time encodings and country members always read
        # from the shards
        from_shards = (
            merged["arch"] in SEQUENCE_ARCHS
            or merged.get("encoding") in TIME_ENCODINGS
            or merged.get("country") is True
        )
        merged |= {"name": name, "input": "shards" if from_shards else self.tfrecord.input}
        cfg = _build(MemberConfig, merged, f"{section}.{name}")
        _check_member(cfg, over, section)
        return cfg


# -- loading ----------------------------------------------------------------------------------
def load_params(path: Path | str = "params.yaml") -> Params:
    """Read and check params.yaml: every key present, none unknown, every type right, every
    member resolved. (Whether each arch names a backbone that fits its settings is
    ``doodle.models.backbones.check_members``, which the model stages add: the data stages depend
    on no model code.)"""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found (run from the repo root)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {' '.join(str(e).split())}") from None
    return parse_params(raw, str(path))


def parse_params(raw: Any, where: str = "params.yaml") -> Params:
    """Typed ``Params`` from the parsed YAML; ConfigError names the first bad key."""
    try:
        params = _build(Params, raw, "")
        for section in ("members", "finetune"):
            for name, over in getattr(params, section).items():
                if over is not None and not isinstance(over, dict):
                    raise ConfigError(
                        f"{section}.{name} must be a mapping of overrides "
                        f"(use {{}} for none), got {over!r}"
                    )
                _check_overrides(over or {}, f"{section}.{name}", section)
        _check(params)
        for name in params.member_names:
            params.member(name)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    return params


def _check_overrides(over: dict, path: str, section: str) -> None:
    """A member override may set any key of the recipe (augment keys one by one);
    ``init_from`` belongs to finetune members."""
    allowed = [f.name for f in fields(MemberConfig) if f.name not in ("name", "input")]
    for key, value in over.items():
        if key in ("init_from", "pseudo_from") and section == "members":
            name = path.split(".", 1)[1]
            raise ConfigError(
                f"{path}.{key}: a member that starts from another member's model or learns "
                f"from its predictions is a finetune member, which DVC orders after that "
                f"member: move it to finetune.{name} (-S ++finetune.{name}.{key}={value})"
            )
        if key not in allowed:
            raise ConfigError(_unknown(f"{path}.{key}", key, allowed))
        if key == "augment":
            if not isinstance(value, dict):
                raise ConfigError(f"{path}.augment must be a mapping, got {value!r}")
            names = [f.name for f in fields(Augment)]
            for k in value:
                if k not in names:
                    raise ConfigError(_unknown(f"{path}.augment.{k}", k, names))


def _check(p: Params) -> None:
    """Ranges and combinations that types alone cannot express."""
    for name in p.ensemble.stack_features:
        if name not in STACK_FEATURES:
            close = difflib.get_close_matches(name, STACK_FEATURES, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigError(
                f"ensemble.stack_features: unknown feature {name!r} "
                f"(one of {', '.join(STACK_FEATURES)}){hint}"
            )
    rules = [
        (p.shard.n_shards >= 1, "shard.n_shards must be >= 1"),
        (p.shard.val_size >= 0, "shard.val_size must be >= 0"),
        (p.shard.workers >= 0, "shard.workers must be >= 0 (0 = every core)"),
        (bool(p.members), "members must name at least one member (e.g. base: {})"),
        (
            not set(p.members) & set(p.finetune),
            f"members and finetune share the name(s) {sorted(set(p.members) & set(p.finetune))}",
        ),
        (
            p.ensemble.final in FINALS,
            f"ensemble.final must be one of {', '.join(FINALS)}, got {p.ensemble.final!r}",
        ),
        (
            0.0 < p.ensemble.score_fraction < 1.0,
            f"ensemble.score_fraction must be between 0 and 1, got {p.ensemble.score_fraction}",
        ),
        (p.ensemble.stack_folds >= 2, "ensemble.stack_folds must be >= 2"),
        (p.ensemble.stack_top_k >= 1, "ensemble.stack_top_k must be >= 1"),
        (
            len(set(p.ensemble.stack_features)) == len(p.ensemble.stack_features),
            f"ensemble.stack_features names a feature twice: {list(p.ensemble.stack_features)}",
        ),
        (
            p.tfrecord.input == "shards" or p.tfrecord.enabled,
            "tfrecord.input: tfrecord needs tfrecord.enabled: true",
        ),
        (
            p.data.source != "local" or bool(p.data.local.path),
            "data.source: local needs data.local.path (a folder, zip or ndjson folder)",
        ),
        (p.runtime.workers >= 1, "runtime.workers must be >= 1"),
        (p.runtime.tfrecord_workers >= 1, "runtime.tfrecord_workers must be >= 1"),
        (p.runtime.checkpoint_every >= 0, "runtime.checkpoint_every must be >= 0"),
        (p.runtime.processes >= 1, "runtime.processes must be >= 1"),
        (
            0 < p.kernel.time_limit_h <= KERNEL_CAP_H,
            f"kernel.time_limit_h must be in (0, {KERNEL_CAP_H:g}]: Kaggle stops a notebook run at "
            f"{KERNEL_CAP_H:g} h, got {p.kernel.time_limit_h:g}",
        ),
        (
            p.kernel.slug is None or bool(KERNEL_SLUG.fullmatch(p.kernel.slug)),
            f"kernel.slug {p.kernel.slug!r}: 5-50 lowercase letters, digits and hyphens, "
            "starting with a letter (a Kaggle URL's last part)",
        ),
    ]
    for ok, message in rules:
        if not ok:
            raise ConfigError(message)
    _check_gpus(p.runtime.gpus, p.runtime.processes)


def _check_gpus(gpus: Any, processes: int) -> None:
    """``runtime.gpus``: auto | all | a count | a list of indices; with several processes
    (one GPU each) a count or list must match their number."""
    where = "runtime.gpus"
    if gpus in ("auto", "all"):
        return
    is_int = isinstance(gpus, int) and not isinstance(gpus, bool)
    is_list = isinstance(gpus, list) and all(
        isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in gpus
    )
    if not (is_int and gpus >= 1) and not (is_list and gpus and len(set(gpus)) == len(gpus)):
        raise ConfigError(
            f"{where}: expected auto, all, a count (e.g. 2) or a list of distinct GPU indices "
            f"as nvidia-smi numbers them (e.g. [0, 2]), got {gpus!r}"
        )
    n = gpus if is_int else len(gpus)
    if processes > 1 and n != processes:
        raise ConfigError(
            f"{where}: {gpus!r} gives {n} GPU{'s' * (n > 1)} to runtime.processes {processes}, "
            f"which train one GPU each: give {processes} GPUs or auto"
        )


def _check_member(c: MemberConfig, over: dict, section: str) -> None:
    where = f"{section}.{c.name}"
    if not IMG_SIZES[0] <= c.img_size <= IMG_SIZES[1]:
        raise ConfigError(f"{where}: img_size {c.img_size} not in {IMG_SIZES[0]}..{IMG_SIZES[1]}")
    if c.pseudo_share and c.init_from is None:
        raise ConfigError(
            f"{where}: pseudo_share {c.pseudo_share:g} needs a teacher: pseudo-labels are "
            "for finetune members (finetune.<name>.init_from, and pseudo_from to name "
            "other teachers)"
        )
    if not 0.0 <= c.pseudo_share <= 1.0 or c.pseudo_repeat < 1:
        raise ConfigError(f"{where}: pseudo_share must be in 0..1 and pseudo_repeat >= 1")
    if c.weights not in (None, "imagenet"):
        path = Path(c.weights)
        if path.is_absolute() or path.parts[:2] != tuple(Path(WEIGHTS_DIR).parts):
            raise ConfigError(
                f"{where}: weights {c.weights!r}: put local weights files under "
                f"{WEIGHTS_DIR}/ (a link to the file works) so that DVC tracks their content; "
                f"then weights: {WEIGHTS_DIR}/<file>"
            )
    for key in ("batch_size", "epochs", "steps_per_epoch", "steps_per_execution"):
        if getattr(c, key) < 1:
            raise ConfigError(f"{where}: {key} must be >= 1, got {getattr(c, key)}")
    if not 0.0 <= c.label_smoothing < 1.0:
        raise ConfigError(f"{where}: label_smoothing must be in [0, 1)")
    if c.seq_len < 2:
        raise ConfigError(f"{where}: seq_len must be >= 2, got {c.seq_len}")
    if not GRID_SIZES[0] <= c.grid_size <= GRID_SIZES[1]:
        raise ConfigError(
            f"{where}: grid_size {c.grid_size} not in {GRID_SIZES[0]}..{GRID_SIZES[1]}"
        )
    if c.ema is not None and not 0.0 < c.ema < 1.0:
        raise ConfigError(
            f"{where}: ema {c.ema:g} is the moving average's decay: between 0 and 1 "
            "(e.g. 0.99; null = off)"
        )


# -- a small typed reader (no dependency beyond the standard library) -------------------------
def _unknown(full: str, key: str, valid: list[str]) -> str:
    prefix = full[: -len(key)]
    if key in RENAMED and RENAMED[key].split()[0] in valid:
        return f"unknown key {full}: it was renamed {prefix}{RENAMED[key]}"
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    hint = f"; did you mean {prefix}{close[0]}?" if close else f" (valid: {', '.join(valid)})"
    return f"unknown key {full}{hint}"


def _build(cls: type, raw: Any, path: str) -> Any:
    """``cls(**raw)`` with every field present, no unknown keys, and values type-checked."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path or 'the top level'} must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    for key in raw:
        if key not in names:
            raise ConfigError(_unknown(_join(path, str(key)), str(key), names))
    missing = [n for n in names if n not in raw]
    if missing:
        raise ConfigError(
            f"missing key {_join(path, missing[0])} (params.yaml holds every "
            "default: restore it from git)"
        )
    return cls(**{n: _value(hints[n], raw[n], _join(path, n)) for n in names})


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _value(tp: Any, v: Any, path: str) -> Any:
    """Check (and, for numbers, normalise) one value against its annotation."""
    origin = get_origin(tp)
    if tp is Any:  # checked by a rule of its own (_check)
        return v
    if dataclasses.is_dataclass(tp):
        return _build(tp, v, path)
    if origin is Literal:
        choices = get_args(tp)
        # bools are ints in Python: compare with their type so that 1 != True here
        if any(v == c and type(v) is type(c) for c in choices):
            return v
        raise ConfigError(f"{path}: expected one of {', '.join(map(repr, choices))}, got {v!r}")
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if v is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _value(inner, v, path)
    if origin is tuple:  # tuple[str, ...]: a list in YAML
        if isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
            return tuple(v)
        raise ConfigError(f"{path}: expected a list of names, got {v!r}")
    if origin is dict:
        if not isinstance(v, dict):
            raise ConfigError(f"{path} must be a mapping, got {v!r}")
        return dict(v)
    if tp is bool:
        if isinstance(v, bool):
            return v
        raise ConfigError(f"{path}: expected true or false, got {v!r}")
    if tp is int:
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        raise ConfigError(f"{path}: expected a whole number, got {v!r}")
    if tp is float:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        if isinstance(v, str):  # PyYAML reads 1e-3 (no dot) as a string
            try:
                return float(v)
            except ValueError:
                pass
        raise ConfigError(f"{path}: expected a number, got {v!r}")
    if tp is str:
        if isinstance(v, str):
            return v
        raise ConfigError(f"{path}: expected a string, got {v!r}")
    raise TypeError(f"{path}: unsupported annotation {tp!r}")  # a bug in the schema


def _check_warm_start(c: MemberConfig, parent: MemberConfig, where: str) -> None:
    """A warm start copies every weight: the same family, widths and inputs (any img_size;
    strokegrid: any seq_len and grid_size)."""
    same = [
        ("arch", c.arch, parent.arch),
        ("alpha", c.alpha, parent.alpha),
        ("country", c.country, parent.country),
    ]
    if c.arch == "strokegrid":  # its input width: the time features or not
        same.append(("encoding", c.needs_time, parent.needs_time))
    elif not c.sequence:
        same.append(("channels", c.channels, parent.channels))
    for key, mine, theirs in same:
        if mine != theirs:
            if key == "encoding":
                mine, theirs = c.encoding, parent.encoding
            raise ConfigError(
                f"{where}: {key} {mine!r} differs from {parent.name}'s {theirs!r}: a warm "
                "start needs the same family, widths and inputs (img_size may differ; "
                "strokegrid: seq_len and grid_size too)"
            )
