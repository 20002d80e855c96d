"""The drawing's country: kept in the shards for every row, mapped to a fixed vocabulary
(unknown and missing codes to one bucket), fed to a member with ``train.country`` beside its
drawings, and to the stacker as a feature; no label is read for it."""

import numpy as np
import pytest

from doodle.data.countries import CODES, N_COUNTRIES, UNKNOWN, country_index
from doodle.data.shards import open_shard, train_shard_paths


def test_the_vocabulary_is_fixed_and_unknown_codes_share_one_bucket():
    assert list(CODES) == sorted(set(CODES)) and len(CODES) == 250  # ISO 3166-1 + XK
    assert N_COUNTRIES == 251 and UNKNOWN == 0
    got = country_index(np.array([b"US", b"us", b"", b"ZZ", b"U", b"?S", b"XK"], "S2"))
    us = CODES.index("US") + 1
    assert got.tolist() == [us, us, 0, 0, 0, 0, CODES.index("XK") + 1]
    assert got.dtype == np.int32
    # strings (prediction files) map as bytes (shards) do
    assert country_index(np.array(["US", "", "é"])).tolist() == [us, 0, 0]


def test_shards_keep_every_rows_country(synthetic_raw, synthetic_shards):
    """Training, holdout and test rows all carry the CSV's code (test rows: the test file's
    column, which the submission's rows come from; their labels are not involved)."""
    import csv

    with open(synthetic_raw / "test_simplified.csv", newline="") as f:
        test_codes = {int(r["key_id"]): r["countrycode"] for r in csv.DictReader(f)}
    test = open_shard(synthetic_shards / "test.qds")
    assert [test_codes[int(k)] for k in test.key_id] == test.countrycode.astype("U2").tolist()
    for path in [*train_shard_paths(synthetic_shards), synthetic_shards / "holdout.qds"]:
        shard = open_shard(path)
        assert len(shard.countrycode) == len(shard) and (country_index(shard.countrycode) > 0).all()


@pytest.mark.parametrize("family", ["grey", "strokegrid"])
def test_a_country_member_gets_its_drawings_countries(synthetic_shards, family):
    from doodle.training.dataset import DrawingDataset, StrokeGridDataset

    path = synthetic_shards / "test.qds"
    if family == "strokegrid":
        data = StrokeGridDataset(
            [path], seq_len=16, encoding="grey", batch_size=8, n_classes=8, country=True
        )
    else:
        data = DrawingDataset(
            [path],
            img_size=32,
            encoding="grey",
            line_width=6.0,
            batch_size=8,
            n_classes=8,
            country=True,
        )
    ((x, country),) = data[1]  # evaluation: inputs only, no label read
    assert x.shape[0] == 8 and country.dtype == np.int32 and country.shape == (8,)
    shard = open_shard(path)
    assert np.array_equal(country, country_index(shard.countrycode[8:16]))
    assert data.input_specs()[1] == ((), np.int32)
    plain = DrawingDataset(
        [path], img_size=32, encoding="grey", line_width=6.0, batch_size=8, n_classes=8
    )
    assert isinstance(plain[1][0], np.ndarray) and len(plain.input_specs()) == 1


def test_the_stacker_reads_the_country_only_when_asked():
    from doodle.ensemble.stack import Stacker, stack_cv

    rng = np.random.default_rng(0)
    n, c = 60, 6
    probs = [rng.dirichlet(np.ones(c), n).astype(np.float32) for _ in range(2)]
    meta = {
        "n_strokes": rng.integers(1, 9, n),
        "n_points": rng.integers(5, 90, n),
        "countrycode": np.array(["US", "GB", "", "ZZ"] * 15),
    }
    labels = rng.integers(0, c, n)
    full = Stacker(k=3, features=("strokes", "country"))
    _, _, x_full, _ = full.features(probs, meta)
    _, _, x_none, _ = Stacker(k=3, features=()).features(probs, meta)
    assert x_full.shape[1] == x_none.shape[1] + 3
    # the country column is the vocabulary index, the same for any rows
    rows, _, x, _ = full.features(probs, meta)
    assert np.array_equal(x[:, -1], country_index(meta["countrycode"])[rows])
    assert np.array_equal(x_full[:, :-3], x_none)
    full.fit(probs, meta, labels)  # hgb with the country as a categorical feature
    assert full.fitted.categorical_features == [x_full.shape[1] - 1]
    _, score = stack_cv(probs, meta, labels, k=3, folds=2, features=("strokes",))
    assert 0 <= score <= 1
    with pytest.raises(ValueError, match="unknown stack features"):
        Stacker(features=("colour",))
