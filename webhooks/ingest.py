"""`POST /hooks/<source>`: verify, validate, dedupe, persist and hand over one event, then answer.

Owns the HTTP side of ingest only; signatures are `webhooks.signatures`', storage is `workers.store`'s.
"""

from __future__ import annotations

import logging
import time

import redis
from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from webhooks import signatures
from webhooks.context import error, runtime
from workers.core.events import Event, body_digest, decode_json, event_id_for, kept_headers
from workers.core.sources import Extract, Source
from workers.errors import ConfigError, IngestError, PayloadInvalid

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
    if not request.mimetype or not (request.mimetype == "application/json" or
                                    request.mimetype.endswith("+json")):
        return error(415, "unsupported_media_type", "send the event as application/json")
    body = request.get_data(cache=True)  # raises 413 from Content-Length before reading a large body
    try:
        signatures.verify(source.verify, body, request.headers, time.time(), rt.settings.signature_tolerance)
    except IngestError as exc:
        log.info("refused event for %s: %s", source_name, getattr(exc, "detail", exc))
        raise
    try:
        payload = decode_json(body)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return error(400, "bad_json", f"body is not valid JSON: {exc}")
    problems = source.payload_errors(payload)
    if problems:
        raise PayloadInvalid(f"payload does not match the {source_name} schema", problems)
    event_type = source.event_type.read(request.headers, payload)
    if not event_type:
        raise PayloadInvalid("event type not found", [_where(source.event_type)])
    external_id = (source.event_id.read(request.headers, payload) if source.event_id else None) \
        or body_digest(body)
    event = Event(
        id=event_id_for(source_name, external_id),
        source=source_name,
        type=event_type,
        external_id=external_id,
        received_at=time.time(),
        headers=kept_headers(request.headers, source.keep_headers + _id_headers(source)),
        payload=payload,
    )
    result = rt.store.events.ingest(event, source.dedupe_window or rt.settings.dedupe_window, rt.settings.event_ttl)
    if not result.created:
        return jsonify({"event_id": event.id, "duplicate": True}), 200
    if result.drain_token:
        try:
            rt.enqueuer.drain(result.drain_token)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            # The event is stored and queued; the periodic sweep starts the drain this enqueue missed.
            log.warning("event %s stored, drain not started (%s); the sweep will start it", event.id, exc)
    log.debug("accepted event %s source=%s type=%s", event.id, source_name, event_type)
    return jsonify({"event_id": event.id}), 202


def _where(extract: Extract) -> str:
    if extract.header:
        return f"header {extract.header} is missing"
    return f"path {extract.path} is missing or not a scalar"


def _id_headers(source: Source) -> tuple[str, ...]:
    return tuple(e.header for e in (source.event_id, source.event_type) if e is not None and e.header)
