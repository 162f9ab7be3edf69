"""Hookline's records in Redis, one repository per aggregate, and the atomic steps on them; `keys.py` is the
only place key names live and `transitions.py` the only code that changes a message's state.

Knows nothing of HTTP, of RQ job functions or of the flow steps that use it.
"""

from __future__ import annotations

import redis

from workers.store.account import AccountRecords
from workers.store.callbacks import CallbackRecords
from workers.store.counters import CounterRecords
from workers.store.events import DRAIN_LEASE_MS, EventQuery, EventRecords, IngestResult
from workers.store.feedback import FeedbackRecords
from workers.store.keys import EVENTS_DRAIN, EVENTS_PENDING
from workers.store.messages import MessageRecords
from workers.store.optouts import OptoutRecords
from workers.store.outbox import OutboxRecords
from workers.store.reservations import ReservationRecords

__all__ = ["DRAIN_LEASE_MS", "EVENTS_DRAIN", "EVENTS_PENDING", "IngestResult", "Store"]


class Store:
    """The repositories on one Redis database; flow steps are handed the ones they use."""

    def __init__(self, client: redis.Redis, message_ttl: float):
        self.r = client
        self.events = EventRecords(client)
        self.messages = MessageRecords(client, message_ttl)
        self.outbox = OutboxRecords(client, message_ttl)
        self.feedback = FeedbackRecords(client)
        self.optouts = OptoutRecords(client)
        self.account = AccountRecords(client)
        self.reservations = ReservationRecords(client)
        self.callbacks = CallbackRecords(client)
        self.counters = CounterRecords(client)

    @classmethod
    def from_url(cls, url: str, message_ttl: float) -> Store:
        """A store on its own connection pool (strings decoded); `message_ttl` is how long final messages are kept."""
        return cls(redis.Redis.from_url(url, decode_responses=True, health_check_interval=30,
                                        socket_timeout=5, socket_connect_timeout=5), message_ttl)

    def search_messages(self, term: str, events: int = 20) -> frozenset[str]:
        """The ids of the messages `term` may name: a message id, ClickSend's id for one, and the messages of
        the (at most `events` newest) events whose id, or the id their sender gave them, is `term`."""
        found = {term} | {mid for mid in [self.feedback.message_for_provider_id(term)] if mid}
        for record in self.events.list_events(EventQuery(search=term, limit=events)).items:
            found.update(self.messages.event_message_ids(record.event.id))
        return frozenset(found)

    def ping(self) -> bool:
        """True when Redis answers."""
        try:
            return bool(self.r.ping())
        except (redis.ConnectionError, redis.TimeoutError):
            return False
