"""Message records in Redis: creation, compare-and-set transitions with a timeline, and the key indexes.

Every state change goes through `store.transitions`' one Lua primitive, so the state, its index, the timeline,
the due set and the outbox never disagree, whoever is killed when. Messages go in and come out as
`core.messages.Message` values; nothing outside this module sees a message hash.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
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
from workers.store.transitions import APPLY, LIBRARY, TRANSITION, Change, Claimed, apply_args, transition_args

__all__ = ["Change", "MessageQuery", "MessageRecords", "Written"]

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


@dataclass(frozen=True)
class Written:
    """A message record as `write_messages` created it: its id, its version then (as an outbox claim reports a
    record's version: `Claimed.versions`) and the fields a message is read from, as stored. While the record
    shows that version it holds exactly these, so reading it can be spared (`claimed_messages`).

    Whatever may happen to a queued message before this process claims it moves it, and so changes its version:
    a person's or a rule's cancel (then the claim drops it), another flush claiming it and putting it back, a
    retry queued again, an approval or a policy's check again on the way back to `queued`; so does a note on its
    timeline, which only costs a read. A record that expired and was created again has another `updated_at`."""

    id: str
    version: str
    record: Mapping[str, str]


_EVENT_MSGS = event_messages_key("\0").split("\0")
assert correlation_key("x") == correlation_key("") + "x", "the create script derives a key's set from the key"

# Create messages that do not exist yet (a re-run creates nothing), each in one step: its hash, its timeline,
# its event's and correlation key's sets, its state's index, its outbox or the due set, retention when it
# starts final, the unreported list and the outcome count. ARGV: now, retention ms, then per message: id, doc,
# state, correlation key or '', send_at or '', event id, channel, rule, how many timeline entries, the entries
# (JSON). Returns the version of each created (as `move` gives a record's), 0 for each that existed.
_CREATE = LIBRARY + f"""
local P_EVENT_MSGS, EVENT_MSGS, P_CORRELATION = '{_EVENT_MSGS[0]}', '{_EVENT_MSGS[1]}', '{correlation_key("")}'
local now, ttl = ARGV[1], ARGV[2]
local out = {{}}
local a = 3
while a <= #ARGV do
  local id, state, key, send_at, event, channel, rule = ARGV[a], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4],
                                                       ARGV[a + 5], ARGV[a + 6], ARGV[a + 7]
  local entries = tonumber(ARGV[a + 8])
  local mkey = P_MSG .. id
  if redis.call('EXISTS', mkey) == 1 then
    out[#out + 1] = 0
  else
    local groups = {{P_EVENT_MSGS .. event .. EVENT_MSGS}}
    if key ~= '' then groups[2] = P_CORRELATION .. key end
    local fields = {{'doc', ARGV[a + 1], 'state', state, 'updated_at', now, 'event_id', event, 'channel', channel,
                    'groups', cjson.encode(groups), 'rule', rule}}
    if send_at ~= '' then
      fields[#fields + 1] = 'send_at'
      fields[#fields + 1] = send_at
      B.due[id] = send_at
    end
    redis.call('HSET', mkey, unpack(fields))
    count(channel, rule, state)
    redis.call('RPUSH', mkey .. LOG, unpack(ARGV, a + 9, a + 8 + entries))
    place(id, false, state, now)
    if state == 'queued' then push(channel, id, false) end
    for _, set in ipairs(groups) do append(B.members, set, id) end
    if FINAL[state] then
      redis.call('PEXPIRE', mkey, ttl)
      redis.call('PEXPIRE', mkey .. LOG, ttl)
      for _, set in ipairs(groups) do B.settle[set] = ttl end
    else
      -- It can still change, so its sets are kept as they are: the other members need not be read.
      for _, set in ipairs(groups) do B.keep[set] = id end
    end
    report(id, state, now)
    out[#out + 1] = version(now, entries)
  end
  a = a + 9 + entries
end
commit()
return out
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
        self._apply = r.register_script(APPLY)
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
        """Which of `message_ids` are stored: one command when none is (a batch's first run, the usual case),
        else one round trip more to learn which."""
        ids = list(message_ids)
        if not ids:
            return set()
        with available():
            if not self.r.exists(*(message_key(mid) for mid in ids)):
                return set()
        pipe = self.r.pipeline(transaction=False)
        for mid in ids:
            pipe.exists(message_key(mid))
        with available():
            found = pipe.execute()
        return {mid for mid, there in zip(ids, found, strict=True) if there}

    def create_messages(self, messages: Iterable[Message], now: float) -> list[bool]:
        """Create each message unless its id exists (re-processing creates nothing); True where created.

        Each starts in its `state` with its `reasons` on the timeline; a scheduled one enters the due set and a
        queued one its channel's outbox, in the same step. The whole batch is one script call: one command per
        shared key (an index, an outbox, a set) for the batch, not per message.
        """
        return [written is not None for written in self.write_messages(messages, now)]

    def write_messages(self, messages: Iterable[Message], now: float) -> list[Written | None]:
        """`create_messages`, telling what each created record holds (None where the message existed)."""
        stamp = repr(now)  # the text the script stores, so that it is known here as stored
        args: list[Any] = [stamp, self._ttl_ms]
        records: list[tuple[str, dict[str, str]]] = []
        # A batch's messages mostly share their rule and decision, so their first timeline entries are the same
        # text: each is encoded once per batch.
        encoded: dict[tuple[str | None, str, str], str] = {}

        def entry(source: str | None, target: str, reason: str) -> str:
            key = (source, target, reason)
            if key not in encoded:
                encoded[key] = json.dumps({"at": now, "from": source, "to": target, "reason": reason},
                                          separators=(",", ":"))
            return encoded[key]

        for msg in messages:
            entries = [entry(None, State.PLANNED, f"rule {msg.rule} matched")]
            if msg.state != State.PLANNED:
                entries.append(entry(State.PLANNED, msg.state, "; ".join(msg.reasons) or msg.state))
            # What the script stores of the message (less the Redis key names, which no reader takes).
            record = {"doc": json.dumps(msg.document(), separators=(",", ":")), "state": str(msg.state),
                      "updated_at": stamp, "event_id": msg.event_id, "channel": str(msg.channel), "rule": msg.rule}
            if msg.state == State.SCHEDULED and msg.send_at is not None:
                record["send_at"] = repr(msg.send_at)
            records.append((msg.id, record))
            args += [msg.id, record["doc"], msg.state, msg.key or "", record.get("send_at", ""), msg.event_id,
                     msg.channel, msg.rule, len(entries), *entries]
        if not records:
            return []
        with available():
            versions = self._create(args=args)
        return [Written(mid, text(version), record) if version else None
                for (mid, record), version in zip(records, versions, strict=True)]

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
        """Several transitions, in order, and timeline `notes` (message id, entry) in one script call; True
        where the message moved. A note is added only to a timeline that still exists."""
        changes, notes = list(changes), list(notes)
        if not changes and not notes:
            return []
        args = apply_args(changes, now, self._ttl_ms, notes)
        with available():
            return [ok == 1 for ok in self._apply(args=args)]

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
            # RPUSHX: a record that expired keeps no timeline (a new list would never expire).
            self.r.rpushx(message_log_key(message_id), json.dumps(entry, separators=(",", ":")))

    def claimed_messages(self, claim: Claimed, written: Mapping[str, Written]) -> list[Message | None]:
        """The messages `claim` moved to `sending`, in its order, as reading them now gives: those of `written`
        whose record the claim found at the version creating it returned, from what was written and what the
        claim set; the others read, in one round trip."""
        claimed = claim.fields()
        known: dict[str, Message | None] = {}
        for mid in claim.ids:
            was = written.get(mid)
            if was is not None and was.version == claim.versions[mid]:
                known[mid] = _parse(dict(was.record) | claimed)
        rest = [mid for mid in claim.ids if mid not in known]
        if rest:
            known.update(zip(rest, self.get_messages(rest), strict=True))
        return [known[mid] for mid in claim.ids]

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
        """Cancel every not-yet-sending message with correlation `key` (except those of `except_event`), in one
        script call after reading the set (and, with `except_event`, whose event each is)."""
        ids = self.key_message_ids(key)
        if except_event is not None and ids:
            pipe = self.r.pipeline(transaction=False)
            for message_id in ids:
                pipe.hget(message_key(message_id), "event_id")
            with available():
                events = pipe.execute()
            ids = [mid for mid, event in zip(ids, events, strict=True) if event != except_event]
        changes = [Change(mid, State.CANCELLED, reason, expect=CANCELLABLE) for mid in ids]
        return [c.id for c, moved in zip(changes, self.apply_many(changes, now), strict=True) if moved]


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
