"""The events pages: the list (newest first, filtered, searched by id or external id, paged) and one event's
page, its whole story (`tools.trace.story`): the payload, each message with its timeline, receipt and replies,
every callback attempt, with the buttons that resend a failed message and replay a callback that gave up."""

from __future__ import annotations

import json
import time

from flask import Blueprint, request, url_for
from flask.typing import ResponseReturnValue

from webhooks.context import runtime
from webhooks.ui.base import back, flash, form_ids, next_page, page, read_window, summary, user
from workers.core.lifecycle import CANCELLABLE
from workers.store.events import EVENT_STATUSES, EventQuery
from workers.tools.trace import story
from workers.wiring import handover

bp = Blueprint("events", __name__, url_prefix="/events")


PAGE_SIZE = 50


def _filters() -> EventQuery | str:
    """The list's query from the page's arguments, or what is wrong with them."""
    args = request.args
    status = args.get("status") or None
    if status and status not in EVENT_STATUSES:
        return f"status must be one of: {', '.join(EVENT_STATUSES)}"
    try:
        after, since, until = read_window()
    except ValueError as exc:
        return str(exc)
    return EventQuery(source=args.get("source") or None, type=args.get("type") or None, status=status,
                      rule=args.get("rule") or None, since=since,
                      until=until, search=(args.get("q") or "").strip() or None,
                      limit=PAGE_SIZE, after=after)


@bp.get("", endpoint="listing")
def listing() -> ResponseReturnValue:
    """Events newest first: `source`, `type`, `status`, `rule`, `since`/`until` (Unix seconds or ISO-8601),
    `q` an event id or the sender's id; `cursor` for the next page."""
    query = _filters()
    if isinstance(query, str):
        return page("message.html", 400, title="Events", text=query)
    found = runtime().store.events.list_events(query)
    next_url = next_page("ui.events.listing", found.next)
    config = runtime().rules.config
    return page("events.html", title="Events", events=found.items, args=request.args, next_url=next_url,
                statuses=EVENT_STATUSES, sources=sorted(config.sources) if config else [],
                rules=sorted(r.name for r in config.rules) if config else [])


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
