"""What ClickSend tells us afterwards: delivery receipts and inbound replies, pushed or polled, applied
through the same code either way. Applying is idempotent and never moves a message backwards.
"""

from __future__ import annotations

import logging
from collections import Counter
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
from workers.store.pushed import Pushed
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

    def apply_receipt(self, receipt: dict[str, Any], now: float, via: str) -> str:
        """Apply one receipt and count it. Returns what happened: delivered, undelivered, pending, duplicate or
        unknown."""
        [outcome] = self.apply_receipts([receipt], now, via)
        return outcome

    def apply_receipts(self, receipts: list[dict[str, Any]], now: float, via: str) -> list[str]:
        """Apply a page of receipts and count them, in a few round trips for the whole page: find the messages,
        move them (each move a compare-and-set, so a repeat or a late receipt after a final one changes
        nothing), tell the origins. Returns what happened to each, as `apply_receipt` does."""
        if not receipts:
            return []
        found = self.store.messages.find_many([(r.get("custom_string"), r.get("message_id")) for r in receipts])
        changes, notes, plans = _plan_receipts(receipts, found, now, via)
        moved = self.store.messages.apply_many(changes, now, notes)
        outcomes: list[str] = []
        told: list[tuple[Message, str, dict[str, Any] | None]] = []
        proved_ids: dict[str, str] = {}
        for receipt, msg, (proving, final) in zip(receipts, found, plans, strict=True):
            if msg is None:
                outcomes.append("unknown")
                continue
            if final is None:
                outcomes.append("pending")
                continue
            if proving is not None and moved[proving]:
                provider_id = receipt.get("message_id")
                if provider_id:
                    proved_ids[str(provider_id)] = msg.id
                told.append((msg.but(state=State.SENT, provider_id=str(provider_id) if provider_id else None),
                             str(State.SENT), None))
            if not moved[final]:
                outcomes.append("duplicate")  # already final: a repeat, or a late receipt after a final one
                continue
            target = changes[final].target
            told.append((msg.but(state=target), str(target), {"receipt": _summary(receipt)}))
            outcomes.append(judge(receipt).outcome)
        unknown = outcomes.count("unknown")
        if unknown:
            log.info("%s receipt(s) for unknown messages (%s so far)", unknown,
                     self.store.feedback.count_unknown_receipts(unknown))
        self.store.feedback.index_provider_ids(proved_ids)
        self.notifier.notify_each(told, now)
        self.store.counters.count_receipts(via, dict(Counter(outcomes)))
        return outcomes

    def apply_inbound(self, item: dict[str, Any], now: float, via: str) -> str:
        """Apply one inbound reply, as `apply_inbounds` does."""
        [outcome] = self.apply_inbounds([item], now, via)
        return outcome

    def apply_inbounds(self, items: list[dict[str, Any]], now: float, via: str) -> list[str]:
        """Apply a page of inbound replies: opt-out keywords, then link each to the message it answers.
        Returns, per reply, opted_out, opted_in, reply or duplicate.

        A reply is marked seen only after its effects are recorded: a worker killed half-way leaves it to be
        applied again (opting out twice changes nothing, the callback id is per reply), never a STOP skipped.
        """
        if not items:
            return []
        ids = [str(item.get("message_id") or "") for item in items]
        seen = self.store.feedback.inbound_seen([i for i in ids if i])
        found = self.store.messages.find_many(
            [(item.get("custom_string") or None, item.get("original_message_id") or None) for item in items])
        outcomes: list[str] = []
        notes: list[tuple[str, dict[str, Any]]] = []
        told: list[tuple[Message, str, dict[str, Any] | None]] = []
        for inbound_id, item, msg in zip(ids, items, found, strict=True):
            if inbound_id in seen:
                outcomes.append("duplicate")
                continue
            seen.add(inbound_id)
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
            if msg is not None:
                reply = {"id": inbound_id, "body": body, "timestamp": to_int(item.get("timestamp")),
                         "keyword": keyword}
                notes.append((msg.id, {"at": now, "kind": "reply", "via": via, "reason": f"reply: {body[:160]}",
                                       "keyword": keyword}))
                told.append((msg, "reply", {"reply": reply, "id": inbound_id}))
            outcomes.append(result)
        self.store.messages.apply_many([], now, notes)
        self.notifier.notify_each(told, now)
        self.store.feedback.mark_inbound_seen([i for i, o in zip(ids, outcomes, strict=True) if i and o != "duplicate"])
        return outcomes

    def apply_pushed(self, items: list[Pushed], now: float) -> list[str]:
        """Apply what ClickSend pushed (receipts and replies, in any mix), a page at a time; an outcome each, in
        order."""
        receipts = [i for i, item in enumerate(items) if item.kind == "receipt"]
        replies = [i for i, item in enumerate(items) if item.kind != "receipt"]
        outcomes = dict(zip(receipts, self.apply_receipts([items[i].data for i in receipts], now, "push"),
                            strict=True))
        outcomes |= zip(replies, self.apply_inbounds([items[i].data for i in replies], now, "push"), strict=True)
        return [outcomes[i] for i in range(len(items))]

    def poll_receipts(self, now: float) -> dict[str, int]:
        """Read every page of unread receipts (largest pages), apply each page at once, then mark read those up
        to the newest applied but no later than a minute before this pass began."""
        counts: Counter[str] = Counter()
        client = self.client()
        for channel in RECEIPT_CHANNELS:
            newest = None
            for result in iter_pages(partial(client.receipts, channel, limit=100)):
                counts.update(self.apply_receipts(list(result.items), now, "poll"))
                newest = max([newest or 0, *(to_int(r.get("timestamp")) or 0 for r in result.items)])
            if newest:
                self.store.replicated()  # ClickSend will not list them again: a failover must not lose them
                client.mark_receipts_read(channel, date_before=min(newest, int(now) - READ_MARGIN))
        return dict(counts)

    def poll_inbound(self, now: float) -> dict[str, int]:
        """Read every page of unread inbound SMS, apply each page at once, then mark read as `poll_receipts`
        does."""
        counts: Counter[str] = Counter()
        newest = None
        client = self.client()
        for result in iter_pages(partial(client.inbound, limit=100)):
            counts.update(self.apply_inbounds(list(result.items), now, "poll"))
            newest = max([newest or 0, *(to_int(item.get("timestamp")) or 0 for item in result.items)])
        if newest:
            self.store.replicated()  # as for receipts: a STOP lost at a failover would not be seen again
            client.mark_inbound_read(date_before=min(newest, int(now) - READ_MARGIN))
        return dict(counts)

