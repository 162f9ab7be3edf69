"""The simulated delivery receipts: list unread, one by message id, mark read (`/v3/{channel}/receipts...`).

Owns how receipts are listed and marked read, and each channel's receipt shape (SMS `SmsReceipt` has
integers, voice `VoiceReceipt` strings); what a receipt says comes from `SimState.receipt_of`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from workers.clicksend.sim.wire import envelope, json_object, paginate, state

bp = Blueprint("receipts", __name__)
RECEIPT_CHANNELS = "any(sms, voice, mms)"  # MMS receipts are legacy-only at ClickSend, kept for old clients
VOICE_TEXT_FIELDS = ("timestamp_send", "timestamp", "status_code", "error_code", "digits")


def voice_receipt(receipt: dict[str, Any]) -> dict[str, Any]:
    """A receipt as the voice endpoint has it: its numbers are strings there."""
    return receipt | {k: str(receipt[k]) for k in VOICE_TEXT_FIELDS if receipt.get(k) is not None}


@bp.get(f"/v3/<{RECEIPT_CHANNELS}:channel>/receipts")
def receipts(channel: str) -> Response:
    """Unread final receipts, paged."""
    sim = state()
    sim.count_call(request.path)  # the ledger counts polls, so a benchmark can tell calls per receipt
    rows = sim.unread_receipts(channel)
    if channel == "voice":
        rows = [voice_receipt(r) for r in rows]
    return envelope(200, "SUCCESS", "Here are your delivery receipts.", paginate(rows, request.path))


@bp.get("/v3/sms/receipts/<message_id>")
def receipt(message_id: str) -> Response:
    """One SMS receipt as it stands now, read or not."""
    sim = state()
    sent = sim.by_id.get(message_id)
    if sent is None:
        return envelope(404, "NOT_FOUND", "Receipt not found.")
    return envelope(200, "SUCCESS", "Your receipt.", sim.receipt_of(sent))


@bp.put(f"/v3/<{RECEIPT_CHANNELS}:channel>/receipts-read")
def receipts_read(channel: str) -> Response:
    """Mark final receipts read (all, or up to `date_before`). `data` is null, as the SDK's model says."""
    sim = state()
    sim.count_call(request.path)
    sim.mark_receipts_read(channel, json_object().get("date_before"))
    return envelope(200, "SUCCESS", "Receipts have been marked as read.")
