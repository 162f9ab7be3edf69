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
from workers.store.lease import CLAIM, FINISH_ROUND, LeaseKeeper

# Like the event drain's: the lease lapses seconds after a holder dies, renewed while it works.
PUSHED_LEASE_MS = 15_000

# KEYS: the list, the lease. ARGV: the item, a new token, lease ms. Keep the item; 1 when this push claimed the
# drain (no job holds it) and must start one.
_PUSH = """
redis.call('RPUSH', KEYS[1], ARGV[1])
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then
  return 1
end
return 0
"""


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

    def push(self, item: Pushed) -> str | None:
        """Keep `item` to be applied; the token to start a drain with when nobody drains the list yet."""
        token = secrets.token_hex(8)
        doc = json.dumps({"kind": item.kind, "data": item.data}, separators=(",", ":"))
        with available():
            claimed = self._push(keys=[PUSHED, PUSHED_DRAIN], args=[doc, token, PUSHED_LEASE_MS])
        return token if claimed else None

    def batch(self, size: int) -> list[Pushed]:
        """The oldest `size` items (left in place until `finish`: a drain killed half-way leaves them to the
        next; applied twice, a receipt or reply changes no message or opt-out again, though its timeline note and its
        count may repeat)."""
        with available():
            docs = texts(self.r.lrange(PUSHED, 0, size - 1))
        return [Pushed(**json.loads(doc)) for doc in docs]

    def finish(self, token: str, count: int) -> int:
        """Drop `count` applied items. 1: more wait, keep draining; 0: drained; -1: lease lost, stop."""
        with available():
            return int(self._finish(keys=[PUSHED, PUSHED_DRAIN], args=[token, count, PUSHED_LEASE_MS]))

    def claim(self) -> str | None:
        """Claim the drain if items wait and nobody holds it (the sweep); the token to drain with."""
        token = secrets.token_hex(8)
        with available():
            claimed = self._claim(keys=[PUSHED, PUSHED_DRAIN], args=[token, PUSHED_LEASE_MS])
        return token if claimed else None

    def keeper(self, token: str) -> LeaseKeeper:
        """The keeper of the drain lease `token`: `hold()` it before applying, and work inside `with` it."""
        return LeaseKeeper(self.r, PUSHED_DRAIN, token, PUSHED_LEASE_MS)
