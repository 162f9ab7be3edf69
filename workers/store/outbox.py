"""The send side in Redis: outboxes, claiming a batch for sending, putting messages back, pauses,
the shared token bucket and operator alerts. Every step that moves messages is one Lua script.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from typing import Any

import redis

from workers.store.keys import (
    ALERTS,
    BUCKET,
    PREFIX,
    available,
    outbox_flush_key,
    outbox_key,
    outbox_limit_key,
    outbox_pause_key,
    state_index_key,
)
from workers.store.lease import FINISH_ROUND

FLUSH_LEASE_MS = 120_000

# Pop up to ARGV[1] ids; each still `queued` moves to `sending` (others were cancelled: dropped).
# KEYS: outbox. ARGV: n, now, msg key prefix, state index prefix.
_CLAIM = """
local out = {}
while #out < tonumber(ARGV[1]) do
  local id = redis.call('LPOP', KEYS[1])
  if not id then break end
  local key = ARGV[3] .. id
  if redis.call('HGET', key, 'state') == 'queued' then
    redis.call('HSET', key, 'state', 'sending', 'updated_at', ARGV[2], 'sending_since', ARGV[2])
    redis.call('RPUSH', key .. ':log', cjson.encode({at = tonumber(ARGV[2]), from = 'queued', to = 'sending',
                                                     reason = 'claimed by a flush'}))
    redis.call('ZREM', ARGV[4] .. 'queued', id)
    redis.call('ZADD', ARGV[4] .. 'sending', ARGV[2], id)
    table.insert(out, id)
  end
end
return out
"""

# Put messages back at the front of the outbox, in order, without spending their retry budget.
# KEYS: outbox. ARGV: now, reason, msg key prefix, state index prefix, from state, ids...
_REQUEUE = """
local moved = 0
for i = #ARGV, 6, -1 do
  local id = ARGV[i]
  local key = ARGV[3] .. id
  if redis.call('HGET', key, 'state') == ARGV[5] then
    redis.call('HSET', key, 'state', 'queued', 'updated_at', ARGV[1])
    redis.call('RPUSH', key .. ':log', cjson.encode({at = tonumber(ARGV[1]), from = ARGV[5], to = 'queued',
                                                     reason = ARGV[2]}))
    redis.call('ZREM', ARGV[4] .. ARGV[5], id)
    redis.call('ZADD', ARGV[4] .. 'queued', ARGV[1], id)
    redis.call('LPUSH', KEYS[1], id)
    moved = moved + 1
  end
end
return moved
"""

# Take one token from the shared bucket (rate ARGV[1]/s, burst ARGV[2]); return 0, or seconds to wait.
_TOKEN = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens, stamp = tonumber(state[1]) or burst, tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
return tostring(wait)
"""

class OutboxRecords:
    """Outboxes and sending state (mixed into Store)."""

    r: redis.Redis

    def _init_outbox(self) -> None:
        self._claim = self.r.register_script(_CLAIM)
        self._requeue = self.r.register_script(_REQUEUE)
        self._token = self.r.register_script(_TOKEN)
        self._flush_done = self.r.register_script(FINISH_ROUND)

    def outbox_length(self, channel: str) -> int:
        """Messages waiting in `channel`'s outbox (cancelled ones included until a flush drops them)."""
        with available():
            return int(self.r.llen(outbox_key(channel)))

    def claim_flush(self, channel: str) -> str | None:
        """Take the flush lease of `channel` when free; the token to flush with, or None."""
        token = secrets.token_hex(8)
        with available():
            ok = self.r.set(outbox_flush_key(channel), token, nx=True, px=FLUSH_LEASE_MS)
        return token if ok else None

    def extend_flush(self, channel: str, token: str, seconds: float) -> bool:
        """Keep the lease while a flush waits (pause, rate limit); False when it was lost."""
        with available():
            if self.r.get(outbox_flush_key(channel)) != token:
                return False
            self.r.pexpire(outbox_flush_key(channel), int((seconds + 60) * 1000))
            return True

    def finish_flush(self, channel: str, token: str) -> int:
        """1: more waits, keep flushing; 0: empty, lease released; -1: lease lost."""
        with available():
            return int(self._flush_done(keys=[outbox_key(channel), outbox_flush_key(channel)],
                                        args=[token, 0, FLUSH_LEASE_MS]))

    def claim_batch(self, channel: str, size: int, now: float) -> list[str]:
        """Move up to `size` queued messages from the outbox to `sending`, atomically."""
        with available():
            return list(self._claim(keys=[outbox_key(channel)],
                                    args=[size, now, f"{PREFIX}:msg:", state_index_key("")]))

    def requeue(self, channel: str, ids: Iterable[str], now: float, reason: str, from_state: str = "sending") -> int:
        """Put messages back at the front of the outbox in their order (429, outage, pause, reconcile)."""
        ids = list(ids)
        if not ids:
            return 0
        with available():
            return int(self._requeue(keys=[outbox_key(channel)],
                                     args=[now, reason, f"{PREFIX}:msg:", state_index_key(""), from_state, *ids]))

    def take_token(self, rate: float, burst: float, now: float) -> float:
        """One provider call's worth from the shared bucket: 0 when granted, else seconds to wait."""
        with available():
            return float(self._token(keys=[BUCKET], args=[rate, burst, now]))

    def pause(self, channel: str, until: float, reason: str) -> None:
        """Stop flushing `channel` until `until` (never shortens a longer pause)."""
        current = self.paused(channel)
        if current and float(current["until"]) >= until:
            return
        with available():
            self.r.set(outbox_pause_key(channel), json.dumps({"until": until, "reason": reason}))

    def paused(self, channel: str) -> dict[str, Any] | None:
        """The pause on `channel` (`until`, `reason`), or None."""
        with available():
            raw = self.r.get(outbox_pause_key(channel))
        return json.loads(raw) if raw else None

    def batch_limit(self, channel: str) -> int | None:
        """The narrowed batch size for `channel`, or None for the configured one."""
        with available():
            raw = self.r.get(outbox_limit_key(channel))
        return int(raw) if raw else None

    def limit_batch(self, channel: str, size: int, ttl: float) -> None:
        """Send at most `size` messages per call on `channel` for `ttl` seconds (or until cleared)."""
        with available():
            self.r.set(outbox_limit_key(channel), max(1, size), ex=max(1, int(ttl)))

    def clear_batch_limit(self, channel: str) -> None:
        """Back to the configured batch size."""
        with available():
            self.r.delete(outbox_limit_key(channel))

    def strike(self, channel: str, kind: str) -> int:
        """Count one more consecutive failure of `kind` (429, error) on `channel`, for backoff."""
        with available():
            key = f"{outbox_key(channel)}:strikes:{kind}"
            count = int(self.r.incr(key))
            self.r.expire(key, 3600)
            return count

    def clear_strikes(self, channel: str) -> None:
        """A call went through: backoff starts from the beginning next time."""
        with available():
            self.r.delete(f"{outbox_key(channel)}:strikes:429", f"{outbox_key(channel)}:strikes:error")

    def raise_alert(self, name: str, message: str, now: float) -> None:
        """Record an operator alert (shown by /readyz and the metrics) unless already raised."""
        with available():
            self.r.hsetnx(ALERTS, name, json.dumps({"since": now, "message": message}))

    def clear_alert(self, name: str) -> None:
        """Remove an alert."""
        with available():
            self.r.hdel(ALERTS, name)

    def alerts(self) -> dict[str, Any]:
        """Every raised alert."""
        with available():
            return {k: json.loads(v) for k, v in self.r.hgetall(ALERTS).items()}
