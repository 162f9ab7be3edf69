"""Phone numbers in E.164, the one form Hookline stores, compares and sends.

Pure: phonenumbers' metadata only. A number's E.164 form, region and time zones come from one parse and one
computation of its number type (`read`), the part of phonenumbers that costs: planning reads every recipient,
and admission asks the same number's zones again (`time_zones`), which finds them in a bounded cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import PhoneNumberType
from phonenumbers import timezone as number_zones

# How many numbers read from their international form are kept. A drain batch plans every recipient before it
# admits any, so each of its numbers must still be here when admission asks for the zones; a send to a list
# larger than this reads the numbers past it again (the same answer, at the old cost). An entry is about 300
# bytes (the zones are phonenumbers' own tuples, shared): a few MB at most per process.
CACHED_NUMBERS = 8192


@dataclass(frozen=True, slots=True)
class Number:
    """A parsed number: `valid` (phonenumbers' is_valid_number), its E.164 form, the region it belongs to
    (region_code_for_number) and the time zones it may be in (time_zones_for_number, without Etc/Unknown)."""

    valid: bool
    e164: str
    region: str | None
    zones: tuple[str, ...]


def read(raw: str, region: str) -> Number:
    """`raw` parsed, read in `region` when it has no country code. Raises phonenumbers.NumberParseException
    (with phonenumbers' own message) when it cannot be parsed."""
    if raw.startswith("+"):
        found = international(raw)
        if found is not None:
            return found
    return _described(phonenumbers.parse(raw, region))


LONGEST_CACHED = 32
"""Longer text (a rendered recipient can be long) is parsed without the cache, which keys on the whole text."""


def international(text: str) -> Number | None:
    """`text` (a number in international form: E.164, or with a leading plus) parsed without a default region,
    or None when it cannot be. Cached (up to LONGEST_CACHED characters): a pure function of the text.

    It stands for `text` read in any region: phonenumbers parses a number without a default region only when
    its leading plus and country code are enough, and then the region it is handed is never consulted. (Only
    when that fails does it try the region's international prefix, which this leaves to `read`'s uncached
    parse.)"""
    return _international(text) if len(text) > LONGEST_CACHED else _cached_international(text)


def _international(text: str) -> Number | None:
    try:
        return _described(phonenumbers.parse(text, None))
    except phonenumbers.NumberParseException:
        return None


_cached_international = lru_cache(maxsize=CACHED_NUMBERS)(_international)


def _described(parsed: phonenumbers.PhoneNumber) -> Number:
    """Everything Hookline asks of a parsed number, computing its number type once. phonenumbers computes it
    for is_valid_number (valid exactly when the type is known) and again for time_zones_for_number."""
    kind = phonenumbers.number_type(parsed)
    formatted = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return Number(valid=kind != PhoneNumberType.UNKNOWN, e164=formatted,
                  region=phonenumbers.region_code_for_number(parsed), zones=_zones(parsed, kind))


def _zones(parsed: phonenumbers.PhoneNumber, kind: int) -> tuple[str, ...]:
    """time_zones_for_number's answer, from the type computed already: none for an invalid number, the zones
    of the number's prefix for a geographical one, the country's for the rest."""
    if kind == PhoneNumberType.UNKNOWN:
        return ()
    code = parsed.country_code
    assert code is not None  # parse sets it, or raises
    if phonenumbers.is_number_type_geographical(kind, code):
        zones = number_zones.time_zones_for_geographical_number(parsed)
    else:
        zones = _country_zones(code, parsed)
    if number_zones.UNKNOWN_TIMEZONE not in zones:
        return tuple(zones)  # phonenumbers' own tuple, shared by every cached number in the same zones
    return tuple(z for z in zones if z != number_zones.UNKNOWN_TIMEZONE)


# time_zones_for_number answers a valid number that is not geographical (a mobile in most countries) with the
# zones of its country calling code, whatever its other digits: the first such number of each code asks it
# (computing the type again), the others reuse the answer. At most one entry per calling code (about 250).
_COUNTRY_ZONES: dict[int, tuple[str, ...]] = {}


def _country_zones(code: int, parsed: phonenumbers.PhoneNumber) -> tuple[str, ...]:
    if code not in _COUNTRY_ZONES:
        _COUNTRY_ZONES[code] = tuple(number_zones.time_zones_for_number(parsed))
    return _COUNTRY_ZONES[code]


def e164(raw: str, region: str, *, strict: bool = True) -> str | None:
    """`raw` in E.164 (read in `region` when it has no country code), or None when it cannot be parsed or,
    with `strict`, is not a valid number. Not strict for numbers ClickSend reports (a STOP from a range newer
    than phonenumbers' metadata must still opt out)."""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if strict and not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def time_zones(number: str | None) -> tuple[str, ...]:
    """The time zones a number may be in (phonenumbers' metadata; several for a large country), or () when
    it cannot be parsed or its zone is unknown."""
    found = international(number or "")
    return found.zones if found is not None else ()


def recipient_zones(timezone: str | None, number: str | None) -> tuple[str, ...]:
    """Where a recipient may be: `timezone` (the zone a rule read from the payload) when it is a real zone, else
    the number's zones."""
    if timezone:
        try:
            ZoneInfo(timezone)
            return (timezone,)
        except (ValueError, KeyError):
            pass
    return time_zones(number)
