"""Hookline's records in Redis, one repository per aggregate, and the atomic steps on them; `keys.py` is the
only place key names live and `transitions.py` the only code that changes a message's state.

Knows nothing of HTTP, of RQ job functions or of the flow steps that use it.
"""

from __future__ import annotations

import redis

from workers.errors import NotReplicated
from workers.store.account import AccountRecords
from workers.store.callbacks import CallbackRecords
from workers.store.connection import connect
from workers.store.counters import CounterRecords
from workers.store.events import DRAIN_LEASE_MS, DrainClaim, EventQuery, EventRecords, IngestResult
from workers.store.feedback import FeedbackRecords
from workers.store.keys import REPLICATION_MARK, available
from workers.store.messages import MessageRecords
from workers.store.optouts import OptoutRecords
from workers.store.outbox import OutboxRecords
from workers.store.pushed import PushedRecords
from workers.store.reservations import ReservationRecords
from workers.store.templates import TemplateRecords

REPLICA_TIMEOUT_MS = 1000
"""How long `Store.replicated` waits for the replicas HOOKLINE_MIN_REPLICAS asks for before it gives up."""

__all__ = ["DRAIN_LEASE_MS", "DrainClaim", "IngestResult", "Store"]


class Store:
    """The repositories on one Redis database; flow steps are handed the ones they use."""

    def __init__(self, client: redis.Redis, message_ttl: float, min_replicas: int = 0):
        self.r = client
        self.min_replicas = min_replicas
        self.events = EventRecords(client)
        self.messages = MessageRecords(client, message_ttl)
        self.outbox = OutboxRecords(client, message_ttl)
        self.feedback = FeedbackRecords(client)
        self.pushed = PushedRecords(client)
        self.optouts = OptoutRecords(client)
        self.account = AccountRecords(client)
        self.reservations = ReservationRecords(client)
        self.callbacks = CallbackRecords(client)
        self.counters = CounterRecords(client)
        self.templates = TemplateRecords(client)

    @classmethod
    def from_url(cls, url: str, message_ttl: float, min_replicas: int = 0) -> Store:
        """A store on its own connection pool (strings decoded) to the Redis `url` names (plain or Sentinel);
        `message_ttl` is how long final messages are kept; `replicated()` waits for `min_replicas` replicas."""
        return cls(connect(url, decode_responses=True, health_check_interval=30, socket_timeout=5,
                           socket_connect_timeout=5), message_ttl, min_replicas)

    def replicated(self) -> None:
        """Return once `min_replicas` replicas have every write this process has completed; NotReplicated when
        too few acknowledged within REPLICA_TIMEOUT_MS. For a step a failover must not undo once the next one is
        taken (answering 202, calling ClickSend with a claimed batch, telling ClickSend a receipt was read).
        WAIT counts its own connection's writes, so one write goes first on the same connection; the
        replication stream keeps order, so a replica that has it has every earlier write too."""
        if not self.min_replicas:
            return
        pipe = self.r.pipeline(transaction=False)
        pipe.set(REPLICATION_MARK, "1")
        pipe.wait(self.min_replicas, REPLICA_TIMEOUT_MS)
        with available():
            _, acknowledged = pipe.execute()
        if int(acknowledged) < self.min_replicas:
            raise NotReplicated(self.min_replicas, int(acknowledged))

    def search_messages(self, term: str, events: int = 20) -> frozenset[str]:
        """The ids of the messages `term` may name: a message id, ClickSend's id for one, and the messages of
        the (at most `events` newest) events whose id, or the id their sender gave them, is `term`."""
        found = {term} | {msg.id for msg in self.messages.find_many([(None, term)]) if msg}
        for record in self.events.list_events(EventQuery(search=term, limit=events)).items:
            found.update(self.messages.event_message_ids(record.event.id))
        return frozenset(found)

    def ping(self) -> bool:
        """True when Redis answers."""
        try:
            return bool(self.r.ping())
        except (redis.ConnectionError, redis.TimeoutError):
            return False
