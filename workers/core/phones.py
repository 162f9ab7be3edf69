"""Phone numbers in E.164, the one form Hookline stores, compares and sends.

Pure: phonenumbers' metadata only.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as number_zones


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
    try:
        zones = number_zones.time_zones_for_number(phonenumbers.parse(number or "", None))
    except phonenumbers.NumberParseException:
        return ()
    return tuple(z for z in zones if z != "Etc/Unknown")


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
