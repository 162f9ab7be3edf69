"""The simulated inbound SMS (replies): list unread and mark read (`/v3/sms/inbound...`).

Owns how replies are listed and marked read; replies are injected through the control API (`control`).
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from workers.clicksend.sim.wire import envelope, json_object, paginate, state

bp = Blueprint("inbound", __name__)


@bp.get("/v3/sms/inbound")
def inbound() -> Response:
    """Unread replies, paged."""
    sim = state()
    with sim.lock:
        unread = [{k: v for k, v in m.items() if k != "read"} for m in sim.inbound if not m["read"]]
    return envelope(200, "SUCCESS", "Here are your inbound messages.", paginate(unread, request.path))


@bp.put("/v3/sms/inbound-read")
def inbound_read() -> Response:
    """Mark replies read (all, or up to `date_before`)."""
    before = json_object().get("date_before")
    sim = state()
    with sim.lock:
        for m in sim.inbound:
            if before is None or m["timestamp"] <= before:
                m["read"] = True
    return envelope(200, "SUCCESS", "Inbound messages have been marked as read.", [])
