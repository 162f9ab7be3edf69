"""The simulated SMS resource: send, price and cancel (`/v3/sms/...`).

Owns the SMS-only routes; receipts, inbound and history have their own blueprints.
"""

from __future__ import annotations

from flask import Blueprint, Response

from workers.clicksend.sim.sending import send_or_price
from workers.clicksend.sim.wire import envelope, json_object, state

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
    """Cancel one scheduled SMS (one that already left stays sent). `data` is null: the SDK says deprecated."""
    if state().cancel(message_id) is None:
        return envelope(404, "NOT_FOUND", "Message not found.")
    return envelope(200, "SUCCESS", "Message cancelled.")


@bp.put("/v3/sms/cancel-all")
def cancel_all() -> Response:
    """Cancel every scheduled SMS (only those with `custom_string`, when given); says how many."""
    count = state().cancel_all("sms", json_object().get("custom_string"))
    return envelope(200, "SUCCESS", f"{count} messages have been cancelled.", {"count": count})
