"""Hookline's records in Redis and the atomic steps on them; `keys.py` is the only place key names live.

Knows nothing of HTTP or of RQ job functions.
"""

from __future__ import annotations

import redis

from workers.store.callbacks import CallbackRecords
from workers.store.events import DRAIN_LEASE_MS, EventRecords, IngestResult
from workers.store.feedback import FeedbackRecords
from workers.store.keys import EVENTS_DRAIN, EVENTS_PENDING
from workers.store.messages import MessageRecords
from workers.store.outbox import OutboxRecords
from workers.store.reservations import PolicyRecords

__all__ = ["DRAIN_LEASE_MS", "EVENTS_DRAIN", "EVENTS_PENDING", "IngestResult", "Store"]


class Store(EventRecords, MessageRecords, OutboxRecords, FeedbackRecords, CallbackRecords, PolicyRecords):
    """Hookline's records in one Redis database."""

    def __init__(self, client: redis.Redis):
        self.r = client
        self._init_events()
        self._init_messages()
        self._init_outbox()
        self._init_policy()
        self._init_callbacks()

    @classmethod
    def from_url(cls, url: str) -> Store:
        """A store on its own connection pool (strings decoded)."""
        return cls(redis.Redis.from_url(url, decode_responses=True, health_check_interval=30,
                                        socket_timeout=5, socket_connect_timeout=5))

    def ping(self) -> bool:
        """True when Redis answers."""
        try:
            return bool(self.r.ping())
        except (redis.ConnectionError, redis.TimeoutError):
            return False
