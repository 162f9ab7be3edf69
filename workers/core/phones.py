"""Phone numbers in E.164, the one form Hookline stores, compares and sends.

Pure: phonenumbers' metadata only.
"""

from __future__ import annotations

import phonenumbers


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
