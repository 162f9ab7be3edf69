"""Event records in Redis: atomic ingest (dedupe, persist, hand over), the pending lists (one per partition) and
their drain leases."""

from __future__ import annotations

import heapq
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import redis

from workers.core.events import Event
from workers.core.partitions import MAX_PARTITIONS, partition_of
from workers.core.records import EventRecord
from workers.store.counters import ACCEPTED, DUPLICATE, field
from workers.store.keys import (
    EVENTS_BY_TIME,
    STATS_EVENTS,
    available,
    event_key,
    events_drain_key,
    events_external_index,
    events_pending_key,
    events_source_index,
    events_type_index,
    maybe_json,
    seen_key,
    text,
    texts,
)
from workers.store.lease import FINISH_ROUND, JobFate, LeaseKeeper, QueuedClaim, QueuedClaims, job_key
from workers.store.pages import Page, Position, Walker, Window, scan

EVENT_STATUSES = ("received", "processed", "failed")
_CHUNK = 250  # index entries read, and records checked against the filters, per round trip

# The drain lease lapses this long after its holder stops renewing it: a drain job renews it every third of
# this while it works (`drain_keeper`), so a worker killed mid-drain holds up new events for seconds, not
# minutes.
DRAIN_LEASE_MS = 15_000
# A drain claimed for a job that waits in the queue (at ingest, by the sweep, a chained batch) holds the lease
# this long instead, naming its job (`lease.job_key`): under a backlog the job may wait longer than the short
# lease, which would then lapse and be claimed again for another job, and another. The sweep keeps the claim
# while RQ still has the job waiting; one whose job RQ does not have (a lost enqueue) becomes the short lease
# and lapses as before, one whose job ended without holding it is taken over at once (`lease.QueuedClaims`).
DRAIN_QUEUED_MS = 300_000

# Every partition a drain may find events in: all that any count allowed (a count lowered on a running
# deployment leaves events beyond it), then the single list of the versions before partitions.
ALL_PARTITIONS: tuple[int | None, ...] = (*range(MAX_PARTITIONS), None)

# Dedupe, persist, index, hand over, and claim the drain in one atomic step: either all happen or none. The
# answer (accepted or duplicate) is counted in the same step (KEYS[5]), so counting costs no round trip. The
# claim names its job (KEYS[6], ARGV[10]): a queued claim, ARGV[5] ms.
# KEYS[7..]: the listing indexes (by time, source, type, external id); ARGV[7]: the received time. Each index
# drops the entries older than the event TTL as it gains one and expires with its newest event, so none
# outlives the records it points to by more than until its next ingest; no periodic job is needed.
_INGEST = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[3]) == false then
  redis.call('HINCRBY', KEYS[5], ARGV[9], 1)
  return {0, 0, redis.call('GET', KEYS[1])}
