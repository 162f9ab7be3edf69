"""Delivery receipts and inbound replies: what a receipt means, and what a reply asks for.

Pure: maps ClickSend's status codes (fact sheet §6.3–6.4) and reply keywords; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workers.core.coerce import to_int

# Error codes that mean the message will not arrive (status_code 300/301/302 also say so).
_EXPIRED = 20  # "delivery receipt expired": the final state is unknown; recorded as undelivered with that reason
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "UNSTOP"})


@dataclass(frozen=True)
class Verdict:
    """What a receipt says: `delivered`, `undelivered` or `pending`, and why."""

    outcome: str
    reason: str
    final: bool


def judge(receipt: dict[str, Any]) -> Verdict:
    """Read one receipt leniently (status_code may be int, numeric string, or legacy text)."""
    raw_code = receipt.get("status_code")
    code = to_int(raw_code)
    error = to_int(receipt.get("error_code"))
    text = str(receipt.get("status_text") or receipt.get("status") or "").strip()
    if code is None and isinstance(raw_code, str) and raw_code.strip():
        text = text or raw_code.strip()  # legacy receipts put the status word where the code goes
    detail = str(receipt.get("error_text") or text or "").strip()
    if code is None:
        lowered = text.lower()
        if lowered in ("delivered", "completed"):
            code = 201
        elif lowered in ("undelivered", "failed", "cancelled", "cancelledafterreview"):
            code = 301
    if code == 201:
        return Verdict("delivered", text or "received on handset", True)
    if code in (300, 301, 302):
        why = f"{code}" + (f" (error {error})" if error is not None else "") + (f": {detail}" if detail else "")
        if error == _EXPIRED:
            why += " — receipt expired, final state unknown"
        return Verdict("undelivered", why, True)
    return Verdict("pending", text or "pending", False)


def reply_keyword(body: str) -> str | None:
    """`stop` or `start` when the reply's first word asks for it (case-insensitive), else None."""
    words = body.strip().split()
    if not words:
        return None
    first = words[0].strip(".!,;:").upper()
    if first in STOP_WORDS:
        return "stop"
    if first in START_WORDS:
        return "start"
    return None
