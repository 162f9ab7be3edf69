"""The one Lua primitive that moves a message from one state to another, and the scripts built on it.

Every state change (a single transition, a batch of them, an outbox claim, a requeue) runs `move` below, so
the state, its index, the timeline, the due set, the outbox, retention and the unreported list never
disagree. A script writes each message's own hash and timeline as it moves it, and the keys its messages share
(indexes, due set, outboxes, unreported list, counts, group sets) once at its end (`commit`): a batch costs a
few commands per message, not one per key it touches. The allowed moves come from `core.lifecycle`, the key
names from `store.keys`; nothing else here knows either.
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

# Lua shared by every script: key prefixes, the lifecycle table, the batch of shared-key writes and `commit`,
# group-set retention and `move`.
LIBRARY = f"""
local P_MSG, LOG, P_IDX, P_OUTBOX = '{message_key("")}', '{_LOG_SUFFIX}', '{state_index_key("")}', '{outbox_key("")}'
local DUE, UNREPORTED = '{DUE}', '{UNREPORTED}'
local FINAL = {_lua_set(FINAL)}
local REPORTED = {_lua_set(REPORTED)}
local STATS_MESSAGES, COUNTED = '{STATS_MESSAGES}', {_lua_set(COUNTED)}
local SOURCES = {{{", ".join(f"['{t}'] = {_lua_set(sources_of(t))}" for t in State)}}}
local CHUNK = 500  -- members per command when a gathered write is sent (unpack's stack is bounded)

-- The writes a script's moves make to keys many messages share (state indexes, the due set, outboxes, the
-- unreported list, the outcome counts, the group sets) are gathered here and sent by `commit` at the end, one
-- command per key rather than one per message. Every message's own hash and timeline are written at once, so
-- a later move in the same script reads what an earlier one did. No script reads a shared key before its
-- commit, except the claim's LPOP of an outbox that no move to `sending` pushes to.
local B = {{
  state = {{}},     -- id -> the state it is in now, for every id created or moved here
  placed = {{}},    -- id -> {{index it left (false: none, a new record), index it is in, score}}
  due = {{}},       -- id -> its send time, or false: it leaves the due set
  unreported = {{}}, -- score, member, score, member...
  counts = {{}},    -- STATS_MESSAGES field -> increment
  pushes = {{}},    -- outbox -> {{front = ids in call order, back = ids in call order}}
  members = {{}},   -- group set -> ids added to it
  settle = {{}},    -- group set -> retention ms: a member became final
  keep = {{}},      -- group set -> id of a new member that can still change
}}

