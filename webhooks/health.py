"""Liveness and readiness: `/healthz` (the process answers) and `/readyz` (Redis and sources usable).

`/readyz` answers anyone with its status and checks; what is behind them (source names, config errors,
alerts, paused outboxes) only a caller with the API token sees. Answers take `webhooks.schemas`' shapes.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from webhooks import schemas
from webhooks.auth import bearer_ok
from webhooks.context import runtime
from workers.errors import ConfigError
from workers.wiring import pipeline

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """The process is up."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Ready when Redis answers and a good rules set is loaded; with the API token, details say what is wrong."""
    rt = runtime()
    redis_ok = rt.store.ping()
    try:
        sources = sorted(rt.rules.current().sources)  # also picks up an edit of the rules directory
    except ConfigError:
        sources = []
    rules_ok = rt.rules.loaded
    body: dict[str, Any] = {
        "status": "ready" if redis_ok and rules_ok else "not_ready",
        "checks": {"redis": redis_ok, "rules_loaded": rules_ok},
    }
    if bearer_ok():  # what only the operator sees
        body.update({
            "sources": sources,
            "config_errors": rt.rules.errors,
            "alerts": rt.store.account.alerts() if redis_ok else {},
            "paused_outboxes": {c: p for c in pipeline.CHANNELS if redis_ok and (p := rt.store.outbox.paused(c))},
        })
    return jsonify(schemas.dump(schemas.Ready, body)), 200 if redis_ok and rules_ok else 503
