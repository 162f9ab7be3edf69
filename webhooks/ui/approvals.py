"""The approvals page: held messages with why they were held, when the hold expires and the recipient's local
time now (for a send to a list, the list and its size when held); one note field for approve or reject, per
message or in bulk (ticked, or every one of a rule or an event). Decisions go through `handover.decide`."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, request, url_for
from flask.typing import ResponseReturnValue

from webhooks.context import runtime
from webhooks.ui.base import MAX_BULK, back, flash, form_ids, note, page, summary, user
from workers.core.messages import Message
from workers.core.phones import recipient_zones
from workers.errors import HooklineError
from workers.wiring import handover

bp = Blueprint("approvals", __name__, url_prefix="/approvals")


def local_times(msg: Message, now: float) -> list[str]:
    """The recipient's local time now, in each zone they may be in: `Australia/Sydney Tue 14:05`."""
    zones = recipient_zones(msg.timezone, msg.to)[:3]
    return [f"{z} {datetime.fromtimestamp(now, tz=ZoneInfo(z)):%a %H:%M}" for z in zones]


def _expiry(msg: Message) -> float | None:
    """When the hold expires (its policy's approval_expires after it was held)."""
    try:
        policy = runtime().rules.current().policy(msg.policy)
    except HooklineError:
        return None
    return (msg.updated_at or msg.created_at) + policy.approval_expires


def _row(msg: Message, now: float) -> dict[str, Any]:
    why = [t.get("reason") for t in msg.timeline if t.get("to") == "held"]
    return {"msg": msg, "why": (why or ["held"])[-1], "held_at": msg.updated_at, "expires_at": _expiry(msg),
            "local": local_times(msg, now), "list_size": msg.facts.get("list_size") if msg.list_ref else None}


@bp.get("", endpoint="page")
def held_page() -> ResponseReturnValue:
    """Held messages, oldest first (`?rule=` or `?event_id=` to narrow), with the decision forms."""
    rule, event_id = request.args.get("rule") or None, request.args.get("event_id") or None
    store, now = runtime().store, time.time()
    held = store.messages.held(rule, event_id, limit=MAX_BULK)
    rows = [_row(store.messages.get_message(m.id) or m, now) for m in held]
    return page("approvals.html", title="Approvals", rows=rows, rule=rule, event_id=event_id,
                rules=sorted({m.rule for m in held}))


@bp.post("/decide")
def decide() -> ResponseReturnValue:
    """Approve or reject (`action`) the ticked ids, or with `all` every held message of `rule` or `event_id`."""
    rule, event_id = request.form.get("rule") or None, request.form.get("event_id") or None
    ids = form_ids()
    if request.form.get("all") and (rule or event_id):
        ids = [m.id for m in runtime().store.messages.held(rule, event_id, limit=MAX_BULK)]
    return _decide(ids, request.form.get("action", ""))


@bp.post("/<message_id>/<action>")
def decide_one(message_id: str, action: str) -> ResponseReturnValue:
    """Approve or reject one message (the form's older address, kept for bookmarks and scripts)."""
    return _decide([message_id], action)


def _decide(ids: list[str], action: str) -> ResponseReturnValue:
    if action not in ("approve", "reject"):
        return page("message.html", 400, title="Approvals", text="Choose approve or reject.")
    rt = runtime()
    results = handover.decide(rt.store, rt.enqueuer, ids, handover.Verdict(action), user(), note(), time.time())
    flash(summary(results))
    return back(url_for("ui.approvals.page"))