-- Add `v` (and `w`, when given) to the list t[k], made when missing.
local function append(t, k, v, w)
  local list = t[k]
  if not list then list = {{}}; t[k] = list end
  list[#list + 1] = v
  if w ~= nil then list[#list + 1] = w end
end

-- redis.call(cmd, key, items...) in pieces of at most CHUNK items (`step` items make one member).
local function chunked(cmd, key, items, step)
  local size = CHUNK * step
  for i = 1, #items, size do
    redis.call(cmd, key, unpack(items, i, math.min(i + size - 1, #items)))
  end
end

-- Message `id` now sits in state `target`'s index with `score`; it came from `from` (false: a new record).
local function place(id, from, target, score)
  local p = B.placed[id]
  if p then p[2], p[3] = target, score else B.placed[id] = {{from, target, score}} end
  B.state[id] = target
end

local function report(id, target, now)
  if REPORTED[target] then append(B, 'unreported', now, id .. ' ' .. target) end
end

local function count(channel, rule, target)
  if not COUNTED[target] then return end
  local field = channel .. '|' .. rule .. '|' .. target
  B.counts[field] = (B.counts[field] or 0) + 1
end

-- A set grouping messages (an event's, a correlation key's) expires `ttl` ms after its last member became
-- final, and never while a member can still change (a reminder may be months away); members whose records
-- have expired are dropped on the way, so a long-lived key's set stays small. A member this script created or
-- moved is known without reading its record.
local function settle(set, ttl)
  for _, id in ipairs(redis.call('SMEMBERS', set)) do
    local st = B.state[id] or redis.call('HGET', P_MSG .. id, 'state')
    if not st then
      redis.call('SREM', set, id)
    elseif not FINAL[st] then
      redis.call('PERSIST', set)
      return
    end
  end
  redis.call('PEXPIRE', set, ttl)
end

-- Send what the moves gathered: group-set members first (a set's retention is judged with them in it).
local function commit()
  for set, ids in pairs(B.members) do chunked('SADD', set, ids, 1) end
  local leave, enter = {{}}, {{}}
  for id, p in pairs(B.placed) do
    if p[1] and p[1] ~= p[2] then append(leave, P_IDX .. p[1], id) end
    append(enter, P_IDX .. p[2], p[3], id)
  end
  for key, ids in pairs(leave) do chunked('ZREM', key, ids, 1) end
  for key, pairs_ in pairs(enter) do chunked('ZADD', key, pairs_, 2) end
  local due, gone = {{}}, {{}}
  for id, at in pairs(B.due) do
    if at then due[#due + 1] = at; due[#due + 1] = id else gone[#gone + 1] = id end
  end
  chunked('ZREM', DUE, gone, 1)
  chunked('ZADD', DUE, due, 2)
  for key, ends in pairs(B.pushes) do
    if ends.front then chunked('LPUSH', key, ends.front, 1) end
    if ends.back then chunked('RPUSH', key, ends.back, 1) end
  end
  chunked('ZADD', UNREPORTED, B.unreported, 2)
  for field, n in pairs(B.counts) do redis.call('HINCRBY', STATS_MESSAGES, field, n) end
  for set, ttl in pairs(B.settle) do settle(set, ttl) end
  for set in pairs(B.keep) do
    if B.settle[set] == nil then redis.call('PERSIST', set) end
  end
end

local function push(channel, id, front)
  local ends = B.pushes[P_OUTBOX .. channel]
  if not ends then ends = {{}}; B.pushes[P_OUTBOX .. channel] = ends end
  append(ends, front and 'front' or 'back', id)
end

local function csv_set(csv)
  if csv == '' then return nil end
  local out = {{}}
  for s in string.gmatch(csv, '[^,]+') do out[s] = true end
  return out
end

-- What `move` reads of a record on its way into each state: the state, send time and last change always, the
-- labels when it is counted or queued, the group sets when it is final (fewer fields, a cheaper HMGET).
local READS = {{}}
for target in pairs(SOURCES) do
  local f = {{'state', 'send_at', 'updated_at'}}
  if COUNTED[target] or target == 'queued' then f[4], f[5] = 'channel', 'rule' end
  if FINAL[target] then f[#f + 1] = 'groups' end
  READS[target] = f
end

-- A record's version: when it last changed and how long its timeline is. Creating a record and each move set
-- `updated_at` and add to the timeline, and nothing else writes a record's hash (a note adds to the timeline
-- only), so a record showing the version one of them returned is still as that one left it.
local function version(updated_at, entries)
  return (updated_at or '') .. ' ' .. entries
end

-- A timeline entry, as cjson writes one (its numbers with 14 significant digits); `reason` is JSON already.
local function entry(now, from, to, reason)
  return '{{"at":' .. string.format('%.14g', tonumber(now)) .. ',"from":"' .. from .. '","to":"' .. to ..
         '","reason":' .. reason .. '}}'
end

-- Move message `id` to `target` when the lifecycle allows it from its current state (and that state is in
-- `expect`, a set or nil). `reason`: JSON text; `fields`: a table of strings to set; `send_at`: '' or a time
-- (enters the due set); `ttl`: retention ms for final states; `front`: a queued message goes to the head of
-- its outbox. Returns 1, previous state, the record's version before the move | 0, current state (not
-- allowed) | -1, '' (no such message).
local function move(id, target, now, reason, expect, fields, send_at, ttl, front)
  local key = P_MSG .. id
  local rec = redis.call('HMGET', key, unpack(READS[target]))
  local cur = rec[1]
  if not cur then return -1, '' end
  if not SOURCES[target][cur] or (expect and not expect[cur]) then return 0, cur end
  local set = {{'state', target, 'updated_at', now}}
  for k, v in pairs(fields) do set[#set + 1] = k; set[#set + 1] = v end
  if send_at ~= '' then set[#set + 1] = 'send_at'; set[#set + 1] = send_at end
  redis.call('HSET', key, unpack(set))
  if COUNTED[target] or target == 'queued' then
    -- Records written before `channel` and `rule` were fields of the hash have them in their document only.
    local channel, rule = fields.channel or rec[4], fields.rule or rec[5]
    if not channel or not rule then
      local doc = cjson.decode(redis.call('HGET', key, 'doc'))
      channel, rule = channel or doc.channel, rule or doc.rule
    end
    count(channel, rule, target)
    if target == 'queued' then push(channel, id, front) end
  end
  local entries = redis.call('RPUSH', key .. LOG, entry(now, cur, target, reason))
  place(id, cur, target, now)
  if send_at ~= '' then
    B.due[id] = send_at
  elseif rec[2] then
    -- Only a record with a send time was ever put in the due set (its time is written with its entry).
    B.due[id] = false
  end
  if FINAL[target] then
    redis.call('PEXPIRE', key, ttl)
    redis.call('PEXPIRE', key .. LOG, ttl)
    for _, s in ipairs(cjson.decode(rec[#rec] or '[]')) do B.settle[s] = ttl end
  end
  report(id, target, now)
  return 1, cur, version(rec[3], entries - 1)
end
"""

# ARGV: id, target, now, reason (JSON), expect (comma list or ''), fields (JSON object of strings), send_at or '',
# ttl.
TRANSITION = LIBRARY + """
local ok, state = move(ARGV[1], ARGV[2], ARGV[3], ARGV[4], csv_set(ARGV[5]), cjson.decode(ARGV[6]), ARGV[7],
                       ARGV[8], false)
commit()
return {ok, state}
"""

# Several transitions in order, then timeline notes, in one step. ARGV: now, ttl, how many changes, then per
# change: id, target, reason, expect, fields, send_at (as TRANSITION's); then per note: message id, entry (JSON).
# A note goes only onto a timeline that exists (a record that expired keeps none). Returns each change's 1, 0
# or -1 (as `move`).
APPLY = LIBRARY + """
local now, ttl, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
local out = {}
for i = 0, n - 1 do
  local a = 4 + 6 * i
  out[i + 1] = move(ARGV[a], ARGV[a + 1], now, ARGV[a + 2], csv_set(ARGV[a + 3]), cjson.decode(ARGV[a + 4]),
                    ARGV[a + 5], ttl, false)
end
local notes, order = {}, {}
for a = 4 + 6 * n, #ARGV, 2 do
  local log = P_MSG .. ARGV[a] .. LOG
  if not notes[log] then order[#order + 1] = log end
  append(notes, log, ARGV[a + 1])
end
commit()
for _, log in ipairs(order) do chunked('RPUSHX', log, notes[log], 1) end
return out
"""

# Pop up to ARGV[1] ids from the outbox KEYS[1]; each still `queued` moves to `sending` (others were
# cancelled since: dropped). ARGV: n, now, ttl. Returns each claimed id and its record's version before the
# claim, in turn.
CLAIM = LIBRARY + """
local out = {}
local expect, fields = {queued = true}, {sending_since = ARGV[2]}
local want = tonumber(ARGV[1])
while #out < 2 * want do
  -- Never more than are still wanted: each one popped is either claimed or dropped.
  local ids = redis.call('LPOP', KEYS[1], want - #out / 2)
  if not ids then break end
  for _, id in ipairs(ids) do
    local moved, _, was = move(id, 'sending', ARGV[2], '"claimed by a flush"', expect, fields, '', ARGV[3], false)
    if moved == 1 then
      out[#out + 1] = id
      out[#out + 1] = was
    end
  end
end
commit()
return out
"""

# Put messages back at the front of their outbox, in order, without spending their retry budget.
# ARGV: now, reason (JSON), from state, ttl, ids...
REQUEUE = LIBRARY + """
local moved = 0
local expect = {[ARGV[3]] = true}
for i = #ARGV, 5, -1 do
  if move(ARGV[i], 'queued', ARGV[1], ARGV[2], expect, {}, '', ARGV[4], true) == 1 then moved = moved + 1 end
end
commit()
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


@dataclass(frozen=True)
class Claimed:
    """What one outbox claim (CLAIM) did: the ids it moved to `sending`, in their outbox's order; the version each
    record had before (what creating it, or a claim, reports of a record: see `version` in the scripts); and the
    time it stored on each, as text (the claim sets `state`, `updated_at` and `sending_since`)."""

    ids: list[str]
    versions: dict[str, str]
    stamp: str

    def fields(self) -> dict[str, str]:
        """The fields the claim set on each record, as stored."""
        return {"state": State.SENDING.value, "updated_at": self.stamp, "sending_since": self.stamp}


def _change_args(change: Change) -> list[Any]:
    """What a script is told of `change`: id, target, reason (JSON, as the timeline keeps it), expect, fields
    (stored JSON-encoded), send_at."""
    encoded = {k: json.dumps(v) for k, v in change.fields.items()}
    return [change.id, str(change.target), json.dumps(change.reason),
            (",".join(sorted(change.expect)) or "-") if change.expect is not None else "", json.dumps(encoded),
            repr(change.send_at) if change.send_at is not None else ""]


def transition_args(change: Change, now: float, ttl_ms: int) -> Sequence[Any]:
    """The TRANSITION script's arguments for `change`."""
    mid, target, reason, expect, fields, send_at = _change_args(change)
    return [mid, target, now, reason, expect, fields, send_at, ttl_ms]


def apply_args(changes: Sequence[Change], now: float, ttl_ms: int,
               notes: Iterable[tuple[str, dict[str, Any]]] = ()) -> list[Any]:
    """The APPLY script's arguments: `changes` in order, then the timeline `notes` (message id, entry)."""
    args: list[Any] = [now, ttl_ms, len(changes)]
    for change in changes:
        args += _change_args(change)
    for message_id, entry in notes:
        args += [message_id, json.dumps(entry, separators=(",", ":"))]
    return args
