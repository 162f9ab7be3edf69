"""Turning stored events into messages: plan with the pure core, then create, cancel and schedule in Redis.

The adapter between `core.planning`, admission and the store; the RQ job shells in `entry/jobs.py` call it
through the composition root. Must not build clients or read settings of its own.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from workers.core.lifecycle import REPORTED, State
from workers.core.messages import Message
from workers.core.planning import RuleOutcome, list_members, plan_event
from workers.core.storedtemplates import Snapshot
from workers.flow.admission import Admission, Request
from workers.flow.origin import Notifier, log_outcomes
from workers.flow.storedtemplates import StoredTemplateCache
from workers.store import Store
from workers.store.messages import Written
from workers.wiring.pipeline import Enqueuer
from workers.wiring.rulesdir import Config, RulesDir, names_stored
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
    templates: StoredTemplateCache | None = None  # the account's stored templates, for rules that name one

    def process_events(self, event_ids: list[str], now: float,
                       send: Callable[[str, dict[str, Written]], object] | None = None) -> Counter[str]:
        """Plan and store the messages of a batch of events (idempotent); returns counts by starting state.
        Each channel that gained queued messages is handed to `send` with what was written of them, by id (the
        drain sends them itself), else its flush is started (`Enqueuer.kick`).

        Creations are written in one round trip per batch, except that a cancel or replace first writes
        what came before it, so it also reaches messages planned earlier in the same batch.
        """
        config = self.rules.current()
        stored = self.stored_templates(config, now)
        processed: list[tuple[str, dict[str, object]]] = []
        failed: list[tuple[str, dict[str, object]]] = []
        plans: list[tuple[str, list[RuleOutcome]]] = []
        for event in self.store.events.load_events(event_ids):
            try:
                plans.append((event.id, plan_event(event, list(config.rules), now, self.settings.timezone,
                                                   self.settings.default_region, stored)))
            except Exception as exc:  # noqa: BLE001 - one poison event must not block every event behind it
                log.exception("event %s could not be planned; recorded as failed", event.id)
                failed.append((event.id, {"error": f"{type(exc).__name__}: {exc}"}))
        # Messages a killed run of this batch created already keep what admission gave them: admitting them
        # again would charge the day's budget twice.
        existing = self.store.messages.existing(m.id for _, outcomes in plans for o in outcomes for m in o.messages)
        batch = _Batch(self, now, existing)
        for event_id, outcomes in plans:
            planned = sum(batch.apply(event_id, outcome) for outcome in outcomes if outcome.matched)
            matched = [o.rule for o in outcomes if o.matched]
            processed.append((event_id, {"rules": matched, "messages": planned}))
            log.debug("event %s: rules %s, %d message(s)", event_id, matched or "none", planned)
        batch.write()
        self.store.events.mark_processed(processed, now)
        self.store.events.mark_processed(failed, now, status="failed")
        for channel, written in batch.queued.items():
            if send is not None:
                send(channel, written)
            else:
                self.enqueuer.kick(channel)
        return batch.counts

    def stored_templates(self, config: Config, now: float) -> Snapshot | None:
        """The account's stored templates when a rule names one (fetched at most once per refresh interval; an
        outage with no copy yet raises, and the batch is processed again later)."""
        if self.templates is None or not names_stored(config):
            return None
        return self.templates.snapshot(now)

    def plan_list(self, parent: Message, numbers: list[str], opted_out: set[str], now: float) -> Counter[str]:
        """A send to a list (`parent`) becomes a message per number on it, each admitted by its policy in full
        (the approval of the send to the list lifts its `approval: manual` alone) and stored like an event's
        messages; counts by starting state. Idempotent: a number planned before (a send to
        the list done again after a crash) is left as it is."""
        members = list_members(parent, numbers, opted_out, self.settings.default_region)
        batch = _Batch(self, now, self.store.messages.existing(m.id for m in members))
        batch.apply(parent.event_id, RuleOutcome(parent.rule, True, messages=members))
        batch.write()
        for channel in batch.queued:
            self.enqueuer.kick(channel)
        return batch.counts

    def cancel(self, key: str, now: float, reason: str, except_event: str | None = None) -> int:
        """Cancel `key`'s pending messages and give back what admission took for them; how many were cancelled."""
        done = self.store.messages.cancel_by_key(key, now, reason, except_event=except_event)
        cancelled = [m for m in self.store.messages.get_messages(done) if m]
        log_outcomes(cancelled, State.CANCELLED)
        self.admission.release(cancelled, now)
        return len(done)

    def drop_stale(self, outcome: RuleOutcome) -> tuple[RuleOutcome, int]:
        """An event older (by its rule's `order`) than one already processed for the same key changes nothing:
        its cancel is skipped and its messages start cancelled, so a late retry of an old event cannot undo a
        newer change (reminders for a booking that was cancelled since). Returns the outcome as it stands and
        how many things it dropped."""
        assert outcome.order is not None
        order = outcome.order
        newest: dict[str, bool] = {}

        def is_newest(key: str) -> bool:
            if key not in newest:
                newest[key] = self.store.messages.newest_for_key(key, order)
            return newest[key]

        dropped = 0
        if outcome.cancel_key and not is_newest(outcome.cancel_key):
            outcome.reasons.append(f"not cancelled: a newer event for key {outcome.cancel_key} was processed already")
            outcome.cancel_key = None
            dropped += 1
        kept = []
        for msg in outcome.messages:
            if msg.key and msg.state == State.PLANNED and not is_newest(msg.key):
                why = f"superseded: a newer event for key {msg.key} was processed already"
                msg = msg.but(state=State.CANCELLED, replace=False, reasons=(*msg.reasons, why))
                dropped += 1
            kept.append(msg)
        outcome.messages = kept
        return outcome, dropped

    def admit(self, planned: list[tuple[Message, int]], now: float) -> list[Message]:
        """Pass planned messages (each with its rule's fan-out) through their policies in one batch; each starts
        queued, scheduled, held or suppressed. Messages no longer planned (cancelled as stale) stay as they are."""
        todo = [Request(msg, fan_out, at_send_time=msg.send_at is None)
                for msg, fan_out in planned if msg.state == State.PLANNED]
        outcomes = iter(self.admission.admit_batch(todo, now))
        return [next(outcomes).applied_to(msg) if msg.state == State.PLANNED else msg for msg, _ in planned]

    def fire(self, message_id: str, now: float) -> bool:
        """A scheduled message's time has come: check its policy again, then queue, defer, hold or suppress it.

        A no-op when it was cancelled, already fired, or deferred again since this job was scheduled.
        """
        current = self.store.messages.get_message(message_id, with_log=False)
        if current is None or current.state != State.SCHEDULED:
            return False
        if (current.send_at or 0) > now + 1:
            return False
        if current.reserved is not None:
            # A retry (THROTTLED, provider error): admission already approved it and took its duplicate marker,
            # rate slot and budget; checking again would find its own marker and charge it twice.
            moved, _ = self.store.messages.transition(message_id, State.QUEUED, now, "retry time reached",
                                                      expect={State.SCHEDULED})
            if moved:
                self.enqueuer.kick(current.channel)
            return moved
        result = self.admission.admit(current.but(send_at=None), now)
        reasons = "; ".join(result.decision.reasons)
        fields: dict[str, object] = {"estimate": str(result.estimate), "facts": result.facts}
        if result.state == State.QUEUED:
            reserved = result.reservation.fields() if result.reservation else {}
            moved, _ = self.store.messages.transition(
                message_id, State.QUEUED, now, f"scheduled time reached; {reasons}", expect={State.SCHEDULED},
                fields=fields | reserved)
            if moved:
                self.enqueuer.kick(current.channel)
            return moved
        target = result.state
        send_at = result.send_at if target == State.SCHEDULED else None
        moved, _ = self.store.messages.transition(message_id, target, now, reasons, expect={State.SCHEDULED},
                                                  fields=fields, send_at=send_at)
        if moved and send_at is not None:
            self.enqueuer.fire(message_id, send_at)
        elif moved and target in REPORTED:
            self.notifier.notify([current.but(state=target)], target, now)
        return False


