"""SMS encoding and segment counting: GSM 03.38 (7-bit, extension characters count twice) or UCS-2.

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.errors import RenderError

# GSM 03.38 basic character set (the default alphabet), as Unicode.
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Reached through the escape character, so each takes two septets.
GSM_EXTENDED = frozenset("^{}\\[~]|€\f")

GSM_SINGLE, GSM_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


@dataclass(frozen=True)
class Segments:
    """How an SMS body will be encoded and into how many parts it splits."""

    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    parts: int
    # Characters that forced UCS-2 (so a dry run can show the curly quote that tripled the cost).
    non_gsm: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """JSON-able form."""
        return {"encoding": self.encoding, "units": self.units, "parts": self.parts, "non_gsm": list(self.non_gsm)}


def count(body: str) -> Segments:
    """Encoding, length in encoding units, and number of SMS parts for `body`.

    Raises RenderError (so planning fails that one message with the reason) when `body` holds a lone
    surrogate: it is no character, so neither GSM-7 nor UCS-2 can carry it.
    """
    non_gsm = tuple(dict.fromkeys(ch for ch in body if ch not in GSM_BASIC and ch not in GSM_EXTENDED))
    lone = next((ch for ch in non_gsm if "\ud800" <= ch <= "\udfff"), None)
    if lone is not None:
        raise RenderError(f"body: lone surrogate \\u{ord(lone):04x} at character {body.index(lone) + 1} "
                          "(not a character, so neither GSM-7 nor UCS-2 can carry it)")
    if non_gsm:
        # UCS-2 as sent on the wire is UTF-16: characters outside the BMP (most emoji) take two units.
        sizes = [len(ch.encode("utf-16-le")) // 2 for ch in body]
        single, part, encoding = UCS2_SINGLE, UCS2_PART, "UCS-2"
    else:
        sizes = [2 if ch in GSM_EXTENDED else 1 for ch in body]
        single, part, encoding = GSM_SINGLE, GSM_PART, "GSM-7"
    units = sum(sizes)
    return Segments(encoding, units, _parts(sizes, units, single, part), non_gsm)


def _parts(sizes: list[int], units: int, single: int, part: int) -> int:
    if units <= single:
        return 1 if units else 0
    # A two-unit character (escape sequence, surrogate pair) is never split across parts.
    parts, used = 1, 0
    for size in sizes:
        if used + size > part:
            parts, used = parts + 1, 0
        used += size
    return parts
