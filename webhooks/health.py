"""Liveness and readiness: `/healthz` (the process answers) and `/readyz` (Redis and sources usable)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

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
    """Ready when Redis answers and a good rules set is loaded; details say what is wrong."""
    rt = runtime()
    redis_ok = rt.store.ping()
    try:
        config = rt.rules.current()
        sources = sorted(config.sources)
    except ConfigError:
        sources = []
    rules_ok = rt.rules.loaded
    alerts = rt.store.account.alerts() if redis_ok else {}
    paused = {c: p for c in pipeline.CHANNELS if redis_ok and (p := rt.store.outbox.paused(c))}
    body = {
        "status": "ready" if redis_ok and rules_ok else "not_ready",
        "checks": {"redis": redis_ok, "rules_loaded": rules_ok},
        "sources": sources,
        "config_errors": rt.rules.errors,
        "alerts": alerts,
        "paused_outboxes": paused,
    }
    return jsonify(body), 200 if redis_ok and rules_ok else 503
