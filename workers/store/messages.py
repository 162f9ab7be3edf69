"""Message records in Redis: creation, compare-and-set transitions with a timeline, and the key indexes.

Every state change goes through one Lua script, so the state, its index, the timeline, the due set and the
outbox never disagree, whoever is killed when.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

from workers.core.lifecycle import CANCELLABLE, REPORTED, TRANSITIONS, State, sources_of
from workers.store.keys import (
    DUE,
    UNREPORTED,
    available,
    correlation_key,
    event_messages_key,
    key_order_key,
    maybe_json,
    message_key,
    message_log_key,
    outbox_key,
    state_index_key,
)

_STATE_IDX = state_index_key("")

# Lua shared by both scripts: a set grouping messages (an event's, a correlation key's) expires `ttl` ms after
# its last member became final, and never while a member can still change (a reminder may be months away);
# members whose records have expired are dropped on the way, so a long-lived key's set stays small.
_FINAL = ", ".join(f"['{state}'] = true" for state in State if not TRANSITIONS[state])
_SETTLE = f"""
local FINAL = {{{_FINAL}}}
local function settle(set, ttl)
  for _, id in ipairs(redis.call('SMEMBERS', set)) do
    local st = redis.call('HGET', '{message_key("")}' .. id, 'state')
    if not st then
      redis.call('SREM', set, id)  -- its record expired: keep the set to the messages that exist
    elseif not FINAL[st] then
      redis.call('PERSIST', set)
      return
    end
  end
  redis.call('PEXPIRE', set, ttl)
end
"""

# KEYS: msg, log, event msgs. ARGV: id, doc, state, now, log entries (JSON list), state index prefix,
# correlation key or '', outbox key or '', send_at or '', due key, event id, retention ms (final states) or '',
# unreported key or '' (created straight into a reported state), group retention ms.
_CREATE = _SETTLE + """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local groups = {KEYS[3]}
if ARGV[7] ~= '' then table.insert(groups, ARGV[7]) end
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'state', ARGV[3], 'updated_at', ARGV[4], 'event_id', ARGV[11],
           'groups', cjson.encode(groups))
for _, entry in ipairs(cjson.decode(ARGV[5])) do
  redis.call('RPUSH', KEYS[2], cjson.encode(entry))
end
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('ZADD', ARGV[6] .. ARGV[3], ARGV[4], ARGV[1])
if ARGV[7] ~= '' then redis.call('SADD', ARGV[7], ARGV[1]) end
if ARGV[8] ~= '' then redis.call('RPUSH', ARGV[8], ARGV[1]) end
if ARGV[9] ~= '' then
  redis.call('HSET', KEYS[1], 'send_at', ARGV[9])
  redis.call('ZADD', ARGV[10], ARGV[9], ARGV[1])
end
if ARGV[12] ~= '' then
  redis.call('PEXPIRE', KEYS[1], ARGV[12])
  redis.call('PEXPIRE', KEYS[2], ARGV[12])
end
if ARGV[13] ~= '' then redis.call('ZADD', ARGV[13], ARGV[4], ARGV[1] .. ' ' .. ARGV[3]) end
for _, set in ipairs(groups) do settle(set, ARGV[14]) end
return 1
"""

# KEYS: msg, log. ARGV: id, target, now, reason, allowed sources (comma list), fields (JSON object of
# strings), outbox key or '', state index prefix, send_at or '', due key, retention ms (final states) or '',
# unreported key or '' (target is a reported state).
# Returns {1, previous} on success, {0, current} when the state did not allow it, {-1, ''} when missing.
_TRANSITION = _SETTLE + """
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then
  return {-1, ''}
end
local ok = false
for s in string.gmatch(ARGV[5], '[^,]+') do
  if s == cur then ok = true end
end
if not ok then
  return {0, cur}
end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'updated_at', ARGV[3])
for k, v in pairs(cjson.decode(ARGV[6])) do
  redis.call('HSET', KEYS[1], k, v)
end
redis.call('RPUSH', KEYS[2], cjson.encode({at = tonumber(ARGV[3]), from = cur, to = ARGV[2], reason = ARGV[4]}))
redis.call('ZREM', ARGV[8] .. cur, ARGV[1])
redis.call('ZADD', ARGV[8] .. ARGV[2], ARGV[3], ARGV[1])
if ARGV[7] ~= '' then redis.call('RPUSH', ARGV[7], ARGV[1]) end
if ARGV[9] ~= '' then
  redis.call('HSET', KEYS[1], 'send_at', ARGV[9])
  redis.call('ZADD', ARGV[10], ARGV[9], ARGV[1])
