"""The messages page: messages in one state, newest first, filtered by time and paged, with the bulk action
that state allows (resend failed and undelivered ones; cancel pending ones), handed over through
`handover`. Without a state it lists how many messages each state holds."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, request, url_for
from flask.typing import ResponseReturnValue

from webhooks.context import runtime
from webhooks.ui.base import back, flash, form_ids, note, page, parse_time, summary, user
from workers.core.lifecycle import CANCELLABLE, State
from workers.store.browse import Browse
from workers.wiring import handover

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


@bp.get("", endpoint="listing")
def listing() -> ResponseReturnValue:
    """`?state=` (one of the states), `since`/`until` (Unix seconds or ISO-8601), `offset` for the next page."""
    store = runtime().store
    counts = store.messages.state_counts()
    raw = request.args.get("state", "")
    if not raw:
        return page("messages.html", title="Messages", state=None, counts=counts, states=WATCHED)
    try:
        state = State(raw)
    except ValueError:
        return page("message.html", 400, title="Messages", text=f"There is no state {raw!r}.")
    since, until = parse_time(request.args.get("since")), parse_time(request.args.get("until"))
    try:
        offset = max(0, int(request.args.get("offset", "0")))
    except ValueError:
        offset = 0
    found = Browse(store.r).newest_in_state(state, PAGE_SIZE, offset, since, until)
    msgs = [m for m in store.messages.get_messages(list(found.ids)) if m]
    args: dict[str, Any] = request.args.to_dict() | {"offset": found.next_offset}
    next_url = url_for("ui.messages.listing", **args) if found.next_offset is not None else None
    return page("messages.html", title=f"Messages: {state}", state=state, counts=counts, states=WATCHED, msgs=msgs,
                action=_action_for(state), next_url=next_url, since=request.args.get("since", ""),
                until=request.args.get("until", ""))


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
