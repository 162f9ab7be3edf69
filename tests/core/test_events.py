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
