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
    raw["members"] = {"cnn": {"arch": "mobilenetv2_050"}, "seq": {"arch": "lstm", "seq_len": 64}}
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
    cnn = {"arch": "mobilenetv2_050"}
    raw["members"] = {
        "g": cnn,
        "o": cnn | {"encoding": "order3"},
        "t": cnn | {"encoding": "time3"},
    }
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


def _with_members(members: dict, finetune: dict) -> dict:
    return {**copy.deepcopy(RAW), "members": members, "finetune": finetune}


def test_a_finetune_member_inherits_its_parents_recipe_and_overrides_it():
    params = parse_params(
        _with_members(
            {"base": {"img_size": 64, "epochs": 3}},
            {"big": {"init_from": "base", "img_size": 128}, "bigger": {"init_from": "big"}},
        )
    )
    big, bigger = params.member("big"), params.member("bigger")
    assert (big.init_from, big.img_size, big.epochs) == ("base", 128, 3)
    assert (bigger.init_from, bigger.img_size) == ("big", 128)
    assert params.member_names == ["base", "big", "bigger"]
    assert [params.section_of(m) for m in params.member_names] == ["members", *["finetune"] * 2]


@pytest.mark.parametrize(
    "members, finetune, message",
    [
        ({"base": {}}, {"a": {"init_from": "b"}, "b": {"init_from": "a"}}, "makes a loop: a -> b"),
        ({"base": {}}, {"big": {"img_size": 96}}, "finetune.big: init_from must name"),
        (
            {"base": {}},
            {"big": {"init_from": "base", "arch": "resnet50"}},
            "arch 'resnet50' differs",
        ),
        ({"base": {"init_from": "x"}}, {}, r"move it to finetune.base \(-S \+\+finetune"),
        ({"base": {"pseudo_share": 0.5}}, {}, "members.base: pseudo_share 0.5 needs a teacher"),
    ],
)
def test_finetune_mistakes_stop_in_one_line(members, finetune, message):
    with pytest.raises(ConfigError, match=message):
        parse_params(_with_members(members, finetune))


def _teachers(finetune: dict, members=None) -> dict:
    params = parse_params(_with_members(members or {"base": {}, "b2": {}}, finetune))
    return {m: params.member(m).pseudo_from for m in params.finetune}


def test_pseudo_from_names_one_member_a_list_or_defaults_to_the_parent():
    pl = {"init_from": "base", "pseudo_share": 0.5}
    assert _teachers({"pl": pl}) == {"pl": ("base",)}
    assert _teachers({"pl": pl | {"pseudo_from": "b2"}}) == {"pl": ("b2",)}
    assert _teachers({"pl": pl | {"pseudo_from": ["base", "b2"]}}) == {"pl": ("base", "b2")}
    assert _teachers({"ft": {"init_from": "base"}}) == {"ft": ()}  # no share, no teacher
    # a member started from a pseudo-labelled one inherits its share and its teachers
    child = {"init_from": "pl", "img_size": 96}
    assert _teachers({"pl": pl | {"pseudo_from": "b2"}, "c": child})["c"] == ("b2",)


@pytest.mark.parametrize(
    "finetune, message",
    [
        ({"pl": {"init_from": "base", "pseudo_from": "base"}}, "does nothing with pseudo_share 0"),
        (
            {"pl": {"init_from": "base", "pseudo_share": 0.5, "pseudo_from": "bse"}},
            r"pl.pseudo_from: no member bse \(members: base, b2\); did you mean base\?",
        ),
        (
            {
                "ft": {"init_from": "base"},
                "pl": {"init_from": "base", "pseudo_share": 0.5, "pseudo_from": ["ft"]},
            },
            "pl.pseudo_from: ft is a finetune member; teachers are members",
        ),
        (
            {"ft": {"init_from": "base"}, "pl": {"init_from": "ft", "pseudo_share": 0.5}},
            "pseudo_share needs pseudo_from here: the member it starts from, ft, is a finetune",
        ),
        (
            {"pl": {"init_from": "base", "pseudo_share": 0.5, "pseudo_from": ["b2", "b2"]}},
            "names a member twice",
        ),
        (
            {"pl": {"init_from": "base", "pseudo_share": 0.5, "pseudo_from": [3]}},
            "expected a member or a list, got",
        ),
    ],
)
def test_pseudo_from_mistakes_stop_in_one_line(finetune, message):
    with pytest.raises(ConfigError, match=message):
        _teachers(finetune)


@pytest.mark.parametrize(
    "path, value, fragment",
    [
        ("train.ema", 1.5, "members.base: ema 1.5 is the moving average's decay: between 0 and 1"),
        ("train.ema", 0, "ema 0 is the moving average's decay"),
        ("train.ema", "fast", "train.ema: expected a number"),
        ("train.grid_size", 2, "members.base: grid_size 2 not in 4..128"),
        ("train.grid_reduce", "mean", "train.grid_reduce: expected one of 'sum', 'max'"),
        ("train.country", "yes", "train.country: expected true or false"),
        (
            "ensemble.stack_features",
            ["strokes", "contry"],
            "ensemble.stack_features: unknown feature 'contry' (one of strokes, country); "
            "did you mean country?",
        ),
        ("ensemble.stack_features", ["country", "country"], "names a feature twice"),
        ("ensemble.stack_features", "country", "ensemble.stack_features: expected a list"),
    ],
)
def test_family_and_lever_settings_stop_in_one_line(path, value, fragment):
    with pytest.raises(ConfigError) as e:
        parse_params(with_change(path, value))
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_strokegrid_and_country_members_read_the_shards_and_warm_start_within_the_family():
    raw = with_change("tfrecord.enabled", True)
    raw["tfrecord"]["input"] = "tfrecord"
    raw["members"] = {
        "cnn": {"arch": "mobilenetv2_050"},
        "cc": {"arch": "mobilenetv2_050", "country": True},
        "sg": {"arch": "strokegrid", "encoding": "time3"},
    }
    raw["finetune"] = {"big": {"init_from": "sg", "grid_size": 64, "seq_len": 256}}
    params = parse_params(raw)
    cnn, cc, sg, big = (params.member(m) for m in ("cnn", "cc", "sg", "big"))
    assert (cnn.input, cc.input, sg.input) == ("tfrecord", "shards", "shards")
    assert sg.sequence and sg.needs_time and not params.member("cnn").needs_time
    assert (big.grid_size, big.seq_len, big.arch) == (64, 256, "strokegrid")
    # a warm start copies every weight: the inputs must match
    for finetune, message in [
        ({"init_from": "sg", "encoding": "grey"}, "encoding 'grey' differs from sg's 'time3'"),
        ({"init_from": "cnn", "country": True}, "country True differs from cnn's False"),
    ]:
        raw["finetune"] = {"bad": finetune}
        with pytest.raises(ConfigError, match=message):
            parse_params(raw)
