"""Every Redis key name Hookline uses, and the translation of Redis outages into StoreUnavailable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

from workers.errors import StoreUnavailable

PREFIX = "hl"
EVENTS_PENDING = f"{PREFIX}:events:pending"
"""The one pending list of the versions before partitions; still drained (`events_pending_key(None)`)."""
EVENTS_DRAIN = f"{PREFIX}:events:drain"
"""The drain lease of that list."""


def events_pending_key(partition: int | None) -> str:
    """Partition `partition`'s list of event ids waiting to be processed, oldest first (None: the old list)."""
    return EVENTS_PENDING if partition is None else f"{EVENTS_PENDING}:{partition}"


def events_drain_key(partition: int | None) -> str:
    """The lease of the one drain that may work through `partition`'s list (None: the old list's)."""
    return EVENTS_DRAIN if partition is None else f"{EVENTS_DRAIN}:{partition}"


REPLICATION_MARK = f"{PREFIX}:replication:mark"  # written to see every earlier write reach the replicas


def event_key(event_id: str) -> str:
    """An event's record hash."""
    return f"{PREFIX}:event:{event_id}"


EVENTS_BY_TIME = f"{PREFIX}:idx:events"
"""Sorted set of every stored event id by received time (trimmed to the event TTL by each ingest)."""


def events_source_index(source: str) -> str:
    """Sorted set of `source`'s event ids by received time."""
    return f"{PREFIX}:idx:events:source:{source}"


def events_type_index(event_type: str) -> str:
    """Sorted set of the ids of events of `event_type` (any source) by received time."""
    return f"{PREFIX}:idx:events:type:{event_type}"


def events_external_index(external_id: str) -> str:
    """Sorted set of the ids of events the sender called `external_id` (any source), by received time."""
    return f"{PREFIX}:idx:events:ext:{external_id}"


def seen_key(event_id: str) -> str:
    """Marks an event id as seen for the dedupe window."""
    return f"{PREFIX}:seen:{event_id}"


def event_messages_key(event_id: str) -> str:
    """The set of message ids an event produced."""
    return f"{PREFIX}:event:{event_id}:msgs"


def message_key(message_id: str) -> str:
    """A message's record hash (`doc`, `state` and mutable fields)."""
    return f"{PREFIX}:msg:{message_id}"


def message_log_key(message_id: str) -> str:
    """A message's timeline: one JSON entry per transition."""
    return f"{PREFIX}:msg:{message_id}:log"


def correlation_key(key: str) -> str:
    """The set of message ids sharing a rule's correlation `key` (cancel and replace act on it)."""
    return f"{PREFIX}:key:{key}"


def key_order_key(key: str) -> str:
    """The newest `order` seen for correlation `key`: events older than it are stale."""
    return f"{PREFIX}:keyorder:{key}"


def state_index_key(state: str) -> str:
    """Sorted set of message ids in `state`, scored by when they entered it."""
    return f"{PREFIX}:idx:state:{state}"


def outbox_key(channel: str) -> str:
    """Messages queued for sending on `channel`, oldest first."""
    return f"{PREFIX}:outbox:{channel}"


@contextmanager
def available() -> Iterator[None]:
    """Turn Redis connection failures into StoreUnavailable."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise StoreUnavailable(str(exc)) from exc


def text(value: Any) -> str:
    """A reply of the decoded client as the `str` it is (redis-py types replies as bytes or str)."""
    return value if isinstance(value, str) else value.decode()


def texts(values: Any) -> list[str]:
    """A list reply of the decoded client as strings."""
    return [text(v) for v in values]


def maybe_text(value: Any) -> str | None:
    """An optional reply of the decoded client as a string or None."""
    return None if value is None else text(value)


def maybe_json(value: str) -> Any:
    """A stored field decoded from JSON when it is JSON, else as the string it is."""
    if isinstance(value, str):
        first = value[:1]
        if first not in _JSON_START:
            return value  # no JSON text starts so: spares json.loads raising on every plain string
        if first not in _JSON_SPACE:
            try:
                decoded, end = _DECODER.raw_decode(value)
            except ValueError:
                return value
            if end == len(value):
                return decoded
            # text after the value: json.loads's answer (trailing whitespace is JSON, anything else is not)
    try:
        return json.loads(value)
    except ValueError:
        return value


_JSON_SPACE = frozenset(" \t\n\r")
_JSON_START = frozenset('{["-0123456789tfnNI') | _JSON_SPACE
"""What a JSON text may start with (json.loads also reads NaN, Infinity and -Infinity); the whitespace it skips."""
_DECODER = json.JSONDecoder()  # json.loads's own, whose raw_decode skips the wrappers and the end check


DUE = f"{PREFIX}:due"
"""Sorted set of scheduled message ids by send time: the safety net behind RQ's scheduler."""


def outbox_flush_key(channel: str) -> str:
    """The flush lease of `channel`'s outbox: at most one flush job pending or running."""
    return f"{PREFIX}:outbox:{channel}:flush"


def outbox_limit_key(channel: str) -> str:
    """A smaller batch size for `channel` while the message that made ClickSend refuse a request is sought."""
    return f"{PREFIX}:outbox:{channel}:limit"


