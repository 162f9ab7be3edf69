"""What ClickSend pushed (delivery receipts and inbound replies), kept in a list until a job applies it a page
at a time, and the lease that lets one such job at a time work through the list.

Knows nothing of what a receipt means (`flow.feedback` applies them) nor of the jobs that drain the list.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

import redis

from workers.store.keys import PUSHED, PUSHED_DRAIN, available, texts
from workers.store.lease import CLAIM, FINISH_ROUND, JobFate, LeaseKeeper, QueuedClaim, QueuedClaims, job_key

# Like the event drain's: the lease lapses seconds after a holder dies, renewed while it works; claimed for a job
# that waits in the queue, it is a longer queued claim naming that job (`events.DRAIN_QUEUED_MS`).
PUSHED_LEASE_MS = 15_000
PUSHED_QUEUED_MS = 300_000

# KEYS: the list, the lease, its job key. ARGV: the item, a new token, queued lease ms, the job's id. Keep the
# item; 1 when this push claimed the drain (no job holds it) and must start that job.
_PUSH = """
redis.call('RPUSH', KEYS[1], ARGV[1])
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then
  redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[3])
  return 1
end
return 0
"""


def pushed_job_id(token: str) -> str:
    """The id of the job a claim with `token` (from `push` or `claim`) is for."""
    return f"hookline-pushed-{token}"


@dataclass(frozen=True)
class PushedRound:
    """What `finish` did: `more` 1 when more items wait (the lease kept for the job `next_job`, to chain with
    `next_token`), 0 when the list is drained, -1 when the lease was lost to another job."""

    more: int
    next_job: str
    next_token: str


@dataclass(frozen=True)
class Pushed:
    """One pushed item: `kind` receipt or inbound, and the fields ClickSend sent."""

    kind: str
    data: dict[str, Any]


class PushedRecords:
    """The list of pushed items and its drain lease."""

    def __init__(self, r: redis.Redis):
        self.r = r
        self._push = r.register_script(_PUSH)
        self._claim = r.register_script(CLAIM)
        self._finish = r.register_script(FINISH_ROUND)
        self._queued = QueuedClaims(r, PUSHED_QUEUED_MS, PUSHED_LEASE_MS)

    def push(self, item: Pushed) -> str | None:
        """Keep `item` to be applied; the token to start a drain with when nobody drains the list yet."""
        token = secrets.token_hex(8)
        doc = json.dumps({"kind": item.kind, "data": item.data}, separators=(",", ":"))
        with available():
            claimed = self._push(keys=[PUSHED, PUSHED_DRAIN, job_key(PUSHED_DRAIN)],
                                 args=[doc, token, PUSHED_QUEUED_MS, pushed_job_id(token)])
        return token if claimed else None

    def batch(self, size: int) -> list[Pushed]:
        """The oldest `size` items (left in place until `finish`: a drain killed half-way leaves them to the
        next; applied twice, a receipt or reply changes no message or opt-out again, though its timeline note and its
        count may repeat)."""
        with available():
            docs = texts(self.r.lrange(PUSHED, 0, size - 1))
        return [Pushed(**json.loads(doc)) for doc in docs]

    def finish(self, token: str, count: int, hand_over: bool = True) -> PushedRound:
        """Drop `count` applied items: more wait (the lease kept, as a queued claim for the next job when this
        one `hand_over`s, else as this job's short lease), drained, or the lease lost (stop)."""
        follow, successor = (pushed_job_id(secrets.token_hex(8)), secrets.token_hex(8)) if hand_over else ("", token)
        keys = [PUSHED, PUSHED_DRAIN]
        args: list[str | int] = [token, count, PUSHED_LEASE_MS]
        if hand_over:  # under a new token, as a drain's hand-over (lease.FINISH_ROUND)
            keys, args = [*keys, job_key(PUSHED_DRAIN)], [token, count, PUSHED_QUEUED_MS, follow, successor]
        with available():
            more = int(self._finish(keys=keys, args=args))
        return PushedRound(more, follow, successor)

    def claim(self) -> str | None:
        """Claim the drain if items wait and nobody holds it (the sweep); the token to drain with."""
        token = secrets.token_hex(8)
        with available():
            claimed = self._claim(keys=[PUSHED, PUSHED_DRAIN, job_key(PUSHED_DRAIN)],
                                  args=[token, PUSHED_QUEUED_MS, pushed_job_id(token)])
        return token if claimed else None

    def queued(self) -> tuple[str, str] | None:
        """The drain claimed for a job that has not started on it yet: its token and job id, or None."""
        with available():
            found = self._queued.find([PUSHED_DRAIN])
        return (found[0].token, found[0].job) if found else None

    def settle(self, token: str, job: str, fate: JobFate) -> tuple[str, str] | None:
        """Settle the queued claim (`token`, `job`) by its job's fate, if it is still the same claim (see
        `events.settle_drains`); the new token and job id when it was taken over, for a new job."""
        with available():
            taken = self._queued.settle([PUSHED_DRAIN], [QueuedClaim(0, token, job)], [fate],
                                        lambda: pushed_job_id(secrets.token_hex(8)))
        return (taken[0].token, taken[0].job) if taken else None

    def keeper(self, token: str) -> LeaseKeeper:
        """The keeper of the drain lease `token`: `hold()` it before applying (a queued claim then becomes the
        short lease), and work inside `with` it."""
        return LeaseKeeper(self.r, PUSHED_DRAIN, token, PUSHED_LEASE_MS, queued=True)
