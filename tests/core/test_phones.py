"""E.164 normalisation: strict for numbers people type, lenient for numbers ClickSend reports."""

from __future__ import annotations

from workers.core.phones import e164


def test_local_and_international_forms_become_e164() -> None:
    assert e164("0411 111 111", "AU") == "+61411111111"
    assert e164("+1 (415) 555-2671", "AU") == "+14155552671"


def test_strict_refuses_what_is_not_a_valid_number_and_lenient_keeps_it() -> None:
    assert e164("+61 400 000", "AU") is None  # too short for an Australian number
    assert e164("+61 400 000", "AU", strict=False) == "+61400000"
    assert e164("not a number", "AU", strict=False) is None