def _summary(receipt: dict[str, Any]) -> dict[str, Any]:
    """What a message keeps of its final receipt (and its origin is told)."""
    return {k: receipt.get(k) for k in ("status_code", "status_text", "error_code", "error_text", "timestamp")}


def _plan_receipts(receipts: list[dict[str, Any]], found: list[Message | None], now: float, via: str,
                   ) -> tuple[list[Change], list[tuple[str, dict[str, Any]]], list[tuple[int | None, int | None]]]:
    """The changes and timeline notes a page of receipts asks for (`found`: the message of each), and for each
    receipt the index of its proving change and of its final change among them (None: none)."""
    changes: list[Change] = []
    notes: list[tuple[str, dict[str, Any]]] = []
    plans: list[tuple[int | None, int | None]] = []
    for receipt, msg in zip(receipts, found, strict=True):
        verdict = judge(receipt)
        if msg is None or not verdict.final:
            if msg is not None:
                notes.append((msg.id, {"at": now, "kind": "receipt", "via": via, "result": "pending",
                                       "reason": verdict.reason}))
            plans.append((None, None))
            continue
        proving = None
        if msg.state in (State.SENDING, State.UNKNOWN):
            # The receipt beat our own bookkeeping (or reconciliation): it proves ClickSend has the message.
            proving = len(changes)
            changes.append(Change(msg.id, State.SENT, "delivery receipt proves it was accepted",
                                  {"provider_id": receipt.get("message_id")}))
        target = State.DELIVERED if verdict.outcome == "delivered" else State.UNDELIVERED
        plans.append((proving, len(changes)))
        changes.append(Change(msg.id, target, f"receipt ({via}): {verdict.reason}",
                              {"receipt": _summary(receipt)}, expect=frozenset({State.SENT})))
    return changes, notes, plans
