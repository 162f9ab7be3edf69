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

DRAIN_EVENTS = "workers.entry.jobs.drain_events"
FIRE_MESSAGE = "workers.entry.jobs.fire_message"
FLUSH_OUTBOX = "workers.entry.jobs.flush_outbox"
RECONCILE = "workers.entry.jobs.reconcile_messages"
SEND_CALLBACK = "workers.entry.jobs.send_callback"
CHANNELS = ("sms", "mms", "voice")
# Shorter than the sending lease, so a flush is never still running when recovery takes its messages.
FLUSH_TIMEOUT = 90
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


def enqueue_flush(connection: redis.Redis, channel: str, token: str, at: datetime | None = None) -> None:
    """Flush `channel`'s outbox holding lease `token`, now or at `at` (never sleeps inside a job)."""
    q = queue(connection, SEND_QUEUE)
    kwargs = {"result_ttl": 60, "failure_ttl": 7 * 86400, "job_timeout": FLUSH_TIMEOUT}
    if at is None:
        q.enqueue(FLUSH_OUTBOX, channel, token, **kwargs)
    else:
        q.enqueue_at(at, FLUSH_OUTBOX, channel, token, **kwargs)


def enqueue_reconcile(connection: redis.Redis, channel: str, message_ids: list[str], at: datetime) -> None:
    """Look messages with an unknown outcome up in ClickSend's history at `at`."""
    queue(connection, SEND_QUEUE).enqueue_at(at, RECONCILE, channel, message_ids, result_ttl=60,
                                             failure_ttl=7 * 86400, job_timeout=FLUSH_TIMEOUT)


def enqueue_callback(connection: redis.Redis, callback_id: str, at: datetime | None = None) -> None:
    """Deliver a callback on its own queue (a slow origin never slows sending), now or at `at`."""
    q = queue(connection, CALLBACKS_QUEUE)
    kwargs = {"result_ttl": 60, "failure_ttl": 7 * 86400, "job_timeout": 120}
    if at is None:
        q.enqueue(SEND_CALLBACK, callback_id, **kwargs)
    else:
        q.enqueue_at(at, SEND_CALLBACK, callback_id, **kwargs)
