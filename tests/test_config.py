"""params.yaml's schema: every key present, none unknown, every type right, members merged."""

import copy
import subprocess
import sys

import pytest
import yaml

from doodle.config import MemberConfig, load_params, parse_params
from doodle.errors import ConfigError
from tests.conftest import ROOT

RAW = yaml.safe_load((ROOT / "params.yaml").read_text())


def with_change(path: str, value=None, delete: bool = False) -> dict:
    """A copy of the repo's params with one dotted key set (or deleted)."""
    raw = copy.deepcopy(RAW)
    *parents, last = path.split(".")
    node = raw
    for p in parents:
        node = node[p]
    if delete:
        del node[last]
    else:
        node[last] = value
    return raw


def test_repo_params_parse_and_resolve_the_default_member():
    params = load_params(ROOT / "params.yaml")
    cfg = params.member("base")
    assert isinstance(cfg, MemberConfig)
    assert (cfg.img_size, cfg.arch, cfg.seed) == (RAW["img_size"], RAW["arch"], RAW["seed"])
    assert cfg.batch_size == RAW["train"]["batch_size"]
    assert cfg.augment.rotate == float(RAW["train"]["augment"]["rotate"])
    assert cfg.input == RAW["tfrecord"]["input"]


def test_member_overrides_and_top_level_defaults():
    raw = copy.deepcopy(RAW)
    raw["members"] = {
        "a": {},
        "b": {"img_size": 96, "arch": "efficientnetb0", "augment": {"flip": 0.0}},
    }
    params = parse_params(raw)
    a, b = params.member("a"), params.member("b")
    assert (a.img_size, a.arch) == (RAW["img_size"], RAW["arch"])
    assert (b.img_size, b.arch, b.batch_size) == (96, "efficientnetb0", RAW["train"]["batch_size"])
    assert b.augment.flip == 0.0  # nested override merges key by key
    assert b.augment.scale == RAW["train"]["augment"]["scale"]
    raw["img_size"] = 128  # what `dvc exp run -S img_size=128` does
    params = parse_params(raw)
    assert params.member("a").img_size == 128 and params.member("b").img_size == 96


def test_sequence_member_reads_shards_whatever_the_image_input():
    raw = copy.deepcopy(RAW)
    raw["tfrecord"] |= {"enabled": True, "input": "tfrecord"}
    raw["members"] = {"cnn": {}, "seq": {"arch": "lstm", "seq_len": 64}}
    params = parse_params(raw)
    cnn, seq = params.member("cnn"), params.member("seq")
    assert (cnn.input, cnn.sequence) == ("tfrecord", False)
    assert (seq.input, seq.sequence, seq.seq_len) == ("shards", True, 64)
    raw["members"]["seq"]["seq_len"] = 1
    with pytest.raises(ConfigError, match="members.seq: seq_len must be >= 2"):
        parse_params(raw).member("seq")


@pytest.mark.parametrize(
    "path, message",
    [
        (
            "train.label_smothing",
            "unknown key train.label_smothing; did you mean train.label_smoothing?",
        ),
        ("img_sise", "unknown key img_sise; did you mean img_size?"),
        ("ensemble.balanse", "unknown key ensemble.balanse; did you mean ensemble.balance?"),
        (
            "train.augment.rotat",
            "unknown key train.augment.rotat; did you mean train.augment.rotate?",
        ),
    ],
)
def test_misspelt_key_names_path_and_fix(path, message):
    with pytest.raises(ConfigError) as e:
        parse_params(with_change(path, 1))
    assert message in str(e.value)


def test_misspelt_member_override_names_path_and_fix():
    raw = with_change("members", {"base": {}, "big": {"img_sise": 96}})
    with pytest.raises(
        ConfigError,
        match=r"unknown key members\.big\.img_sise; did you mean "
        r"members\.big\.img_size\?",
    ):
        parse_params(raw)
    raw = with_change("members", {"big": {"augment": {"fllip": 0.0}}})
    with pytest.raises(
        ConfigError,
        match=r"members\.big\.augment\.fllip; did you mean "
        r"members\.big\.augment\.flip\?",
    ):
        parse_params(raw)


