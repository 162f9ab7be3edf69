"""The send side in Redis: outboxes, claiming a batch for sending, putting messages back, pauses and the
shared token bucket. Claims and requeues move messages through `store.transitions`' one primitive.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
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
from workers.store.lease import CLAIM as CLAIM_LEASE
from workers.store.lease import FINISH_ROUND, JobFate, LeaseKeeper, QueuedClaim, QueuedClaims, job_key
from workers.store.transitions import CLAIM, REQUEUE, Claimed

# A flush renews its lease every third of this while it works (`flush_keeper`), so a worker killed mid-flush
# holds up its channel's outbox for seconds, not minutes. Messages it left `sending` are settled by receipts or
# the sending lease (flow.sender).
FLUSH_LEASE_MS = 15_000
# A flush claimed for a job that waits in the send queue (a kick, a chained round) holds the lease this long
# instead, naming its job, as a drain does (`events.DRAIN_QUEUED_MS`, `lease.QueuedClaims`): under a backlog the
# short lease would lapse and be claimed again, job after job, each new job finding it another's. A job
# scheduled for later (waiting out a pause) holds it this long past its time.
FLUSH_QUEUED_MS = 300_000

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

# KEYS: the pause, the outbox, the flush lease, its job key. ARGV: a new token, queued lease ms, the new job's id,
# the short lease's ms. Lift the pause (0 when there was none) and, in the same step, give the flush lease to a
# new job (2) when no flush runs: the one waiting out the pause (a queued claim, or an older version's long lease)
# is superseded, and a free lease is claimed if messages wait. A running flush (its short lease) keeps it (1):
# it sees the pause lifted at its next batch, or as it hands over (lease.FINISH_ROUND answers 2).
_RESUME = """
if redis.call('DEL', KEYS[1]) == 0 then
  return 0
end
local holder = redis.call('GET', KEYS[3])
if holder then
  if redis.call('EXISTS', KEYS[4]) == 0 and redis.call('PTTL', KEYS[3]) <= tonumber(ARGV[4]) then
    return 1
  end
elseif redis.call('LLEN', KEYS[2]) == 0 then
  return 1
end
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[4], ARGV[3], 'PX', ARGV[2])
return 2
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


@dataclass(frozen=True)
class FlushClaim:
    """The flush lease of `channel`'s outbox, held with `token`: what a flush (a job, or a drain's own send) runs
    under. `job`: the id of the RQ job the claim was made for ("" for a flush in the claiming process, or once
    its job runs under it)."""

    channel: str
    token: str
    job: str = ""


@dataclass(frozen=True)
class FlushRound:
    """What `finish_flush` did: `more` 1 when messages wait (the lease kept as a queued claim for `next`, the job
    to start), 2 the same with the pause that job was to wait out lifted meanwhile (start it now), 0 when the
    outbox is empty (the lease given back), -1 when the lease was lost to another flush."""

    more: int
    next: FlushClaim


@dataclass(frozen=True)
class Resumed:
    """What `resume` did: `lifted` whether there was a pause; `flush`, the claim to start a flush job with now
    (None when a running flush goes on, or nothing waits)."""

    lifted: bool
    flush: FlushClaim | None


def flush_job_id() -> str:
    """A new flush job's id: each claim made for a job names it."""
    return f"hookline-flush-{secrets.token_hex(8)}"


