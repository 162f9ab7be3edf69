"""Event records in Redis: atomic ingest (dedupe, persist, hand over), the pending list and its drain lease."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

import redis

from workers.core.events import Event
from workers.core.records import EventRecord
from workers.store.keys import EVENTS_DRAIN, EVENTS_PENDING, available, event_key, maybe_json, seen_key, text, texts
from workers.store.lease import FINISH_ROUND, LeaseKeeper

# The drain lease lapses this long after its holder stops renewing it: a drain job renews it every third of
# this while it works (`drain_keeper`), so a worker killed mid-drain holds up new events for seconds, not
# minutes. It is also how long a claimed drain may wait in the queue before another claim may replace it.
DRAIN_LEASE_MS = 15_000

# Dedupe, persist, hand over, and claim the drain in one atomic step: either all happen or none.
_INGEST = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[3]) == false then
  return {0, 0, redis.call('GET', KEYS[1])}
end
redis.call('HSET', KEYS[2], 'doc', ARGV[2], 'status', 'received')
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('RPUSH', KEYS[3], ARGV[1])
if redis.call('SET', KEYS[4], ARGV[6], 'NX', 'PX', ARGV[5]) then
  return {1, 1}
end
return {1, 0}
"""

# Claim the drain when events wait and nobody holds it (the periodic sweep; a lost enqueue).
_DRAIN_CLAIM = """
if redis.call('LLEN', KEYS[1]) == 0 then
  return 0
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0
"""


_HSET_EXISTING = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HSET', KEYS[1], unpack(ARGV))
end
return 0
"""


@dataclass(frozen=True)
class IngestResult:
    """What `ingest` did: `created` false for a duplicate, whose first event is `event_id`; `drain_token` set when
    a drain must start."""

    created: bool
    drain_token: str | None
    event_id: str


class EventRecords:
    """Event records and the pending list."""

    def __init__(self, r: redis.Redis):
        self.r = r
        self._ingest = r.register_script(_INGEST)
        self._drain_done = r.register_script(FINISH_ROUND)
        self._drain_claim = r.register_script(_DRAIN_CLAIM)
        self._hset_existing = r.register_script(_HSET_EXISTING)

    def ingest(self, event: Event, dedupe_window: float, ttl: float) -> IngestResult:
        """Store `event` and queue it for the workers unless its dedupe id was seen within `dedupe_window`."""
        token = secrets.token_hex(8)
        doc = json.dumps(event.to_dict(), separators=(",", ":"))
        with available():
            created, claimed, *first = self._ingest(
                keys=[seen_key(event.dedupe_id), event_key(event.id), EVENTS_PENDING, EVENTS_DRAIN],
                args=[event.id, doc, int(dedupe_window * 1000), int(ttl * 1000), DRAIN_LEASE_MS, token],
            )
        return IngestResult(bool(created), token if claimed else None, text(first[0]) if first else event.id)

    def get_event(self, event_id: str) -> EventRecord | None:
        """The stored event with its processing status, or None."""
        with available():
            raw = self.r.hgetall(event_key(event_id))
        if not raw or "doc" not in raw:
            return None
        doc = json.loads(raw.pop("doc"))
        return EventRecord.from_json(doc | {text(k): maybe_json(text(v)) for k, v in raw.items()})

    def load_events(self, event_ids: list[str]) -> list[Event]:
        """The events still stored among `event_ids`, in order (expired ones are skipped)."""
        pipe = self.r.pipeline(transaction=False)
        for eid in event_ids:
            pipe.hget(event_key(eid), "doc")
        with available():
            docs = pipe.execute()
        return [Event.from_dict(json.loads(d)) for d in docs if d]

    def mark_processed(self, items: list[tuple[str, dict[str, Any]]], now: float, status: str = "processed") -> None:
        """Record that events were processed (or failed), each with its own details; idempotent."""
        if not items:
            return
        pipe = self.r.pipeline(transaction=False)
        for eid, details in items:
            mapping = {"status": status, f"{status}_at": now} | {k: json.dumps(v) for k, v in details.items()}
            # HSET on an expired key would create a doc-less record; only touch existing ones.
            args: list[Any] = [x for kv in mapping.items() for x in kv]
            self._hset_existing(keys=[event_key(eid)], args=args, client=pipe)
        with available():
            pipe.execute()

    def pending_batch(self, size: int) -> list[str]:
        """The oldest `size` event ids waiting for processing (left in place until `finish_batch`)."""
        with available():
            return texts(self.r.lrange(EVENTS_PENDING, 0, size - 1))

    def finish_batch(self, token: str, count: int) -> int:
        """Drop `count` processed ids. 1: more wait, keep draining; 0: drained; -1: lease lost, stop."""
        with available():
            return int(self._drain_done(keys=[EVENTS_PENDING, EVENTS_DRAIN],
                                        args=[token, count, DRAIN_LEASE_MS]))

    def claim_drain(self) -> str | None:
        """Claim the drain lease if events wait and nobody holds it; return the token to drain with."""
        token = secrets.token_hex(8)
        with available():
            claimed = self._drain_claim(keys=[EVENTS_PENDING, EVENTS_DRAIN], args=[token, DRAIN_LEASE_MS])
        return token if claimed else None

    def drain_keeper(self, token: str) -> LeaseKeeper:
        """The keeper of the drain lease `token`: `hold()` it before draining, and work inside `with` it."""
        return LeaseKeeper(self.r, EVENTS_DRAIN, token, DRAIN_LEASE_MS)

    def pending_count(self) -> int:
        """How many events wait for processing."""
        with available():
            return int(self.r.llen(EVENTS_PENDING))