class _Batch:
    """The messages of one drain batch on their way into Redis, and what happened to them."""

    def __init__(self, processing: Processing, now: float, existing: set[str]):
        self.p, self.now, self.existing = processing, now, existing
        self.pending: list[tuple[Message, int | None]] = []  # with its fan-out when it is still to be admitted
        self.counts: Counter[str] = Counter()
        self.queued: dict[str, dict[str, Written]] = {}  # by channel, the new queued messages as written, by id

    def apply(self, event_id: str, outcome: RuleOutcome) -> int:
        """Cancel, replace and admit what one matched rule planned; how many messages it planned."""
        now = self.now
        if outcome.order is not None:
            outcome, dropped = self.p.drop_stale(outcome)
            self.counts["stale"] += dropped
        if outcome.cancel_key:
            self.write()
            self.counts["cancelled"] += self.p.cancel(outcome.cancel_key, now, f"cancelled by rule {outcome.rule}")
        fan_out = sum(m.state == State.PLANNED for m in outcome.messages)
        for msg in outcome.messages:
            if msg.replace and msg.key:
                self.write()
                self.counts["replaced"] += self.p.cancel(msg.key, now, f"replaced by event {event_id}", event_id)
            self.pending.append((msg, None if msg.id in self.existing else fan_out))
        return len(outcome.messages)

    def write(self) -> None:
        """Admit what is pending in one batch, create it, then schedule, queue or report each new message.

        Admission waits for the write (the end of the batch, or a cancel or replace) so that a whole run of
        messages is admitted at once, and a replacement after what it replaces gave back its reservations."""
        todo = [(msg, fan_out) for msg, fan_out in self.pending if fan_out is not None]
        admitted = iter(self.p.admit(todo, self.now))
        pending = [msg if fan_out is None else next(admitted) for msg, fan_out in self.pending]
        created = self.p.store.messages.write_messages(pending, self.now)
        for msg, written in zip(pending, created, strict=True):
            if written is None:
                continue  # re-processing: it exists already, and so does its schedule
            self.counts[msg.state] += 1
            if msg.state == State.SCHEDULED and msg.send_at is not None:
                self.p.enqueuer.fire(msg.id, msg.send_at)
            elif msg.state == State.QUEUED:
                self.queued.setdefault(msg.channel, {})[msg.id] = written
            elif msg.state in REPORTED:
                self.p.notifier.notify([msg], msg.state, self.now)
            elif msg.state == State.CANCELLED:  # superseded before it was written: told to nobody, but logged
                log_outcomes([msg], msg.state)
        self.pending.clear()
