"""The drawing's country: its two-letter code as an index in a fixed vocabulary.

The shards keep each row's ``countrycode`` as the CSV gave it (two bytes, ``S2``: training,
holdout, test and pseudo-label rows alike; :mod:`doodle.data.shards`). This module maps a
code to a small integer for the models (``train.country``) and the stacker
(``ensemble.stack_features``): the ISO 3166-1 alpha-2 codes plus ``XK`` (Kosovo, which
Google's data uses), sorted, from 1; everything else -- an empty cell, a placeholder such
as ``ZZ``, a code that is not a country, bytes that are not letters -- goes to one bucket,
0. The vocabulary is fixed in code, never learnt from the rows, so the same code has the
same index in every shard, stage and member, whatever data was read.
"""

from __future__ import annotations

import numpy as np

_ISO_3166 = """
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR
BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ
EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW
GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY
KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV
MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY
QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG
TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM
ZW
"""
CODES: tuple[str, ...] = tuple(sorted({*_ISO_3166.split(), "XK"}))
UNKNOWN = 0  # the bucket of every code that is not in CODES
N_COUNTRIES = len(CODES) + 1  # the embedding's input dimension

# index = _TABLE[first byte * 256 + second byte] (upper or lower case)
_TABLE = np.zeros(1 << 16, np.int32)
for _i, _code in enumerate(CODES, 1):
    for _c in (_code, _code.lower()):
        _TABLE[ord(_c[0]) * 256 + ord(_c[1])] = _i


def country_index(codes: np.ndarray) -> np.ndarray:
    """``(n,)`` int32 vocabulary indices of ``codes`` (``S2`` bytes from a shard, or
    strings from a prediction file); 0 for an unknown or missing code."""
    a = np.asarray(codes)
    if a.dtype.kind == "U":
        a = np.char.encode(a, "ascii", errors="replace")
    a = np.ascontiguousarray(a, dtype="S2")
    pairs = a.view(np.uint8).reshape(-1, 2).astype(np.int32)
    return _TABLE[pairs[:, 0] * 256 + pairs[:, 1]]
