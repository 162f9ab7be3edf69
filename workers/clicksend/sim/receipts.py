"""The simulated delivery receipts: list unread, one by message id, mark read (`/v3/{channel}/receipts...`).

Owns how receipts are listed and marked read; what a receipt says comes from `SimState.receipt_of`.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from workers.clicksend.sim.wire import envelope, json_object, paginate, state

bp = Blueprint("receipts", __name__)
RECEIPT_CHANNELS = "any(sms, voice, mms)"  # MMS receipts are legacy-only at ClickSend, kept for old clients


@bp.get(f"/v3/<{RECEIPT_CHANNELS}:channel>/receipts")
def receipts(channel: str) -> Response:
    """Unread final receipts, paged."""
    return envelope(200, "SUCCESS", "Here are your delivery receipts.",
                    paginate(state().unread_receipts(channel), request.path))


@bp.get("/v3/sms/receipts/<message_id>")
def receipt(message_id: str) -> Response:
    """One SMS receipt as it stands now, read or not."""
    sim = state()
    sent = sim.by_id.get(message_id)
    if sent is None:
        return envelope(404, "NOT_FOUND", "Receipt not found.")
    return envelope(200, "SUCCESS", "Your receipt.", sim.receipt_of(sent))


@bp.put("/v3/<channel>/receipts-read")
def receipts_read(channel: str) -> Response:
    """Mark final receipts read (all, or up to `date_before`)."""
    state().mark_receipts_read(channel, json_object().get("date_before"))
    return envelope(200, "SUCCESS", "Receipts have been marked as read.", [])
