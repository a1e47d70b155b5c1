"""JSON text as the importer and the ingest API read it (feedsvc/ingest/jsontext.py): RFC 8259
JSON within bounds on number length and nesting, without duplicate keys, NaN or Infinity; any
other input is NotJson with a reason, never another exception. The importer's and the API's
ends of these rules are in test_import.py and test_api.py."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedsvc.ingest.jsontext import MAX_DEPTH, MAX_NUMBER, NotJson, loads

TOO_DEEP = f"arrays and objects nest deeper than the limit of {MAX_DEPTH} levels"


def reason(data: bytes) -> str:
    with pytest.raises(NotJson) as info:
        loads(data)
    return str(info.value)


def nested(depth: int, inner: str = "1") -> bytes:
    """`depth` arrays and objects, one in the other, alternately."""
    opening = "".join('{"a": ' if level % 2 else "[" for level in range(depth))
    closing = "".join("}" if level % 2 else "]" for level in reversed(range(depth)))
    return (opening + inner + closing).encode()


def test_an_article_line_reads_as_the_json_module_reads_it():
    doc = {"id": "a", "title": "T\u00e9 \"[{\"", "videos": [{"duration": 90.5, "width": 640}],
           "tags": [], "x": {"y": [None, True, False, -0.0, 1e300, 12]}}
    for text in (json.dumps(doc), json.dumps(doc, ensure_ascii=False, indent=2)):
        assert loads(text.encode()) == doc == json.loads(text)
    assert loads(b"\xef\xbb\xbf" + json.dumps(doc).encode()) == doc  # a leading BOM (RFC 8259 §8.1)


def test_nesting_up_to_the_limit_is_read_and_one_level_more_is_refused():
    assert loads(nested(MAX_DEPTH)) == json.loads(nested(MAX_DEPTH))
    assert reason(nested(MAX_DEPTH + 1)) == TOO_DEEP


@pytest.mark.parametrize("depth", [100_000, 1_000_000])
def test_deep_nesting_is_refused_at_once_without_a_recursion_error(depth):
    started = time.perf_counter()
    for text in (b"[" * depth + b"]" * depth, b'{"a": ' * depth + b"1" + b"}" * depth,
                 nested(depth), b"[" * depth):
        assert reason(text) == TOO_DEEP
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize("inside", [
    "[" * 10_000, "{" * 10_000, '\\"' + "[" * 100, "\\\\" + "[" * 100, "[{" * 5_000 + '\\"]',
])
def test_brackets_in_strings_are_text_not_nesting(inside):
    text = f'{{"body": "{inside}", "b": [[["{inside}"]]], "{inside}": 1}}'
    assert loads(text.encode()) == json.loads(text)


def test_a_string_after_escaped_quotes_does_not_hide_real_nesting():
    text = '{"a": "\\\\", "b": ' + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "}"
    assert reason(text.encode()) == TOO_DEEP


def test_numbers_up_to_the_limit_are_read_and_longer_ones_refused():
    assert loads(("9" * MAX_NUMBER).encode()) == int("9" * MAX_NUMBER)
    assert loads(("0." + "1" * (MAX_NUMBER - 2)).encode()) == pytest.approx(0.1111111111)
    for number in ("1" * (MAX_NUMBER + 1), "1" * 5000, "0." + "1" * 5000, "1" * 500 + "e5",
                   "-" + "1" * MAX_NUMBER):
        assert reason(f'{{"width": {number}}}'.encode()) == \
            f"a number is {len(number)} characters long, the limit is {MAX_NUMBER}"


@pytest.mark.parametrize("number", ["1e400", "-1e400", "9" * 50 + "e300"])
def test_a_number_beyond_a_double_is_refused(number):
    assert reason(f"[{number}]".encode()) == f"the number {number} is out of the range of a double"


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(constant):
    assert reason(f'{{"duration": {constant}}}'.encode()) == f"{constant} is not a JSON value"


def test_a_key_given_twice_in_one_object_is_refused():
    assert reason(b'{"id": "a", "title": "T", "id": "b"}') == \
        "the key 'id' is given twice in one object"
    assert reason(b'{"images": [{"url": "/a", "url": "/b"}]}') == \
        "the key 'url' is given twice in one object"
    long_key = "k" * 1000
    assert len(reason(f'{{"{long_key}": 1, "{long_key}": 2}}'.encode())) < 100
    assert loads(b'{"a": {"id": 1}, "b": {"id": 2}, "id": 3}') == {
        "a": {"id": 1}, "b": {"id": 2}, "id": 3}  # the same key in other objects


def test_syntax_errors_and_bad_utf8_say_where():
    assert reason(b'{"id": "x",') == \
        "not JSON: the line ends at column 11 before the JSON does (Expecting property name " \
        "enclosed in double quotes)"
    assert reason(b'{"id": x}') == "not JSON: Expecting value at column 8"
    assert reason(b'{"id": "\xff"}') == "not UTF-8: invalid start byte"
    assert reason(b"").startswith("not JSON")


_TEXT = st.text(alphabet=st.sampled_from('ab"\\[]{}:, \u00e9\n'), max_size=12)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**30, 10**30) | st.floats(allow_nan=False,
                                                                           allow_infinity=False)
    | _TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_TEXT, children,
                                                                        max_size=3),
    max_leaves=30)


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None, database=None)
@given(value=_VALUES, wrap=st.integers(0, MAX_DEPTH + 2))
def test_json_within_the_bounds_reads_as_the_json_module_reads_it(value, wrap):
    text = "[" * wrap + json.dumps(value) + "]" * wrap
    if _depth(value) + wrap > MAX_DEPTH:
        assert reason(text.encode()) == TOO_DEEP
    else:
        assert loads(text.encode()) == json.loads(text)


@settings(max_examples=300, deadline=None, database=None)
@given(data=st.binary(max_size=40) | _TEXT.map(str.encode)
       | st.lists(st.sampled_from([b"[", b"]", b"{", b"}", b'"', b"\\", b"1", b",", b":"]),
                  max_size=200).map(b"".join))
def test_any_bytes_are_a_value_or_not_json(data):
    try:
        loads(data)
    except NotJson as exc:
        assert str(exc)