def outbox_pause_key(channel: str) -> str:
    """Until when (Unix time) `channel`'s outbox is paused, and why."""
    return f"{PREFIX}:outbox:{channel}:paused"


BUCKET = f"{PREFIX}:bucket"
"""The provider request token bucket shared by every worker."""

ALERTS = f"{PREFIX}:alerts"
"""Operator alerts by name (JSON: since, message)."""


OPTOUTS = f"{PREFIX}:optouts"
"""Hash of suppressed numbers (E.164) → JSON: when, how, and the reply that asked."""

OPTOUTS_LIFTED = f"{PREFIX}:optouts:lifted"
"""Hash of numbers whose suppression was lifted → JSON: when, by whom (the sync weighs it against adds)."""

OPTOUTS_CHANGES = f"{PREFIX}:optouts:changes"
"""List of the latest suppression changes, newest first (JSON: number, action, at, via, detail)."""

OPTOUTS_REMOTE = f"{PREFIX}:optouts:remote"
"""Hash of the numbers on ClickSend's opt-out list at the last sync → JSON: contact ids, when seen."""

OPTOUTS_SYNC_LEASE = f"{PREFIX}:optouts:sync"
"""Held while an opt-out sync runs: one at a time."""

RECEIPTS_UNKNOWN = f"{PREFIX}:stats:receipts_unknown"
"""Count of receipts naming no message we know."""

PUSHED = f"{PREFIX}:pushed"
"""List of what ClickSend pushed (receipts and replies, JSON) waiting to be applied a page at a time."""
PUSHED_DRAIN = f"{PREFIX}:pushed:drain"
"""The lease of the one job that applies that list."""

ACCOUNT = f"{PREFIX}:account"
"""Hash of facts about the ClickSend account (user_id, balance) refreshed by the workers."""

STORED_TEMPLATES = f"{PREFIX}:clicksend:templates"
"""JSON: the account's stored SMS templates as last fetched (`fetched_at`, `templates`), shared by every worker."""


def list_name_key(name: str) -> str:
    """String: the id of the ClickSend contact list of that name (lower-cased), cached for a while."""
    return f"{PREFIX}:clicksend:list:{name.lower()}"


CALLBACKS_PENDING = f"{PREFIX}:callbacks:pending"
"""Sorted set of pending callback ids by when their next attempt is due: the sweep's safety net."""

CALLBACKS_EXHAUSTED = f"{PREFIX}:callbacks:exhausted"
"""Sorted set of callback ids that gave up, by when: listed and replayable."""

UNREPORTED = f"{PREFIX}:unreported"
"""Sorted set of "<message id> <state>" written with every change into a reported state and removed once its
callbacks exist, by when: a worker killed in between leaves the entry for the sweep."""


def provider_key(provider_id: str) -> str:
    """ClickSend's message_id → our message id."""
    return f"{PREFIX}:provider:{provider_id}"


def inbound_seen_key(inbound_id: str) -> str:
    """Marks an inbound reply as applied (ClickSend retries pushes)."""
    return f"{PREFIX}:inbound:seen:{inbound_id}"


def callback_key(callback_id: str) -> str:
    """A callback's record hash."""
    return f"{PREFIX}:cb:{callback_id}"


def message_callbacks_key(message_id: str) -> str:
    """The callback ids of a message."""
    return f"{PREFIX}:msg:{message_id}:callbacks"


def spend_key(day: str) -> str:
    """Money committed on `day` (YYYY-MM-DD in the configured zone): estimates reserved, then actual prices."""
    return f"{PREFIX}:spend:{day}"


def recipient_rate_key(number: str) -> str:
    """Sorted set of message ids sent (or reserved) to `number`, by time: the per-recipient rate window."""
    return f"{PREFIX}:rate:{number}"


def duplicate_key(digest: str) -> str:
    """Marks a recipient+body pair as sent within the duplicate window."""
    return f"{PREFIX}:dup:{digest}"


def price_key(channel: str, country: str, encoding: str, parts: int) -> str:
    """A cached price estimate."""
    return f"{PREFIX}:price:{channel}:{country}:{encoding}:{parts}"


BALANCE_LOW = f"{PREFIX}:balance_low"
"""Set while the account balance is under a policy's floor."""


# Deployment-wide counters (`store/counters.py`): hashes whose fields are label values joined by "|", written
# by every process on every host with HINCRBY, read whole at scrape time.
STATS_EVENTS = f"{PREFIX}:stats:events"
"""Webhook requests by "<source>|<result>|<HTTP status>"."""

STATS_MESSAGES = f"{PREFIX}:stats:messages"
"""Messages that entered `sent` or a final state, by "<channel>|<rule>|<state>" (counted by the Lua steps)."""

STATS_CLICKSEND = f"{PREFIX}:stats:clicksend"
"""ClickSend calls by "<endpoint>|<status>|<bucket upper bound>" (latency histogram buckets, not cumulative),
and the summed seconds by "<endpoint>|<status>|sum"."""

STATS_RECEIPTS = f"{PREFIX}:stats:receipts"
"""Delivery receipts by "<via>|<what applying them did>"."""

STATS_CALLBACKS = f"{PREFIX}:stats:callbacks"
"""Callback attempts by "<source>|<result>"."""
