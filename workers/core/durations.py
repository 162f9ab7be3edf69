"""Parsing of human durations ("10m", "24h", "-2h", "1h30m", 90) into seconds.

Pure: no I/O.
"""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(value: str | int | float) -> float:
    """Return `value` in seconds; numbers are seconds already. Raises ValueError with the reason."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip().lower().replace(" ", "")
    sign = -1.0 if text.startswith("-") else 1.0
    text = text.lstrip("+-")
    if not text:
        raise ValueError("empty duration")
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return sign * float(text)
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 10m, 24h, 1h30m)")
    return sign * total
