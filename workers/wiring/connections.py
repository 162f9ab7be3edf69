"""The one place a Hookline process opens its Redis clients, from the settings: the store (strings decoded)
and RQ's client (bytes, as RQ wants), on a plain Redis or a Sentinel-managed one (`workers.store.connection`
reads the URL). Owns no key and no job."""

from __future__ import annotations

import redis

from workers.store import Store
from workers.store.connection import connect
from workers.wiring.settings import Settings


def open_store(settings: Settings) -> Store:
    """The store on the Redis REDIS_URL names; an event is accepted, and a claimed batch sent, once
    HOOKLINE_MIN_REPLICAS replicas have it too."""
    return Store.from_url(settings.redis_url, settings.message_ttl, settings.min_replicas)


def rq_connection(settings: Settings) -> redis.Redis:
    """RQ's client on the Redis REDIS_URL names (the queues, jobs and RQ's scheduler)."""
    return connect(settings.redis_url, socket_timeout=10, socket_connect_timeout=5)
