"""E.164 normalisation: strict for numbers people type, lenient for numbers ClickSend reports."""

from __future__ import annotations

import phonenumbers
import pytest
from phonenumbers import timezone as number_zones

from workers.core import phones
from workers.core.phones import Number, e164, read, recipient_zones, time_zones


def test_local_and_international_forms_become_e164() -> None:
    assert e164("0411 111 111", "AU") == "+61411111111"
    assert e164("+1 (415) 555-2671", "AU") == "+14155552671"


def test_strict_refuses_what_is_not_a_valid_number_and_lenient_keeps_it() -> None:
    assert e164("+61 400 000", "AU") is None  # too short for an Australian number
    assert e164("+61 400 000", "AU", strict=False) == "+61400000"
    assert e164("not a number", "AU", strict=False) is None


# A number's facts are computed once (`read`) from one parse and one number type; these pin them, and check them
# against phonenumbers' own functions, the ones Hookline called before.
AU_ZONES = ("Australia/Adelaide", "Australia/Brisbane", "Australia/Eucla", "Australia/Lord_Howe", "Australia/Perth",
            "Australia/Sydney", "Indian/Christmas", "Indian/Cocos")
UK_ZONES = ("Europe/Guernsey", "Europe/Isle_of_Man", "Europe/Jersey", "Europe/London")


@pytest.mark.parametrize(("raw", "region", "expected"), [
    # An Australian mobile: not geographical, so every zone of +61.
    ("+61412345678", "US", Number(True, "+61412345678", "AU", AU_ZONES)),
    ("0412 345 678", "AU", Number(True, "+61412345678", "AU", AU_ZONES)),
    ("+61 2 9876 5432", "AU", Number(True, "+61298765432", "AU", ("Australia/Sydney",))),
    # A US number whose prefix (Idaho) spans two zones.
    ("+1 208 223 4567", "AU", Number(True, "+12082234567", "US", ("America/Boise", "America/Los_Angeles"))),
    ("(208) 223-4567", "US", Number(True, "+12082234567", "US", ("America/Boise", "America/Los_Angeles"))),
    # UK: a London line, and a mobile (the region phonenumbers gives it, and the zones of +44).
    ("+44 20 7946 0958", "AU", Number(True, "+442079460958", "GB", ("Europe/London",))),
    ("07911 123456", "GB", Number(True, "+447911123456", "GG", UK_ZONES)),
    # Parsed but not valid: no zones.
    ("+61 400 000", "AU", Number(False, "+61400000", None, ())),
    # A leading plus, then an international prefix only the default region's metadata knows.
    ("+0011 61 412 345 678", "AU", Number(True, "+61412345678", "AU", AU_ZONES)),
])
def test_read_pins_e164_region_validity_and_zones(raw: str, region: str, expected: Number) -> None:
    assert read(raw, region) == expected


def test_read_raises_phonenumbers_own_error_for_what_is_not_a_number() -> None:
    for raw, region in (("not a number", "AU"), ("+", "AU"), ("+0011 61 412 345 678", "US")):
        with pytest.raises(phonenumbers.NumberParseException) as caught:
            read(raw, region)
        with pytest.raises(phonenumbers.NumberParseException) as expected:
            phonenumbers.parse(raw, region)
        assert str(caught.value) == str(expected.value)


def test_time_zones_and_recipient_zones() -> None:
    assert time_zones("+61412345678") == AU_ZONES
    assert time_zones("+12082234567") == ("America/Boise", "America/Los_Angeles")
    assert time_zones("+442079460958") == ("Europe/London",)
    assert time_zones("+61400000") == ()  # not valid
    assert time_zones("0412 345 678") == ()  # no country code, and no region to read it in
    assert time_zones("+0011 61 412 345 678") == ()
    assert time_zones(None) == time_zones("") == ()
    assert recipient_zones("Europe/Paris", "+61412345678") == ("Europe/Paris",)
    assert recipient_zones("Not/AZone", "+61412345678") == AU_ZONES
    assert recipient_zones(None, "+12082234567") == ("America/Boise", "America/Los_Angeles")


def _before(raw: str, region: str | None) -> Number | None:
    """What phonenumbers' own functions say, as Hookline asked them before `read`: None when it cannot parse."""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    zones = tuple(z for z in number_zones.time_zones_for_number(parsed) if z != "Etc/Unknown")
    return Number(phonenumbers.is_valid_number(parsed),
                  phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
                  phonenumbers.region_code_for_number(parsed), zones)


def test_read_agrees_with_phonenumbers_for_every_example_number() -> None:
    """Every region's example number of every type (and one digit short and long of it), in international and
    national form, read in its own region and another: the same as is_valid_number, format_number,
    region_code_for_number and time_zones_for_number say, so one number type computed once stands for theirs."""
    seen = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in range(12):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            international = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
            for raw in (international, international[:-1], international + "5", national):
                for read_in in (region, "US"):
                    before = _before(raw, read_in)
                    if before is None:
                        with pytest.raises(phonenumbers.NumberParseException):
                            read(raw, read_in)
                    else:
                        assert read(raw, read_in) == before, (raw, read_in)
                        seen += 1
                found = _before(raw, None)
                assert time_zones(raw) == (found.zones if found else ()), raw
    assert seen > 4000


def test_long_international_text_is_read_without_the_cache() -> None:
    long = "+61" + "4" * 40
    before = phones._cached_international.cache_info().currsize
    assert phones.international(long) == phones.international(long)
    assert phones._cached_international.cache_info().currsize == before
