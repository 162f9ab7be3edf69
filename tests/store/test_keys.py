"""The store's decoding helpers: `maybe_json` reads a stored field exactly as `json.loads`-or-the-string did."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from workers.store.keys import maybe_json


def _reference(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                                  max_size=3), max_leaves=6)
_spaces = st.text(" \t\n\r", max_size=2)
_fields = st.one_of(
    st.text(max_size=12),  # plain strings: states, ids, channels, anything
    st.builds(json.dumps, _json),  # what the transitions store
    st.builds(lambda pre, doc, post: pre + doc + post, _spaces, st.builds(json.dumps, _json),
              st.one_of(_spaces, st.text(max_size=3))),  # whitespace around, or text after, a JSON value
    st.sampled_from(["NaN", "-Infinity", "Infinity", "nul", "tru", "1.", "-", "01", "\ufeff1", "1 2", "\u00a01",
                     "[1,", '"open', "", " ", "1e400", "-0"]),
)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and repr(a) == repr(b)


@settings(max_examples=1000, deadline=None)
@given(_fields)
def test_maybe_json_reads_what_json_loads_or_the_string_gives(value: str) -> None:
    assert _same(maybe_json(value), _reference(value))


def test_plain_strings_stay_strings_and_json_is_decoded() -> None:
    assert [maybe_json(v) for v in ("queued", "evt_1", "123", '"P1"', "1790000000.5", "null", " 1 ", "1 x")] == \
        ["queued", "evt_1", 123, "P1", 1790000000.5, None, 1, "1 x"]
