"""The send side in Redis: outboxes, claiming a batch for sending, putting messages back, pauses and the
shared token bucket. Claims and requeues move messages through `store.transitions`' one primitive.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from typing import Any

import redis

from workers.core.lifecycle import State
from workers.store.keys import (
    BUCKET,
    available,
    maybe_text,
    message_key,
    outbox_flush_key,
    outbox_key,
    outbox_limit_key,
    outbox_pause_key,
    state_index_key,
    text,
    texts,
)
from workers.store.lease import FINISH_ROUND, LeaseKeeper
from workers.store.transitions import CLAIM, REQUEUE, Claimed

# A flush renews its lease every third of this while it works (`flush_keeper`), so a worker killed mid-flush
# holds up its channel's outbox for seconds, not minutes; a flush waiting out a pause holds it longer
# (`extend_flush`). Messages it left `sending` are settled by receipts or the sending lease (flow.sender).
FLUSH_LEASE_MS = 15_000

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

# KEYS: the pause, the flush lease. ARGV: a new token, lease ms. Lift the pause and give the flush lease to the
# new token in one step, whoever held it (the flush waiting out the pause): 1 when there was a pause.
_RESUME = """
if redis.call('DEL', KEYS[1]) == 0 then
  return 0
end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: the `sending` index, then each message's key. ARGV: now, then the ids (in KEYS' order). Each message still
# `sending` counts as claimed from `now` in the index (what the sending lease's recovery reads); how many.
_KEEP_SENDING = """
local kept = 0
for i = 2, #KEYS do
  if redis.call('HGET', KEYS[i], 'state') == 'sending' then
    kept = kept + redis.call('ZADD', KEYS[1], 'XX', 'CH', ARGV[1], ARGV[i])
  end
end
return kept
"""


class OutboxRecords:
    """Outboxes and their flush leases, pauses, narrowed batch sizes and strikes, and the token bucket."""

    def __init__(self, r: redis.Redis, message_ttl: float):
        self.r = r
        self.message_ttl = message_ttl
        self._claim = r.register_script(CLAIM)
        self._requeue = r.register_script(REQUEUE)
        self._token = r.register_script(_TOKEN)
        self._flush_done = r.register_script(FINISH_ROUND)
        self._resume = r.register_script(_RESUME)
        self._keep_sending = r.register_script(_KEEP_SENDING)

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

    def flush_keeper(self, channel: str, token: str) -> LeaseKeeper:
        """The keeper of `channel`'s flush lease `token`: `hold()` it before flushing, flush inside `with` it."""
        return LeaseKeeper(self.r, outbox_flush_key(channel), token, FLUSH_LEASE_MS)

    def finish_flush(self, channel: str, token: str) -> int:
        """1: more waits, keep flushing; 0: empty, lease released; -1: lease lost."""
        with available():
            return int(self._flush_done(keys=[outbox_key(channel), outbox_flush_key(channel)],
                                        args=[token, 0, FLUSH_LEASE_MS]))

    def claim_batch(self, channel: str, size: int, now: float) -> list[str]:
        """Move up to `size` queued messages from the outbox to `sending`, atomically; their ids."""
        return self.claim(channel, size, now).ids

    def claim(self, channel: str, size: int, now: float) -> Claimed:
        """`claim_batch`, telling also the version of each record before the claim and what the claim set on it
        (for `MessageRecords.claimed_messages`)."""
        stamp = repr(now)  # the text the script stores, so that it is known here as stored
        with available():
            flat = self._claim(keys=[outbox_key(channel)], args=[size, stamp, int(self.message_ttl * 1000)])
        ids = [text(mid) for mid in flat[::2]]
        return Claimed(ids, dict(zip(ids, texts(flat[1::2]), strict=True)), stamp)

    def requeue(self, ids: Iterable[str], now: float, reason: str, from_state: State = State.SENDING) -> int:
        """Put messages back at the front of their outbox in their order (429, outage, pause, reconcile)."""
        ids = list(ids)
        if not ids:
            return 0
        with available():
            return int(self._requeue(args=[now, json.dumps(reason), str(from_state), int(self.message_ttl * 1000),
                                          *ids]))

    def keep_sending(self, ids: list[str], now: float) -> int:
        """Renew the sending claim of those of `ids` still `sending`, as if claimed at `now`, for a flush still
        working on them (long contact-list work); how many were renewed."""
        if not ids:
            return 0
        with available():
            return int(self._keep_sending(keys=[state_index_key(State.SENDING), *map(message_key, ids)],
                                          args=[now, *ids]))

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

    def resume(self, channel: str) -> str | None:
        """Lift the pause on `channel` (a person's call) and take its flush lease with a new token: the token to
        flush with now, or None when there was no pause.

        The new token supersedes the flush waiting out the pause (its scheduled job then finds the lease not
        its own and does nothing), so one flush, not two, takes rate tokens from here on. Both happen in one
        step: a flush that runs before it still sees the pause and sends nothing.
        """
        token = secrets.token_hex(8)
        with available():
            lifted = self._resume(keys=[outbox_pause_key(channel), outbox_flush_key(channel)],
                                  args=[token, FLUSH_LEASE_MS])
        return token if lifted else None

    def flush_token(self, channel: str) -> str | None:
        """The token of the flush lease on `channel`, when one is held."""
        with available():
            return maybe_text(self.r.get(outbox_flush_key(channel)))

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
        key = f"{outbox_key(channel)}:strikes:{kind}"
        # One atomic round trip: a worker that dies between the two cannot leave a count that never expires.
        pipe = self.r.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, 3600)
        with available():
            count, _ = pipe.execute()
        return int(count)

    def clear_strikes(self, channel: str) -> None:
        """A call went through: backoff starts from the beginning next time."""
        with available():
            self.r.delete(f"{outbox_key(channel)}:strikes:429", f"{outbox_key(channel)}:strikes:error")