@pytest.mark.parametrize(
    "path",
    ["train.alpha", "train.augment.flip", "runtime.workers", "ensemble.score_fraction", "img_size"],
)
def test_missing_key_is_an_error_not_a_silent_default(path):
    with pytest.raises(ConfigError, match=f"missing key {path}"):
        parse_params(with_change(path, delete=True))


@pytest.mark.parametrize(
    "path, value, fragment",
    [
        ("img_size", "big", "img_size: expected a whole number"),
        ("img_size", 64.5, "img_size: expected a whole number"),
        ("train.scale_lr", "yes", "train.scale_lr: expected true or false"),
        ("train.encoding", "rgb", "train.encoding: expected one of 'grey', 'order3', 'time3'"),
        ("train.jit", "sometimes", "train.jit: expected one of"),
        ("train.learning_rate", "fast", "train.learning_rate: expected a number"),
        ("ensemble.final", "median", "ensemble.final must be one of"),
        ("members", {"big": {"img_size": 16}}, "members.big: img_size 16 not in 32..256"),
        ("members", {"big": {"batch_size": "64"}}, "members.big.batch_size: expected a whole"),
        ("members", {"big": [1]}, "members.big must be a mapping"),
        ("tfrecord.input", "tfrecord", "tfrecord.input: tfrecord needs tfrecord.enabled: true"),
        ("data.source", "local", "data.source: local needs data.local.path"),
        ("data.source", "../x.zip", "data.source: expected one of 'synthetic', 'kaggle', 'local'"),
    ],
)
def test_wrong_values_name_the_key(path, value, fragment):
    with pytest.raises(ConfigError) as e:
        parse_params(with_change(path, value))
    assert fragment in str(e.value)


def test_numbers_are_normalised():
    params = parse_params(with_change("train.learning_rate", "1e-3"))  # PyYAML's string
    assert params.train.learning_rate == pytest.approx(0.001)
    assert parse_params(with_change("train.line_width", 5)).train.line_width == 5.0


def test_unknown_member_name():
    with pytest.raises(ConfigError, match="nope"):
        load_params(ROOT / "params.yaml").member("nope")


def test_package_has_no_config_fallbacks():
    """params.yaml is the one source of defaults: no `cfg.get(key, default)` in the package."""
    offenders = [
        f"{p.name}:{i}"
        for p in (ROOT / "doodle").glob("*.py")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if "cfg.get(" in line or "params.get(" in line
    ]
    assert offenders == []


@pytest.mark.e2e  # runs a stage script in a subprocess
def test_stage_stops_on_a_misspelt_key(tmp_path):
    """A stage script stops at once, in one line that names the key and the fix."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(with_change("train.label_smothing", 0.1)))
    p = subprocess.run(
        [sys.executable, str(ROOT / "stages" / "train.py"), "base"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 1
    assert p.stderr.strip().splitlines() == [
        "train: error: params.yaml: unknown key train.label_smothing; did you mean "
        "train.label_smoothing?"
    ]


def test_encoding_gives_channels_and_a_time_encoding_reads_the_shards():
    raw = with_change("tfrecord.enabled", True)
    raw["tfrecord"]["input"] = "tfrecord"
    raw["members"] = {"g": {}, "o": {"encoding": "order3"}, "t": {"encoding": "time3"}}
    params = parse_params(raw)
    g, o, t = (params.member(m) for m in ("g", "o", "t"))
    assert (g.channels, o.channels, t.channels) == (1, 3, 3)
    assert (g.needs_time, o.needs_time, t.needs_time) == (False, False, True)
    assert (g.input, o.input, t.input) == ("tfrecord", "tfrecord", "shards")  # no times there
    with pytest.raises(AttributeError):
        g.channels = 3  # derived, read-only


@pytest.mark.parametrize("where", ["train.channels", "members.big.channels"])
def test_the_renamed_channels_key_says_what_replaced_it(where):
    raw = copy.deepcopy(RAW)
    if where.startswith("train"):
        raw["train"]["channels"] = 3
    else:
        raw["members"] = {"big": {"channels": 3}}
    with pytest.raises(ConfigError, match=f"unknown key {where}: it was renamed .*encoding"):
        parse_params(raw)
