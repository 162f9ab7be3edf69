"""What ClickSend tells us afterwards: delivery receipts and inbound replies, pushed or polled, applied
through the same code either way. Applying is idempotent and never moves a message backwards.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from workers.clicksend.client import ClickSendClient, iter_pages
from workers.core.coerce import to_int
from workers.core.lifecycle import State
from workers.core.messages import Message
from workers.core.phones import e164
from workers.core.receipts import judge, reply_keyword
from workers.flow.origin import Notifier
from workers.store import Store
from workers.store.messages import Change
from workers.wiring.settings import Settings

log = logging.getLogger("hookline.feedback")
RECEIPT_CHANNELS = ("sms", "voice")
# Mark read only what is older than this: a receipt that arrives while we page stays unread and is seen
# (harmlessly, again) next pass, even with some clock skew between us and ClickSend.
READ_MARGIN = 60


@dataclass(frozen=True)
class Feedback:
    """Applies receipts and replies (pushed or polled) to the message records and tells the origins."""

    store: Store
    client: Callable[[], ClickSendClient]  # built only when polling
    settings: Settings
    notifier: Notifier

    def find_message(self, custom_string: str | None, provider_id: str | None) -> Message | None:
        """Our message for a receipt or reply: by custom_string (our id), else by ClickSend's message_id.

        When both are given they must agree, so a forged custom_string cannot touch another message.
        """
        msg = None
        if custom_string and custom_string.startswith("msg_"):
            msg = self.store.messages.get_message(custom_string, with_log=False)
        if msg is None and provider_id:
            mid = self.store.feedback.message_for_provider_id(provider_id)
            msg = self.store.messages.get_message(mid, with_log=False) if mid else None
        if msg is not None and provider_id and msg.provider_id and msg.provider_id != str(provider_id):
            return None
        return msg

    def apply_receipt(self, receipt: dict[str, Any], now: float, via: str) -> str:
        """Apply one receipt and count it. Returns what happened: delivered, undelivered, pending, duplicate or
        unknown."""
        outcome = self._apply_receipt(receipt, now, via)
        self.store.counters.count_receipts(via, {outcome: 1})
        return outcome

    def _apply_receipt(self, receipt: dict[str, Any], now: float, via: str) -> str:
        verdict = judge(receipt)
        msg = self.find_message(receipt.get("custom_string"), receipt.get("message_id"))
        if msg is None:
            count = self.store.feedback.count_unknown_receipt()
            log.info("receipt for an unknown message (%s so far)", count)
            return "unknown"
        summary = {k: receipt.get(k) for k in ("status_code", "status_text", "error_code", "error_text", "timestamp")}
        if not verdict.final:
            self.store.messages.note(msg.id, {"at": now, "kind": "receipt", "via": via, "result": "pending",
                                      "reason": verdict.reason})
            return "pending"
        target = State.DELIVERED if verdict.outcome == "delivered" else State.UNDELIVERED
        if msg.state in (State.SENDING, State.UNKNOWN):
            # The receipt beat our own bookkeeping (or reconciliation): it proves ClickSend has the message.
            proved = Change(msg.id, State.SENT, "delivery receipt proves it was accepted",
                            {"provider_id": receipt.get("message_id")})
            if self.store.messages.apply_many([proved], now)[0]:
                if receipt.get("message_id"):
                    self.store.feedback.index_provider_ids({str(receipt["message_id"]): msg.id})
                provider_id = receipt.get("message_id")
                sent = msg.but(state=State.SENT, provider_id=str(provider_id) if provider_id else None)
                self.notifier.notify([sent], State.SENT, now)
        moved = self.store.messages.apply_many([Change(msg.id, target, f"receipt ({via}): {verdict.reason}",
                                            {"receipt": summary}, expect=frozenset({State.SENT}))], now)[0]
        if not moved:
            return "duplicate"  # already final: a repeat, or a late receipt after a final one
        self.notifier.notify([msg.but(state=target)], target, now, {"receipt": summary})
        return verdict.outcome

    def apply_inbound(self, item: dict[str, Any], now: float, via: str) -> str:
        """Apply one inbound reply: opt-out keywords, then link it to the message it answers.

        The reply is marked seen only after its effects are recorded: a worker killed half-way leaves it to be
        applied again (opting out twice changes nothing, the callback id is per reply), never a STOP skipped.
        """
        inbound_id = str(item.get("message_id") or "")
        if inbound_id and self.store.feedback.inbound_seen(inbound_id):
            return "duplicate"
        sender = e164(str(item.get("from") or item.get("sms") or ""), self.settings.default_region, strict=False)
        body = str(item.get("body") or item.get("message") or "")
        keyword = reply_keyword(body)
        result = "reply"
        if sender and keyword == "stop":
            self.store.optouts.opt_out(sender, now, via="reply", detail=body[:40])
            result = "opted_out"
        elif sender and keyword == "start":
            self.store.optouts.opt_in(sender, now, via="reply", detail=body[:40])
            result = "opted_in"
        msg = self.find_message(item.get("custom_string") or None, item.get("original_message_id") or None)
        if msg is not None:
            reply = {"id": inbound_id, "body": body, "timestamp": to_int(item.get("timestamp")), "keyword": keyword}
            self.store.messages.note(msg.id, {"at": now, "kind": "reply", "via": via,
                                                 "reason": f"reply: {body[:160]}", "keyword": keyword})
            self.notifier.notify([msg], "reply", now, {"reply": reply, "id": inbound_id})
        if inbound_id:
            self.store.feedback.mark_inbound_seen(inbound_id)
        return result

    def poll_receipts(self, now: float) -> dict[str, int]:
        """Read every page of unread receipts (largest pages), apply them, then mark read those up to the newest
        applied but no later than a minute before this pass began."""
        counts: dict[str, int] = {}
        client = self.client()
        for channel in RECEIPT_CHANNELS:
            newest = None
            for result in iter_pages(partial(client.receipts, channel, limit=100)):
                page: dict[str, int] = {}
                for receipt in result.items:
                    outcome = self._apply_receipt(receipt, now, "poll")
                    page[outcome] = page.get(outcome, 0) + 1
                    newest = max(newest or 0, to_int(receipt.get("timestamp")) or 0)
                self.store.counters.count_receipts("poll", page)  # one round trip a page
                counts = {k: counts.get(k, 0) + page.get(k, 0) for k in counts.keys() | page.keys()}
            if newest:
                self.store.replicated()  # ClickSend will not list them again: a failover must not lose them
                client.mark_receipts_read(channel, date_before=min(newest, int(now) - READ_MARGIN))
        return counts

    def poll_inbound(self, now: float) -> dict[str, int]:
        """Read every page of unread inbound SMS, apply them, then mark read as `poll_receipts` does."""
        counts: dict[str, int] = {}
        newest = None
        client = self.client()
        for result in iter_pages(partial(client.inbound, limit=100)):
            for item in result.items:
                outcome = self.apply_inbound(item, now, "poll")
                counts[outcome] = counts.get(outcome, 0) + 1
                newest = max(newest or 0, to_int(item.get("timestamp")) or 0)
        if newest:
            self.store.replicated()  # as for receipts: a STOP lost at a failover would not be seen again
            client.mark_inbound_read(date_before=min(newest, int(now) - READ_MARGIN))
        return counts
