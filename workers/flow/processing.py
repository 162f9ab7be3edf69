"""Turning stored events into messages: plan with the pure core, then create, cancel and schedule in Redis.

The adapter between `core.planning` and the store; RQ job shells in `jobs.py` call it.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from workers.core.lifecycle import REPORTED, State
from workers.core.planning import Planned, RuleOutcome, plan_event
from workers.flow.admission import Admission
from workers.flow.origin import Notifier
from workers.store import Store
from workers.wiring.pipeline import Enqueuer
from workers.wiring.rulesdir import RulesDir
from workers.wiring.settings import Settings

log = logging.getLogger("hookline.processing")


@dataclass(frozen=True)
class Processing:
    """Plans stored events into messages and fires scheduled ones, through admission and the notifier."""

    store: Store
    rules: RulesDir
    settings: Settings
    enqueuer: Enqueuer
    admission: Admission
    notifier: Notifier

    def process_events(self, event_ids: list[str], now: float) -> Counter[str]:
        """Plan and store the messages of a batch of events (idempotent); returns counts by starting state.

        Creations are written in one round trip per batch, except that a cancel or replace first writes
        what came before it, so it also reaches messages planned earlier in the same batch.
        """
        config = self.rules.current()
        counts: Counter[str] = Counter()
        channels: set[str] = set()
        pending: list[Planned] = []

        def write() -> None:
            created = self.store.messages.create_messages([m.to_dict() for m in pending], now)
            for msg, new in zip(pending, created, strict=True):
                if not new:
                    continue  # re-processing: it exists already, and so does its schedule
                counts[msg.state] += 1
                if msg.state == State.SCHEDULED and msg.send_at is not None:
                    self.enqueuer.fire(msg.id, msg.send_at)
                elif msg.state == State.QUEUED:
                    channels.add(msg.channel)
                elif msg.state in REPORTED:
                    self.notifier.notify([msg.to_dict()], msg.state, now)
            pending.clear()

        processed: list[tuple[str, dict[str, object]]] = []
        failed: list[tuple[str, dict[str, object]]] = []
        for event in self.store.events.load_events(event_ids):
            try:
                outcomes = plan_event(event, list(config.rules), now, self.settings.timezone,
                                      self.settings.default_region)
            except Exception as exc:  # noqa: BLE001 - one poison event must not block every event behind it
                log.exception("event %s could not be planned; recorded as failed", event.id)
                failed.append((event.id, {"error": f"{type(exc).__name__}: {exc}"}))
                continue
            planned = 0
            for outcome in (o for o in outcomes if o.matched):
                if outcome.order is not None:
                    counts["stale"] += self._drop_stale(outcome)
                if outcome.cancel_key:
                    write()
                    counts["cancelled"] += self._cancel(outcome.cancel_key, now, f"cancelled by rule {outcome.rule}")
                fan_out = sum(m.state == State.PLANNED for m in outcome.messages)
                for msg in outcome.messages:
                    self._admit(msg, now, fan_out)
                    if msg.replace and msg.key:
                        write()
                        counts["replaced"] += self._cancel(msg.key, now, f"replaced by event {event.id}", event.id)
                    pending.append(msg)
                    planned += 1
            matched = [o.rule for o in outcomes if o.matched]
            processed.append((event.id, {"rules": matched, "messages": planned}))
            log.debug("event %s: rules %s, %d message(s)", event.id, matched or "none", planned)
        write()
        self.store.events.mark_processed(processed, now)
        self.store.events.mark_processed(failed, now, status="failed")
        for channel in channels:
            self.enqueuer.kick(channel)
        return counts


    def _cancel(self, key: str, now: float, reason: str, except_event: str | None = None) -> int:
        """Cancel `key`'s pending messages and give back what admission took for them; how many were cancelled."""
        done = self.store.messages.cancel_by_key(key, now, reason, except_event=except_event)
        self.admission.release([m for m in self.store.messages.get_messages(done) if m], now)
        return len(done)


    def _drop_stale(self, outcome: RuleOutcome) -> int:
        """An event older (by its rule's `order`) than one already processed for the same key changes nothing:
        its cancel is skipped and its messages start cancelled, so a late retry of an old event cannot undo a
        newer change (reminders for a booking that was cancelled since). Returns how many things it dropped."""
        assert outcome.order is not None
        newest: dict[str, bool] = {}

        def is_newest(key: str) -> bool:
            if key not in newest:
                newest[key] = self.store.messages.newest_for_key(key, outcome.order)
            return newest[key]

        dropped = 0
        if outcome.cancel_key and not is_newest(outcome.cancel_key):
            outcome.reasons.append(f"not cancelled: a newer event for key {outcome.cancel_key} was processed already")
            outcome.cancel_key = None
            dropped += 1
        for msg in outcome.messages:
            if msg.key and msg.state == State.PLANNED and not is_newest(msg.key):
                msg.state, msg.replace = State.CANCELLED, False
                msg.reasons.append(f"superseded: a newer event for key {msg.key} was processed already")
                dropped += 1
        return dropped


    def _admit(self, msg: Planned, now: float, fan_out: int) -> None:
        """Pass a planned message through its policy; it starts queued, scheduled, held or suppressed."""
        if msg.state != State.PLANNED:
            return
        doc = msg.to_dict()
        result = self.admission.admit(doc, now, fan_out, at_send_time=msg.send_at is None)
        msg.state = State(result.state)
        msg.send_at = result.send_at
        msg.reasons.extend(result.decision.reasons)
        msg.estimate, msg.facts = str(result.estimate), result.facts
        if result.reservation:
            msg.reserved, msg.reserved_day = result.reservation["reserved"], result.reservation["reserved_day"]


    def fire(self, message_id: str, now: float) -> bool:
        """A scheduled message's time has come: check its policy again, then queue, defer, hold or suppress it.

        A no-op when it was cancelled, already fired, or deferred again since this job was scheduled.
        """
        current = self.store.messages.get_message(message_id, with_log=False)
        if current is None or current["state"] != State.SCHEDULED:
            return False
        if float(current.get("send_at") or 0) > now + 1:
            return False
        if current.get("reserved") is not None:
            # A retry (THROTTLED, provider error): admission already approved it and took its duplicate marker,
            # rate slot and budget; checking again would find its own marker and charge it twice.
            moved, _ = self.store.messages.transition(message_id, State.QUEUED, now, "retry time reached",
                                           expect={State.SCHEDULED})
            if moved:
                self.enqueuer.kick(current["channel"])
            return moved
        result = self.admission.admit(current | {"send_at": None}, now)
        reasons = "; ".join(result.decision.reasons)
        fields: dict[str, object] = {"estimate": str(result.estimate), "facts": result.facts}
        if result.state == State.QUEUED:
            moved, _ = self.store.messages.transition(
                message_id, State.QUEUED, now, f"scheduled time reached; {reasons}", expect={State.SCHEDULED},
                fields=fields | (result.reservation or {}))
            if moved:
                self.enqueuer.kick(current["channel"])
            return moved
        target = State(result.state)
        send_at = result.send_at if target == State.SCHEDULED else None
        moved, _ = self.store.messages.transition(message_id, target, now, reasons, expect={State.SCHEDULED},
                                                  fields=fields, send_at=send_at)
        if moved and send_at is not None:
            self.enqueuer.fire(message_id, send_at)
        elif moved and target in REPORTED:
            self.notifier.notify([current | {"state": target.value}], target.value, now)
        return moved and target == State.QUEUED
