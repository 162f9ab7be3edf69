"""`GET /metrics` (bearer token): Prometheus exposition of the deployment's counters and gauges.

Everything is read from Redis at scrape time by a prometheus_client custom collector: the counters every web and
worker process, on every host, adds to (`workers/store/counters.py`) and today's gauges (messages by state,
outboxes, pending events, alerts, spend, holds, exhausted callbacks). Nothing is kept per process, so no count
is lost with a process and any web process answers with the same totals. Owns the metric names and help texts
only; what is counted where is the store's and the callers'.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from importlib import metadata
from zoneinfo import ZoneInfo

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from webhooks.auth import require_token
from webhooks.context import Parts, runtime
from workers.core.lifecycle import State
from workers.errors import ConfigError
from workers.store.counters import LATENCY_BUCKETS, Counts, Labelled
from workers.wiring import pipeline

bp = Blueprint("metrics", __name__)


def version() -> str:
    """Hookline's installed version ("unknown" when run from a tree that was never installed)."""
    try:
        return metadata.version("hookline")
    except metadata.PackageNotFoundError:
        return "unknown"


def _counter(name: str, doc: str, labels: list[str], values: Labelled) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


class HooklineCollector(Collector):
    """Reads the counters and gauges from the store of `parts` on every scrape."""

    def __init__(self, parts: Parts):
        self.parts = parts

    def collect(self) -> Iterator[Metric]:
        """The metric families, counters first."""
        counts = self.parts.store.counters.read()
        yield InfoMetricFamily("hookline_build", "The running Hookline.", value={"version": version()})
        yield from self._counters(counts)
        yield from self._clicksend(counts)
        yield from self._gauges()
        yield from self._money()

    def _counters(self, counts: Counts) -> Iterator[Metric]:
        yield _counter("hookline_events_received", "Webhook requests answered, by source, result (accepted, "
                       "duplicate, refused) and HTTP status.", ["source", "result", "status"], counts.events)
        yield _counter("hookline_messages_outcome", "Messages that entered sent or a final state, by channel, "
                       "rule and state.", ["channel", "rule", "state"], counts.messages)
        yield _counter("hookline_receipts_applied", "Delivery receipts applied, by how they came (push, poll) and "
                       "what they did.", ["via", "result"], counts.receipts)
        yield _counter("hookline_callbacks", "Callback attempts by source and result (delivered, retry, failed, "
                       "exhausted, refused, dropped).", ["source", "result"], counts.callbacks)

    def _clicksend(self, counts: Counts) -> Iterator[Metric]:
        calls: Labelled = {series: float(latency.count) for series, latency in counts.clicksend.items()}
        yield _counter("hookline_clicksend_requests", "ClickSend API calls by endpoint and status (HTTP status, or "
                       "connect_timeout, connection_error, timeout).", ["endpoint", "status"], calls)
        yield _counter("hookline_clicksend_rate_limited", "ClickSend calls answered 429 (the outbox pauses).",
                       ["endpoint"], {(endpoint,): n for (endpoint, status), n in calls.items() if status == "429"})
        histogram = HistogramMetricFamily("hookline_clicksend_request_seconds", "ClickSend API call latency.",
                                          labels=["endpoint", "status"])
        for (endpoint, status), latency in sorted(counts.clicksend.items()):
            cumulative, buckets = 0, []
            for bound in [*map(repr, LATENCY_BUCKETS), "+Inf"]:
                cumulative += latency.buckets.get(bound, 0)
                buckets.append((bound, float(cumulative)))
            histogram.add_metric([endpoint, status], buckets, latency.sum)
        yield histogram

    def _gauges(self) -> Iterator[Metric]:
        store = self.parts.store
        by_state = GaugeMetricFamily("hookline_messages", "Messages by lifecycle state.", labels=["state"])
        for state, n in store.messages.state_counts().items():
            by_state.add_metric([state], n)
        yield by_state
        depth = GaugeMetricFamily("hookline_outbox_depth", "Messages waiting in each outbox.", labels=["channel"])
        paused = GaugeMetricFamily("hookline_outbox_paused", "1 while an outbox is paused.", labels=["channel"])
        for channel in pipeline.CHANNELS:
            depth.add_metric([channel], store.outbox.outbox_length(channel))
            paused.add_metric([channel], int(store.outbox.paused(channel) is not None))
        yield from (depth, paused)
        yield GaugeMetricFamily("hookline_events_pending", "Events stored but not yet processed.",
                                value=store.events.pending_count())
        alerts = GaugeMetricFamily("hookline_alert", "1 while an operator alert is raised.", labels=["name"])
        for name in sorted(store.account.alerts()):
            alerts.add_metric([name], 1)
        yield alerts
        yield GaugeMetricFamily("hookline_callbacks_exhausted", "Callbacks that gave up and wait for a replay.",
                                value=store.callbacks.exhausted_count())
        [oldest] = store.messages.get_messages(store.messages.messages_in_state(State.HELD, limit=1)) or [None]
        age = time.time() - (oldest.updated_at or time.time()) if oldest is not None else 0.0
        yield GaugeMetricFamily("hookline_oldest_hold_age_seconds", "How long the oldest held message has waited "
                                "for a decision (0 when none is held).", value=max(0.0, age))

    def _money(self) -> Iterator[Metric]:
        settings = self.parts.settings
        today = datetime.fromtimestamp(time.time(), tz=ZoneInfo(settings.timezone)).strftime("%Y-%m-%d")
        yield GaugeMetricFamily("hookline_spend_today", "Money committed today (estimates reserved, then real "
                                "prices) in the account's currency; the day is HOOKLINE_TIMEZONE's.",
                                value=float(self.parts.store.reservations.spent(today)))
        budgets = GaugeMetricFamily("hookline_daily_budget", "Each policy's daily_budget, to compare "
                                    "hookline_spend_today with.", labels=["policy"])
        try:
            policies = self.parts.rules.current().policies
        except ConfigError:
            policies = {}
        for name, policy in sorted(policies.items()):
            if policy.daily_budget is not None:
                budgets.add_metric([name], float(policy.daily_budget))
        yield budgets


@bp.get("/metrics")
@require_token
def metrics() -> Response:
    """Read at scrape time from Redis (no per-process counters to lose on restart). Bearer token: Prometheus
    sends it with `authorization: {credentials: …}` in the scrape config."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HooklineCollector(runtime()))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