else
  redis.call('ZREM', ARGV[10], ARGV[1])
end
if ARGV[11] ~= '' then
  redis.call('PEXPIRE', KEYS[1], ARGV[11])
  redis.call('PEXPIRE', KEYS[2], ARGV[11])
  for _, set in ipairs(cjson.decode(redis.call('HGET', KEYS[1], 'groups') or '[]')) do settle(set, ARGV[11]) end
end
if ARGV[12] ~= '' then redis.call('ZADD', ARGV[12], ARGV[3], ARGV[1] .. ' ' .. ARGV[2]) end
return {1, cur}
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


@dataclass(frozen=True)
class Change:
    """One transition for `apply_many`."""

    id: str
    target: State
    reason: str
    fields: dict[str, Any] = field(default_factory=dict)
    send_at: float | None = None
    expect: frozenset[State] | None = None


class MessageRecords:
    """Message records (mixed into Store)."""

    r: redis.Redis

    message_ttl: float = 90 * 86400

    def _init_messages(self) -> None:
        self._create = self.r.register_script(_CREATE)
        self._transition = self.r.register_script(_TRANSITION)
        self._newest = self.r.register_script(_NEWEST)

    def _retention(self, state: str) -> str:
        """How long (ms) a message that reached `state` is kept: '' while it can still change."""
        return str(int(self.message_ttl * 1000)) if not TRANSITIONS[State(state)] else ""

    @staticmethod
    def _unreported(state: str) -> str:
        """The key a change into `state` is listed under until its callbacks exist: '' if nobody is told."""
        return UNREPORTED if state in REPORTED else ""

    def trim_state_indexes(self, before: float) -> int:
        """Drop ids that reached a final state before `before` from the state indexes (their records expire)."""
        pipe = self.r.pipeline(transaction=False)
        for state in State:
            if not TRANSITIONS[state]:
                pipe.zremrangebyscore(state_index_key(state), "-inf", before)
        with available():
            return sum(int(n) for n in pipe.execute())

    def create_messages(self, messages: Iterable[dict[str, Any]], now: float) -> list[bool]:
        """Create each message unless its id exists (re-processing creates nothing); True where created.

        Each dict is a planned message's document with `state` (where it starts), `reasons`, and optionally
        `send_at` (scheduled) — queued messages are appended to their channel's outbox in the same step.
        """
        pipe = self.r.pipeline(transaction=False)
        for msg in messages:
            entries = [{"at": now, "from": None, "to": State.PLANNED, "reason": f"rule {msg['rule']} matched"}]
            if msg["state"] != State.PLANNED:
                reason = "; ".join(msg["reasons"]) or msg["state"]
                entries.append({"at": now, "from": State.PLANNED, "to": msg["state"], "reason": reason})
            scheduled = msg["state"] == State.SCHEDULED
            self._create(
                keys=[message_key(msg["id"]), message_log_key(msg["id"]), event_messages_key(msg["event_id"])],
                args=[msg["id"], json.dumps(msg, separators=(",", ":")), msg["state"], now, json.dumps(entries),
                      _STATE_IDX, correlation_key(msg["key"]) if msg.get("key") else "",
                      outbox_key(msg["channel"]) if msg["state"] == State.QUEUED else "",
                      repr(msg["send_at"]) if scheduled else "", DUE, msg["event_id"], self._retention(msg["state"]),
                      self._unreported(msg["state"]), int(self.message_ttl * 1000)],
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
        allowed = sources_of(target)
        if expect is not None:
            allowed = allowed & frozenset(expect)
        outbox = ""
        if target == State.QUEUED:
            with available():
                doc = self.r.hget(message_key(message_id), "doc")
            if doc is None:
                return False, None
            outbox = outbox_key(json.loads(doc)["channel"])
        encoded = {k: json.dumps(v) for k, v in (fields or {}).items()}
        with available():
            moved, previous = self._transition(
                keys=[message_key(message_id), message_log_key(message_id)],
                args=[message_id, target, now, reason, ",".join(allowed) or "-", json.dumps(encoded), outbox,
                      _STATE_IDX, repr(send_at) if send_at is not None else "", DUE, self._retention(target),
                      self._unreported(target)],
            )
        return moved == 1, previous or None

    def apply_many(self, changes: Iterable[Change], now: float) -> list[bool]:
        """Several transitions in one round trip (none of them into `queued`: use `requeue` for that)."""
        pipe = self.r.pipeline(transaction=False)
        for ch in changes:
            assert ch.target != State.QUEUED, "queued needs its outbox: use requeue"
            allowed = sources_of(ch.target) & frozenset(ch.expect) if ch.expect else sources_of(ch.target)
            encoded = {k: json.dumps(v) for k, v in ch.fields.items()}
            self._transition(
                keys=[message_key(ch.id), message_log_key(ch.id)],
                args=[ch.id, ch.target, now, ch.reason, ",".join(allowed) or "-", json.dumps(encoded), "",
                      _STATE_IDX, repr(ch.send_at) if ch.send_at is not None else "", DUE, self._retention(ch.target),
                      self._unreported(ch.target)],
                client=pipe,
            )
        with available():
            return [r[0] == 1 for r in pipe.execute()]

    def unreported(self, before: float, limit: int = 500) -> list[tuple[str, str]]:
        """(message id, state) of changes into reported states made before `before` whose callbacks were
        never created (the worker died between the change and `origin.notify`)."""
        with available():
            entries = self.r.zrangebyscore(UNREPORTED, "-inf", before, start=0, num=limit)
        return [tuple(entry.split(" ", 1)) for entry in entries]  # type: ignore[misc]

    def reported(self, changes: Iterable[tuple[str, str]]) -> None:
        """Forget (message id, state) pairs whose callbacks now exist, or that nobody is told about."""
        members = [f"{mid} {state}" for mid, state in changes]
        if members:
            with available():
                self.r.zrem(UNREPORTED, *members)

    def get_messages(self, message_ids: list[str]) -> list[dict[str, Any] | None]:
        """Several messages (without timelines) in one round trip."""
        pipe = self.r.pipeline(transaction=False)
        for mid in message_ids:
            pipe.hgetall(message_key(mid))
        with available():
            raws = pipe.execute()
        return [_parse(raw) for raw in raws]

    def get_message(self, message_id: str, with_log: bool = True) -> dict[str, Any] | None:
        """The message: its document, current state and fields, and (optionally) its timeline."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(message_key(message_id))
        pipe.lrange(message_log_key(message_id), 0, -1)
        with available():
            raw, log = pipe.execute()
        doc = _parse(raw)
        if doc is not None and with_log:
            doc["timeline"] = [json.loads(entry) for entry in log]
        return doc

    def message_state(self, message_id: str) -> str | None:
        """Just the current state."""
        with available():
            return self.r.hget(message_key(message_id), "state")

    def event_message_ids(self, event_id: str) -> list[str]:
        """Ids of the messages an event produced."""
        with available():
            return sorted(self.r.smembers(event_messages_key(event_id)))

    def key_message_ids(self, key: str) -> list[str]:
        """Ids of the messages sharing correlation `key`."""
        with available():
            return sorted(self.r.smembers(correlation_key(key)))

    def messages_in_state(self, state: State, limit: int = 100, before: float | str = "+inf") -> list[str]:
        """Ids of messages in `state`, oldest first, that entered it no later than `before`."""
        with available():
            return self.r.zrangebyscore(state_index_key(state), "-inf", before, start=0, num=limit)

    def state_counts(self) -> dict[str, int]:
        """How many messages are in each state."""
        pipe = self.r.pipeline(transaction=False)
        for state in State:
            pipe.zcard(state_index_key(state))
        with available():
            return {state.value: int(n) for state, n in zip(State, pipe.execute(), strict=True)}

    def due_messages(self, now: float, limit: int = 500) -> list[str]:
        """Scheduled messages whose time has come."""
        with available():
            return self.r.zrangebyscore(DUE, "-inf", now, start=0, num=limit)

    def newest_for_key(self, key: str, order: float) -> bool:
        """Record `order` as correlation `key`'s newest unless a newer one was seen; False then (the event
        is stale: it happened before one already processed). Equal orders are not stale (re-processing)."""
        with available():
            return bool(self._newest(keys=[key_order_key(key)], args=[repr(order), int(self.message_ttl * 1000)]))

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


def _parse(raw: dict[str, str]) -> dict[str, Any] | None:
    """A message hash as one document: `doc` with the mutable fields over it (None when there is no record)."""
    if not raw or "doc" not in raw:
        return None
    doc = json.loads(raw.pop("doc"))
    raw.pop("groups", None)  # Redis key names, for the scripts only
    doc.update({k: maybe_json(v) for k, v in raw.items()})
    return doc
