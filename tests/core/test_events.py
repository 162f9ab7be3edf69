"""Event bodies: JSON decoding with a nesting limit."""

from __future__ import annotations

import pytest

from workers.core.events import MAX_DEPTH, decode_json


def nested(depth: int) -> str:
    return '{"a":' * (depth - 1) + "[]" + "}" * (depth - 1)


def test_json_up_to_the_nesting_limit_is_decoded() -> None:
    assert decode_json(nested(MAX_DEPTH))["a"]["a"]
    assert decode_json(b'{"id": 1, "tags": ["x"]}') == {"id": 1, "tags": ["x"]}
    assert decode_json("3") == 3


@pytest.mark.parametrize("text", [nested(MAX_DEPTH + 1), "[" * 100_000 + "]" * 100_000])
def test_json_nested_deeper_is_refused_without_recursing(text: str) -> None:
    with pytest.raises(ValueError, match=f"nested more than {MAX_DEPTH} levels deep"):
        decode_json(text)


def test_not_json_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        decode_json(b'{"id": 1,')
    with pytest.raises(ValueError):
        decode_json(b"\xff\xfe{")


@pytest.mark.parametrize(("text", "message"), [
    ("[NaN]", "NaN is not a JSON value"),
    ('{"total": Infinity}', "Infinity is not a JSON value"),
    ('{"total": -Infinity}', "-Infinity is not a JSON value"),
    ('{"total": 1e999}', "number 1e999 is too large"),  # Python would read inf: stored, it is not JSON again
])
def test_non_finite_numbers_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_json(text)


@pytest.mark.parametrize("text", ['{"id": 1, "id": 2}', '{"a": [{"to": "+1", "x": 0, "to": "+2"}]}'])
def test_a_key_repeated_in_one_object_is_refused(text: str) -> None:
    # Which value wins depends on the parser: a signature checker and a rule could read different payloads.
    with pytest.raises(ValueError, match=r"duplicate key '(id|to)' in one object"):
        decode_json(text)


def test_the_same_key_in_different_objects_is_fine() -> None:
    assert decode_json('{"a": {"id": 1}, "b": {"id": 2}, "id": 3}') == {"a": {"id": 1}, "b": {"id": 2}, "id": 3}


@pytest.mark.parametrize(("data", "where"), [
    ('{"alertname":"\\ud800X"}', "alertname: lone surrogate \\ud800"),
    (b'{"alerts": [{"labels": {"x": "ok", "y": "\\uDC00"}}]}', "alerts/0/labels/y: lone surrogate \\udc00"),
    (b'{"k\\udbff": 1}', "(key): lone surrogate \\udbff"),
    (b'{"a": "\xed\xa0\x80"}', "a: lone surrogate \\ud800"),  # the UTF-8-style bytes of a surrogate
    ('{"a": "\\ud800"}'.encode("utf-16-le"), "a: lone surrogate \\ud800"),
    ('"\\udfff"', "(root): lone surrogate \\udfff"),
])
def test_a_lone_surrogate_is_refused_with_where_it_is(data: bytes | str, where: str) -> None:
    with pytest.raises(ValueError) as info:
        decode_json(data)
    assert str(info.value).startswith(where)


def test_escaped_surrogate_pairs_and_escaped_backslashes_are_fine() -> None:
    assert decode_json(b'{"a": "\\ud83d\\ude00", "b": "\\\\ud800"}') == {"a": "😀", "b": "\\ud800"}
    assert decode_json('{"a": "Léa’s 😀", "n": 1.5e3, "z": -0.0}') == {"a": "Léa’s 😀", "n": 1500.0, "z": -0.0}
