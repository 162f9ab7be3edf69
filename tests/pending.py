"""What waits in the pending lists of every partition (and the single list of the versions before them)."""

from __future__ import annotations

import redis

from workers.store.events import ALL_PARTITIONS
from workers.store.keys import events_drain_key, events_pending_key


def pending_ids(r: redis.Redis) -> list[str]:
    """Every event id waiting to be processed, partition after partition, each partition's oldest first."""
    return [i.decode() if isinstance(i, bytes) else i for p in ALL_PARTITIONS
            for i in r.lrange(events_pending_key(p), 0, -1)]


def drains_held(r: redis.Redis) -> list[int | None]:
    """The partitions whose drain lease someone holds."""
    return [p for p in ALL_PARTITIONS if r.exists(events_drain_key(p))]
