"""Which job runs on which queue, and the helpers that enqueue them.

Job functions are named by dotted path (strings), so the web edge can enqueue without importing the jobs.
"""

from __future__ import annotations

from datetime import datetime

import redis
from rq import Queue, Retry

EVENTS_QUEUE = "hookline-events"
SEND_QUEUE = "hookline-send"
CALLBACKS_QUEUE = "hookline-callbacks"
ALL_QUEUES = (EVENTS_QUEUE, SEND_QUEUE, CALLBACKS_QUEUE)

DRAIN_EVENTS = "workers.jobs.drain_events"
FIRE_MESSAGE = "workers.jobs.fire_message"
DRAIN_TIMEOUT = 240

# A drain job killed with its worker is retried; its work is idempotent and its lease guards the list.
_DRAIN_RETRY = Retry(max=5, interval=[1, 5, 15, 60, 120])


def queue(connection: redis.Redis, name: str) -> Queue:
    """The RQ queue `name` on `connection` (a client that does not decode responses)."""
    return Queue(name, connection=connection)


def enqueue_drain(connection: redis.Redis, token: str) -> None:
    """Start a drain of the pending events holding lease `token`."""
    queue(connection, EVENTS_QUEUE).enqueue(
        DRAIN_EVENTS, token, retry=_DRAIN_RETRY,
        result_ttl=60, failure_ttl=7 * 24 * 3600, job_timeout=DRAIN_TIMEOUT,
    )


def schedule_fire(connection: redis.Redis, message_id: str, at: datetime) -> None:
    """Have RQ's scheduler fire a scheduled message at `at` (the due sweep is the safety net)."""
    queue(connection, EVENTS_QUEUE).enqueue_at(at, FIRE_MESSAGE, message_id, result_ttl=60, failure_ttl=7 * 86400)
