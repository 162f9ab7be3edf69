"""The simulated inbound SMS (replies): list unread, the reply to one message, mark read
(`/v3/sms/inbound...`, `/v3/sms/inbound-read...`).

Owns how replies are listed and marked read; replies are injected through the control API (`control`) and
kept in `SimState`.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from workers.clicksend.sim.wire import envelope, json_object, paginate, state

bp = Blueprint("inbound", __name__)


@bp.get("/v3/sms/inbound")
def inbound() -> Response:
    """Unread replies, paged."""
    return envelope(200, "SUCCESS", "Here are your inbound messages.", paginate(state().unread_inbound(),
                                                                                 request.path))


@bp.get("/v3/sms/inbound/<original_message_id>")
def reply_to(original_message_id: str) -> Response:
    """The reply to one of our messages, read or not."""
    item = state().reply_to(original_message_id)
    if item is None:
        return envelope(404, "NOT_FOUND", "Inbound message not found.")
    return envelope(200, "SUCCESS", "Here is your inbound message.", item)


@bp.put("/v3/sms/inbound-read")
def inbound_read() -> Response:
    """Mark replies read (all, or up to `date_before`). `data` is null, as the SDK's model says."""
    state().mark_inbound_read(date_before=json_object().get("date_before"))
    return envelope(200, "SUCCESS", "Inbound messages have been marked as read.")


@bp.put("/v3/sms/inbound-read/<message_id>")
def one_read(message_id: str) -> Response:
    """Mark one reply read; `data` is how many were marked (the SDK's model: an integer)."""
    return envelope(200, "SUCCESS", "Inbound message has been marked as read.",
                    state().mark_inbound_read(message_id=message_id))
