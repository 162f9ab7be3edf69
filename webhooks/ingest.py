"""`POST /hooks/<source>`: verify, validate, dedupe, persist and hand over one event, then answer.

Owns the HTTP side of ingest only; signatures are `webhooks.signatures`', building the event from the body
is `workers.core.intake`'s (shared with the dry run), storage is `workers.store`'s.

Webhooks are the one route that must be cheap: `IngestEdge` answers `POST /hooks/<source>` in front of Flask,
without its request context, routing, session or response objects (about a third of a webhook's CPU under
gunicorn: see BENCHMARKS.md), with the same answers. Everything else, other methods on the same
path included, goes on to Flask; the Flask view stays for the route's place in `url_map` (the OpenAPI
document) and answers the same way for any caller that reaches it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import redis
from flask import Blueprint, Flask, request
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import EnvironHeaders
from werkzeug.exceptions import InternalServerError
from werkzeug.http import HTTP_STATUS_CODES, parse_options_header

from webhooks import signatures
from webhooks.context import Parts, runtime
from webhooks.errors import ingest_refusal, store_refusal
from workers.core.intake import build_event
from workers.core.sources import Source
from workers.errors import ConfigError, IngestError, StoreUnavailable

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

bp = Blueprint("ingest", __name__)
log = logging.getLogger("hookline.ingest")

_PREFIX = "/hooks/"


@dataclass(frozen=True)
class Answer:
    """What a webhook request is answered: the status and the JSON body."""

    status: int
    body: dict[str, Any]
    counted: bool = False  # by the ingest step itself (accepted, duplicate)


def answer(rt: Parts, source_name: str, mimetype: str, headers: Mapping[str, str], body: bytes) -> Answer:
    """Accept one event: 202 when new, 200 with `duplicate: true` for a repeat; otherwise the refusal (an
    unexpected error is logged and answered 500). Every answer is counted by source, result and status, except
    a 503 (Redis may be what failed, and a count must not make a failing request wait again) and those the
    ingest step counts itself. `headers` must be case-insensitive (werkzeug's are)."""
    label = "(unknown)"  # unknown names are not labels (anyone can send one)
    try:
        try:
            config = rt.rules.current()
        except ConfigError:
            return Answer(503, {"error": "not_ready", "message": "sources are not loaded; see /readyz"})
        source = config.sources.get(source_name)
        if source is None:
            got = Answer(404, {"error": "unknown_source", "message": f"no source named {source_name!r}"})
        else:
            label = source.name
            got = _receive(rt, source, mimetype, headers, body)
    except IngestError as exc:
        got = Answer(*ingest_refusal(exc))
    except StoreUnavailable as exc:
        got = Answer(*store_refusal(exc))
    except Exception:
        log.exception("Exception on /hooks/%s [POST]", source_name)
        got = Answer(500, {"error": "internal_error", "message": InternalServerError.description})
    if got.status != 503 and not got.counted:
        try:
            rt.store.counters.count_event(label, "refused" if got.status >= 400 else "answered", got.status)
        except StoreUnavailable as exc:
            log.warning("webhook answer not counted: %s", exc)
    return got


def _receive(rt: Parts, source: Source, mimetype: str, headers: Mapping[str, str], body: bytes) -> Answer:
    if source.body == "form":
        if mimetype != "application/x-www-form-urlencoded":
            return Answer(415, {"error": "unsupported_media_type",
                                "message": "send the event as application/x-www-form-urlencoded"})
    elif not mimetype or not (mimetype == "application/json" or mimetype.endswith("+json")):
        return Answer(415, {"error": "unsupported_media_type", "message": "send the event as application/json"})
    now = time.time()
    try:
        signatures.verify(source.verify, body, headers, now, rt.settings.signature_tolerance)
    except IngestError as exc:
        log.info("refused event for %s: %s", source.name, getattr(exc, "detail", exc))
        raise
    # BadJSON (400) and PayloadInvalid (422) are IngestErrors: answered by `answer`.
    event = build_event(source, headers, body, now)
    handshake = source.handshake_answer(event.type, event.payload)
    if handshake is not None:  # the provider checking the endpoint (its preset says how): nothing to store
        log.info("answered the %s handshake for %s", event.type, source.name)
        return Answer(200, handshake)
    result = rt.store.events.ingest(event, source.dedupe_window or rt.settings.dedupe_window, rt.settings.event_ttl,
                                    rt.settings.partitions)
    rt.store.replicated()  # with HOOKLINE_MIN_REPLICAS: a failover keeps what was answered (503 otherwise)
    if not result.created:
        return Answer(200, {"event_id": result.event_id, "duplicate": True}, counted=True)
    if result.drain:
        try:
            rt.enqueuer.drain(result.drain)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            # The event is stored and queued; the periodic sweep starts the drain this enqueue missed.
            log.warning("event %s stored, drain not started (%s); the sweep will start it", event.id, exc)
    log.info("accepted event %s source=%s type=%s", event.id, source.name, event.type,
             extra={"event_id": event.id, "source": source.name, "event_type": event.type})
    return Answer(202, {"event_id": event.id}, counted=True)


@bp.post("/hooks/<source_name>")
def receive(source_name: str) -> ResponseReturnValue:
    """Accept one event (answered by `IngestEdge` before Flask when the app comes from `create_app`)."""
    # werkzeug's Headers is a case-insensitive mapping of str to str, though not registered as a Mapping.
    got = answer(runtime(), source_name, request.mimetype, cast(Mapping[str, str], request.headers),
                 request.get_data(cache=True))
    return got.body, got.status


class IngestEdge:
    """WSGI middleware: answers `POST /hooks/<source>` with `answer`, hands every other request to `app`.

    Sits inside `webhooks.bodies.BoundedBodies`, so the body is already read whole and bounded.
    """

    def __init__(self, app: WSGIApplication, flask_app: Flask):
        self.app, self.flask_app = app, flask_app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        # As werkzeug's routing reads it: the WSGI string's bytes as UTF-8, and a name is anything but "/".
        name = path[len(_PREFIX):].encode("latin-1").decode("utf-8", "replace")
        if environ.get("REQUEST_METHOD") != "POST" or not path.startswith(_PREFIX) or not name or "/" in name:
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)  # BoundedBodies made it the buffer's length
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        mimetype = parse_options_header(environ.get("CONTENT_TYPE", ""))[0].lower()
        got = answer(self.flask_app.extensions["hookline"], name, mimetype,
                     cast(Mapping[str, str], EnvironHeaders(environ)), body)
        payload = (self.flask_app.json.dumps(got.body, separators=(",", ":")) + "\n").encode()
        start_response(f"{got.status} {HTTP_STATUS_CODES[got.status].upper()}",
                       [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]