class OutboxRecords:
    """Outboxes and their flush leases, pauses, narrowed batch sizes and strikes, and the token bucket."""

    def __init__(self, r: redis.Redis, message_ttl: float):
        self.r = r
        self.message_ttl = message_ttl
        self._claim = r.register_script(CLAIM)
        self._requeue = r.register_script(REQUEUE)
        self._token = r.register_script(_TOKEN)
        self._claim_lease = r.register_script(CLAIM_LEASE)
        self._flush_done = r.register_script(FINISH_ROUND)
        self._resume = r.register_script(_RESUME)
        self._keep_sending = r.register_script(_KEEP_SENDING)
        self._queued = QueuedClaims(r, FLUSH_QUEUED_MS, FLUSH_LEASE_MS)

    def outbox_length(self, channel: str) -> int:
        """Messages waiting in `channel`'s outbox (cancelled ones included until a flush drops them)."""
        with available():
            return int(self.r.llen(outbox_key(channel)))

    def claim_flush(self, channel: str, for_job: bool = True) -> FlushClaim | None:
        """Take the flush lease of `channel` when messages wait and nobody holds it: for a new job that will
        wait in the queue (a queued claim naming it), or, not `for_job`, for a flush in this process (the short
        lease). The claim, or None."""
        token, lease = secrets.token_hex(8), outbox_flush_key(channel)
        job = flush_job_id() if for_job else ""
        keys = [outbox_key(channel), lease]
        args: list[str | int] = [token, FLUSH_LEASE_MS]
        if for_job:
            keys, args = [*keys, job_key(lease)], [token, FLUSH_QUEUED_MS, job]
        with available():
            ok = self._claim_lease(keys=keys, args=args)
        return FlushClaim(channel, token, job) if ok else None

    def flush_keeper(self, claim: FlushClaim) -> LeaseKeeper:
        """The keeper of the flush lease `claim`: `hold()` it before flushing (a queued claim then becomes the
        short lease), and flush inside `with` it."""
        return LeaseKeeper(self.r, outbox_flush_key(claim.channel), claim.token, FLUSH_LEASE_MS, queued=True)

    def finish_flush(self, claim: FlushClaim, wait: float = 0.0, paused: bool = False) -> FlushRound:
        """End a flush: while messages wait, hand the lease over under a new token, as a queued claim for the
        next job (`next`), lasting `wait` seconds (the time that job is to start at) more than a queued claim;
        else give it back. `paused`: the wait is a pause's, and a pause lifted since answers 2 (start the job
        now). Only while `claim` still holds the lease (-1 otherwise)."""
        follow = FlushClaim(claim.channel, secrets.token_hex(8), flush_job_id())
        lease = outbox_flush_key(claim.channel)
        keys = [outbox_key(claim.channel), lease, job_key(lease)]
        if paused:
            keys.append(outbox_pause_key(claim.channel))
        args: list[str | int] = [claim.token, 0, FLUSH_QUEUED_MS + int(wait * 1000), follow.job, follow.token]
        with available():
            more = int(self._flush_done(keys=keys, args=args))
        return FlushRound(more, follow)

    def queued_flushes(self, channels: Iterable[str]) -> list[FlushClaim]:
        """The flushes of `channels` claimed for a job that has not started on them yet (one round trip)."""
        channels = list(channels)
        with available():
            found = self._queued.find([outbox_flush_key(c) for c in channels])
        return [FlushClaim(channels[c.index], c.token, c.job) for c in found]

    def settle_flushes(self, claims: list[FlushClaim], fates: list[JobFate]) -> list[FlushClaim]:
        """Settle each queued flush of `claims` (from `queued_flushes`) by its job's fate, if it is still the same
        claim, as `events.settle_drains` does; the flushes taken over, for new jobs to be started with."""
        channels = [c.channel for c in claims]
        found = [QueuedClaim(n, c.token, c.job) for n, c in enumerate(claims)]
        with available():
            taken = self._queued.settle([outbox_flush_key(c) for c in channels], found, fates, flush_job_id)
        return [FlushClaim(channels[c.index], c.token, c.job) for c in taken]

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

    def resume(self, channel: str) -> Resumed:
        """Lift the pause on `channel` (a person's call) and, unless a flush is running, give the flush lease
        to a new job that flushes now (`Resumed.flush`, to enqueue).

        The new claim supersedes the flush waiting out the pause (its scheduled job then finds the lease not
        its own and does nothing), so one flush, not two, takes rate tokens from here on; a running flush is
        left alone for the same reason. Both happen in one step: a flush that runs before it still sees the
        pause and sends nothing, and one that saw the pause and hands over after it starts its next job now.
        """
        token, job, lease = secrets.token_hex(8), flush_job_id(), outbox_flush_key(channel)
        with available():
            done = int(self._resume(keys=[outbox_pause_key(channel), outbox_key(channel), lease, job_key(lease)],
                                    args=[token, FLUSH_QUEUED_MS, job, FLUSH_LEASE_MS]))
        return Resumed(done > 0, FlushClaim(channel, token, job) if done == 2 else None)

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
