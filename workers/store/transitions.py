"""The one Lua primitive that moves a message from one state to another, and the scripts built on it.

Every state change (a single transition, a batch of them, an outbox claim, a requeue) runs `move` below, so
the state, its index, the timeline, the due set, the outbox, retention and the unreported list never
disagree. The allowed moves come from `core.lifecycle`, the key names from `store.keys`; nothing else here
knows either.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from workers.core.lifecycle import REPORTED, TRANSITIONS, State, sources_of
from workers.store.keys import (
    DUE,
    STATS_MESSAGES,
    UNREPORTED,
    message_key,
    message_log_key,
    outbox_key,
    state_index_key,
)

_LOG_SUFFIX = message_log_key("")[len(message_key("")):]
assert message_log_key("x") == message_key("x") + _LOG_SUFFIX, "the scripts derive the log key from the message key"


def _lua_set(states: Iterable[str]) -> str:
    return "{" + ", ".join(f"['{s}'] = true" for s in sorted(states)) + "}"


FINAL = frozenset(state for state in State if not TRANSITIONS[state])
# Entering one of these is counted by channel, rule and state (`store/counters.py` reads the hash).
COUNTED = FINAL | {State.SENT}

# Lua shared by every script: key prefixes, the lifecycle table, group-set retention and `move`.
LIBRARY = f"""
local P_MSG, LOG, P_IDX, P_OUTBOX = '{message_key("")}', '{_LOG_SUFFIX}', '{state_index_key("")}', '{outbox_key("")}'
local DUE, UNREPORTED = '{DUE}', '{UNREPORTED}'
local FINAL = {_lua_set(FINAL)}
local REPORTED = {_lua_set(REPORTED)}
local STATS_MESSAGES, COUNTED = '{STATS_MESSAGES}', {_lua_set(COUNTED)}
local SOURCES = {{{", ".join(f"['{t}'] = {_lua_set(sources_of(t))}" for t in State)}}}

-- A set grouping messages (an event's, a correlation key's) expires `ttl` ms after its last member became
-- final, and never while a member can still change (a reminder may be months away); members whose records
-- have expired are dropped on the way, so a long-lived key's set stays small.
local function settle(set, ttl)
  for _, id in ipairs(redis.call('SMEMBERS', set)) do
    local st = redis.call('HGET', P_MSG .. id, 'state')
    if not st then
      redis.call('SREM', set, id)
    elseif not FINAL[st] then
      redis.call('PERSIST', set)
      return
    end
  end
  redis.call('PEXPIRE', set, ttl)
end

local function csv_set(csv)
  if csv == '' then return nil end
  local out = {{}}
  for s in string.gmatch(csv, '[^,]+') do out[s] = true end
  return out
end

-- Count message hash `key` entering `target` (when counted) by channel, rule and state; records written before
-- `rule` was a field of the hash have it in their document only.
local function count_outcome(key, target)
  if not COUNTED[target] then return end
  local labels = redis.call('HMGET', key, 'channel', 'rule')
  if not labels[2] then
    local doc = cjson.decode(redis.call('HGET', key, 'doc'))
    labels = {{labels[1] or doc.channel, doc.rule}}
  end
  redis.call('HINCRBY', STATS_MESSAGES, labels[1] .. '|' .. labels[2] .. '|' .. target, 1)
end

-- Move message `id` to `target` when the lifecycle allows it from its current state (and that state is in
-- `expect`, a set or nil). `fields`: a table of strings to set; `send_at`: '' or a time (enters the due set);
-- `ttl`: retention ms for final states; `front`: a queued message goes to the head of its outbox.
-- Returns 1, previous state | 0, current state (not allowed) | -1, '' (no such message).
local function move(id, target, now, reason, expect, fields, send_at, ttl, front)
  local key = P_MSG .. id
  local cur = redis.call('HGET', key, 'state')
  if not cur then return -1, '' end
  if not SOURCES[target][cur] or (expect and not expect[cur]) then return 0, cur end
  redis.call('HSET', key, 'state', target, 'updated_at', now)
  for k, v in pairs(fields) do redis.call('HSET', key, k, v) end
  count_outcome(key, target)
  redis.call('RPUSH', key .. LOG, cjson.encode({{at = tonumber(now), from = cur, to = target, reason = reason}}))
  redis.call('ZREM', P_IDX .. cur, id)
  redis.call('ZADD', P_IDX .. target, now, id)
  if target == 'queued' then
    local channel = redis.call('HGET', key, 'channel') or cjson.decode(redis.call('HGET', key, 'doc')).channel
    if front then redis.call('LPUSH', P_OUTBOX .. channel, id) else redis.call('RPUSH', P_OUTBOX .. channel, id) end
  end
  if send_at ~= '' then
    redis.call('HSET', key, 'send_at', send_at)
    redis.call('ZADD', DUE, send_at, id)
  else
    redis.call('ZREM', DUE, id)
  end
  if FINAL[target] then
    redis.call('PEXPIRE', key, ttl)
    redis.call('PEXPIRE', key .. LOG, ttl)
    for _, set in ipairs(cjson.decode(redis.call('HGET', key, 'groups') or '[]')) do settle(set, ttl) end
  end
  if REPORTED[target] then redis.call('ZADD', UNREPORTED, now, id .. ' ' .. target) end
  return 1, cur
end
"""

# ARGV: id, target, now, reason, expect (comma list or ''), fields (JSON object of strings), send_at or '', ttl.
TRANSITION = LIBRARY + """
local ok, state = move(ARGV[1], ARGV[2], ARGV[3], ARGV[4], csv_set(ARGV[5]), cjson.decode(ARGV[6]), ARGV[7],
                       ARGV[8], false)
return {ok, state}
"""

# Pop up to ARGV[1] ids from the outbox KEYS[1]; each still `queued` moves to `sending` (others were
# cancelled since: dropped). ARGV: n, now, ttl.
CLAIM = LIBRARY + """
local out = {}
local expect = {queued = true}
while #out < tonumber(ARGV[1]) do
  local id = redis.call('LPOP', KEYS[1])
  if not id then break end
  if move(id, 'sending', ARGV[2], 'claimed by a flush', expect, {sending_since = ARGV[2]}, '', ARGV[3], false) == 1 then
    table.insert(out, id)
  end
end
return out
"""

# Put messages back at the front of their outbox, in order, without spending their retry budget.
# ARGV: now, reason, from state, ttl, ids...
REQUEUE = LIBRARY + """
local moved = 0
local expect = {[ARGV[3]] = true}
for i = #ARGV, 5, -1 do
  if move(ARGV[i], 'queued', ARGV[1], ARGV[2], expect, {}, '', ARGV[4], true) == 1 then moved = moved + 1 end
end
return moved
"""


@dataclass(frozen=True)
class Change:
    """One transition: the message, where it goes, why, fields set with it, and the states it may leave."""

    id: str
    target: State
    reason: str
    fields: dict[str, Any] = field(default_factory=dict)
    send_at: float | None = None
    expect: frozenset[State] | None = None


def transition_args(change: Change, now: float, ttl_ms: int) -> Sequence[Any]:
    """The TRANSITION script's arguments for `change` (fields are stored JSON-encoded)."""
    encoded = {k: json.dumps(v) for k, v in change.fields.items()}
    return [change.id, str(change.target), now, change.reason,
            (",".join(sorted(change.expect)) or "-") if change.expect is not None else "", json.dumps(encoded),
            repr(change.send_at) if change.send_at is not None else "", ttl_ms]
