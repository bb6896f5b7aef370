"""Canonical JSON: our fast path never disagrees with the RFC 8785 reference; strict parsing."""

import math

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from liquidfab.errors import ProtocolError
from liquidfab.protocol.canonical import canonical_bytes, check_depth, parse_json

MAX_SAFE = 2**53 - 1

# Any Unicode scalar value (no lone surrogates: they are not valid JSON text in UTF-8),
# with the characters that matter for JCS drawn often: controls, quote, backslash, DEL,
# U+2028, BMP above U+E000 and astral characters (UTF-16 order != code point order).
_TRICKY = '\x00\x07\x08\t\n\x0c\r\x1f"\\/\x7f\u00e9\u2028\u20ac\ud7ff\ue000\ufb01\uffff'
_TRICKY += "\U0001f600\U0001d11e\U0010ffff"
chars = st.one_of(st.sampled_from(_TRICKY), st.characters(codec="utf-8"))
texts = st.text(chars, max_size=12)
keys = st.one_of(texts, st.sampled_from(["a", "\u00e9", "\u20ac", "\U0001f600", "\ufb01", ""]))
ints = st.integers(min_value=-MAX_SAFE, max_value=MAX_SAFE)
floats = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.one_of(st.none(), st.booleans(), ints, floats, texts)


def json_values(leaves):
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=5), st.dictionaries(keys, inner, max_size=6)
        ),
        max_leaves=25,
    )


@settings(max_examples=300, deadline=None)
@given(json_values(scalars))
def test_canonical_bytes_equals_rfc8785(value):
    assert canonical_bytes(value) == rfc8785.dumps(value)


@settings(max_examples=300, deadline=None)
@given(json_values(st.one_of(st.none(), st.booleans(), ints, texts)))
def test_fast_path_inputs_equal_rfc8785(value):
    """Without floats most values take the json.dumps path: it must still be exact JCS."""
    assert canonical_bytes(value) == rfc8785.dumps(value)


small_floats = st.floats(min_value=-(2.0**52), max_value=2.0**52, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(json_values(st.one_of(st.none(), st.booleans(), ints, small_floats, texts)))
def test_canonical_form_is_a_fixed_point(value):
    once = canonical_bytes(value)
    assert canonical_bytes(parse_json(once)) == once


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"b": 1, "a": 2}, b'{"a":2,"b":1}'),
        # UTF-16 code unit order: U+1F600 (D83D DE00) sorts before U+FB01.
        ({"\ufb01": 1, "\U0001f600": 2}, '{"\U0001f600":2,"\ufb01":1}'.encode()),
        ({"\u20ac": 1, "\u00e9": 2, "a": 3}, '{"a":3,"\u00e9":2,"\u20ac":1}'.encode()),
        ([1.0, -0.0, 1e21, 1e-7, 0.1, 100], b"[1,0,1e+21,1e-7,0.1,100]"),
        ("\x07\x7f\u2028\U0001f600", '"\\u0007\x7f\u2028\U0001f600"'.encode()),
        ([MAX_SAFE, -MAX_SAFE], b"[9007199254740991,-9007199254740991]"),
    ],
)
def test_known_canonical_forms(value, expected):
    assert canonical_bytes(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        2**53,
        -(2**53),
        10**30,
        {"a": [2**53]},
        math.nan,
        math.inf,
        {1: "a"},
        "\ud800",
        {"\udc00": 1},
    ],
    ids=["2^53", "-2^53", "1e30", "nested", "nan", "inf", "int-key", "lone-high", "lone-low-key"],
)
def test_canonical_bytes_refuses_what_jcs_cannot_express(value):
    with pytest.raises(ProtocolError) as e:
        canonical_bytes(value)
    assert e.value.code == "schema-invalid"
    assert e.value.status == 422


# parse_json ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b'{"a":1,"a":2}', "'a' twice"),
        (b'{"x":{"dup":1,"b":2,"dup":3}}', "'dup' twice"),
        (b'[{"\xc3\xa9":1,"\xc3\xa9":1}]', "twice"),
        (b"NaN", "NaN"),
        (b'{"a":Infinity}', "Infinity"),
        (b"[-Infinity]", "-Infinity"),
        (b'"\xff"', "UTF-8"),
        (b'{"a":"\xed\xa0\x80"}', "UTF-8"),  # an encoded surrogate is not UTF-8
        (b"", "not valid JSON"),
        (b'{"a":', "not valid JSON"),
        (b"[1,]", "not valid JSON"),
        (b"{'a':1}", "not valid JSON"),
        (b'{"a":1} x', "not valid JSON"),
        ("[" * 100_000, "not valid JSON"),
    ],
    ids=lambda x: x if isinstance(x, str) and len(x) < 30 else None,
)
def test_parse_json_refuses_as_malformed(raw, fragment):
    with pytest.raises(ProtocolError) as e:
        parse_json(raw)
    assert e.value.code == "malformed"
    assert e.value.status == 400
    assert fragment in e.value.detail or "nested too deeply" in e.value.detail


def test_parse_json_accepts_strict_json():
    assert parse_json(b'{"a":[1,2.5,"\xc3\xa9",null,true]}') == {
        "a": [1, 2.5, "\u00e9", None, True]
    }
    assert parse_json('{"\\ud83d\\ude00":1}') == {"\U0001f600": 1}


def test_parse_json_refuses_huge_integer_literal_as_malformed():
    with pytest.raises(ProtocolError) as e:
        parse_json(b"[" + b"1" * 5000 + b"]")
    assert e.value.code == "malformed"


# check_depth -----------------------------------------------------------------


def _nested(depth: int, leaf=1):
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


@pytest.mark.parametrize("max_depth", [4, 32])
def test_check_depth_accepts_up_to_the_limit(max_depth):
    check_depth(_nested(max_depth), max_depth)
    check_depth("scalar", max_depth)
    check_depth([1, 2, {"a": [3]}], max_depth)


@pytest.mark.parametrize("max_depth", [4, 32])
def test_check_depth_refuses_deeper(max_depth):
    with pytest.raises(ProtocolError) as e:
        check_depth(_nested(max_depth + 1), max_depth)
    assert e.value.code == "schema-invalid"
    assert str(max_depth) in e.value.detail


def test_check_depth_counts_every_branch():
    wide = {"shallow": 1, "deep": _nested(5)}
    with pytest.raises(ProtocolError):
        check_depth(wide, 5)


def test_check_depth_counts_empty_innermost_container():
    with pytest.raises(ProtocolError):
        check_depth(_nested(5, leaf=[]), 5)
