"""The events pages: the list (newest first, filtered, searched by id or external id, paged) and one event's
page, its whole story (`tools.trace.story`): the payload, each message with its timeline, receipt and replies,
every callback attempt, with the buttons that resend a failed message and replay a callback that gave up."""

from __future__ import annotations

import json
import time

from flask import Blueprint, request, url_for
from flask.typing import ResponseReturnValue

from webhooks.context import runtime
from webhooks.ui.base import back, flash, form_ids, page, summary, user
from workers.core.lifecycle import CANCELLABLE
from workers.tools.trace import story
from workers.wiring import handover

bp = Blueprint("events", __name__, url_prefix="/events")


@bp.get("", endpoint="listing")
def listing() -> ResponseReturnValue:
    """Events newest first; `?q=` finds one by its id."""
    store = runtime().store
    term = (request.args.get("q") or "").strip()
    record = store.events.get_event(term) if term else None
    return page("events.html", title="Events", events=[record] if record else [], q=term, args=request.args,
                next_url=None)


@bp.get("/<event_id>", endpoint="detail")
def detail(event_id: str) -> ResponseReturnValue:
    """One event's story."""
    told = story(runtime().store, event_id)
    if told is None:
        return page("message.html", 404, title="Event", text=f"There is no event {event_id} (it may have expired).")
    payload = json.dumps(told.event.event.payload, indent=2, ensure_ascii=False, default=str)
    ids = {item.message.id for item in told.messages}
    return page("event.html", title=f"Event {event_id}", told=told, payload=payload, cancellable=CANCELLABLE,
                resendable=handover.RESENDABLE, resent={mid: handover.resend_id(mid) for mid in ids
                                                        if handover.resend_id(mid) in ids})


@bp.post("/replay")
def replay() -> ResponseReturnValue:
    """Send the chosen callbacks that gave up again."""
    rt = runtime()
    flash(summary(handover.replay(rt.store, rt.enqueuer, form_ids("callbacks"), user(), time.time())))
    return back(url_for("ui.events.listing"))
