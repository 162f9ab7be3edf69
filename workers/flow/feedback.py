"""What ClickSend tells us afterwards: delivery receipts and inbound replies, pushed or polled, applied
through the same code either way. Applying is idempotent and never moves a message backwards.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from workers.clicksend.client import ClickSendClient, iter_pages
from workers.core.coerce import to_int
from workers.core.lifecycle import State
from workers.core.phones import e164
from workers.core.receipts import judge, reply_keyword
from workers.flow import origin
from workers.store.messages import Change
from workers.wiring.runtime import Runtime

log = logging.getLogger("hookline.feedback")
RECEIPT_CHANNELS = ("sms", "voice")
# Mark read only what is older than this: a receipt that arrives while we page stays unread and is seen
# (harmlessly, again) next pass, even with some clock skew between us and ClickSend.
READ_MARGIN = 60


def find_message(rt: Runtime, custom_string: str | None, provider_id: str | None) -> dict[str, Any] | None:
    """Our message for a receipt or reply: by custom_string (our id), else by ClickSend's message_id.

    When both are given they must agree, so a forged custom_string cannot touch another message.
    """
    msg = None
    if custom_string and custom_string.startswith("msg_"):
        msg = rt.store.get_message(custom_string, with_log=False)
    if msg is None and provider_id:
        mid = rt.store.message_for_provider_id(provider_id)
        msg = rt.store.get_message(mid, with_log=False) if mid else None
    if msg is not None and provider_id and msg.get("provider_id") and msg["provider_id"] != provider_id:
        return None
    return msg


def apply_receipt(rt: Runtime, receipt: dict[str, Any], now: float, via: str) -> str:
    """Apply one receipt. Returns what happened: delivered, undelivered, pending, duplicate or unknown."""
    verdict = judge(receipt)
    msg = find_message(rt, receipt.get("custom_string"), receipt.get("message_id"))
    if msg is None:
        count = rt.store.count_unknown_receipt()
        log.info("receipt for an unknown message (%s so far)", count)
        return "unknown"
    summary = {k: receipt.get(k) for k in ("status_code", "status_text", "error_code", "error_text", "timestamp")}
    if not verdict.final:
        rt.store.note(msg["id"], {"at": now, "kind": "receipt", "via": via, "result": "pending",
                                  "reason": verdict.reason})
        return "pending"
    target = State.DELIVERED if verdict.outcome == "delivered" else State.UNDELIVERED
    if msg["state"] in (State.SENDING, State.UNKNOWN):
        # The receipt beat our own bookkeeping (or reconciliation): it proves ClickSend has the message.
        proved = Change(msg["id"], State.SENT, "delivery receipt proves it was accepted",
                        {"provider_id": receipt.get("message_id")})
        if rt.store.apply_many([proved], now)[0]:
            if receipt.get("message_id"):
                rt.store.index_provider_ids({str(receipt["message_id"]): msg["id"]})
            origin.notify(rt, [msg | {"state": State.SENT.value} | proved.fields], State.SENT.value, now)
    moved = rt.store.apply_many([Change(msg["id"], target, f"receipt ({via}): {verdict.reason}",
                                        {"receipt": summary}, expect=frozenset({State.SENT}))], now)[0]
    if not moved:
        return "duplicate"  # already final: a repeat, or a late receipt after a final one
    msg["state"] = target.value
    origin.notify(rt, [msg], target.value, now, {"receipt": summary})
    return verdict.outcome


def apply_inbound(rt: Runtime, item: dict[str, Any], now: float, via: str) -> str:
    """Apply one inbound reply: opt-out keywords, then link it to the message it answers.

    The reply is marked seen only after its effects are recorded: a worker killed half-way leaves it to be
    applied again (opting out twice changes nothing, the callback id is per reply), never a STOP skipped.
    """
    inbound_id = str(item.get("message_id") or "")
    if inbound_id and rt.store.inbound_seen(inbound_id):
        return "duplicate"
    sender = e164(str(item.get("from") or item.get("sms") or ""), rt.settings.default_region, strict=False)
    body = str(item.get("body") or item.get("message") or "")
    keyword = reply_keyword(body)
    result = "reply"
    if sender and keyword == "stop":
        rt.store.opt_out(sender, now, via="reply", detail=body[:40])
        result = "opted_out"
    elif sender and keyword == "start":
        rt.store.opt_in(sender)
        result = "opted_in"
    msg = find_message(rt, item.get("custom_string") or None, item.get("original_message_id") or None)
    if msg is not None:
        reply = {"id": inbound_id, "body": body, "timestamp": to_int(item.get("timestamp")), "keyword": keyword}
        rt.store.note(msg["id"], {"at": now, "kind": "reply", "via": via, "reason": f"reply: {body[:160]}",
                                  "keyword": keyword})
        origin.notify(rt, [msg], "reply", now, {"reply": reply, "id": inbound_id})
    if inbound_id:
        rt.store.mark_inbound_seen(inbound_id)
    return result


def poll_receipts(rt: Runtime, client: ClickSendClient, now: float) -> dict[str, int]:
    """Read every page of unread receipts (largest pages), apply them, then mark read those up to the newest
    applied but no later than a minute before this pass began."""
    counts: dict[str, int] = {}
    for channel in RECEIPT_CHANNELS:
        newest = None
        for result in iter_pages(partial(client.receipts, channel, limit=100)):
            for receipt in result.items:
                outcome = apply_receipt(rt, receipt, now, "poll")
                counts[outcome] = counts.get(outcome, 0) + 1
                stamp = to_int(receipt.get("timestamp"))
                newest = max(newest or 0, stamp or 0)
        if newest:
            client.mark_receipts_read(channel, date_before=min(newest, int(now) - READ_MARGIN))
    return counts


def poll_inbound(rt: Runtime, client: ClickSendClient, now: float) -> dict[str, int]:
    """Read every page of unread inbound SMS, apply them, then mark read as `poll_receipts` does."""
    counts: dict[str, int] = {}
    newest = None
    for result in iter_pages(partial(client.inbound, limit=100)):
        for item in result.items:
            outcome = apply_inbound(rt, item, now, "poll")
            counts[outcome] = counts.get(outcome, 0) + 1
            newest = max(newest or 0, to_int(item.get("timestamp")) or 0)
    if newest:
        client.mark_inbound_read(date_before=min(newest, int(now) - READ_MARGIN))
    return counts
