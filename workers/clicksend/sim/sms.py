"""The simulated SMS resource: send, price and cancel (`/v3/sms/...`).

Owns the SMS-only routes; receipts, inbound and history have their own blueprints.
"""

from __future__ import annotations

from flask import Blueprint, Response

from workers.clicksend.sim.sending import send_or_price
from workers.clicksend.sim.wire import envelope, state

bp = Blueprint("sms", __name__)


@bp.post("/v3/sms/send")
def send() -> Response:
    """Accept SMS: each message gets its own status."""
    return send_or_price("sms", commit=True)


@bp.post("/v3/sms/price")
def price() -> Response:
    """What the SMS would cost; nothing is sent."""
    return send_or_price("sms", commit=False)


@bp.put("/v3/sms/<message_id>/cancel")
def cancel(message_id: str) -> Response:
    """Cancel one (scheduled) SMS."""
    if message_id not in state().by_id:
        return envelope(404, "NOT_FOUND", "Message not found.")
    return envelope(200, "SUCCESS", "Message cancelled.", {"message_id": message_id})
