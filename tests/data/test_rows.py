"""doodle.data.rows: key_ids and how a cell is quoted in a message."""

import pytest

from doodle.data.rows import parse_key_id, shown


def test_a_long_cell_is_quoted_cut_with_its_length():
    assert shown("123") == "'123'"
    s = shown("9" * 5000)
    assert s.startswith("'" + "9" * 40 + "'...") and "5,000 characters" in s and len(s) < 80


@pytest.mark.parametrize("text", ["-1", str(2**63), "9" * 5000, "1.5", "abc"])
def test_a_key_id_that_is_no_int64_is_refused_in_a_short_message(text):
    with pytest.raises(ValueError) as e:
        parse_key_id(text)
    assert len(str(e.value)) < 120


def test_a_key_id_in_range_is_read():
    assert parse_key_id("5152802093400064") == 5152802093400064
