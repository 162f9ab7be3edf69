"""`POST /hooks/<source>`: verify, validate, dedupe, persist and hand over one event, then answer.

Owns the HTTP side of ingest only; signatures are `webhooks.signatures`', building the event from the body
is `workers.core.intake`'s (shared with the dry run), storage is `workers.store`'s.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import cast

import redis
from flask import Blueprint, Response, g, jsonify, request
from flask.typing import ResponseReturnValue

from webhooks import signatures
from webhooks.context import error, runtime
from workers.core.intake import build_event
from workers.errors import ConfigError, IngestError, StoreUnavailable
from workers.store.counters import ACCEPTED, DUPLICATE

bp = Blueprint("ingest", __name__)
log = logging.getLogger("hookline.ingest")


@bp.post("/hooks/<source_name>")
def receive(source_name: str) -> ResponseReturnValue:
    """Accept one event: 202 when new, 200 with `duplicate: true` for a repeat."""
    rt = runtime()
    try:
        config = rt.rules.current()
    except ConfigError:
        return error(503, "not_ready", "sources are not loaded; see /readyz")
    source = config.sources.get(source_name)
    if source is None:
        return error(404, "unknown_source", f"no source named {source_name!r}")
    g.hookline_source = source.name  # counted under its name; unknown names are not labels (anyone can send one)
    if source.body == "form":
        if request.mimetype != "application/x-www-form-urlencoded":
            return error(415, "unsupported_media_type", "send the event as application/x-www-form-urlencoded")
    elif not request.mimetype or not (request.mimetype == "application/json" or request.mimetype.endswith("+json")):
        return error(415, "unsupported_media_type", "send the event as application/json")
    body = request.get_data(cache=True)  # raises 413 from Content-Length before reading a large body
    now = time.time()
    # werkzeug's Headers is a case-insensitive mapping of str to str, though not registered as a Mapping.
    headers = cast(Mapping[str, str], request.headers)
    try:
        signatures.verify(source.verify, body, headers, now, rt.settings.signature_tolerance)
    except IngestError as exc:
        log.info("refused event for %s: %s", source_name, getattr(exc, "detail", exc))
        raise
    # BadJSON (400) and PayloadInvalid (422) are answered by the IngestError handler.
    event = build_event(source, headers, body, now)
    answer = source.handshake_answer(event.type, event.payload)
    if answer is not None:  # the provider checking the endpoint (its preset says how): nothing to store
        log.info("answered the %s handshake for %s", event.type, source_name)
        return jsonify(answer), 200
    result = rt.store.events.ingest(event, source.dedupe_window or rt.settings.dedupe_window, rt.settings.event_ttl,
                                    rt.settings.partitions)
    if not result.created:
        g.hookline_result = DUPLICATE
        return jsonify({"event_id": result.event_id, "duplicate": True}), 200
    g.hookline_result = ACCEPTED
    if result.drain:
        try:
            rt.enqueuer.drain(result.drain)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            # The event is stored and queued; the periodic sweep starts the drain this enqueue missed.
            log.warning("event %s stored, drain not started (%s); the sweep will start it", event.id, exc)
    log.info("accepted event %s source=%s type=%s", event.id, source_name, event.type,
             extra={"event_id": event.id, "source": source_name, "event_type": event.type})
    return jsonify({"event_id": event.id}), 202


@bp.after_request
def count(response: Response) -> Response:
    """Count every answer by source, result (accepted, duplicate, refused) and status. A 503 is not counted:
    Redis may be what failed, and a count must not make a failing request wait again."""
    result = g.get("hookline_result") or ("refused" if response.status_code >= 400 else "answered")
    if response.status_code != 503 and result not in (ACCEPTED, DUPLICATE):  # those the ingest step counted
        try:
            runtime().store.counters.count_event(g.get("hookline_source", "(unknown)"), result, response.status_code)
        except StoreUnavailable as exc:
            log.warning("webhook answer not counted: %s", exc)
    return response
