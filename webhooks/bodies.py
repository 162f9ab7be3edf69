"""Request bodies read whole and bounded in size before the app sees them (WSGI middleware).

Werkzeug's MAX_CONTENT_LENGTH refuses a declared Content-Length over the limit, but it does not cover a
chunked body under every server: under gunicorn a chunked body over the limit was cut at the limit and
handed on as if it were the whole body. Here every body, whatever its framing, is read in bounded pieces up
to `max_body + 1` bytes: more than `max_body` is 413 and nothing reaches the app. A body that stopped
arriving (its read timed out: the server bounds how long a body may take, see `webhooks.serving`) is 408.
Otherwise the app sees the body as a buffer with its Content-Length, as it would behind a buffering proxy,
so `request.get_data()` reads it as before; at most `concurrency` requests are in the app at once.
"""

from __future__ import annotations

import functools
import io
import json
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from workers.errors import IngestError

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

PIECE = 64 * 1024

# After refusing an oversized chunked body, read and drop up to this much more of it before answering: a
# connection closed with unread data in its receive buffer is reset, and the client, still sending, would
# see the reset instead of the 413. Bounded, so a client that never stops costs at most this.
LINGER = 1024 * 1024


def _too_large(max_body: int) -> IngestError:
    return IngestError(f"body larger than {max_body} bytes", 413, "too_large")


def read_body(environ: WSGIEnvironment, max_body: int) -> bytes | None:
    """The whole request body, or None when the request declares none; raise IngestError (with the status to
    answer) when it is over `max_body` bytes, ends early, or stops arriving."""
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    declared: int | None = None
    if not chunked:
        try:
            declared = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise IngestError("Content-Length is not a number", 400, "bad_request") from None
        if declared <= 0:
            return None
        if declared > max_body:
            raise _too_large(max_body)  # refused before reading any of it
    want = max_body + 1 if declared is None else declared
    stream = environ["wsgi.input"]
    pieces: list[bytes] = []
    size = 0
    try:
        while size < want:
            piece = stream.read(min(PIECE, want - size))
            if not piece:
                break
            pieces.append(piece)
            size += len(piece)
    except TimeoutError:
        raise IngestError("the request body did not arrive in time", 408, "timeout") from None
    if size > max_body:
        _linger(stream)
        raise _too_large(max_body)
    if declared is not None and size < declared:
        raise IngestError(f"body ended after {size} of {declared} bytes", 400, "bad_request")
    return b"".join(pieces)


def _linger(stream: io.RawIOBase) -> None:
    dropped = 0
    try:
        while dropped < LINGER and (piece := stream.read(PIECE)):
            dropped += len(piece)
    except (TimeoutError, OSError):
        pass  # the 413 is the answer either way


class BoundedBodies:
    """Wraps a WSGI app: reads each body whole (at most `max_body` bytes) before calling it, and lets at most
    `concurrency` requests into it at once.

    Under gevent workers every connection is served at once; bodies are read concurrently (a slow one holds
    only its own greenlet), but the app's work is CPU and Redis round trips, which more than a few dozen at
    a time only slow down, and redis-py's pools refuse more than 100 connections ("Too many connections").
    The rest wait here, bodies in hand. Under fewer threads than `concurrency` this is no limit at all.
    """

    def __init__(self, app: WSGIApplication, max_body: int, concurrency: int = 32):
        self.app, self.max_body, self.concurrency = app, max_body, concurrency

    @functools.cached_property
    def _slots(self) -> threading.BoundedSemaphore:
        # Made on first use, in the serving process after gevent patched `threading` (never before a fork).
        return threading.BoundedSemaphore(self.concurrency)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            body = read_body(environ, self.max_body)
        except IngestError as refused:
            payload = json.dumps({"error": refused.code, "message": refused.message}).encode()
            start_response(f"{refused.status} {_REASONS[refused.status]}",
                           [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
            return [payload]
        if body is not None:
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("HTTP_TRANSFER_ENCODING", None)  # now a buffer of known length
            environ.pop("wsgi.input_terminated", None)
        with self._slots:
            return self.app(environ, start_response)


_REASONS = {400: "Bad Request", 408: "Request Timeout", 413: "Content Too Large"}
