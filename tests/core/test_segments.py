"""SMS encoding and segment counts: GSM-7 (extension characters count twice) or UCS-2."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.core.segments import GSM_BASIC, GSM_EXTENDED, count
from workers.errors import RenderError


@pytest.mark.parametrize(
    ("body", "encoding", "units", "parts"),
    [
        ("", "GSM-7", 0, 0),
        ("Hello", "GSM-7", 5, 1),
        ("x" * 160, "GSM-7", 160, 1),
        ("x" * 161, "GSM-7", 161, 2),
        ("x" * 306, "GSM-7", 306, 2),
        ("x" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # extension characters take two septets
        ("€" * 81, "GSM-7", 162, 2),
        ("x" * 152 + "€" + "x" * 10, "GSM-7", 164, 2),
        ("x" * 152 + "€" + "x" * 152, "GSM-7", 306, 3),  # an escape pair never straddles two parts
        ("It’s here", "UCS-2", 9, 1),  # one curly quote turns the whole message into UCS-2
        ("y" * 70, "GSM-7", 70, 1),
        ("’" * 70, "UCS-2", 70, 1),
        ("’" * 71, "UCS-2", 71, 2),
        ("’" * 134, "UCS-2", 134, 2),
        ("’" * 135, "UCS-2", 135, 3),
        ("😀" * 35, "UCS-2", 70, 1),  # outside the BMP: two UTF-16 units each
        ("😀" * 36, "UCS-2", 72, 2),
    ],
)
def test_counts(body: str, encoding: str, units: int, parts: int) -> None:
    seg = count(body)
    assert (seg.encoding, seg.units, seg.parts) == (encoding, units, parts)


def test_non_gsm_characters_are_named() -> None:
    assert count("Don’t miss 🎉").non_gsm == ("’", "🎉")
    assert count("Plain text").non_gsm == ()


gsm_text = st.text(alphabet=sorted(GSM_BASIC | GSM_EXTENDED), max_size=2000)


@given(gsm_text)
def test_gsm_parts_hold_the_text(body: str) -> None:
    seg = count(body)
    assert seg.encoding == "GSM-7"
    assert seg.units == len(body) + sum(ch in GSM_EXTENDED for ch in body)
    if seg.units <= 160:
        assert seg.parts == (1 if body else 0)
    else:
        assert 153 * (seg.parts - 1) < seg.units + seg.parts  # no part is wasted …
        assert seg.units <= 153 * seg.parts  # … and the parts hold every septet


@given(st.text(max_size=600))
def test_any_text_gets_a_consistent_count(body: str) -> None:
    seg = count(body)
    single, part = (160, 153) if seg.encoding == "GSM-7" else (70, 67)
    assert seg.parts == 0 if not body else seg.parts >= 1
    if seg.units > single:
        assert seg.units <= part * seg.parts
    assert (seg.encoding == "UCS-2") == bool(seg.non_gsm)


@given(gsm_text, st.sampled_from(["’", "é́", "🎉", "中"]))
def test_one_non_gsm_character_switches_to_ucs2(body: str, odd: str) -> None:
    assert count(body + odd).encoding == "UCS-2"


@pytest.mark.parametrize("body", ["Hi \ud800", "\udfff", "x" * 200 + "\udbff\udc00"])  # lone, or a split pair
def test_a_lone_surrogate_is_a_render_error_naming_it_not_a_crash(body: str) -> None:
    with pytest.raises(RenderError, match=r"body: lone surrogate \\ud[89a-f][0-9a-f]{2} at character"):
        count(body)