end
redis.call('HINCRBY', KEYS[5], ARGV[8], 1)
redis.call('HSET', KEYS[2], 'doc', ARGV[2], 'status', 'received')
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local expired = '(' .. string.format('%.6f', tonumber(ARGV[7]) - tonumber(ARGV[4]) / 1000)
for i = 7, #KEYS do
  redis.call('ZADD', KEYS[i], ARGV[7], ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', expired)
  redis.call('PEXPIRE', KEYS[i], ARGV[4])
end
redis.call('RPUSH', KEYS[3], ARGV[1])
if redis.call('SET', KEYS[4], ARGV[6], 'NX', 'PX', ARGV[5]) then
  redis.call('SET', KEYS[6], ARGV[10], 'PX', ARGV[5])
  return {1, 1}
end
return {1, 0}
"""

# Claim the drain of every partition where events wait and nobody holds it (the periodic sweep; a lost enqueue;
# a dead holder's lapsed lease), each a queued claim for its job. KEYS: pending list, lease and its job key,
# three by three; ARGV: a token prefix, queued lease ms, a job id prefix. Returns the 0-based numbers of the
# triples claimed; triple i's token is the token prefix, ':' and i, its job's id the job id prefix and i.
_DRAIN_CLAIM = """
local claimed = {}
for i = 1, #KEYS, 3 do
  local n = (i - 1) / 3
  if redis.call('LLEN', KEYS[i]) > 0 and redis.call('SET', KEYS[i + 1], ARGV[1] .. ':' .. n, 'NX', 'PX', ARGV[2]) then
    redis.call('SET', KEYS[i + 2], ARGV[3] .. n, 'PX', ARGV[2])
    claimed[#claimed + 1] = n
  end
end
return claimed
"""

_PENDING_COUNT = """
local n = 0
for i = 1, #KEYS do
  n = n + redis.call('LLEN', KEYS[i])
end
return n
"""


# Mark a batch of events in one step: KEYS are their records; ARGV, for each in turn, how many field and value
# items follow, then those items. HSET on an expired record would create a doc-less one: only existing ones are
# touched. (One script for the batch: a script call per event cost more client CPU than the rest of marking.)
_HSET_EACH_EXISTING = """
local at = 1
for i = 1, #KEYS do
  local n = tonumber(ARGV[at])
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('HSET', KEYS[i], unpack(ARGV, at + 1, at + n))
  end
  at = at + n + 1
end
return 1
"""

# Each record's `doc` (false, read as None, where the record has expired), in one command for the batch.
_DOCS = """
local out = {}
for i = 1, #KEYS do
  out[i] = redis.call('HGET', KEYS[i], 'doc')
end
return out
"""


@dataclass(frozen=True)
class DrainClaim:
    """The drain lease of one partition's pending list, held with `token`: what a drain job is started with.
    `partition` None is the single list of the versions before partitions. `job`: the id of the RQ job the
    claim was made for ("" once that job runs under it)."""

    partition: int | None
    token: str
    job: str = ""


@dataclass(frozen=True)
class DrainRound:
    """What `finish_batch` did: `more` 1 when more events wait (the lease is kept for `next`, the job to chain),
    0 when the list is drained (the lease given back), -1 when the lease was lost to another drain."""

    more: int
    next: DrainClaim


def drain_job_id() -> str:
    """A new drain job's id: each claim names the job it is for."""
    return f"hookline-drain-{secrets.token_hex(8)}"


def _drain_leases() -> list[str]:
    return [events_drain_key(p) for p in ALL_PARTITIONS]


@dataclass(frozen=True)
class IngestResult:
    """What `ingest` did: `created` false for a duplicate, whose first event is `event_id`; `drain` set when a
    drain of the event's partition must start."""

    created: bool
    drain: DrainClaim | None
    event_id: str


@dataclass(frozen=True)
class EventQuery:
    """Which events to list, newest first; every filter is optional. `search` is an event id or the id the
    sender gave (its external id, any source); `since`/`until` bound the received time (Unix seconds)."""

    source: str | None = None
    type: str | None = None
    status: str | None = None
    rule: str | None = None
    since: float | None = None
    until: float | None = None
    search: str | None = None
    limit: int = 50
    after: Position | None = None


def _indexes(event: Event) -> list[str]:
    """The listing indexes an event enters when it is ingested."""
    return [EVENTS_BY_TIME, events_source_index(event.source), events_type_index(event.type),
            events_external_index(event.external_id)]


def _record(raw: Any) -> EventRecord | None:
    """An event hash as a record (None when there is no record)."""
    if not raw or "doc" not in raw:
        return None
    doc = json.loads(raw.pop("doc"))
    return EventRecord.from_json(doc | {text(k): maybe_json(text(v)) for k, v in raw.items()})


class EventRecords:
    """Event records and the pending list."""

    def __init__(self, r: redis.Redis):
        self.r = r
        self._ingest = r.register_script(_INGEST)
        self._drain_done = r.register_script(FINISH_ROUND)
        self._drain_claim = r.register_script(_DRAIN_CLAIM)
        self._pending_count = r.register_script(_PENDING_COUNT)
        self._hset_each_existing = r.register_script(_HSET_EACH_EXISTING)
        self._docs = r.register_script(_DOCS)
        self._queued = QueuedClaims(r, DRAIN_QUEUED_MS, DRAIN_LEASE_MS)
        self._walker = Walker(r)

    def ingest(self, event: Event, dedupe_window: float, ttl: float, partitions: int) -> IngestResult:
        """Store `event` and queue it for the workers unless its dedupe id was seen within `dedupe_window`: at the
        end of the pending list of its partition (of `partitions`, by its ordering key), claiming that
        partition's drain if nobody holds it."""
        token, job = secrets.token_hex(8), drain_job_id()
        partition = partition_of(event.ordering_key, partitions)
        doc = json.dumps(event.to_dict(), separators=(",", ":"))
        lease = events_drain_key(partition)
        with available():
            created, claimed, *first = self._ingest(
                keys=[seen_key(event.dedupe_id), event_key(event.id), events_pending_key(partition),
                      lease, STATS_EVENTS, job_key(lease), *_indexes(event)],
                args=[event.id, doc, int(dedupe_window * 1000), int(ttl * 1000), DRAIN_QUEUED_MS, token,
                      repr(event.received_at), field(event.source, ACCEPTED, 202),
                      field(event.source, DUPLICATE, 200), job],
            )
        return IngestResult(bool(created), DrainClaim(partition, token, job) if claimed else None,
                            text(first[0]) if first else event.id)

    def get_event(self, event_id: str) -> EventRecord | None:
        """The stored event with its processing status, or None."""
        with available():
            return _record(self.r.hgetall(event_key(event_id)))

    def load_events(self, event_ids: list[str]) -> list[Event]:
        """The events still stored among `event_ids`, in order (expired ones are skipped)."""
        if not event_ids:
            return []
        with available():
            docs = self._docs(keys=[event_key(eid) for eid in event_ids])
        return [Event.from_dict(json.loads(d)) for d in docs if d]

    def mark_processed(self, items: list[tuple[str, dict[str, Any]]], now: float, status: str = "processed") -> None:
        """Record that events were processed (or failed), each with its own details; idempotent."""
        if not items:
            return
        args: list[Any] = []
        for _, details in items:
            mapping = {"status": status, f"{status}_at": now} | {k: json.dumps(v) for k, v in details.items()}
            args.append(2 * len(mapping))
            args.extend(x for kv in mapping.items() for x in kv)
        with available():
            self._hset_each_existing(keys=[event_key(eid) for eid, _ in items], args=args)

    def pending_batch(self, partition: int | None, size: int) -> list[str]:
        """The oldest `size` event ids waiting in `partition` (left in place until `finish_batch`)."""
        with available():
            return texts(self.r.lrange(events_pending_key(partition), 0, size - 1))

    def finish_batch(self, claim: DrainClaim, count: int, hand_over: bool = True) -> DrainRound:
        """Drop `count` processed ids: more wait (the lease kept: handing over, as a queued claim under a new
        token for the next job, `next`; else as this job's short lease), drained, or the lease lost (stop)."""
        follow = DrainClaim(claim.partition, secrets.token_hex(8), drain_job_id()) if hand_over else claim
        lease = events_drain_key(claim.partition)
        keys = [events_pending_key(claim.partition), lease]
        args: list[str | int] = [claim.token, count, DRAIN_LEASE_MS]
        if hand_over:
            keys = [*keys, job_key(lease)]
            args = [claim.token, count, DRAIN_QUEUED_MS, follow.job, follow.token]
        with available():
            more = int(self._drain_done(keys=keys, args=args))
        return DrainRound(more, follow)

    def claim_drains(self) -> list[DrainClaim]:
        """Claim the drain lease of every partition where events wait and nobody holds it, in one round trip:
        every partition up to MAX_PARTITIONS (whatever the count in use) and the old single list."""
        prefix = secrets.token_hex(8)
        jobs = f"hookline-drain-{prefix}-"
        keys = [key for p in ALL_PARTITIONS
                for key in (events_pending_key(p), events_drain_key(p), job_key(events_drain_key(p)))]
        with available():
            claimed = self._drain_claim(keys=keys, args=[prefix, DRAIN_QUEUED_MS, jobs])
        return [DrainClaim(ALL_PARTITIONS[int(n)], f"{prefix}:{int(n)}", f"{jobs}{int(n)}") for n in claimed]

    def queued_drains(self) -> list[DrainClaim]:
        """The drains claimed for a job that has not started on them yet, every partition's, in one round trip."""
        with available():
            found = self._queued.find(_drain_leases())
        return [DrainClaim(ALL_PARTITIONS[c.index], c.token, c.job) for c in found]

    def settle_drains(self, claims: list[DrainClaim], fates: list[JobFate]) -> list[DrainClaim]:
        """Settle each queued drain of `claims` (from `queued_drains`) by its job's fate, if it is still the same
        claim: kept while the job waits, made the short lease once it started, taken over when it is gone. The
        drains taken over, for new jobs to be started with."""
        index = {p: n for n, p in enumerate(ALL_PARTITIONS)}
        found = [QueuedClaim(index[c.partition], c.token, c.job) for c in claims]
        with available():
            taken = self._queued.settle(_drain_leases(), found, fates, drain_job_id)
        return [DrainClaim(ALL_PARTITIONS[c.index], c.token, c.job) for c in taken]

    def drain_keeper(self, claim: DrainClaim) -> LeaseKeeper:
        """The keeper of the drain lease `claim`: `hold()` it before draining (a queued claim then becomes the
        short lease), and work inside `with` it."""
        return LeaseKeeper(self.r, events_drain_key(claim.partition), claim.token, DRAIN_LEASE_MS, queued=True)

    def pending_count(self) -> int:
        """How many events wait for processing, in every partition."""
        with available():
            return int(self._pending_count(keys=[events_pending_key(p) for p in ALL_PARTITIONS]))

    def list_events(self, query: EventQuery) -> Page[EventRecord]:
        """A page of stored events matching `query`, newest received first. Source and type are read from their
        indexes; status and rule are checked on the records, at most `pages.SCAN_BUDGET` per page."""
        window = Window(query.after, query.since, query.until)
        if query.search:
            entries = self._search(query.search, window)
        else:
            entries = self._walker.walk(self._narrowest(query), window, _CHUNK)
        return scan(entries, partial(self._matching, query), query.limit, _CHUNK)

    def _narrowest(self, query: EventQuery) -> str:
        """The smallest index that holds every event the query can match."""
        keys = [k for k, given in ((events_type_index(query.type or ""), query.type),
                                   (events_source_index(query.source or ""), query.source)) if given]
        if len(keys) < 2:
            return keys[0] if keys else EVENTS_BY_TIME
        with available():
            sizes = [self.r.zcard(k) for k in keys]
        return keys[sizes.index(min(sizes))]

    def _search(self, term: str, window: Window) -> Iterator[Position]:
        """The event whose id is `term`, and those whose senders called them `term`, newest first."""
        with available():
            score = self.r.zscore(EVENTS_BY_TIME, term)
        start = window.start()
        direct = [Position(float(score), term)] if score is not None else []
        direct = [p for p in direct if window.holds(p) and (start is None or p < start)]
        by_external = (p for p in self._walker.walk(events_external_index(term), window, _CHUNK) if p.member != term)
        return heapq.merge(direct, by_external, reverse=True)

    def _matching(self, query: EventQuery, group: list[Position]) -> list[EventRecord | None]:
        """The records at `group` that match the query's filters (None for the others, and for expired ones).
        Filters are checked on small fields first; only matching records are read whole."""
        # Membership of the source's and the type's index stands for the record's own fields (a score, or None).
        memberships = [events_source_index(query.source)] if query.source else []
        memberships += [events_type_index(query.type)] if query.type else []
        pipe = self.r.pipeline(transaction=False)
        for p in group:
            pipe.hmget(event_key(p.member), "status", "rules")
            for key in memberships:
                pipe.zscore(key, p.member)
        with available():
            flat = pipe.execute()
        step = 1 + len(memberships)
        keep = [self._keeps(query, flat[i], flat[i + 1:i + step]) for i in range(0, len(flat), step)]
        wanted = [p.member for p, ok in zip(group, keep, strict=True) if ok]
        pipe = self.r.pipeline(transaction=False)
        for eid in wanted:
            pipe.hgetall(event_key(eid))
        with available():
            records = dict(zip(wanted, (_record(raw) for raw in pipe.execute()), strict=True))
        return [records.get(p.member) for p in group]

    @staticmethod
    def _keeps(query: EventQuery, fields: list[Any], memberships: list[Any]) -> bool:
        """True when an event with these status/rules fields (and index memberships) matches the query."""
        status, rules = fields
        if status is None or None in memberships:
            return False  # expired, or not of the source or type asked for
        if query.status and text(status) != query.status:
            return False
        return not query.rule or query.rule in (maybe_json(text(rules)) if rules else [])
