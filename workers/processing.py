"""Turning stored events into messages: plan with the pure core, then create, cancel and schedule in Redis.

The adapter between `core.planning` and the store; RQ job shells in `jobs.py` call it.
"""

from __future__ import annotations

import logging
from collections import Counter

from workers import origin
from workers.core.lifecycle import State
from workers.core.planning import Planned, plan_event
from workers.runtime import Runtime

log = logging.getLogger("hookline.processing")


def process_events(rt: Runtime, event_ids: list[str], now: float) -> Counter[str]:
    """Plan and store the messages of a batch of events (idempotent); returns counts by starting state.

    Creations are written in one round trip per batch, except that a cancel or replace first writes
    what came before it, so it also reaches messages planned earlier in the same batch.
    """
    config = rt.rules.current()
    counts: Counter[str] = Counter()
    channels: set[str] = set()
    pending: list[Planned] = []

    def write() -> None:
        _suppress_opted_out(rt, pending)
        created = rt.store.create_messages([m.to_dict() for m in pending], now)
        for msg, new in zip(pending, created, strict=True):
            if not new:
                continue  # re-processing: it exists already, and so does its schedule
            counts[msg.state] += 1
            if msg.state == State.SCHEDULED and msg.send_at is not None:
                rt.schedule_fire(msg.id, msg.send_at)
            elif msg.state == State.QUEUED:
                channels.add(msg.channel)
            elif msg.state in (State.FAILED, State.SUPPRESSED):
                origin.notify(rt, [msg.to_dict()], msg.state, now)
        pending.clear()

    processed: list[tuple[str, dict[str, object]]] = []
    for event in rt.store.load_events(event_ids):
        outcomes = plan_event(event, list(config.rules), now, rt.settings.timezone, rt.settings.default_region)
        planned = 0
        for outcome in (o for o in outcomes if o.matched):
            if outcome.cancel_key:
                write()
                done = rt.store.cancel_by_key(outcome.cancel_key, now, f"cancelled by rule {outcome.rule}")
                counts["cancelled"] += len(done)
            for msg in outcome.messages:
                _settle(msg)
                if msg.replace and msg.key:
                    write()
                    done = rt.store.cancel_by_key(msg.key, now, f"replaced by event {event.id}",
                                                  except_event=event.id)
                    counts["replaced"] += len(done)
                pending.append(msg)
                planned += 1
        matched = [o.rule for o in outcomes if o.matched]
        processed.append((event.id, {"rules": matched, "messages": planned}))
        log.debug("event %s: rules %s, %d message(s)", event.id, matched or "none", planned)
    write()
    rt.store.mark_processed(processed, now)
    for channel in channels:
        rt.kick(channel)
    return counts


def _suppress_opted_out(rt: Runtime, planned: list[Planned]) -> None:
    """Messages to numbers on the suppression list (they replied STOP) are suppressed, with that reason."""
    live = [m for m in planned if m.to and m.state in (State.QUEUED, State.SCHEDULED, State.PLANNED)]
    blocked = rt.store.opted_out(sorted({m.to for m in live if m.to}))
    for msg in live:
        if msg.to in blocked:
            msg.state = State.SUPPRESSED
            msg.reasons.append("recipient opted out (replied STOP or added by an operator)")
            msg.send_at = None


def _settle(msg: Planned) -> None:
    """Where an approved, planned message starts: scheduled when it has a time, else queued."""
    if msg.state != State.PLANNED:
        return
    msg.state = State.SCHEDULED if msg.send_at is not None else State.QUEUED


def fire(rt: Runtime, message_id: str, now: float) -> bool:
    """A scheduled message's time has come: queue it (no-op if cancelled, already fired, or re-deferred)."""
    current = rt.store.get_message(message_id, with_log=False)
    if current is None or current["state"] != State.SCHEDULED:
        return False
    if float(current.get("send_at") or 0) > now + 1:
        return False  # deferred again since this job was scheduled; the newer job will fire it
    moved, _ = rt.store.transition(message_id, State.QUEUED, now, "scheduled time reached",
                                   expect={State.SCHEDULED})
    if moved:
        rt.kick(current["channel"])
    return moved
