"""Deployment-wide counters kept in Redis: what every web and worker process, on every host, has counted.

Each counter family is one hash (named in `keys.py`) whose fields are label values joined by `SEP`; processes
add with HINCRBY (HINCRBYFLOAT for summed seconds), inside a round trip they already make where there is one
(the message outcomes are counted by the Lua steps in `transitions.py`, callback attempts in the pipeline that
records them). `read` returns all of them in one round trip for `GET /metrics`. Counts survive restarts and are
the same whichever process answers a scrape. Owns the field layout only; what is counted is the callers' choice.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from workers.store.keys import (
    STATS_CALLBACKS,
    STATS_CLICKSEND,
    STATS_EVENTS,
    STATS_MESSAGES,
    STATS_RECEIPTS,
    available,
    text,
)

ACCEPTED, DUPLICATE = "accepted", "duplicate"
"""The webhook results the ingest step counts itself, in the round trip that stores (or dedupes) the event."""

SEP = "|"
"""Joins label values into a field; no label value holds it (source and rule names are [A-Za-z0-9_.-])."""

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Upper bounds (seconds) of the ClickSend latency histogram's buckets; slower calls fall in +Inf."""

Labelled = dict[tuple[str, ...], float]


def field(*labels: object) -> str:
    """The hash field of one combination of label values."""
    return SEP.join(str(label) for label in labels)


def bucket_of(seconds: float) -> str:
    """The (non-cumulative) histogram bucket a call of `seconds` falls in: its upper bound, or +Inf."""
    index = bisect.bisect_left(LATENCY_BUCKETS, seconds)
    return repr(LATENCY_BUCKETS[index]) if index < len(LATENCY_BUCKETS) else "+Inf"


@dataclass(frozen=True)
class Latency:
    """One histogram series: calls per bucket upper bound (not cumulative; "+Inf" for the slowest) and the
    summed seconds."""

    buckets: Mapping[str, int]
    sum: float

    @property
    def count(self) -> int:
        """Every call in the series."""
        return sum(self.buckets.values())


@dataclass(frozen=True)
class Counts:
    """Every counter as it stands, by label values."""

    events: Labelled  # (source, result, status)
    messages: Labelled  # (channel, rule, state)
    clicksend: Mapping[tuple[str, str], Latency]  # (endpoint, status)
    receipts: Labelled  # (via, result)
    callbacks: Labelled  # (source, result)


class CounterRecords:
    """Adds to and reads the counter hashes."""

    def __init__(self, r: redis.Redis):
        self.r = r

    def count_event(self, source: str, result: str, status: int) -> None:
        """One webhook request answered: accepted, duplicate or refused, with its HTTP status."""
        with available():
            self.r.hincrby(STATS_EVENTS, field(source, result, status), 1)

    def count_call(self, endpoint: str, status: str, seconds: float) -> None:
        """One ClickSend call and how long it took; bucket and sum in one transaction, so a scrape never sees
        one without the other."""
        pipe = self.r.pipeline(transaction=True)
        pipe.hincrby(STATS_CLICKSEND, field(endpoint, status, bucket_of(seconds)), 1)
        pipe.hincrbyfloat(STATS_CLICKSEND, field(endpoint, status, "sum"), seconds)
        with available():
            pipe.execute()

    def count_receipts(self, via: str, results: Mapping[str, int]) -> None:
        """Receipts applied (`via` push or poll) by what applying them did; a page of them in one round trip."""
        pipe = self.r.pipeline(transaction=False)
        for result, n in results.items():
            pipe.hincrby(STATS_RECEIPTS, field(via, result), n)
        with available():
            pipe.execute()

    def read(self) -> Counts:
        """Every counter, in one round trip."""
        pipe = self.r.pipeline(transaction=False)
        for key in (STATS_EVENTS, STATS_MESSAGES, STATS_CLICKSEND, STATS_RECEIPTS, STATS_CALLBACKS):
            pipe.hgetall(key)
        with available():
            events, messages, clicksend, receipts, callbacks = pipe.execute()
        return Counts(_labelled(events), _labelled(messages), _latencies(clicksend), _labelled(receipts),
                      _labelled(callbacks))


def count_callback(pipe: Any, source: str, result: str) -> None:
    """Add one callback attempt with `result` to `pipe`, a pipeline the caller executes with its own writes."""
    pipe.hincrby(STATS_CALLBACKS, field(source, result), 1)


def _labelled(raw: Mapping[Any, Any]) -> Labelled:
    return {tuple(text(k).split(SEP)): float(v) for k, v in raw.items()}


def _latencies(raw: Mapping[Any, Any]) -> dict[tuple[str, str], Latency]:
    buckets: dict[tuple[str, str], dict[str, int]] = {}
    sums: dict[tuple[str, str], float] = {}
    for key, value in raw.items():
        endpoint, status, bound = text(key).rsplit(SEP, 2)
        if bound == "sum":
            sums[(endpoint, status)] = float(value)
        else:
            buckets.setdefault((endpoint, status), {})[bound] = int(value)
    return {series: Latency(counts, sums.get(series, 0.0)) for series, counts in buckets.items()}
