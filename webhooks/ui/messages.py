"""The messages page: messages newest change first, filtered by state, channel, rule, event, source and time,
searched by id, and paged, with how many each state holds; a state's list carries the bulk action that state
allows (resend failed and undelivered ones, cancel pending ones), handed over through `handover`."""

from __future__ import annotations

import time

from flask import Blueprint, request, url_for
from flask.typing import ResponseReturnValue

from webhooks.context import runtime
from webhooks.ui.base import back, flash, form_ids, next_page, note, page, read_window, summary, user
from workers.core.lifecycle import CANCELLABLE, State
from workers.store.messages import MessageQuery
from workers.wiring import handover, pipeline

bp = Blueprint("messages", __name__, url_prefix="/messages")

PAGE_SIZE = 50
# The states a person looks at first, in the order the page offers them.
WATCHED = (State.FAILED, State.UNDELIVERED, State.UNKNOWN, State.HELD, State.SCHEDULED, State.QUEUED,
           State.SENDING, State.SENT, State.DELIVERED, State.SUPPRESSED, State.REJECTED, State.EXPIRED,
           State.CANCELLED, State.PLANNED)


def _action_for(state: State) -> str | None:
    """The bulk action a state's list offers."""
    if state in handover.RESENDABLE:
        return "resend"
    return "cancel" if state in CANCELLABLE else None


def _filters() -> MessageQuery | str:
    """The list's query from the page's arguments, or what is wrong with them."""
    args = request.args
    try:
        state = State(args["state"]) if args.get("state") else None
    except ValueError:
        return f"There is no state {args['state']!r}."
    channel = args.get("channel") or None
    if channel and channel not in pipeline.CHANNELS:
        return f"There is no channel {channel!r}: {', '.join(pipeline.CHANNELS)}."
    try:
        after, since, until = read_window()
    except ValueError as exc:
        return str(exc)
    search = (args.get("q") or "").strip()
    return MessageQuery(state=state, channel=channel, rule=args.get("rule") or None,
                        event_id=args.get("event_id") or None, source=args.get("source") or None,
                        ids=runtime().store.search_messages(search) if search else None, since=since,
                        until=until, limit=PAGE_SIZE, after=after)


@bp.get("", endpoint="listing")
def listing() -> ResponseReturnValue:
    """Messages newest change first: `state`, `channel`, `rule`, `event_id`, `source`, `since`/`until` (when each
    entered its state; Unix seconds or ISO-8601), `q` a message's id or ClickSend's, or an event's id or its
    sender's; `cursor` for the next page; and how many each state holds."""
    query = _filters()
    if isinstance(query, str):
        return page("message.html", 400, title="Messages", text=query)
    store = runtime().store
    found = store.messages.list_messages(query)
    next_url = next_page("ui.messages.listing", found.next)
    config = runtime().rules.config
    return page("messages.html", title=f"Messages: {query.state}" if query.state else "Messages",
                state=query.state, counts=store.messages.state_counts(), states=WATCHED, msgs=found.items,
                action=_action_for(query.state) if query.state else None, next_url=next_url, args=request.args,
                channels=pipeline.CHANNELS, rules=sorted(r.name for r in config.rules) if config else [],
                sources=sorted(config.sources) if config else [])


@bp.post("/resend")
def resend() -> ResponseReturnValue:
    """Resend the ticked failed or undelivered messages (each as a new message the workers admit again)."""
    rt = runtime()
    flash(summary(handover.resend(rt.store, rt.enqueuer, form_ids(), user(), time.time())))
    return back(url_for("ui.messages.listing"))


@bp.post("/cancel")
def cancel() -> ResponseReturnValue:
    """Cancel the ticked pending messages (a worker cancels them and gives back what they reserved)."""
    rt = runtime()
    flash(summary(handover.cancel(rt.store, rt.enqueuer, form_ids(), user(), note())))
    return back(url_for("ui.messages.listing"))
