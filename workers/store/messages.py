"""Message records in Redis: creation, compare-and-set transitions with a timeline, and the key indexes.

Every state change goes through `store.transitions`' one Lua primitive, so the state, its index, the timeline,
the due set and the outbox never disagree, whoever is killed when. Messages go in and come out as
`core.messages.Message` values; nothing outside this module sees a message hash.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis

from workers.core.lifecycle import CANCELLABLE, TRANSITIONS, State
from workers.core.messages import Message
from workers.store.keys import (
    DUE,
    UNREPORTED,
    available,
    correlation_key,
    event_messages_key,
    key_order_key,
    maybe_json,
    maybe_text,
    message_key,
    message_log_key,
    provider_key,
    state_index_key,
    text,
    texts,
)
from workers.store.pages import Page, Position, Walker, Window, scan
from workers.store.transitions import LIBRARY, TRANSITION, Change, transition_args

__all__ = ["Change", "MessageQuery", "MessageRecords"]

_CHUNK = 200  # index entries read, and messages checked against the filters, per round trip


@dataclass(frozen=True)
class MessageQuery:
    """Which messages to list, newest first by when each entered its current state (`updated_at`); every
    filter is optional. `since`/`until` bound that time (Unix seconds); `ids` keeps only those messages (a
    search's answer, `Store.search_messages`)."""

    state: State | None = None
    channel: str | None = None
    rule: str | None = None
    event_id: str | None = None
    source: str | None = None
    ids: frozenset[str] | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 50
    after: Position | None = None

    def keeps(self, msg: Message | None) -> Message | None:
        """`msg` when it matches the filters no index answered, else None."""
        if msg is None or (self.channel and msg.channel != self.channel) or (self.rule and msg.rule != self.rule) \
                or (self.source and msg.source != self.source):
            return None
        return msg if self.state is None or msg.state == self.state else None

# KEYS: msg, log, event msgs. ARGV: id, doc, state, now, log entries (JSON list), correlation key or '',
# send_at or '', event id, channel, group retention ms, rule.
_CREATE = LIBRARY + """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local groups = {KEYS[3]}
if ARGV[6] ~= '' then table.insert(groups, ARGV[6]) end
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'state', ARGV[3], 'updated_at', ARGV[4], 'event_id', ARGV[8],
           'channel', ARGV[9], 'groups', cjson.encode(groups), 'rule', ARGV[11])
count_outcome(KEYS[1], ARGV[3])
for _, entry in ipairs(cjson.decode(ARGV[5])) do
  redis.call('RPUSH', KEYS[2], cjson.encode(entry))
end
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('ZADD', P_IDX .. ARGV[3], ARGV[4], ARGV[1])
if ARGV[6] ~= '' then redis.call('SADD', ARGV[6], ARGV[1]) end
if ARGV[3] == 'queued' then redis.call('RPUSH', P_OUTBOX .. ARGV[9], ARGV[1]) end
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[1], 'send_at', ARGV[7])
  redis.call('ZADD', DUE, ARGV[7], ARGV[1])
end
if FINAL[ARGV[3]] then
  redis.call('PEXPIRE', KEYS[1], ARGV[10])
  redis.call('PEXPIRE', KEYS[2], ARGV[10])
end
if REPORTED[ARGV[3]] then redis.call('ZADD', UNREPORTED, ARGV[4], ARGV[1] .. ' ' .. ARGV[3]) end
for _, set in ipairs(groups) do settle(set, ARGV[10]) end
return 1
"""


# KEYS: the key's order marker. ARGV: this event's order, retention ms. 1 unless a newer order was seen.
_NEWEST = """
local cur = redis.call('GET', KEYS[1])
if cur and tonumber(cur) > tonumber(ARGV[1]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


class MessageRecords:
    """Message records: creation, transitions (through `store.transitions`), timelines and the indexes."""

    def __init__(self, r: redis.Redis, message_ttl: float):
        self.r = r
        self.message_ttl = message_ttl
        self._create = r.register_script(_CREATE)
        self._transition = r.register_script(TRANSITION)
        self._newest = r.register_script(_NEWEST)
        self._walker = Walker(r)

    @property
    def _ttl_ms(self) -> int:
        """How long (ms) a message that reached a final state is kept, with its timeline."""
        return int(self.message_ttl * 1000)

    def trim_state_indexes(self, before: float) -> int:
        """Drop ids that reached a final state before `before` from the state indexes (their records expire)."""
        pipe = self.r.pipeline(transaction=False)
        for state in State:
            if not TRANSITIONS[state]:
                pipe.zremrangebyscore(state_index_key(state), "-inf", before)
        with available():
            return sum(int(n) for n in pipe.execute())

    def existing(self, message_ids: Iterable[str]) -> set[str]:
        """Which of `message_ids` are stored, in one round trip."""
        ids = list(message_ids)
        pipe = self.r.pipeline(transaction=False)
        for mid in ids:
            pipe.exists(message_key(mid))
        with available():
            found = pipe.execute() if ids else []
        return {mid for mid, there in zip(ids, found, strict=True) if there}

    def create_messages(self, messages: Iterable[Message], now: float) -> list[bool]:
        """Create each message unless its id exists (re-processing creates nothing); True where created.

        Each starts in its `state` with its `reasons` on the timeline; a scheduled one enters the due set and a
        queued one its channel's outbox, in the same step.
        """
        pipe = self.r.pipeline(transaction=False)
        for msg in messages:
            entries = [{"at": now, "from": None, "to": State.PLANNED, "reason": f"rule {msg.rule} matched"}]
            if msg.state != State.PLANNED:
                reason = "; ".join(msg.reasons) or msg.state
                entries.append({"at": now, "from": State.PLANNED, "to": msg.state, "reason": reason})
            scheduled = msg.state == State.SCHEDULED and msg.send_at is not None
            self._create(
                keys=[message_key(msg.id), message_log_key(msg.id), event_messages_key(msg.event_id)],
                args=[msg.id, json.dumps(msg.document(), separators=(",", ":")), msg.state, now, json.dumps(entries),
                      correlation_key(msg.key) if msg.key else "", repr(msg.send_at) if scheduled else "",
                      msg.event_id, msg.channel, self._ttl_ms, msg.rule],
                client=pipe,
            )
        with available():
            return [bool(x) for x in pipe.execute()]

    def transition(self, message_id: str, target: State, now: float, reason: str,
                   expect: Iterable[State] | None = None, fields: dict[str, Any] | None = None,
                   send_at: float | None = None) -> tuple[bool, str | None]:
        """Move a message to `target` if its current state allows it (and is in `expect`, when given).

        Returns (moved, state before). Entering `queued` appends it to its channel's outbox atomically.
        """
        change = Change(message_id, target, reason, fields or {}, send_at,
                        frozenset(expect) if expect is not None else None)
        with available():
            moved, previous = self._transition(args=transition_args(change, now, self._ttl_ms))
        return moved == 1, previous or None

    def apply_many(self, changes: Iterable[Change], now: float,
                   notes: Iterable[tuple[str, dict[str, Any]]] = ()) -> list[bool]:
        """Several transitions, in order, and timeline `notes` (message id, entry) in one round trip; True where
        the message moved."""
        pipe = self.r.pipeline(transaction=False)
        count = 0
        for change in changes:
            self._transition(args=transition_args(change, now, self._ttl_ms), client=pipe)
            count += 1
        for message_id, entry in notes:
            pipe.rpush(message_log_key(message_id), json.dumps(entry, separators=(",", ":")))
        with available():
            return [r[0] == 1 for r in pipe.execute()[:count]]

    def unreported(self, before: float, limit: int = 500) -> list[tuple[str, str]]:
        """(message id, state) of changes into reported states made before `before` whose callbacks were
        never created (the worker died between the change and `origin.notify`)."""
        with available():
            entries = self.r.zrangebyscore(UNREPORTED, "-inf", before, start=0, num=limit)
        return [(mid, state) for mid, _, state in (text(entry).partition(" ") for entry in entries)]

    def reported(self, changes: Iterable[tuple[str, str]]) -> None:
        """Forget (message id, state) pairs whose callbacks now exist, or that nobody is told about."""
        members = [f"{mid} {state}" for mid, state in changes]
        if members:
            with available():
                self.r.zrem(UNREPORTED, *members)

    def note(self, message_id: str, entry: dict[str, Any]) -> None:
        """Add a timeline entry that does not change the state (a receipt, a reply, a callback attempt)."""
        with available():
            self.r.rpush(message_log_key(message_id), json.dumps(entry, separators=(",", ":")))

    def get_messages(self, message_ids: list[str]) -> list[Message | None]:
        """Several messages (without timelines) in one round trip."""
        pipe = self.r.pipeline(transaction=False)
        for mid in message_ids:
            pipe.hgetall(message_key(mid))
        with available():
            raws = pipe.execute()
        return [_parse(raw) for raw in raws]

    def find_many(self, refs: list[tuple[Any, Any]]) -> list[Message | None]:
        """The message each (our id or None, ClickSend's message_id or None) names, without timelines: by our
        id first, else by ClickSend's; None when neither finds one, or when both are given and disagree (a
        forged custom_string cannot touch another message). One round trip, two when some are found only by
        ClickSend's id."""
        # Pushed JSON may carry any type here: only a string can be one of our ids.
        ours = [mid if isinstance(mid, str) and mid.startswith("msg_") else None for mid, _ in refs]
        theirs = [str(pid) if pid else None for _, pid in refs]
        pipe = self.r.pipeline(transaction=False)
        for mid in ours:
            if mid:
                pipe.hgetall(message_key(mid))
        for pid in theirs:
            if pid:
                pipe.get(provider_key(pid))
        with available():
            answers = iter(pipe.execute())
        found = [_parse(next(answers)) if mid else None for mid in ours]
        by_provider = [maybe_text(next(answers)) if pid else None for pid in theirs]
        later = [i for i, msg in enumerate(found) if msg is None and by_provider[i]]
        for i, msg in zip(later, self.get_messages([str(by_provider[i]) for i in later]), strict=True):
            found[i] = msg
        return [None if msg and pid and msg.provider_id and msg.provider_id != pid else msg
                for msg, pid in zip(found, theirs, strict=True)]

    def get_message(self, message_id: str, with_log: bool = True) -> Message | None:
        """The message: its document, current state and fields, and (optionally) its timeline."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(message_key(message_id))
        if with_log:
            pipe.lrange(message_log_key(message_id), 0, -1)
        with available():
            raw, *log = pipe.execute()
        timeline = tuple(json.loads(entry) for entry in log[0]) if log else ()
        return _parse(raw, timeline)

    def held(self, rule: str | None = None, event_id: str | None = None, limit: int = 500) -> list[Message]:
        """Held messages (without timelines), oldest first, optionally only one rule's or one event's."""
        msgs = [m for m in self.get_messages(self.messages_in_state(State.HELD, limit=limit)) if m]
        return [m for m in msgs if (rule is None or m.rule == rule) and (event_id is None or m.event_id == event_id)]

    def message_state(self, message_id: str) -> str | None:
        """Just the current state."""
        with available():
            return maybe_text(self.r.hget(message_key(message_id), "state"))

    def event_message_ids(self, event_id: str) -> list[str]:
        """Ids of the messages an event produced."""
        with available():
            return sorted(texts(self.r.smembers(event_messages_key(event_id))))

    def key_message_ids(self, key: str) -> list[str]:
        """Ids of the messages sharing correlation `key`."""
        with available():
            return sorted(texts(self.r.smembers(correlation_key(key))))

    def messages_in_state(self, state: State, limit: int = 100, before: float | str = "+inf") -> list[str]:
        """Ids of messages in `state`, oldest first, that entered it no later than `before`."""
        with available():
            return texts(self.r.zrangebyscore(state_index_key(state), "-inf", before, start=0, num=limit))

    def state_counts(self) -> dict[str, int]:
        """How many messages are in each state."""
        pipe = self.r.pipeline(transaction=False)
        for state in State:
            pipe.zcard(state_index_key(state))
        with available():
            return {state.value: int(n) for state, n in zip(State, pipe.execute(), strict=True)}

    def list_messages(self, query: MessageQuery) -> Page[Message]:
        """A page of messages (without timelines) matching `query`, newest change first. State and event are
        read from their indexes (every state's index merged when no state is given); channel, rule and source
        are checked on the messages, at most `pages.SCAN_BUDGET` per page."""
        window = Window(query.after, query.since, query.until)
        if query.event_id is not None or query.ids is not None:
            ids = set(self.event_message_ids(query.event_id)) if query.event_id is not None else set(query.ids or ())
            return self._few_page(ids & query.ids if query.ids is not None else ids, query, window)
        keys = [state_index_key(s) for s in ([query.state] if query.state else list(State))]
        entries = self._walker.merged(keys, window, _CHUNK)
        return scan(entries, lambda group: [query.keeps(m) for m in self.get_messages([p.member for p in group])],
                    query.limit, _CHUNK)

    def _few_page(self, ids: set[str], query: MessageQuery, window: Window) -> Page[Message]:
        """A page of a few known messages (one event's, or a search's), read whole: an event plans a bounded
        number."""
        found = [m for m in self.get_messages(sorted(ids)) if query.keeps(m)]
        by_position = {Position(m.updated_at or m.created_at, m.id): m for m in found if m}
        start = window.start()
        entries = iter(sorted((p for p in by_position if window.holds(p) and (start is None or p < start)),
                              reverse=True))
        return scan(entries, lambda group: [by_position[p] for p in group], query.limit, _CHUNK)

    def due_messages(self, now: float, limit: int = 500) -> list[str]:
        """Scheduled messages whose time has come."""
        with available():
            return texts(self.r.zrangebyscore(DUE, "-inf", now, start=0, num=limit))

    def newest_for_key(self, key: str, order: float) -> bool:
        """Record `order` as correlation `key`'s newest unless a newer one was seen; False then (the event
        is stale: it happened before one already processed). Equal orders are not stale (re-processing)."""
        with available():
            return bool(self._newest(keys=[key_order_key(key)], args=[repr(order), self._ttl_ms]))

    def cancel_by_key(self, key: str, now: float, reason: str, except_event: str | None = None) -> list[str]:
        """Cancel every not-yet-sending message with correlation `key` (except those of `except_event`)."""
        cancelled = []
        for message_id in self.key_message_ids(key):
            if except_event is not None:
                with available():
                    if self.r.hget(message_key(message_id), "event_id") == except_event:
                        continue
            moved, _ = self.transition(message_id, State.CANCELLED, now, reason, expect=CANCELLABLE)
            if moved:
                cancelled.append(message_id)
        return cancelled


def _parse(raw: dict[str, str], timeline: tuple[Any, ...] = ()) -> Message | None:
    """A message hash as one value: `doc` with the fields set since over it (None when there is no record)."""
    if not raw or "doc" not in raw:
        return None
    doc = json.loads(raw["doc"])
    for k, v in raw.items():
        if k not in _NOT_SET_SINCE:
            doc[k] = maybe_json(v)
    doc["timeline"] = timeline
    return Message.from_json(doc)


_NOT_SET_SINCE = frozenset((
    "doc",
    "groups",  # Redis key names, for the scripts only
    "rule",  # a copy of the document's, for the counting scripts (a rule named "1" stays a string)
))
"""The fields of a message hash that are not fields of the message set since its document."""
