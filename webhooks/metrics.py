"""`GET /metrics` (bearer token): message counts by state, outbox depth, pending events, alerts."""

from __future__ import annotations

from flask import Blueprint, Response

from webhooks.auth import require_token
from webhooks.context import runtime
from workers.core.lifecycle import State
from workers.wiring import pipeline

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
@require_token
def metrics() -> Response:
    """Gauges read from Redis at scrape time (no per-process counters to lose on restart). Bearer token:
    Prometheus sends it with `authorization: {credentials: …}` in the scrape config."""
    store = runtime().store
    counts = store.messages.state_counts()
    lines = ["# HELP hookline_messages Messages by lifecycle state.", "# TYPE hookline_messages gauge"]
    lines += [f'hookline_messages{{state="{s.value}"}} {counts.get(s.value, 0)}' for s in State]
    lines += ["# HELP hookline_outbox_depth Messages waiting in each outbox.", "# TYPE hookline_outbox_depth gauge"]
    lines += [f'hookline_outbox_depth{{channel="{c}"}} {store.outbox.outbox_length(c)}' for c in pipeline.CHANNELS]
    lines += ["# HELP hookline_outbox_paused 1 while an outbox is paused.", "# TYPE hookline_outbox_paused gauge"]
    lines += [f'hookline_outbox_paused{{channel="{c}"}} {int(store.outbox.paused(c) is not None)}'
              for c in pipeline.CHANNELS]
    lines += ["# HELP hookline_events_pending Events stored but not yet processed.",
              "# TYPE hookline_events_pending gauge", f"hookline_events_pending {store.events.pending_count()}"]
    alerts = store.account.alerts()
    lines += ["# HELP hookline_alert 1 while an operator alert is raised.", "# TYPE hookline_alert gauge"]
    lines += [f'hookline_alert{{name="{name}"}} 1' for name in sorted(alerts)]
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")
